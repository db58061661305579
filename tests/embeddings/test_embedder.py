"""Embedder against the fake OpenAI: results, de-duplication, the cache, policies and fault injection."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from embedding_helpers import words

from finetune_embed import (
    Client,
    ConfigError,
    EmbeddingResponseError,
    InputTooLongError,
    InvalidInputError,
    QuotaExceededError,
    RetryPolicy,
    UnsupportedModelError,
)
from finetune_embed.embeddings import Embedder, EmbeddingCache, InvalidEmbeddingError, InvalidEmbeddingWarning
from finetune_embed.testing import FakeOpenAI, error_body
from finetune_embed.tokenizer import Tokenizer

TOK = Tokenizer("cl100k_base")
MakeEmbedder = Callable[..., Embedder]


def texts_(n: int, length: int = 5) -> list[str]:
    return [words(length + i % 7, seed=i) for i in range(n)]


# --- results ----------------------------------------------------------------------------------------------------


def test_vectors_match_the_service_row_for_row(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = texts_(50)
    vectors = make_embedder(max_batch_inputs=7).embed(texts)
    assert vectors.dtype == np.float32
    assert vectors.shape == (50, 1536)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    assert fake.ledger.embedding_requests == 8  # ceil(50 / 7)


def test_embed_one_and_lists_from_pandas(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    import pandas as pd

    emb = make_embedder()
    np.testing.assert_array_equal(emb.embed_one("hello"), fake.embedding("hello"))
    series = pd.Series(["a b", "c d"])
    np.testing.assert_array_equal(emb.embed(series), fake.embeddings(["a b", "c d"]))
    with pytest.raises(InvalidInputError, match="embed_one"):
        emb.embed("a single string")
    with pytest.raises(InvalidInputError, match="iterable of strings"):
        emb.embed(42)  # type: ignore[arg-type]


def test_a_lone_surrogate_never_reaches_the_sdk(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    with pytest.raises(InvalidInputError, match="input 1 holds a lone surrogate"):
        make_embedder().embed(["ok", "broken \udc80 text"])
    assert fake.ledger.requests == []


def test_duplicates_in_one_call_are_embedded_and_billed_once(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = ["same text", "other text"] * 500
    vectors = make_embedder(cache=False).embed(texts)
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert fake.ledger.embedding_requests == 1
    np.testing.assert_array_equal(vectors[::2], np.broadcast_to(fake.embedding("same text"), (500, 1536)))


def test_dimensions_are_sent_and_checked(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    vectors = make_embedder(dimensions=256).embed(["a", "b"])
    assert vectors.shape == (2, 256)
    np.testing.assert_array_equal(vectors, fake.embeddings(["a", "b"], dimensions=256))


def test_dimensions_refused_locally_for_models_without_them(fake: FakeOpenAI, client: Client) -> None:
    with pytest.raises(UnsupportedModelError, match="does not accept `dimensions`"):
        Embedder(client, model="text-embedding-ada-002", dimensions=256)
    with pytest.raises(ConfigError, match="more than text-embedding-3-small produces"):
        Embedder(client, dimensions=4096)
    assert fake.ledger.requests == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_batch_inputs": 2049}, "2048"),
        ({"max_batch_tokens": 300_001}, "300000"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"long_inputs": "drop"}, "long_inputs"),
        ({"empty_inputs": "ignore"}, "empty_inputs"),
        ({"tpm": 0}, "tpm"),
        ({"max_batch_inputs": "64"}, "max_batch_inputs must be an integer"),
        ({"max_concurrency": 1.5}, "max_concurrency"),
        ({"rpm": float("inf")}, "rpm"),
    ],
)
def test_bad_settings(client: Client, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Embedder(client, **kwargs)  # type: ignore[arg-type]


def test_wrong_client_type_is_refused(fake: FakeOpenAI) -> None:
    with pytest.raises(TypeError, match="AsyncEmbedder"):
        Embedder(fake.async_client())


def test_an_openai_sdk_client_is_accepted(fake: FakeOpenAI, tmp_path: Path) -> None:
    emb = Embedder(fake.openai_client(), cache=False)
    np.testing.assert_array_equal(emb.embed(["x"]), fake.embeddings(["x"]))


# --- the cache --------------------------------------------------------------------------------------------------


def test_second_run_is_served_from_the_cache(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = texts_(30)
    first = make_embedder().embed(texts)
    requests = fake.ledger.embedding_requests
    result = make_embedder().embed_with_info([*texts, "one new text"])
    assert fake.ledger.embedding_requests == requests + 1
    assert fake.ledger.billed_texts["one new text"] == 1
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert result.stats.cached == 30
    np.testing.assert_array_equal(result.vectors[:30], first)


def test_cache_is_invalidated_by_model_and_dimensions(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = ["alpha beta", "gamma delta"]
    small = make_embedder().embed(texts)
    short = make_embedder(dimensions=256).embed(texts)
    large = make_embedder(model="text-embedding-3-large").embed(texts)
    assert fake.ledger.embedding_requests == 3
    assert short.shape == (2, 256)
    np.testing.assert_array_equal(large, fake.embeddings(texts, model="text-embedding-3-large"))
    again = make_embedder().embed(texts)
    assert fake.ledger.embedding_requests == 3
    np.testing.assert_array_equal(again, small)


def test_default_cache_location_and_off_switch(fake: FakeOpenAI, client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "cache"  # FINETUNE_EMBED_CACHE_DIR, set by conftest
    emb = Embedder(client)
    assert emb.cache_path == str(folder / "embeddings.sqlite")
    emb.embed(["x"])
    assert (folder / "embeddings.sqlite").exists()
    off = Embedder(client, cache=False)
    assert off.cache is None
    assert off.cache_path is None
    off.embed(["x"])
    assert fake.ledger.billed_texts["x"] == 2


def test_an_existing_cache_object_is_shared(fake: FakeOpenAI, client: Client) -> None:
    cache = EmbeddingCache(":memory:")
    Embedder(client, cache=cache).embed(["p", "q"])
    assert len(cache) == 2
    Embedder(client, cache=cache).embed(["p", "q"])
    assert fake.ledger.embedding_requests == 1


# --- inputs -----------------------------------------------------------------------------------------------------


def test_empty_inputs_never_reach_the_api(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = ["a", "", "b", " \n "]
    zero = make_embedder(empty_inputs="zero").embed(texts)
    assert zero.shape == (4, 1536)
    assert not zero[[1, 3]].any()
    nan = make_embedder(empty_inputs="nan").embed(texts)
    assert np.isnan(nan[[1, 3]]).all()
    skip = make_embedder(empty_inputs="skip")
    assert skip.embed(texts).shape == (2, 1536)
    info = skip.embed_with_info(texts)
    assert info.empty.tolist() == [False, True, False, True]
    assert info.mask.tolist() == [True, False, True, False]
    assert set(fake.ledger.billed_texts) == {"a", "b"}


def test_only_empty_inputs(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    assert make_embedder(empty_inputs="zero").embed(["", " "]).shape == (2, 1536)
    assert make_embedder().embed([]).shape == (0, 1536)
    assert fake.ledger.requests == []


def test_long_input_error_names_the_index(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    with pytest.raises(InputTooLongError) as info:
        make_embedder().embed(["short", "x " * 9000])
    assert info.value.index == 1
    assert fake.ledger.requests == []


def test_truncate(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    long = words(9000, seed=1)
    result = make_embedder(long_inputs="truncate").embed_with_info([long])
    (sent,) = fake.ledger.billed_texts
    assert long.startswith(sent)
    assert TOK.count(sent) <= 8191
    assert result.truncated == [0]
    np.testing.assert_array_equal(result.vectors[0], fake.embedding(sent))


def test_chunk_is_the_token_weighted_mean_renormalised(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    long = "\n".join(words(300, seed=i) for i in range(60))  # ~18k tokens: three pieces
    result = make_embedder(long_inputs="chunk").embed_with_info(["short one", long])
    pieces = list(fake.ledger.billed_texts)[1:]
    assert len(pieces) == 3
    assert "".join(pieces) == long
    weights = np.array([TOK.count(p) for p in pieces], dtype=np.float64)
    assert (weights <= 8191).all()
    reference = (weights[:, None] * fake.embeddings(pieces).astype(np.float64)).sum(0) / weights.sum()
    reference /= np.linalg.norm(reference)
    np.testing.assert_allclose(result.vectors[1], reference, rtol=1e-6, atol=1e-7)
    assert abs(np.linalg.norm(result.vectors[1]) - 1) < 1e-6
    assert result.long == [1]


def test_pieces_come_back_with_offsets(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    long = "\n".join(words(300, seed=i) for i in range(60))
    result = make_embedder(long_inputs="pieces").embed_with_info(["short one", long, ""][:2])
    assert result.pieces is not None
    assert result.pieces.input_index.tolist() == [0, 1, 1, 1]
    vecs, spans = result.pieces.of(1)
    assert spans[0][0] == 0
    assert spans[-1][1] == len(long)
    for vec, (s, e) in zip(vecs, spans, strict=True):
        np.testing.assert_array_equal(vec, fake.embedding(long[s:e]))
    np.testing.assert_array_equal(result.pieces.of(0)[0][0], fake.embedding("short one"))
    assert result.pieces.tokens.tolist() == [TOK.count("short one")] + [TOK.count(long[s:e]) for s, e in spans]


def test_request_limits_at_full_scale(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    many = [f"t{i}" for i in range(5000)]
    big = [words(7990, seed=i) for i in range(45)]  # 45 × ~8k tokens: more than 300k in all
    make_embedder(cache=False).embed(many + big)
    records = [r for r in fake.ledger.requests if r.status == 200]
    assert max(r.n_inputs for r in records) == 2048
    assert all(r.tokens <= 300_000 for r in records)
    assert sum(r.n_inputs for r in records) == 5045
    assert len(records) == 4  # 2048, 2048, 904 + 7 big ones, 38 big ones: the fewest possible


# --- fault injection --------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.inject(429, times=2, headers={"retry-after": "7", "retry-after-ms": "7000"})
    start = fake.clock.now()
    texts = texts_(20)
    vectors = make_embedder().embed(texts)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    assert fake.ledger.rate_limited == 2
    assert fake.clock.now() - start >= 14  # both waits taken, on the fake clock
    assert set(fake.ledger.billed_texts.values()) == {1}


@pytest.mark.parametrize("fault", ["500", "503", "disconnect"])
def test_transient_failures_are_retried(fake: FakeOpenAI, make_embedder: MakeEmbedder, fault: str) -> None:
    if fault == "disconnect":
        fake.inject_disconnect(times=2)
    else:
        fake.inject(int(fault), times=2)
    texts = texts_(40)
    vectors = make_embedder(max_batch_inputs=10).embed(texts)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert len(fake.ledger.requests) == 4 + 2


def test_a_timed_out_request_is_sent_again_in_halves(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.inject_timeout(times=2)
    texts = texts_(40)
    result = make_embedder(max_batch_inputs=10, max_concurrency=1).embed_with_info(texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    sizes = [(r.n_inputs, r.fault) for r in fake.ledger.requests]
    # the first request (10 inputs) times out: its halves go next; the first half times out too: its halves (2
    # and 3, the 3 cut smaller again when the size aimed at after the timeouts is below its tokens) go first
    assert [f for _, f in sizes[:2]] == ["timeout", "timeout"]
    after = [n for n, _ in sizes[2:]]
    assert after[0] == 2
    assert 5 in itertools.accumulate(after)
    assert sum(n for n, f in sizes if f is None) == 40
    assert set(fake.ledger.billed_texts.values()) == {1}  # the injected timeouts never reached the model
    assert result.stats.timeouts == 2
    assert result.stats.rebilled_tokens > 0  # reported: a real server may have billed them


def test_a_persistent_server_error_raises_after_the_retry_budget(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.inject(500, times=100)
    quick = fake.client(retry=RetryPolicy(max_attempts=3, sleep=fake.sleep))
    from finetune_embed import ServerError

    with pytest.raises(ServerError):
        make_embedder(client=quick).embed(["a"])
    assert len(fake.ledger.requests) == 3


def test_shuffled_responses_are_put_back_in_order(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.shuffle_embeddings = True
    texts = texts_(300)
    np.testing.assert_array_equal(make_embedder(max_batch_inputs=100).embed(texts), fake.embeddings(texts))


def test_a_short_response_is_salvaged_and_only_the_missing_text_asked_again(
    fake: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    fake.inject_wrong_count(times=1)
    texts = texts_(10)
    vectors = make_embedder().embed(texts)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    billed = fake.ledger.billed_texts
    assert [t for t, n in billed.items() if n == 2] == [texts[-1]]  # dropped, so billed but never received
    assert sum(billed.values()) == 11


def test_a_response_that_keeps_dropping_vectors_raises(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.inject_wrong_count(times=50)
    with pytest.raises(EmbeddingResponseError, match="0 embeddings for 1 inputs"):
        make_embedder().embed(texts_(3))
    # what did arrive is cached
    assert len(EmbeddingCache(make_embedder().cache_path)) == 2


def test_insufficient_quota_stops_at_once(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    body = error_body(
        "You exceeded your current quota, please check your plan and billing details.",
        type="insufficient_quota",
        code="insufficient_quota",
    )
    fake.inject(429, body=body, times=100)
    with pytest.raises(QuotaExceededError, match="retrying will not help"):
        make_embedder(max_batch_inputs=5, max_concurrency=4).embed(texts_(100))
    assert len(fake.ledger.requests) == 1


def test_400_too_many_tokens_splits_the_batch(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    body = error_body("Requested 309209 tokens, max 300000 tokens per request", type="max_tokens_per_request",
                      code="max_tokens_per_request")
    fake.inject(400, body=body, times=1)
    texts = texts_(64)
    result = make_embedder().embed_with_info(texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    ok = [r.n_inputs for r in fake.ledger.requests if r.status == 200]
    assert len(ok) == 2
    assert sum(ok) == 64
    assert result.stats.splits == 1
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_400_on_a_single_input_names_it(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    body = error_body("This model's maximum context length is 8192 tokens, however you requested 9000 tokens")
    fake.inject(400, body=body, times=1)
    with pytest.raises(InputTooLongError, match="refused input 0 as too long"):
        make_embedder().embed(["only one"])


def test_other_400s_are_raised_not_split(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    from finetune_embed import BadRequestError

    fake.inject(400, body=error_body("'$.input' is invalid."), times=1)
    with pytest.raises(BadRequestError, match="input"):
        make_embedder().embed(texts_(4))
    assert len(fake.ledger.requests) == 1


# --- vectors the service should never send ----------------------------------------------------------------------


def _zero_vector_server(dim: int = 1536) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        data = []
        for i, text in enumerate(inputs):
            vec = np.zeros(dim, "<f4") if text == "zero" else np.full(dim, 0.5, "<f4")
            if text == "nan":
                vec[0] = np.nan
            data.append({"object": "embedding", "index": i, "embedding": base64.b64encode(vec.tobytes()).decode()})
        body = {"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


def test_zero_and_nan_vectors_raise_by_default_and_are_not_cached(tmp_path: Path) -> None:
    client = Client(api_key="sk-test", transport=_zero_vector_server())
    emb = Embedder(client, cache=tmp_path / "c.sqlite")
    with pytest.raises(InvalidEmbeddingError) as info:
        emb.embed(["fine", "zero", "nan", "zero"])
    assert info.value.indices == [1, 2, 3]
    assert info.value.result.mask.tolist() == [True, False, False, False]
    assert len(EmbeddingCache(tmp_path / "c.sqlite")) == 1


def test_invalid_vectors_can_be_flagged_instead(tmp_path: Path) -> None:
    client = Client(api_key="sk-test", transport=_zero_vector_server())
    emb = Embedder(client, cache=False, invalid_vectors="warn")
    with pytest.warns(InvalidEmbeddingWarning, match="input 1"):
        result = emb.embed_with_info(["fine", "zero"])
    assert result.invalid.tolist() == [False, True]


# --- servers and environments -----------------------------------------------------------------------------------


def test_float_encoding_for_servers_without_base64(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = texts_(5)
    np.testing.assert_array_equal(make_embedder(encoding_format="float").embed(texts), fake.embeddings(texts))


def test_azure_deployment(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.add_deployment("search-embeddings", "text-embedding-3-small")
    client = fake.azure_client(retry=RetryPolicy(sleep=fake.sleep))
    emb = Embedder(client, model="search-embeddings", base_model="text-embedding-3-small", cache=False)
    np.testing.assert_array_equal(emb.embed(["azure"]), fake.embeddings(["azure"]))
    assert fake.ledger.requests[-1].layout == "azure"


def test_unknown_compatible_model_learns_its_size(
    fake: FakeOpenAI, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_embedding_model("nomic-embed-text", dimensions=768, accepts_dimensions=False)
    with caplog.at_level("WARNING", logger="finetune_embed.embeddings"):
        emb = Embedder(client, model="nomic-embed-text", cache=False)
        Embedder(client, model="nomic-embed-text", cache=False)  # the same client: no second warning
    (record,) = caplog.records
    assert "'nomic-embed-text' is not in finetune_embed's catalog" in record.getMessage()
    assert "tokenizer=" in record.getMessage()
    vectors = emb.embed(["a", "b"])
    assert vectors.shape == (2, 768)
    np.testing.assert_array_equal(vectors, fake.embeddings(["a", "b"], model="nomic-embed-text"))


def test_safe_inside_a_running_event_loop(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    emb = make_embedder(max_batch_inputs=3)

    async def notebook_cell() -> np.ndarray:
        return emb.embed(texts_(10))  # as in Jupyter: sync call while a loop runs

    vectors = asyncio.run(notebook_cell())
    np.testing.assert_array_equal(vectors, fake.embeddings(texts_(10)))


def test_progress_bar(
    make_embedder: MakeEmbedder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINETUNE_EMBED_PROGRESS", raising=False)
    make_embedder(progress=True).embed(texts_(5))
    err = capsys.readouterr().err
    assert "Embedding" in err
    assert "5/5" in err
    assert "tokens" in err
    make_embedder(progress=False).embed(texts_(6))
    assert capsys.readouterr().err == ""


def test_estimate(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = [*texts_(10), texts_(10)[0], ""]
    emb = make_embedder(empty_inputs="skip", tpm=60, rpm=1)
    est = emb.estimate(texts)
    tokens = sum(TOK.count(t) for t in set(texts) if t)
    assert (est.inputs, est.empty, est.unique, est.cached, est.requests) == (12, 1, 10, 0, 2)
    assert est.tokens == tokens
    assert est.cost_standard == pytest.approx(tokens * 0.02 / 1e6)
    assert est.cost_batch == pytest.approx(tokens * 0.01 / 1e6)
    # with tpm=60 every request holds at most 60 tokens: two requests; 1 rpm: one minute for the second
    assert est.min_seconds == pytest.approx(max((tokens - 60) / 60 * 60, 60.0))
    assert fake.ledger.requests == []
    emb.embed(texts[:5])
    assert emb.estimate(texts).cached == 5
    assert "distinct texts" in str(est)
    assert est.to_dict()["tokens"] == tokens


class _BrokenStream(httpx.SyncByteStream):
    """A body that dies half-way (connection reset) the first time."""

    def __init__(self, data: bytes, fail: bool) -> None:
        self.data = data
        self.fail = fail

    def __iter__(self):  # type: ignore[no-untyped-def]
        half = len(self.data) // 2
        yield self.data[:half]
        if self.fail:
            raise httpx.ReadError("connection reset by peer")
        yield self.data[half:]


def test_a_connection_lost_mid_body_is_retried(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        vec = np.full(1536, 0.25, "<f4")
        data = [{"object": "embedding", "index": i, "embedding": base64.b64encode(vec.tobytes()).decode()}
                for i in range(len(inputs))]
        raw = json.dumps({"object": "list", "data": data, "model": "m", "usage": {}}).encode()
        calls.append(len(calls))
        stream = _BrokenStream(raw, fail=len(calls) == 1)
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=stream)

    client = Client(api_key="sk-test", transport=httpx.MockTransport(handler), retry=RetryPolicy(sleep=lambda s: None))
    vectors = Embedder(client, cache=False).embed(["a", "b", "c"])
    assert len(calls) == 2
    assert (vectors == 0.25).all()


# --- property: no request ever exceeds the API's limits -------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=12_000), min_size=1, max_size=40),
    tiny=st.integers(min_value=0, max_value=4_500),
    policy=st.sampled_from(["truncate", "chunk", "pieces"]),
)
def test_no_request_exceeds_the_api_limits(lengths: list[int], tiny: int, policy: str) -> None:
    fake = FakeOpenAI()
    emb = Embedder(fake.client(), cache=False, long_inputs=policy)  # type: ignore[arg-type]
    texts = [words(n, seed=i) for i, n in enumerate(lengths)] + [f"tiny {i}" for i in range(tiny)]
    result = emb.embed_with_info(texts)
    assert result.vectors.shape == (len(texts), 1536)
    records = [r for r in fake.ledger.requests if r.endpoint == "/v1/embeddings"]
    assert all(r.status == 200 for r in records)  # the fake enforces the limits too: nothing was refused
    assert all(r.n_inputs <= 2048 and r.tokens <= 300_000 for r in records)
    assert all(TOK.count(t) <= 8191 for t in fake.ledger.billed_texts)
    assert set(fake.ledger.billed_texts.values()) == {1}
