"""EmbeddingIndex: exact cosine / dot-product search over string-keyed vectors with JSON metadata."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    NamedTuple,
    Protocol,
    Self,
    TypeAlias,
    overload,
    runtime_checkable,
)

import numpy as np
import numpy.typing as npt

from .._exceptions import (
    ConfigError,
    DuplicateIdError,
    InvalidVectorError,
    UnknownIdError,
)
from ._filters import Where, compile_where, parse_filter
from ._kernels import code_scores, row_scores
from ._masks import ColumnCache, filter_mask
from ._matches import BatchMatches, Matches
from ._rwlock import ReadWriteLock
from ._store import Kind, VectorStore, fits_float16, subnormals_kept, widen_float16
from ._topk import MAX_POSITIONS, PoolTooLarge, RunningTopK, decode_keys, score_keys
from ._vectors import (
    _shown,
    as_matrix,
    as_queries,
    check_nonzero,
    clean_metadata,
    embed_query,
    embed_texts,
    metadata_per_id,
    unit_scale,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DTypeLike", "EmbeddingIndex", "Item", "Metric", "SupportsEmbed", "SupportsEmbedDocuments"]

Metric: TypeAlias = Literal["cosine", "dot"]
DTypeLike: TypeAlias = Any  # np.float32 | np.float16 | "float32" | "float16" | "int8"

_METRICS = ("cosine", "dot")
_QUERY_CHUNK = 1024  # queries scanned together; more are done in chunks (memory stays bounded)
_SCORE_ELEMENTS = 1 << 21  # a block's score buffer: about 8 MB, so it stays in the last-level cache
_CAST_BYTES = 16 << 20  # float16 / int8 blocks are widened into a float32 buffer of at most this size (half the L3)
_U = 2.0**-24  # float32 unit round-off
_ROW_QUERIES = 4  # up to this many queries are scored by the row kernel (_kernels.py), more by BLAS
_GEMM_BYTES = 6 << 20  # below _GEMM_SPLIT_QUERIES queries, the rows of one BLAS product: at most this many bytes
_GEMM_SPLIT_QUERIES = 32
_F16_TINY = 2.0**-25  # a float16 row whose largest value is below this is stored as all zeros


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one): the default ``threads``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _check_threads(threads: int | None) -> int:
    if threads is None:
        return available_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise ConfigError(f"threads must be a positive integer or None (every available CPU), got {threads!r}.")
    return int(threads)


class _Workers:
    """The threads of one search call: ``threads - 1`` helpers (started on first use, joined when the call ends)
    besides the calling thread. Nothing outlives the call."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def rows(self, work: Callable[[int, int], object], n: int) -> None:
        """Run ``work(a, b)`` on row ranges covering ``0..n``, split over the threads (numpy releases the GIL)."""
        parts = min(self.threads, max(1, n // 4096))
        if parts == 1:
            work(0, n)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="finetune-embed-search")
        edges = np.linspace(0, n, parts + 1).astype(int).tolist()
        helpers = [self._pool.submit(work, a, b) for a, b in itertools.pairwise(edges[1:])]
        work(edges[0], edges[1])
        for h in helpers:
            h.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


@runtime_checkable
class SupportsEmbed(Protocol):
    """Anything that turns texts into a ``(n, dim)`` float32 array, such as :class:`finetune_embed.Embedder`.

    It may also have ``model`` and ``dimensions`` attributes, which the index records.
    """

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``; row ``i`` is the vector of ``texts[i]``."""
        ...


@runtime_checkable
class SupportsEmbedDocuments(Protocol):
    """A LangChain ``Embeddings`` (or anything else with ``embed_documents``): one list of floats per text."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed ``texts``; item ``i`` is the vector of ``texts[i]``."""
        ...


class Item(NamedTuple):
    """What :meth:`EmbeddingIndex.get` returns: the stored vector (float32) and a copy of the metadata."""

    vector: np.ndarray[tuple[int], np.dtype[np.float32]]
    metadata: dict[str, Any]


def _kind_of(dtype: DTypeLike) -> Kind:
    if isinstance(dtype, str):
        name = dtype.lower()
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    if name in ("float32", "float16", "int8"):
        return name  # type: ignore[return-value]
    raise ConfigError(
        f"dtype must be np.float32, np.float16 or 'int8' (compressed, exact re-rank), got {dtype!r}."
    )


def _check_metric(metric: str) -> Metric:
    if metric not in _METRICS:
        raise ConfigError(f"metric must be one of {', '.join(map(repr, _METRICS))}, got {metric!r}.")
    return metric  # type: ignore[return-value]


def _as_ids(ids: str | Iterable[str], what: str = "ids", *, allow_nul: bool = True) -> list[str]:
    """``ids`` as a list of non-empty strings (one string is one id); ``allow_nul=False`` also refuses NUL
    characters, which PostgreSQL text cannot store."""
    out = [ids] if isinstance(ids, str) else list(ids)
    for i, x in enumerate(out):
        if not isinstance(x, str) or not x:
            raise ConfigError(f"{what} must be non-empty strings; item {i} is {x!r}. Convert with str() first.")
        if not allow_nul and "\x00" in x:
            raise ConfigError(f"{what} cannot hold NUL characters (PostgreSQL text cannot store them): {x!r}.")
    return out


def _reject_repeats(ids: list[str]) -> None:
    """Refuse ids repeated in one ``add``."""
    seen: set[str] = set()
    dup = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dup:
        raise DuplicateIdError(f"ids repeated in one add: {_shown(dup)}.", ids=dup)


def _check_k(k: int) -> int:
    """``k`` checked, and capped at the most items an index can hold (a search caps it again at the number of
    candidates, so no buffer is ever sized by a huge ``k``)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}.")
    return min(int(k), MAX_POSITIONS - 1)


@dataclass
class _Rows:
    """Validated rows and, for cosine, the factor that normalises each (applied when they are stored)."""

    data: npt.NDArray[np.float32]
    scale: npt.NDArray[np.float32] | None

    def take(self, picked: list[int]) -> _Rows:
        return _Rows(self.data[picked], None if self.scale is None else self.scale[picked])


@dataclass
class _Plan:
    rows: int  # rows per BLAS / einsum block
    first: int  # rows in the first block
    chunk: int  # scores per query pushed to the running top-k at once
    first_chunk: int  # the first push is small: it sets the thresholds cheaply


class EmbeddingIndex:
    """Exact nearest-neighbour search over embeddings, in process.

    Items have a string id, a vector and optional JSON metadata. Search returns the exact top-k by cosine
    similarity (vectors are normalised when added) or dot product, best first, ties broken by insertion order.

    Thread safety: any number of threads may read (search, get, ids, save, ...) while one thread writes (add,
    upsert, delete); a readers-writer lock gives every call a consistent view, so a search sees the index
    before or after a write, never half of one. A sequence of calls is not atomic: ``index.ids`` and a later
    ``index.vectors`` may differ if another thread wrote in between. Writers wait for running searches.

    Args:
        dim: the vectors' dimension; ``None`` takes it from the first ``add``.
        metric: ``"cosine"`` (default) or ``"dot"``.
        dtype: how vectors are held in memory: ``np.float32`` (default); ``np.float16`` (half the memory,
            exact over the float16 values, slower); ``"int8"`` (a quarter of the memory: int8 codes are
            scanned and a shortlist is re-ranked from float32 vectors kept in a memory-mapped file; the
            result is provably the exact float32 top-k).
        model: the embedding model the vectors come from (recorded in the saved manifest).
        spill_dir: where the ``"int8"`` mode keeps its float32 vectors while the index is built in memory
            (a temporary file, removed automatically; default: the system temp directory).

    Example:
        >>> index = EmbeddingIndex(3)
        >>> index.add(["a", "b", "c"], [[1, 0, 0], [0, 1, 0], [1, 1, 0]], metadata=[{"n": 1}, {"n": 2}, {"n": 3}])
        >>> index.search([1, 0.1, 0], k=2).ids
        ['a', 'c']
        >>> index.search([1, 0.1, 0], k=2, where={"n": {"$gte": 2}}).ids
        ['c', 'b']
    """

    def __init__(
        self,
        dim: int | None = None,
        *,
        metric: Metric = "cosine",
        dtype: DTypeLike = np.float32,
        model: str | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ConfigError(f"dim must be a positive integer or None, got {dim!r}.")
        self._metric: Metric = _check_metric(metric)
        self._kind: Kind = _kind_of(dtype)
        self._dim = dim
        self.model = model
        self._spill_dir = None if spill_dir is None else str(spill_dir)
        self._store: VectorStore | None = None
        self._ids: list[str | None] = []
        self._meta: list[dict[str, Any] | None] = []
        self._pos: dict[str, int] = {}
        self._dead: list[int] = []  # deleted slots not yet compacted, unsorted
        self._dead_sorted: npt.NDArray[np.int64] | None = None
        self._lock = ReadWriteLock()
        self._columns = ColumnCache()  # metadata columns for filters: appends extend them, other writes clear them

    # --- basic properties ---------------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        """The vectors' dimension (``None`` until the first add when not given)."""
        return self._dim

    @property
    def metric(self) -> Metric:
        """``"cosine"`` or ``"dot"``."""
        return self._metric

    @property
    def dtype(self) -> str:
        """How vectors are held: ``"float32"``, ``"float16"`` or ``"int8"``."""
        return self._kind

    @property
    def ids(self) -> list[str]:
        """The ids, in insertion order."""
        with self._lock.read():
            return [i for i in self._ids if i is not None]

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """All vectors as a float32 ``(len(index), dim)`` array in the order of :attr:`ids`.

        A read-only view when the index is one float32 block without deletions; otherwise a copy.
        """
        with self._lock.read():
            store = self._store
            if store is None:
                return np.zeros((0, self._dim or 0), dtype=np.float32)
            if self._dead:  # deleted slots not compacted yet: gather the live rows (reading never compacts)
                return store.rows(np.array([s for s, i in enumerate(self._ids) if i is not None], dtype=np.int64))
            out = store.as_float32()
            if out.base is not None:  # a view of the stored rows: read-only, so the index cannot be corrupted
                out = out.view(np.ndarray)
                out.flags.writeable = False
            return out

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """The metadata of every item, in the order of :attr:`ids` (copies)."""
        with self._lock.read():
            return [dict(m or {}) for m, i in zip(self._meta, self._ids, strict=True) if i is not None]

    @property
    def nbytes(self) -> int:
        """Bytes of vector data the search keeps in memory (for ``"int8"``: the codes, not the float32 file)."""
        with self._lock.read():
            return 0 if self._store is None else self._store.nbytes_resident()

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._pos

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def iter_items(
        self, batch_size: int = 10_000
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """Every item in insertion order, ``batch_size`` at a time: ``(ids, vectors, metadata)`` (copies), as
        every :class:`~finetune_embed.index.VectorIndex` backend yields them."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        ids = self.ids
        for a in range(0, len(ids), batch_size):
            part = ids[a : a + batch_size]
            slots = np.array([self._pos[i] for i in part], dtype=np.int64)
            assert self._store is not None
            yield part, self._store.rows(slots), [dict(self._meta[s] or {}) for s in slots.tolist()]

    def close(self) -> None:
        """Nothing to release: the index lives in this process's memory and stays usable (the method exists
        so that code written for any :class:`~finetune_embed.index.VectorIndex` backend runs unchanged)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        model = f", model={self.model!r}" if self.model else ""
        return (
            f"EmbeddingIndex(count={len(self)}, dim={self._dim}, metric={self._metric!r}, "
            f"dtype={self._kind!r}{model})"
        )

    # --- writing --------------------------------------------------------------------------------------------

    def _prepare(
        self, ids: list[str], vectors: npt.ArrayLike, metadata: Any
    ) -> tuple[_Rows, list[dict[str, Any]]]:
        rows = as_matrix(vectors, self._dim, ids)  # may share memory with the caller's array: never modified
        norms = check_nonzero(rows, ids)
        scale = None
        if self._metric == "cosine":
            rows, scale = unit_scale(rows, norms)  # a copy where a row needs rescaling in float64 first
        if self._kind == "float16" and scale is None:
            bad = fits_float16(rows)
            if bad.size:
                names = [ids[int(i)] for i in bad]
                raise InvalidVectorError(
                    f"{len(names)} vectors have values beyond float16's range (65504): {_shown(names)}; "
                    "use dtype=np.float32.",
                    ids=names,
                )
            vanish = np.flatnonzero(np.abs(rows).max(axis=1) < _F16_TINY)
            if vanish.size:
                names = [ids[int(i)] for i in vanish]
                raise InvalidVectorError(
                    f"{len(names)} vectors are so small that float16 would store them as zeros: {_shown(names)}; "
                    "scale them up, use metric='cosine', or use dtype=np.float32.",
                    ids=names,
                )
        given = metadata_per_id(metadata, ids)
        if given is None:
            return _Rows(rows, scale), [{} for _ in ids]
        return _Rows(rows, scale), [clean_metadata(m, i) for m, i in zip(given, ids, strict=True)]

    def _ensure_store(self, dim: int) -> VectorStore:
        if self._store is None:
            self._dim = dim
            self._store = VectorStore(dim, self._kind, spill_dir=self._spill_dir)
        return self._store

    def add(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items (all or none).

        Args:
            ids: one id or a sequence of unique ids not yet in the index.
            vectors: one vector or an ``(n, dim)`` array-like, one row per id.
            metadata: one JSON-compatible mapping per id (or one mapping for a single id).

        Raises:
            DuplicateIdError: an id already in the index or repeated in ``ids`` (use :meth:`upsert`).
            DimensionMismatchError: vectors of the wrong dimension.
            InvalidVectorError: zero, NaN or infinite vectors (``.ids`` names them).
        """
        id_list = _as_ids(ids)
        _reject_repeats(id_list)
        with self._lock.write():
            existing = [i for i in id_list if i in self._pos]
            if existing:
                raise DuplicateIdError(
                    f"{len(existing)} ids are already in the index: {_shown(existing)}; use upsert() to replace "
                    "them.",
                    ids=existing,
                )
            rows, metas = self._prepare(id_list, vectors, metadata)
            self._append(id_list, rows, metas)

    def _append(self, ids: list[str], rows: _Rows, metas: list[dict[str, Any]]) -> None:
        if not ids:
            return
        store = self._ensure_store(rows.data.shape[1])
        if store.n + len(ids) > MAX_POSITIONS:
            raise ConfigError(f"an index holds at most {MAX_POSITIONS - 1} items.")
        start = store.n
        store.append(rows.data, rows.scale)
        self._ids.extend(ids)
        self._meta.extend(metas)
        self._pos.update(zip(ids, range(start, start + len(ids)), strict=True))

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones (vector and metadata); an id repeated in ``ids`` takes its
        last occurrence. Replaced items keep their insertion position."""
        id_list = _as_ids(ids)
        with self._lock.write():
            rows, metas = self._prepare(id_list, vectors, metadata)
            last = {i: j for j, i in enumerate(id_list)}
            order = sorted(last.values())
            old = [j for j in order if id_list[j] in self._pos]
            new = [j for j in order if id_list[j] not in self._pos]
            if old:
                store = self._ensure_store(rows.data.shape[1])
                slots = np.array([self._pos[id_list[j]] for j in old], dtype=np.int64)
                store.overwrite(slots, rows.data[old], None if rows.scale is None else rows.scale[old])
                for j, s in zip(old, slots.tolist(), strict=True):
                    self._meta[s] = metas[j]
                self._columns.clear()
            if new:
                picked = rows if len(new) == len(id_list) else rows.take(new)
                self._append([id_list[j] for j in new], picked, [metas[j] for j in new])

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items; ids not in the index are ignored. Returns how many were removed."""
        removed = 0
        with self._lock.write():
            for i in _as_ids(ids):
                slot = self._pos.pop(i, None)
                if slot is None:
                    continue
                self._ids[slot] = None
                self._meta[slot] = None
                self._dead.append(slot)
                removed += 1
            if removed:
                self._dead_sorted = None
                self._compact_if_needed()
        return removed

    def _compact_if_needed(self, *, force: bool = False) -> None:
        if not self._dead or self._store is None:
            return
        slots = self._store.n
        if not force and len(self._dead) < max(1024, slots // 2):
            return
        keep = np.array([s for s, i in enumerate(self._ids) if i is not None], dtype=np.int64)
        self._store.compact(keep)
        self._ids = [self._ids[s] for s in keep.tolist()]
        self._meta = [self._meta[s] for s in keep.tolist()]
        self._pos = {i: s for s, i in enumerate(self._ids) if i is not None}
        self._dead = []
        self._dead_sorted = None
        self._columns.clear()

    def get(self, item_id: str) -> Item:
        """The stored (normalised, for cosine) float32 vector and a copy of the metadata of ``item_id``.

        Raises:
            UnknownIdError: ``item_id`` is not in the index.
        """
        with self._lock.read():
            slot = self._slot(item_id)
            assert self._store is not None
            vector = self._store.rows(np.array([slot], dtype=np.int64))[0]
            meta = self._meta[slot]
            return Item(vector, dict(meta or {}))

    def _slot(self, item_id: str) -> int:
        slot = self._pos.get(item_id)
        if slot is None:
            raise UnknownIdError(f"id {item_id!r} is not in the index ({len(self)} items).", ids=[item_id])
        return slot

    # --- search ---------------------------------------------------------------------------------------------

    @overload
    def search(
        self,
        queries: np.ndarray[tuple[int, int], np.dtype[Any]] | Sequence[Sequence[float]],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
        threads: int | None = ...,
    ) -> BatchMatches: ...

    @overload
    def search(
        self,
        queries: np.ndarray[tuple[int], np.dtype[Any]] | Sequence[float],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
        threads: int | None = ...,
    ) -> Matches: ...

    @overload
    def search(
        self,
        queries: npt.ArrayLike,
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
        threads: int | None = ...,
    ) -> Matches | BatchMatches: ...

    def search(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        threads: int | None = None,
    ) -> Matches | BatchMatches:
        """The exact ``k`` nearest items of each query.

        Args:
            queries: one vector (gives :class:`Matches`) or an ``(n, dim)`` matrix (gives
                :class:`BatchMatches`, one :class:`Matches` per row).
            k: how many hits per query (fewer when fewer items pass the filters; never more than the index
                holds, however large ``k`` is).
            where: a metadata filter: ``{"field": value}``, ``{"field": {"$gte": 3}}``, ``$in``, ... (see
                :func:`~finetune_embed.index.parse_where`) or a callable ``metadata -> bool``.
            exclude: ids never returned (ids not in the index are ignored).
            threads: how many threads this call may use for its own work (``None``: every CPU the process may
                run on). Threads are started for the call and joined before it returns; results are the same
                for any value. numpy's BLAS (the matrix products) keeps its own thread setting: limit it with
                ``threadpoolctl`` if you need to.

        Returns:
            Hits best first: cosine similarity (or dot product), higher is better; equal scores keep
            insertion order.
        """
        k = _check_k(k)
        n_threads = _check_threads(threads)
        with self._lock.read():
            rows, single = as_queries(queries, self._dim, normalize=self._metric == "cosine")
            results = self._search_rows(rows, k, where, exclude, None, n_threads)
            batch = BatchMatches([self._matches(s, p) for s, p in results])
        return batch[0] if single else batch

    def search_by_id(
        self,
        item_id: str,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        exclude_self: bool = True,
        threads: int | None = None,
    ) -> Matches:
        """The ``k`` nearest items of the stored item ``item_id`` (itself left out unless ``exclude_self`` is
        false). Raises :class:`UnknownIdError` for an unknown id. ``threads`` as in :meth:`search`."""
        k = _check_k(k)
        n_threads = _check_threads(threads)
        with self._lock.read():
            slot = self._slot(item_id)
            assert self._store is not None
            query = self._store.rows(np.array([slot], dtype=np.int64))
            extra = [slot] if exclude_self else []
            return self._matches(*self._search_rows(query, k, where, exclude, extra, n_threads)[0])

    def search_text(
        self,
        text: str,
        embedder: SupportsEmbed,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        threads: int | None = None,
    ) -> Matches:
        """Embed ``text`` with ``embedder`` and search. The embedder's ``model`` must match the index's."""
        vector = embed_query(embedder, text, self.model, "the index")
        return self.search(vector, k, where=where, exclude=exclude, threads=threads)

    def _matches(self, scores: npt.NDArray[np.float32], slots: npt.NDArray[np.int64]) -> Matches:
        ids = self._ids
        meta = self._meta
        picked = slots.tolist()
        return Matches(
            ids=[ids[s] for s in picked],
            scores=scores,
            metadata=[dict(meta[s] or {}) for s in picked],
        )

    # --- the scan -------------------------------------------------------------------------------------------

    def _excluded(self, exclude: Collection[str] | None, extra: list[int] | None) -> npt.NDArray[np.int64]:
        if self._dead_sorted is None:
            self._dead_sorted = np.array(sorted(self._dead), dtype=np.int64)
        if not exclude and not extra:
            return self._dead_sorted
        more = [self._pos[i] for i in (exclude or ()) if i in self._pos] + list(extra or [])
        return np.union1d(self._dead_sorted, np.array(more, dtype=np.int64))

    def _allowed(self, where: Where | None, excluded: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
        """The slots that pass ``where`` and are not excluded (``None``: no filter). A mapping is evaluated as
        numpy masks over cached metadata columns (no Python call per item); a callable is called per item."""
        if where is None:
            return None
        if isinstance(where, Mapping):
            tree = parse_filter(where)
            if tree is None:
                return None
            keep = filter_mask(tree, self._meta, self._columns)
        else:
            predicate = compile_where(where)
            if predicate is None:
                return None
            keep = np.fromiter(
                (m is not None and predicate(m) for m in self._meta), dtype=bool, count=len(self._meta)
            )
        keep[excluded] = False
        return np.flatnonzero(keep).astype(np.int64)

    def _search_rows(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        where: Where | None,
        exclude: Collection[str] | None,
        extra: list[int] | None,
        threads: int,
    ) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        empty = (np.zeros(0, np.float32), np.zeros(0, np.int64))
        store = self._store
        if store is None or store.n == 0:
            return [empty for _ in range(queries.shape[0])]
        excluded = self._excluded(exclude, extra)
        allowed = self._allowed(where, excluded)
        available = allowed.size if allowed is not None else store.n - excluded.size
        if available == 0:
            return [empty for _ in range(queries.shape[0])]
        k = min(k, available)  # no buffer is ever sized by more hits than there are candidates
        workers = _Workers(threads)
        try:
            if self._kind == "int8":
                return self._search_int8(queries, k, excluded, allowed, available, workers)
            out: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]] = []
            for a in range(0, queries.shape[0], _QUERY_CHUNK):
                top = self._scan(queries[a : a + _QUERY_CHUNK], k, excluded, allowed, workers, source="scan")
                out.extend(top.results())
            return out
        finally:
            workers.close()

    def _plan(self, n_queries: int, k: int, widen: bool, segment_rows: int) -> _Plan:
        """Block sizes, measured on the development machine (2 cores, OpenBLAS; docs/search.md, Speed):

        - up to ``_ROW_QUERIES`` queries, the row kernel (:mod:`._kernels`): one float32 query takes each segment
          whole, more queries (or int8 / float16 rows) blocks of up to ``_SCORE_ELEMENTS`` scores; the selection
          walks each query's scores in chunks of 65,536, the first one small (it sets the thresholds cheaply);
        - more queries: BLAS products ``rows @ queries.T`` of blocks of up to 8,192 rows (a score buffer of about
          8 MB, one column per query), the first block small; int8 / float16 blocks are widened to float32 into
          a buffer of at most 16 MB first (as many rows as float32 blocks up to d = 512; fewer BLAS calls).
          Below ``_GEMM_SPLIT_QUERIES`` queries each block's product is computed in row slices of at most
          ``_GEMM_BYTES`` (1,024 rows at d = 1536: 14-19% less CPU than 8,192-row products for 8-16 queries,
          the same at d = 384), still selected once per block.
        """
        assert self._dim is not None
        first = max(128, 16 * k)
        segment = max(1, segment_rows)
        if n_queries <= _ROW_QUERIES:
            if n_queries == 1 and not widen:
                rows = segment
            else:
                rows = min(segment, max(1 << 16, _SCORE_ELEMENTS // n_queries))
            return _Plan(rows=rows, first=rows, chunk=1 << 16, first_chunk=first)
        rows = min(8192, max(1024, _SCORE_ELEMENTS // n_queries))
        if widen:
            rows = min(rows, max(256, _CAST_BYTES // (4 * self._dim)))
        return _Plan(rows=rows, first=min(rows, first), chunk=rows, first_chunk=rows)

    def _scan(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        excluded: npt.NDArray[np.int64],
        allowed: npt.NDArray[np.int64] | None,
        workers: _Workers,
        *,
        source: Literal["scan", "exact"],
        margin: npt.NDArray[np.float32] | None = None,
        pool_limit: int = 1 << 24,
    ) -> RunningTopK:
        """The exact top-k of ``queries`` against the stored rows (``source="scan"``: what is held in memory,
        int8 codes included; ``"exact"``: the float32 rows)."""
        store = self._store
        assert store is not None
        assert self._dim is not None
        nq = queries.shape[0]
        widen = source == "scan" and self._kind != "float32"
        n_slots = store.n
        gather = allowed is not None and allowed.size < (0.3 if nq < 16 else 0.8) * n_slots
        if allowed is not None and not gather:
            mask = np.ones(n_slots, dtype=bool)
            mask[allowed] = False
            excluded = np.flatnonzero(mask).astype(np.int64)
            allowed = None
        largest = max((seg.used for seg in store.segments), default=1)
        plan = self._plan(nq, k, widen or gather, largest if not gather else min(largest, 1 << 16))
        top = RunningTopK(nq, k, margin=margin, pool_limit=pool_limit)
        # a few queries: the row kernel, scores (queries x rows); more: BLAS, scores (rows x queries)
        rowwise = nq <= _ROW_QUERIES
        half = widen and self._kind == "float16" and subnormals_kept()  # float16 widened by widen_float16
        block_rows = min(plan.rows, largest)
        scores = np.empty((nq, block_rows) if rowwise else (block_rows, nq), dtype=np.float32)
        cast_rows = min(block_rows, max(256, _CAST_BYTES // (4 * self._dim)))
        widened = np.empty((cast_rows, self._dim), dtype=np.float32) if gather or (widen and not rowwise) else None
        scratch = np.empty(widened.shape, dtype=np.uint32) if half and widened is not None else None
        gemm_rows = block_rows if nq >= _GEMM_SPLIT_QUERIES else max(256, _GEMM_BYTES // (4 * self._dim))

        def score(block: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
            n = block.shape[0]
            if rowwise:
                out = scores[:, :n]
                if block.dtype == np.int8:
                    code_scores(block, queries, out, workers.rows)  # type: ignore[arg-type]
                else:
                    row_scores(block, queries, out, workers.rows, fast_half=half)
                return out
            if block.dtype != np.float32:  # widened into the buffer, the rows split across the threads
                assert widened is not None
                buf = widened[:n]
                src = block

                def widen_rows(a: int, b: int) -> None:
                    if scratch is not None and src.dtype == np.float16:
                        widen_float16(src[a:b], buf[a:b], scratch[a:b])  # type: ignore[arg-type]
                    else:
                        np.copyto(buf[a:b], src[a:b], casting="unsafe")

                workers.rows(widen_rows, n)
                block = buf
            out = scores[:n]
            for a in range(0, n, gemm_rows):  # few queries: BLAS is faster on blocks of a few MB
                np.matmul(block[a : a + gemm_rows], queries.T, out=out[a : a + gemm_rows])
            return out

        pushed = [False]

        def push(s: npt.NDArray[np.float32], positions: int | npt.NDArray[np.int64]) -> None:
            if not rowwise:
                top.push_columns(s, positions)
                return
            n = s.shape[1]
            a = 0
            while a < n:  # the very first chunk is small: it sets the thresholds cheaply
                size = plan.chunk if pushed[0] else plan.first_chunk
                pushed[0] = True
                part = s if (a == 0 and size >= n) else s[:, a : a + size]
                top.push(part, positions + a if isinstance(positions, int) else positions[a : a + size])
                a += size

        if allowed is not None and gather:
            assert widened is not None
            step = widened.shape[0]
            for a in range(0, allowed.size, step):
                slots = allowed[a : a + step]
                if source == "exact":
                    block: npt.NDArray[np.generic] = store.rows(slots)
                else:
                    block = store.scan_rows(slots, widened)
                push(score(block), slots)
            return top
        blocks = store.exact_blocks(plan.rows, plan.first) if source == "exact" else store.blocks(
            plan.rows, plan.first
        )
        has_excluded = excluded.size > 0
        for start, block in blocks:
            s = score(block)
            if has_excluded:
                lo, hi = np.searchsorted(excluded, (start, start + block.shape[0]))
                if hi > lo:
                    if rowwise:
                        s[:, excluded[lo:hi] - start] = -np.inf
                    else:
                        s[excluded[lo:hi] - start] = -np.inf
            push(s, start)
        return top

    # --- int8: approximate scan, exact re-rank, proof of exactness -----------------------------------------------

    def _search_int8(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        excluded: npt.NDArray[np.int64],
        allowed: npt.NDArray[np.int64] | None,
        available: int,
        workers: _Workers,
    ) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        """Scan the int8 codes, keep every item that could still be in the exact top-k, re-rank those exactly.

        With ``a`` the approximate score (query x dequantised codes) and ``e`` the exact one,
        ``|e - a| <= eps = |q| * max_residual`` (+ float32 rounding of both dot products). If ``tau`` is the
        k-th best approximate score, the k best-by-approximation items all have ``e >= tau - eps``, so the
        exact k-th best is at least ``tau - eps`` and every exact top-k item has ``a >= tau - 2 * eps``. The
        scan collects exactly those (a margin of ``2 * eps``); re-ranking them gives the exact top-k.
        """
        store = self._store
        assert store is not None
        assert store.scale is not None
        assert self._dim is not None
        d = self._dim
        gamma = d * _U / (1 - d * _U)
        qnorm = np.sqrt(np.einsum("ij,ij->i", queries, queries, dtype=np.float64))
        eps = qnorm * store.max_residual + 4 * gamma * qnorm * (2 * store.max_norm + store.max_residual)
        margin = (2 * eps * (1 + 1e-3) + 1e-30).astype(np.float32)
        scaled = queries * store.scale
        out: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]] = []
        # the fallback (an exact float32 scan) is only for pathological error bounds: a shortlist of more than
        # a quarter of the index per query would cost about as much as scanning the float32 rows
        limit = max(1 << 20, min(queries.shape[0], _QUERY_CHUNK) * available // 4)
        for a in range(0, queries.shape[0], _QUERY_CHUNK):
            part = slice(a, a + _QUERY_CHUNK)
            try:
                top = self._scan(
                    scaled[part], k, excluded, allowed, workers, source="scan", margin=margin[part], pool_limit=limit
                )
            except PoolTooLarge:  # the shortlist would be a large part of the index: scan float32 rows
                out.extend(self._scan(queries[part], k, excluded, allowed, workers, source="exact").results())
                continue
            rows, keys = top.pool()
            out.extend(self._rerank(queries[part], rows, keys, k, eps[part]))
        return out

    def _rerank(
        self,
        queries: npt.NDArray[np.float32],
        rows: npt.NDArray[np.intp],
        keys: npt.NDArray[np.uint64],
        k: int,
        eps: npt.NDArray[np.float64],
    ) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        """Each query's exact top-k from its shortlist (``keys`` hold approximate scores).

        Candidates are re-ranked best-approximate first: the first ``k + 8`` of each query give an exact k-th
        best ``e_k``; only the other candidates with ``approx >= e_k - eps`` can still beat it
        (``exact <= approx + eps``), so the rest of the shortlist is never read.
        """
        nq = queries.shape[0]
        order = np.lexsort((~keys, rows))  # by query, then best approximate score first
        rows, keys = rows[order], keys[order]
        approx, slots = decode_keys(keys)
        bounds = np.searchsorted(rows, np.arange(nq + 1))
        rank = np.arange(rows.size) - bounds[rows]
        top = RunningTopK(nq, k)
        everyone = np.arange(nq)
        first = rank < k + 8
        top.push_keys(everyone, rows[first], self._exact_keys(queries, rows[first], slots[first]))
        later = ~first
        later[later] = approx[later] >= (top.threshold.astype(np.float64)[rows[later]] - eps[rows[later]])
        if later.any():
            top.push_keys(everyone, rows[later], self._exact_keys(queries, rows[later], slots[later]))
        return top.results()

    def _exact_keys(
        self, queries: npt.NDArray[np.float32], rows: npt.NDArray[np.intp], slots: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.uint64]:
        """Keys of the exact float32 scores of (query row, slot) pairs."""
        store = self._store
        assert store is not None
        exact = np.empty(slots.size, dtype=np.float32)
        step = 1 << 14
        for a in range(0, slots.size, step):
            vec = store.rows(slots[a : a + step])
            exact[a : a + step] = np.einsum("ij,ij->i", vec, queries[rows[a : a + step]])
        return score_keys(exact, slots)

    # --- persistence and interchange ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to the directory ``path``, atomically: a crash leaves the old or the new index.

        Files: ``vectors.npy``, ``ids.json``, ``metadata.jsonl`` and ``manifest.json`` (format version, dim,
        metric, dtype, model, count, the sha256 of every file and a checksum of the manifest itself); see
        :mod:`finetune_embed.index._storage`. Files are created as the umask says, like ``open()`` does.

        - An existing index at ``path`` is replaced; other files you keep in its directory stay. Any other
          non-empty directory is refused.
        - Concurrent saves to one path (threads or processes) each swap in a complete index, the last one
          winning; loads running alongside see the old or the new index, never a mix.
        - ``path`` may be a symbolic link: the index is saved where it points, and the link stays.

        Raises:
            IndexFileError: the path is a file or a directory that is not an index.
            FileAccessError: the OS refused (permissions, a full disk); the message says which path and what to do.
        """
        from ._storage import save_index

        with self._lock.read():  # a writer waits until the files are written
            return save_index(self, path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        mmap: bool = True,
        verify: bool = True,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> EmbeddingIndex:
        """Read an index written by :meth:`save`.

        Args:
            mmap: map the vectors from disk (copy-on-write: changes stay in memory, the file is never
                written) instead of reading them into memory. The ``"int8"`` kind always maps its float32
                vectors.
            verify: check every file's sha256 against the manifest (reads each file once: about a second
                per 1-2 GB) and, for ``"int8"``, the largest vector norm against the quantisation's. Without
                it, the manifest's own checksum, every field, sizes, shapes, counts and JSON are still checked.

        A load running alongside a save of the same path sees the old or the new index, never a mix of both.

        Raises:
            IndexFileError: a missing, truncated, corrupt or tampered file or manifest field, or an unknown format
                version; the message names the file and the field.
            FileAccessError: a file the OS will not let us read (permissions).
        """
        from ._storage import load_index

        return load_index(path, mmap=mmap, verify=verify, spill_dir=None if spill_dir is None else str(spill_dir))

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        embedding_column: str = "embedding",
        id_column: str | None = None,
        metadata_columns: Sequence[str] | None = None,
        infer_types: bool = True,
        encoding: str = "utf-8",
        metric: Metric = "cosine",
        dtype: DTypeLike = np.float32,
        model: str | None = None,
    ) -> EmbeddingIndex:
        """Read a CSV with one embedding per row, stored as a stringified list (the cookbook's format).

        The file is streamed and each embedding cell is parsed as JSON (never evaluated).

        Args:
            embedding_column: the column holding ``"[0.1, -0.2, ...]"`` (e.g. ``"ada_embedding"``).
            id_column: the column of ids; ``None`` numbers the rows ``"0"``, ``"1"``, ...
            metadata_columns: columns to keep as metadata; ``None`` keeps every other named column.
            infer_types: turn cells that are plain integers or floats into numbers (so that range filters
                work); empty cells become ``None``.

        Raises:
            DatasetFormatError: a malformed row or cell (``.path`` and ``.line`` say where).
            DuplicateIdError: an id repeated in ``id_column``.
        """
        from ._io import index_from_csv

        return index_from_csv(
            path,
            embedding_column=embedding_column,
            id_column=id_column,
            metadata_columns=metadata_columns,
            infer_types=infer_types,
            encoding=encoding,
            metric=metric,
            dtype=dtype,
            model=model,
        )

    @classmethod
    def from_pandas(
        cls,
        frame: pd.DataFrame,
        *,
        embedding_column: str = "embedding",
        id_column: str | None = None,
        metadata_columns: Sequence[str] | None = None,
        metric: Metric = "cosine",
        dtype: DTypeLike = np.float32,
        model: str | None = None,
    ) -> EmbeddingIndex:
        """Build an index from a DataFrame whose ``embedding_column`` holds vectors (arrays, lists, or
        stringified lists). Ids come from ``id_column`` or the frame's index; other columns (or
        ``metadata_columns``) become metadata, with NaN as ``None``."""
        from ._io import index_from_pandas

        return index_from_pandas(
            frame,
            embedding_column=embedding_column,
            id_column=id_column,
            metadata_columns=metadata_columns,
            metric=metric,
            dtype=dtype,
            model=model,
        )

    def to_pandas(self, *, vector_column: str = "embedding") -> pd.DataFrame:
        """A DataFrame with an ``id`` column, a ``vector_column`` of float32 arrays and one column per
        top-level metadata key (a key named like those columns becomes ``metadata.<key>``)."""
        from ._io import items_frame

        with self._lock.read():
            return items_frame(self.ids, list(self.vectors), self.metadata, vector_column)

    def to_parquet(self, path: str | os.PathLike[str], *, vector_column: str = "embedding") -> int:
        """Write the items to a Parquet file, atomically (needs pyarrow: the ``parquet`` extra); returns how many.

        Columns: ``id`` (text), ``vector_column`` (an Arrow fixed-size list of float32 per row: the stored
        vectors, unit length for cosine) and, when any item has metadata, ``metadata`` (JSON text). The metric,
        dtype, model and dimension go into the file's schema metadata, which :meth:`from_parquet` restores.
        Rows are written 65,536 at a time; a concurrent ``add`` waits until the file is complete.
        """
        from ._parquet import index_to_parquet

        with self._lock.read():
            return index_to_parquet(self, path, vector_column=vector_column)

    @classmethod
    def from_parquet(
        cls,
        path: str | os.PathLike[str],
        *,
        embedding_column: str = "embedding",
        id_column: str | None = None,
        metadata_columns: Sequence[str] | None = None,
        metric: Metric | None = None,
        dtype: DTypeLike | None = None,
        model: str | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> EmbeddingIndex:
        """Build an index from a Parquet file: one written by :meth:`to_parquet` (metric, dtype and model restored
        unless given) or by pandas, DuckDB or Hugging Face ``datasets`` (defaults: cosine, float32).

        Args:
            embedding_column: the vectors: fixed-size or plain lists of floats or integers, all of one length.
                Float32 vectors without nulls are taken from Arrow's buffers without a copy.
            id_column: the ids; ``None`` takes an ``id`` column when the file has one, else numbers the rows
                ``"0"``, ``"1"``, ...
            metadata_columns: columns to keep as metadata; ``None`` keeps the ``metadata`` column of a file from
                :meth:`to_parquet`, and every other column of any other file (dates and times as ISO text).

        The file is read and added 65,536 rows at a time.

        Raises:
            MissingDependencyError: pyarrow is not installed.
            DatasetFormatError: not a Parquet file, a missing column, a null, ragged or non-numeric vector, an
                empty id (``row N`` in the message says where).
            DuplicateIdError, InvalidVectorError: as :meth:`add` raises them.
        """
        from ._parquet import index_from_parquet

        return index_from_parquet(
            path,
            embedding_column=embedding_column,
            id_column=id_column,
            metadata_columns=metadata_columns,
            metric=metric,
            dtype=dtype,
            model=model,
            spill_dir=spill_dir,
        )

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        embedder: SupportsEmbed | SupportsEmbedDocuments,
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        text_field: str | None = "text",
        metric: Metric = "cosine",
        dtype: DTypeLike = np.float32,
    ) -> EmbeddingIndex:
        """Embed ``texts`` with ``embedder`` and index them.

        Args:
            embedder: a :class:`~finetune_embed.Embedder` (anything with ``embed(texts)``) or a LangChain
                ``Embeddings`` (``embed_documents(texts)``); anything else raises
                :class:`~finetune_embed.InvalidArgumentError`.
            ids: one id per text (default ``"0"``, ``"1"``, ...).
            metadata: one mapping per text.
            text_field: also store each text in its metadata under this key (``None``: don't).

        The index records ``embedder.model`` (when it has one), which :meth:`search_text` checks.
        """
        texts = list(texts)
        id_list = [str(i) for i in range(len(texts))] if ids is None else _as_ids(ids)
        if len(id_list) != len(texts):
            raise ConfigError(f"got {len(texts)} texts but {len(id_list)} ids.")
        metas: list[dict[str, Any]] = [dict(m or {}) for m in metadata] if metadata is not None else [{} for _ in texts]
        if len(metas) != len(texts):
            raise ConfigError(f"got {len(texts)} texts but {len(metas)} metadata entries.")
        if text_field is not None:
            for m, t in zip(metas, texts, strict=True):
                m.setdefault(text_field, t)
        vectors = embed_texts(embedder, texts)
        model = getattr(embedder, "model", None)
        index = cls(vectors.shape[1] if texts else None, metric=metric, dtype=dtype,
                    model=model if isinstance(model, str) else None)
        if texts:
            index.add(id_list, vectors, metas)
        return index

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("EmbeddingIndex is not picklable; use index.save(dir) and EmbeddingIndex.load(dir).")
