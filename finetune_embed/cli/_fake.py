"""``finetune-embed fake serve``: run FakeOpenAI on loopback so the CLI and your own code can be tried offline."""

from __future__ import annotations

import json
import shlex

import click

from ._common import handle_errors


def _latency(value: str) -> float | tuple[float, float]:
    """--latency: seconds, or LOW,HIGH for uniform jitter."""
    parts = value.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    valid = len(numbers) in (1, 2) and all(0 <= n < float("inf") for n in numbers) and numbers == sorted(numbers)
    if not valid:
        raise click.BadParameter(f"{value!r} is not SECONDS or LOW,HIGH (non-negative, LOW <= HIGH)")
    return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])


def _profiles() -> list[str]:
    from ..testing._compatible import PROFILES

    return sorted(PROFILES)


@click.group()
def fake() -> None:
    """FakeOpenAI, the local stand-in for the OpenAI API (no key, no network, no cost)."""


@fake.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: a free one).")
@click.option("--rpm", type=click.IntRange(min=1), default=None, help="Requests per minute per model (default: none).")
@click.option("--tpm", type=click.IntRange(min=1), default=None, help="Tokens per minute per model (default: none).")
@click.option(
    "--latency",
    default="0",
    show_default=True,
    callback=lambda _ctx, _param, value: _latency(value),
    help="Seconds before each response, or LOW,HIGH for jitter.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.001),
    default=100.0,
    show_default=True,
    help="Fake seconds per real second: fine-tuning jobs and batches run this much faster than the real API.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Ids and vectors derive from it.")
@click.option("--api-key", default=None, help="Accept only this key (default: any non-empty key).")
@click.option(
    "--server",
    type=click.Choice(_profiles()),
    default=None,
    help="Behave like this OpenAI-compatible server (its models, limits and errors).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON line: base_url, azure_endpoint, api_key (null when --api-key is given).",
)
@handle_errors
def serve(
    host: str,
    port: int,
    rpm: int | None,
    tpm: int | None,
    latency: float | tuple[float, float],
    time_scale: float,
    seed: int,
    api_key: str | None,
    server: str | None,
    as_json: bool,
) -> None:
    """Serve the fake API over HTTP until Ctrl-C; prints the base URL and the environment lines to export.

    In another shell, after the export lines, `finetune-embed` commands and the openai SDK talk to the fake.
    State (files, jobs, models) lives in memory and ends with the server.
    """
    from ..testing import FakeOpenAI
    from ..testing._fake import DEFAULT_API_KEY, DEFAULT_AZURE_API_VERSION

    instance = FakeOpenAI(rpm=rpm, tpm=tpm, latency=latency, seed=seed, api_key=api_key, server=server)
    key = api_key or DEFAULT_API_KEY
    try:
        with instance.serve(host=host, port=port, realtime=True, scale=time_scale) as url:
            azure_endpoint = url.removesuffix("/v1")
            if as_json:
                line = {
                    "base_url": url,
                    "azure_endpoint": azure_endpoint,
                    "api_key": None if api_key else key,
                    "provider": "compatible" if server else "openai",
                }
                click.echo(json.dumps(line))
            else:
                click.echo(f"FakeOpenAI serving at {url} (Ctrl-C to stop)")
                click.echo(f"export OPENAI_BASE_URL={shlex.quote(url)}")
                if api_key is None:
                    click.echo(f"export OPENAI_API_KEY={shlex.quote(key)}")
                else:  # a key the user chose is never echoed
                    click.echo("export OPENAI_API_KEY=...  # the key given with --api-key")
                if server is None:  # the fake imitates OpenAI: model checks as on OpenAI, not as for a local server
                    click.echo("export FINETUNE_EMBED_PROVIDER=openai")
                click.echo(
                    f"# for --azure: export AZURE_OPENAI_ENDPOINT={shlex.quote(azure_endpoint)} "
                    f"AZURE_OPENAI_API_KEY=$OPENAI_API_KEY OPENAI_API_VERSION={DEFAULT_AZURE_API_VERSION}"
                )
            _wait_for_stop()
    except KeyboardInterrupt:
        pass
    if not as_json:
        click.echo("FakeOpenAI stopped.", err=True)


def _wait_for_stop() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM; the caller's ``with`` block then shuts the server down."""
    import signal
    import threading

    stop = threading.Event()

    def _on_term(_signum: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
