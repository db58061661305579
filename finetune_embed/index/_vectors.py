"""Checking and preparing vectors: shape, dimension, finiteness, zero norms, normalisation, JSON metadata."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DimensionMismatchError, InvalidArgumentError, InvalidVectorError

__all__ = [
    "as_matrix",
    "as_queries",
    "check_nonzero",
    "clean_metadata",
    "embed_texts",
    "metadata_per_id",
    "normalize_rows",
    "row_norms",
    "unit_scale",
]

_SHOW = 5
MAX_METADATA_DEPTH = 100  # nesting deeper than this is refused (JSON parsers and encoders recurse)
_SAFE_NORMS = (2.0**-100, 2.0**100)  # outside, 1 / norm as a float32 factor would overflow or lose precision


def _names(labels: Sequence[str], rows: npt.NDArray[np.intp]) -> list[str]:
    return [labels[int(i)] for i in rows]


def _shown(names: Sequence[str]) -> str:
    head = ", ".join(repr(n) for n in names[:_SHOW])
    return head + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def _ragged_error(vectors: Any, dim: int | None, labels: Sequence[str], what: str) -> DimensionMismatchError:
    lengths = []
    for row in vectors:
        try:
            lengths.append(len(row))
        except TypeError:
            lengths.append(1)
    expected = dim if dim is not None else max(set(lengths), key=lengths.count)
    bad = [i for i, n in enumerate(lengths) if n != expected]
    first = bad[0]
    return DimensionMismatchError(
        f"{what} must all have {expected} dimensions; {_shown(_names(labels, np.asarray(bad)))} "
        f"{'has' if len(bad) == 1 else 'have'} {lengths[first]}{' (and others)' if len(bad) > 1 else ''}.",
        expected=expected,
        got=lengths[first],
    )


def as_matrix(
    vectors: npt.ArrayLike, dim: int | None, labels: Sequence[str], *, what: str = "vectors", copy: bool = False
) -> npt.NDArray[np.float32]:
    """``vectors`` as a C-contiguous ``(n, dim)`` float32 matrix, or a clear error.

    Without ``copy`` the result may share memory with ``vectors`` (never modify it then).

    ``labels`` names the rows in messages (ids, or ``"query 3"``). A 1-D input is one row. Non-finite values
    (including values too large for float32) raise :class:`InvalidVectorError`; a wrong dimension raises
    :class:`DimensionMismatchError`.
    """
    try:
        arr = np.asarray(vectors)
    except ValueError:
        raise _ragged_error(vectors, dim, labels, what) from None
    if arr.dtype == object:
        if arr.ndim == 2 or (arr.ndim == 1 and not any(isinstance(x, list | tuple | np.ndarray) for x in arr)):
            raise InvalidVectorError(
                f"{what} hold values that are not numbers or too large for a float (e.g. a 400-digit integer); "
                "give floats.",
                ids=list(labels),
            )
        raise _ragged_error(vectors, dim, labels, what)
    if arr.dtype.kind not in "fiu":
        raise ConfigError(f"{what} must be numbers, got an array of dtype {arr.dtype}.")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ConfigError(f"{what} must be a 2-D array (n, dim) or one 1-D vector, got shape {arr.shape}.")
    if arr.shape[0] != len(labels):
        raise ConfigError(f"got {len(labels)} ids but {arr.shape[0]} {what}; give one vector per id.")
    if dim is not None and arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"{what} have {arr.shape[1]} dimensions but the index has {dim}"
            + (f" (first: {labels[0]!r})" if labels else "")
            + "; embed with the same model and dimensions as the index.",
            expected=dim,
            got=arr.shape[1],
        )
    if arr.shape[1] == 0:
        raise DimensionMismatchError(f"{what} have 0 dimensions.", expected=dim or 1, got=0)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(arr, dtype=np.float32, order="C", copy=True if copy else None)
    step = max(1, (1 << 22) // out.shape[1])  # check in chunks: no big temporary
    bad_rows = [
        a + np.flatnonzero(~np.isfinite(out[a : a + step]).all(axis=1))
        for a in range(0, out.shape[0], step)
        if not np.isfinite(out[a : a + step]).all()
    ]
    if bad_rows:
        bad = np.concatenate(bad_rows)
        names = _names(labels, bad)
        raise InvalidVectorError(
            f"{len(names)} {what} contain NaN, infinity or values too large for float32: {_shown(names)}.",
            ids=names,
        )
    return out


def row_norms(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Euclidean norms of the rows, computed in float64 (no overflow for any finite float32)."""
    squares: npt.NDArray[np.float64] = np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64)
    return np.sqrt(squares)


def check_nonzero(
    matrix: npt.NDArray[np.float32], labels: Sequence[str], *, what: str = "vectors"
) -> npt.NDArray[np.float64]:
    """The row norms; refuses zero vectors, naming them."""
    norms = row_norms(matrix)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        names = _names(labels, zero)
        raise InvalidVectorError(
            f"{len(names)} {what} are all zeros (no direction to compare): {_shown(names)}.", ids=names
        )
    return norms


def unit_scale(
    matrix: npt.NDArray[np.float32], norms: npt.NDArray[np.float64], *, in_place: bool = False
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The rows and the float32 factors that scale them to unit length (``rows * factor[:, None]``).

    A factor is the float32 reciprocal of the (float64) norm. Where that would overflow or lose precision - a norm
    below 2**-100, like ``[1e-40, 0, 0]``'s, or above 2**100 - the row is divided by its norm in float64 instead
    and its factor is 1: in a copy of ``matrix``, or in ``matrix`` itself with ``in_place``.
    """
    odd = np.flatnonzero((norms < _SAFE_NORMS[0]) | (norms > _SAFE_NORMS[1]))
    if odd.size:
        if not in_place:
            matrix = matrix.copy()
        matrix[odd] = (matrix[odd].astype(np.float64) / norms[odd, None]).astype(np.float32)
        norms = norms.copy()
        norms[odd] = 1.0
    return matrix, (1.0 / norms).astype(np.float32)


def normalize_rows(
    matrix: npt.NDArray[np.float32], labels: Sequence[str], *, normalize: bool, what: str = "vectors"
) -> npt.NDArray[np.float32]:
    """Refuse zero vectors (naming them) and, when ``normalize``, scale every row to unit length IN PLACE."""
    norms = check_nonzero(matrix, labels, what=what)
    if normalize:
        # the factors EmbeddingIndex stores rows with (unit_scale), so every backend agrees bit for bit
        _, scale = unit_scale(matrix, norms, in_place=True)
        matrix *= scale[:, None]
    return matrix


def as_queries(queries: npt.ArrayLike, dim: int | None, *, normalize: bool) -> tuple[npt.NDArray[np.float32], bool]:
    """One query vector or an ``(n, dim)`` matrix as a checked float32 matrix of its own (rows scaled to unit
    length when ``normalize``), and whether it was one vector."""
    arr = np.asarray(queries) if not isinstance(queries, np.ndarray) else queries
    single = arr.ndim == 1
    n = 1 if single else (arr.shape[0] if arr.ndim >= 1 else 0)
    labels = [f"query {i}" for i in range(n)]
    rows = as_matrix(arr, dim, labels, what="queries", copy=True)
    if normalize:
        normalize_rows(rows, labels, normalize=True, what="queries")
    return rows, single


def _clean(value: Any, path: str, item_id: str, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    where = f"field {path!r} of id {item_id!r}" if path else f"of id {item_id!r}"
    if isinstance(value, float | np.floating):
        f = float(value)
        if not math.isfinite(f):
            raise ConfigError(f"metadata {where} is {f}; JSON has no NaN or infinity (use None for missing).")
        return f
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_METADATA_DEPTH:
        shown = path if len(path) <= 80 else path[:77] + "..."
        raise ConfigError(
            f"metadata of id {item_id!r} nests deeper than {MAX_METADATA_DEPTH} levels (at {shown!r}); flatten it."
        )
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"metadata {where} has a non-string key {key!r}; JSON keys are strings.")
            out[key] = _clean(item, f"{path}.{key}" if path else key, item_id, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_clean(item, f"{path}[{i}]", item_id, depth + 1) for i, item in enumerate(value)]
    raise ConfigError(
        f"metadata {where} is a {type(value).__name__}, which JSON cannot store; "
        "use str, int, float, bool, None, lists and dicts."
    )


def clean_metadata(metadata: Any, item_id: str) -> dict[str, Any]:
    """A JSON-ready copy of one item's metadata (numpy scalars become Python ones), or a ConfigError naming
    the item and the bad field."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata for id {item_id!r} must be a mapping (dict), got {type(metadata).__name__}.")
    cleaned: dict[str, Any] = _clean(metadata, "", item_id)
    return cleaned


def metadata_per_id(metadata: Any, ids: Sequence[str]) -> list[Any] | None:
    """``add`` / ``upsert``'s ``metadata`` argument as one entry per id (``None`` when not given): a single
    mapping stands for a single id; any other count than one per id raises :class:`ConfigError`."""
    if metadata is None:
        return None
    entries: list[Any] = [metadata] if isinstance(metadata, Mapping) else list(metadata)
    if len(entries) != len(ids):
        raise ConfigError(f"got {len(ids)} ids but {len(entries)} metadata entries; give one per id.")
    return entries


def embed_query(
    embedder: Any, text: str, expected_model: str | None, holder: str
) -> np.ndarray[tuple[int], np.dtype[np.float32]]:
    """Embed one query text for a search over ``holder`` ("the index", "the table") of ``expected_model``.

    Refuses an embedder of another model (vectors of different models cannot be compared) and an embedder that does
    not return one row.
    """
    model = getattr(embedder, "model", None)
    if expected_model and model and model != expected_model:
        raise ConfigError(
            f"{holder} holds {expected_model!r} embeddings but the embedder uses {model!r}; "
            "vectors from different models cannot be compared."
        )
    if not callable(getattr(embedder, "embed", None)) and callable(getattr(embedder, "embed_query", None)):
        return np.asarray(embedder.embed_query(text), dtype=np.float32).reshape(-1)  # a LangChain Embeddings
    vector: npt.NDArray[np.float32] = np.asarray(embedder.embed([text]), dtype=np.float32)
    if vector.ndim != 2 or vector.shape[0] != 1:
        raise ConfigError(f"embedder.embed([text]) must return a (1, dim) array, got shape {vector.shape}.")
    row: np.ndarray[tuple[int], np.dtype[np.float32]] = vector[0]
    return row


def embed_texts(embedder: Any, texts: list[str]) -> npt.NDArray[np.float32]:
    """Embed ``texts`` with our :class:`~finetune_embed.Embedder` (or anything with ``embed(texts)``) or a LangChain
    ``Embeddings`` (``embed_documents(texts)``): one float32 row per text."""
    if callable(getattr(embedder, "embed", None)):
        how, raw = "embed", embedder.embed(texts)
    elif callable(getattr(embedder, "embed_documents", None)):
        how, raw = "embed_documents", embedder.embed_documents(texts)
    else:
        raise InvalidArgumentError(
            f"a {type(embedder).__name__} embeds nothing: pass a finetune_embed.Embedder (or anything with "
            "embed(texts) -> (n, dim) array) or a LangChain Embeddings (embed_documents(texts)).",
            argument="embedder",
        )
    vectors = np.asarray(raw, dtype=np.float32)
    if not texts and vectors.size == 0:
        return vectors.reshape(0, vectors.shape[-1] if vectors.ndim == 2 else 0)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] == 0:
        raise ConfigError(
            f"embedder.{how} returned shape {vectors.shape} for {len(texts)} texts; it must return one non-empty "
            "vector per text."
        )
    return vectors
