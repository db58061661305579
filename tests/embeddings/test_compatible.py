"""OpenAI-compatible servers with the library's defaults (#12): stand-ins for Ollama, vLLM, text-embeddings-inference,
LM Studio, llama.cpp's server and a LiteLLM proxy, each served over loopback HTTP as the real one answers (status
codes, error bodies, batch and input limits, float-only answers, no rate-limit headers, CPU time per input)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from finetune_embed import APIConnectionError, Client, InputTooLongError, RetryPolicy
from finetune_embed.embeddings import Embedder
from finetune_embed.testing import FakeOpenAI

SCALE = 200.0  # fake seconds per real second: a CPU server's minutes run in a fraction of a second


def texts_(n: int, words: int = 12) -> list[str]:
    vocab = ["beans", "coffee", "fresh", "stale", "sweet", "bitter", "order", "price", "taste", "smell"]
    return [f"review {i}: " + " ".join(vocab[(i + k) % len(vocab)] for k in range(words)) for i in range(n)]


@pytest.fixture
def serve() -> Iterator[object]:
    started: list[object] = []

    def start(fake: FakeOpenAI) -> str:
        ctx = fake.serve(scale=SCALE)
        url = ctx.__enter__()
        started.append(ctx)
        return url

    yield start
    for ctx in started:
        ctx.__exit__(None, None, None)  # type: ignore[attr-defined]


# model name the user passes -> (server profile, vectors' size)
SERVERS = {
    "ollama": ("nomic-embed-text", 768),
    "vllm": ("BAAI/bge-small-en-v1.5", 384),
    "tei": ("bge-small-en-v1.5", 384),
    "lmstudio": ("text-embedding-nomic-embed-text-v1.5", 768),
    "llamacpp": ("nomic-embed-text", 768),
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_each_server_works_with_the_defaults(
    server: str, serve: object, caplog: pytest.LogCaptureFixture
) -> None:
    model, dims = SERVERS[server]
    fake = FakeOpenAI(server=server)
    url = serve(fake)  # type: ignore[operator]
    texts = texts_(300)
    with caplog.at_level(logging.WARNING, logger="finetune_embed"), Client(base_url=url, api_key="EMPTY") as client:
        assert client.provider == "compatible"  # a loopback URL; any key works, as the servers' docs say
        vectors = Embedder(client, model=model, cache=False).embed(texts)
    assert vectors.shape == (300, dims)  # the size came from the first response
    np.testing.assert_array_equal(vectors, fake.embeddings(texts, model=model))
    assert set(fake.ledger.billed_texts.values()) == {1}
    unknown = [r for r in caplog.records if "not in finetune_embed's catalog" in r.getMessage()]
    assert len(unknown) == 1  # one logged warning, not a line per object
    assert fake.ledger.count("/v1/embeddings", status=413) <= 1
    assert fake.ledger.count("/v1/embeddings", status=500) == 0


def test_a_model_the_server_does_not_have_is_its_404(serve: object) -> None:
    from finetune_embed import NotFoundError

    url = serve(FakeOpenAI(server="ollama"))  # type: ignore[operator]
    with Client(base_url=url, api_key="EMPTY") as client, pytest.raises(NotFoundError, match="try pulling it first"):
        Embedder(client, model="no-such-model", cache=False).embed(["a"])


def test_llama_cpp_refuses_a_long_input_and_says_which(serve: object) -> None:
    fake = FakeOpenAI(server="llamacpp")
    url = serve(fake)  # type: ignore[operator]
    texts = texts_(20)
    texts[4] = "a long one: " + "fresh beans and bitter coffee " * 120
    client = Client(base_url=url, api_key="EMPTY")
    with client, pytest.raises(InputTooLongError, match=r"input 4 as too long.*physical batch size"):
        Embedder(client, model="nomic-embed-text", cache=False).embed(texts)
    assert fake.ledger.count("/v1/embeddings", status=500) <= 4  # found by halving, never retried as it was
    with Client(base_url=url, api_key="EMPTY") as client:
        emb = Embedder(client, model="nomic-embed-text", cache=False, long_inputs="chunk")
        chunked = emb.embed_with_info(texts)
    assert chunked.long == [4]
    assert not chunked.invalid.any()


def test_a_litellm_proxy_in_front_of_openai() -> None:
    fake = FakeOpenAI(server="litellm", tpm=20_000, rate_limit_window="sliding")
    texts = texts_(600, words=40)  # ~30k tokens: two minutes of quota
    start = fake.clock.now()
    # over loopback HTTP on the fake's manual clock: the embedder's waits for quota (and a retry's) advance the
    # server's clock instead of sleeping the minute of real time a 20k TPM quota needs
    with fake.serve(realtime=False) as url, Client(  # a proxy for OpenAI
        base_url=url, api_key="sk-litellm", provider="openai", retry=RetryPolicy(sleep=fake.sleep, jitter=0.0)
    ) as client:
        vectors = Embedder(client, cache=False, clock=fake.clock.now, sleep=fake.sleep).embed(texts)
    assert fake.clock.now() - start >= 60  # the quota was really waited for, on the server's clock
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    assert fake.ledger.rate_limited <= 2  # paced from the proxy's renamed headers
    assert all(r.tokens <= 20_000 for r in fake.ledger.requests)


def test_an_unreachable_server_is_not_silent(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINETUNE_EMBED_PROGRESS", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    waits: list[float] = []
    client = Client(base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY",
                    retry=RetryPolicy(max_attempts=3, sleep=waits.append, jitter=0.0))
    with client, caplog.at_level(logging.INFO, logger="finetune_embed"), pytest.raises(APIConnectionError):
        Embedder(client, model="nomic-embed-text", cache=False, progress=True).embed(["a", "b"])
    assert len(waits) == 2
    said = [r.getMessage() for r in caplog.records if r.name == "finetune_embed.embeddings"]
    assert any("could not be reached; retrying the request in 1 s" in m for m in said)
    assert "could not be reached" in capsys.readouterr().err  # in the progress bar too


@pytest.mark.parametrize("model", ["all-MiniLM-L6-v2", "nomic-embed-text", "bge-small-en-v1.5"])
def test_any_model_takes_its_size_from_the_first_response(model: str, caplog: pytest.LogCaptureFixture) -> None:
    """A server in any-model mode with a chosen size; the embedder with nothing set but the model's name."""
    fake = FakeOpenAI(any_model=96)
    texts = texts_(150)
    with caplog.at_level(logging.WARNING, logger="finetune_embed"), fake.client(provider="compatible") as client:
        emb = Embedder(client, model=model, cache=False)
        first = emb.embed(texts[:50])
        rest = Embedder(client, model=model, cache=False).embed(texts[50:])
    assert first.shape == (50, 96)
    assert rest.shape == (100, 96)
    np.testing.assert_array_equal(np.vstack([first, rest]), fake.embeddings(texts, model=model))
    warned = [r for r in caplog.records if "not in finetune_embed's catalog" in r.getMessage()]
    assert len(warned) == 1  # one logged line for the client, not one per embedder
    assert not any(r.name == "py.warnings" for r in caplog.records)
