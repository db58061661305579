"""The ``finetune-embed`` command line.

Nouns are groups, verbs are commands (``finetune-embed dataset validate FILE``). Every command prints a table
(or human text) by default and JSON with ``--json``. Exit codes: 0 ok, 1 a validation or job failure or an API
error, 2 a usage error. Errors are one line on stderr, never a traceback.

Subcommands live in their own modules and are imported only when used, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

__all__ = ["main"]

# command name -> "module:attribute"; a module that does not exist (yet) is simply not listed
_COMMANDS: dict[str, str] = {
    "dataset": "finetune_embed.cli._dataset:dataset",
    "files": "finetune_embed.cli._files:files",
    "jobs": "finetune_embed.cli._jobs:jobs",
    "models": "finetune_embed.cli._models:models",
    "embed": "finetune_embed.cli._embed:embed",
    "index": "finetune_embed.cli._index:index",
    "eval": "finetune_embed.cli._eval:eval_command",
    "tokenizer": "finetune_embed.cli._tokenizer:tokenizer",
    "fake": "finetune_embed.cli._fake:fake",
}


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as one line on stderr, in the CLI's words (no source path, no code line)."""
    from ._common import one_line
    from ._words import cli_words

    click.echo(f"Warning: {one_line(cli_words(str(message)))}", err=True)


def _quiet_stdout() -> None:
    """The reader of our output went away (``| head``): point stdout at /dev/null so the interpreter's final flush
    cannot fail again, as unix tools end quietly."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (an in-process runner)
        pass


def _log_warnings_handler() -> Any:
    """Without -v, the library's WARNING log records are shown as ``Warning: ...`` lines (in the CLI's words)."""
    import logging

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            _show_warning(record.getMessage(), UserWarning, record.pathname, record.lineno)

    return _Handler(logging.WARNING)


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        import logging
        import warnings

        logger = logging.getLogger("finetune_embed")
        handler = None if ctx.params.get("verbose") else _log_warnings_handler()
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            if handler is not None:
                logger.addHandler(handler)
            try:
                return super().invoke(ctx)
            except BrokenPipeError:
                _quiet_stdout()
                ctx.exit(0)
            finally:
                if handler is not None:
                    logger.removeHandler(handler)

    def _available(self) -> dict[str, str]:
        return {
            name: target
            for name, target in _COMMANDS.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._available()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        target = self._available().get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        loaded: Any = getattr(importlib.import_module(module), attr)
        return loaded if isinstance(loaded, click.Command) else None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("finetune-embed")
    except PackageNotFoundError:  # pragma: no cover
        return "0+unknown"


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "-V", "--version", prog_name="finetune-embed")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v: INFO, -vv: DEBUG).")
def main(verbose: int) -> None:
    """Fine-tune OpenAI / Azure OpenAI models and build search on embeddings.

    Reads OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID; for Azure OpenAI
    AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION and AZURE_OPENAI_API_KEY (with --azure on commands that call the API).
    """
    if verbose:
        import logging

        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
        )
