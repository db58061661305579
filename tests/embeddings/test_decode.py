"""Decoding responses: base64 or float lists into float32, placed by index, checked against the request."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from finetune_embed import EmbeddingResponseError
from finetune_embed.embeddings._decode import decode_into, decode_vector, row_flags


def b64(v: list[float]) -> str:
    return base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()


def items(vectors: list[list[float]], order: list[int] | None = None, fmt: str = "b64") -> list[dict[str, object]]:
    order = order if order is not None else list(range(len(vectors)))
    return [{"index": i, "embedding": b64(vectors[i]) if fmt == "b64" else vectors[i]} for i in order]


def run(data: object, expected: int, dim: int | None = None, **kw: object) -> tuple[np.ndarray, list[int]]:
    out = np.full((expected, 2), -9.0, np.float32)

    def put(i: int, v: np.ndarray) -> None:
        out[i] = v

    missing = decode_into(data, expected=expected, dim=dim, put=put, **kw)  # type: ignore[arg-type]
    return out, missing


def test_base64_goes_straight_to_float32_without_python_floats() -> None:
    vec = decode_vector(b64([0.5, -1.25]))
    assert vec.dtype == np.float32
    assert isinstance(vec.base, bytes | memoryview)  # a view over the decoded bytes
    np.testing.assert_array_equal(vec, [0.5, -1.25])


def test_float_lists_from_compatible_servers() -> None:
    out, _ = run(items([[1, 2], [3, 4]], fmt="float"), 2)
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])


def test_rows_are_placed_by_index_not_arrival_order() -> None:
    out, _ = run(items([[1, 1], [2, 2], [3, 3]], order=[2, 0, 1]), 3)
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (items([[1, 1]]), "1 embeddings for 2 inputs"),
        (items([[1, 1], [2, 2], [3, 3]]), "3 embeddings for 2 inputs"),
        ([{"index": 0, "embedding": b64([1, 1])}, {"index": 0, "embedding": b64([2, 2])}], "repeats index 0"),
        ([{"index": 0, "embedding": b64([1, 1])}, {"index": 5, "embedding": b64([2, 2])}], "index 5, outside"),
        ([{"index": 0, "embedding": b64([1, 1])}, {"index": 1, "embedding": b64([2, 2, 2])}], "has 3 values"),
        ([{"index": 0, "embedding": "%%%"}, {"index": 1, "embedding": b64([2, 2])}], "not valid base64"),
        ([{"index": 0, "embedding": None}, {"index": 1, "embedding": b64([2, 2])}], "NoneType"),
        (None, "0 embeddings"),
    ],
)
def test_mismatched_responses_are_refused_and_nothing_is_written(data: object, message: str) -> None:
    out = np.full((2, 2), -9.0, np.float32)
    with pytest.raises(EmbeddingResponseError, match=message):
        decode_into(data, expected=2, dim=None, put=lambda i, v: out.__setitem__(i, v))  # type: ignore[arg-type]
    assert (out == -9).all()


def test_a_short_response_with_valid_indices_can_be_salvaged() -> None:
    data = [{"index": 2, "embedding": b64([3, 3])}, {"index": 0, "embedding": b64([1, 1])}]
    out, missing = run(data, 3, allow_missing=True)
    assert missing == [1]
    np.testing.assert_array_equal(out[[0, 2], 0], [1, 3])


def test_expected_dimension_is_enforced() -> None:
    with pytest.raises(EmbeddingResponseError, match="dimensions"):
        run(items([[1, 1]]), 1, dim=3)


def test_row_flags() -> None:
    rows = np.array([[1, 0], [0, 0], [np.nan, 1], [np.inf, 0]], np.float32)
    assert row_flags(rows).tolist() == [True, False, False, False]


# --- streaming ---------------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from finetune_embed.embeddings._decode import StreamDecoder  # noqa: E402


def body(vectors: list[list[float]], order: list[int], fmt: str = "b64") -> bytes:
    import json

    data = items(vectors, order, fmt)
    usage = {"prompt_tokens": 3, "total_tokens": 3}
    return json.dumps({"object": "list", "data": data, "model": "m", "usage": usage}).encode()


@settings(max_examples=100, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=30),
    order=st.permutations(list(range(6))),
    fmt=st.sampled_from(["b64", "float"]),
)
def test_stream_decoder_any_chunking(cuts: list[int], order: list[int], fmt: str) -> None:
    vectors = [[float(i), -float(i), 0.5] for i in range(6)]
    raw = body(vectors, order, fmt)
    out = np.zeros((6, 3), np.float32)
    dec = StreamDecoder(expected=6, dim=None, put=lambda i, v: out.__setitem__(i, v))
    pos = 0
    for cut in cuts:
        dec.feed(raw[pos : pos + cut])
        pos += cut
    dec.feed(raw[pos:])
    assert dec.finish() == []
    np.testing.assert_array_equal(out, np.asarray(vectors, np.float32))
    assert dec.usage == 3  # usage.prompt_tokens, however the body was cut


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ({}, None),
        ({"prompt_tokens": 41, "total_tokens": 41}, 41),
        ({"total_tokens": 41, "prompt_tokens": 0}, 0),
        ({"prompt_tokens": -1}, None),
        ({"prompt_tokens": "41"}, None),
        ({"prompt_tokens": True}, None),
        ({"prompt_tokens": 4.5}, None),
    ],
)
def test_stream_decoder_reads_usage_only_when_it_is_a_count(usage: object, expected: int | None) -> None:
    import json

    doc: dict[str, object] = {"object": "list", "data": items([[1.0, 2.0]]), "model": "m"}
    if usage is not None:
        doc["usage"] = usage
    dec = StreamDecoder(expected=1, dim=2, put=lambda i, v: None)
    dec.feed(json.dumps(doc).encode())
    assert dec.finish() == []
    assert dec.usage == expected


def test_stream_decoder_refuses_bad_streams() -> None:
    vectors = [[1.0, 1.0], [2.0, 2.0]]
    raw = body(vectors, [0, 1])
    dec = StreamDecoder(expected=2, dim=None, put=lambda i, v: None)
    dec.feed(raw[: len(raw) // 2])
    with pytest.raises(EmbeddingResponseError, match="ended in the middle"):
        dec.finish()
    dec = StreamDecoder(expected=2, dim=None, put=lambda i, v: None)
    with pytest.raises(EmbeddingResponseError, match="repeats index 0"):
        dec.feed(body(vectors, [0, 0]))
    dec = StreamDecoder(expected=3, dim=None, put=lambda i, v: None)
    dec.feed(raw)
    with pytest.raises(EmbeddingResponseError, match="2 embeddings for 3 inputs"):
        dec.finish()
    assert StreamDecoder(expected=3, dim=None, put=lambda i, v: None).finish is not None
    dec = StreamDecoder(expected=3, dim=None, put=lambda i, v: None)
    dec.feed(raw)
    assert dec.finish(allow_missing=True) == [2]
    dec = StreamDecoder(expected=2, dim=3, put=lambda i, v: None)
    with pytest.raises(EmbeddingResponseError, match="expected 3"):
        dec.feed(raw)


def spelled(vectors: np.ndarray, order: list[int], style: str) -> bytes:
    """A body as different servers write it: compact, with spaces, slashes escaped, the embedding first."""
    import base64

    parts = []
    for i in order:
        b64 = base64.b64encode(vectors[i].astype("<f4").tobytes()).decode()
        if style == "escaped":
            b64 = b64.replace("/", "\\/")
        if style == "embedding_first":
            parts.append(f'{{"embedding": "{b64}", "index": {i}, "object": "embedding"}}')
        elif style == "spaced":
            parts.append(f'{{ "object" : "embedding" , "index" : {i} , "embedding" : "{b64}" }}')
        else:
            parts.append(f'{{"object":"embedding","index":{i},"embedding":"{b64}"}}')
    return ('{"object":"list","data":[' + ",".join(parts) + '],"model":"m","usage":{"prompt_tokens":1}}').encode()


@pytest.mark.parametrize("dims", [3, 5, 384])  # 12 bytes: no base64 padding; 20 bytes: padded; a real size
@pytest.mark.parametrize("style", ["compact", "spaced", "escaped", "embedding_first"])
@pytest.mark.parametrize("chunk", [7, 1000, 65536])
def test_stream_decoder_reads_every_spelling_in_bulk(dims: int, style: str, chunk: int) -> None:
    rng = np.random.default_rng(dims)
    vectors = rng.standard_normal((40, dims)).astype(np.float32)
    order = rng.permutation(40).tolist()
    raw = spelled(vectors, order, style)
    out = np.zeros((40, dims), np.float32)
    calls: list[int] = []

    def put_rows(idx: np.ndarray, rows: np.ndarray) -> None:
        calls.append(idx.size)
        out[idx] = rows

    dec = StreamDecoder(expected=40, dim=None, put=lambda i, v: out.__setitem__(i, v), put_rows=put_rows)
    for start in range(0, len(raw), chunk):
        dec.feed(raw[start : start + chunk])
    assert dec.finish() == []
    np.testing.assert_array_equal(out, vectors)
    if chunk == 65536 and dims == 3:
        assert len(calls) == 1  # one decode for every vector that arrived in one chunk


def test_stream_decoder_refuses_bad_base64_and_bad_indices_in_bulk() -> None:
    vectors = np.ones((4, 3), np.float32)
    good = spelled(vectors, [0, 1, 2, 3], "compact")
    bad = good.replace(b'"index":2,"embedding":"', b'"index":2,"embedding":"!!!!')
    dec = StreamDecoder(expected=4, dim=None, put=lambda i, v: None, put_rows=lambda i, r: None)
    with pytest.raises(EmbeddingResponseError, match="not valid base64"):
        dec.feed(bad)
    quoted = good.replace(b'"index":1,', b'"index":"1",')
    dec = StreamDecoder(expected=4, dim=None, put=lambda i, v: None, put_rows=lambda i, r: None)
    with pytest.raises(EmbeddingResponseError, match="index '1'"):
        dec.feed(quoted)
    dec = StreamDecoder(expected=4, dim=None, put=lambda i, v: None, put_rows=lambda i, r: None)
    with pytest.raises(EmbeddingResponseError, match="repeats index 0"):
        dec.feed(spelled(vectors, [0, 1, 0, 3], "compact"))
    dec = StreamDecoder(expected=3, dim=None, put=lambda i, v: None, put_rows=lambda i, r: None)
    with pytest.raises(EmbeddingResponseError, match=r"outside 0\.\.2"):
        dec.feed(good)


def test_stream_decoder_every_cut_point_of_a_body() -> None:
    """The body cut in two or three at every position (items cut anywhere: in the key, the base64, the index,
    the closing brace; several items after a cut): the same rows, the same usage."""
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) + 1.0
    raw = spelled(vectors, [2, 0, 3, 1], "spaced")
    for cut in range(len(raw) + 1):
        for second in (cut, min(len(raw), cut + 37)):
            out = np.zeros((4, 3), np.float32)
            dec = StreamDecoder(expected=4, dim=None, put=lambda i, v, o=out: o.__setitem__(i, v))
            for part in (raw[:cut], raw[cut:second], raw[second:]):
                dec.feed(part)
            assert dec.finish() == [], cut
            np.testing.assert_array_equal(out, vectors)
            assert dec.usage == 1
