"""copy(): move every item of one :class:`~finetune_embed.VectorIndex` into another, batch by batch.

How an interrupted copy resumes: run the same call again. There is no journal; the destination itself is the
record of what was copied. Each batch is written with ``add`` (all or none on every backend); when the
destination already holds some of a batch's ids (``DuplicateIdError`` names them, nothing of that call was
written), their stored vector and metadata are read back and compared with the source's: the same item is
skipped, a different one stops the copy with :class:`~finetune_embed.DuplicateIdError` before anything of the
batch is written. So a rerun never writes an item twice, never replaces different data, and loses nothing; a
batch a crash left half-written (an engine that writes a large ``add`` in parts) is completed.

Why not a checkpoint file: it can disagree with the destination (lost, copied to another machine, or kept while
the destination was emptied or restored from a backup), and it needs a place to live next to a remote store.
The price of the choice: a resumed copy re-reads the source from the start and reads back, one ``get`` each,
the items that arrived before the interruption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DimensionMismatchError, DuplicateIdError, InvalidArgumentError, UnknownIdError
from .._progress import progress_bar
from ..index._protocol import VectorIndex
from ..index._vectors import _shown

__all__ = ["CopyResult", "copy"]

_REL_TOL = 1e-3  # float16 storage (halfvec, dtype="float16") rounds each value by at most 2**-11 of itself


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy` did: ``copied`` items written to the destination, ``skipped`` items it already held with
    the same vector and metadata (from an earlier, interrupted copy)."""

    copied: int
    skipped: int

    @property
    def total(self) -> int:
        """Every item of the source that the destination now holds."""
        return self.copied + self.skipped


def _check_pair(src: VectorIndex, dst: VectorIndex) -> None:
    """Refuse, before anything is written, a destination that cannot hold the source's vectors as they are."""
    if src is dst:
        raise ConfigError("copy() needs two different stores; the source and the destination are the same object.")
    if src.dim is not None and dst.dim is not None and src.dim != dst.dim:
        raise DimensionMismatchError(
            f"the source holds {src.dim}-dimensional vectors and the destination {dst.dim}-dimensional ones; copy "
            "into a new (empty) store, or into one created with the source's dimension.",
            expected=dst.dim,
            got=src.dim,
        )
    if src.metric != dst.metric:
        raise ConfigError(
            f"the source uses metric={src.metric!r} and the destination metric={dst.metric!r}: the copy would "
            f"change the scores (cosine normalises the vectors). Create the destination with metric={src.metric!r}."
        )
    if src.model is not None and dst.model is not None and src.model != dst.model:
        raise ConfigError(
            f"the source holds {src.model!r} embeddings and the destination {dst.model!r} ones; vectors from "
            "different models cannot be compared. Copy into a new store."
        )


def _same_json(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``1`` equals ``1.0``, ``true`` is not ``1``, lists item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _same_vector(stored: npt.NDArray[np.float32], given: npt.NDArray[np.float32]) -> bool:
    stored = np.asarray(stored, dtype=np.float32).reshape(-1)
    if stored.shape != given.shape:
        return False
    tolerance = _REL_TOL * float(np.abs(given).max()) + 1e-6
    return bool(np.abs(stored - given).max() <= tolerance)


def _add_new(
    dst: VectorIndex, ids: list[str], vectors: npt.NDArray[np.float32], metadata: list[dict[str, Any]]
) -> tuple[int, int]:
    """Add the batch; ids the destination already holds are skipped when their content is the same. Returns
    ``(written, skipped)``."""
    pending = list(range(len(ids)))
    skipped = 0
    while pending:
        try:
            dst.add([ids[i] for i in pending], vectors[pending], [metadata[i] for i in pending])
            return len(pending), skipped
        except DuplicateIdError as exc:
            named = set(exc.ids)
            present, differ = [], []
            for i in pending:
                if ids[i] not in named:
                    continue
                try:
                    item = dst.get(ids[i])
                except UnknownIdError:  # deleted since add() looked: it is pending again
                    continue
                present.append(i)
                if not (_same_vector(item.vector, vectors[i]) and _same_json(item.metadata, metadata[i])):
                    differ.append(ids[i])
            if differ:
                raise DuplicateIdError(
                    f"the destination already holds {len(differ)} of the ids being copied with a different vector "
                    f"or metadata: {_shown(differ)}. Nothing of this batch was written. Delete them from the "
                    "destination, copy into an empty store, or pass overwrite=True to replace them.",
                    ids=differ,
                ) from None
            if not present:
                raise
            skipped += len(present)
            done = set(present)
            pending = [i for i in pending if i not in done]
    return 0, skipped


def copy(
    src: VectorIndex,
    dst: VectorIndex,
    *,
    batch_size: int = 1_000,
    overwrite: bool = False,
    progress: bool | None = None,
) -> CopyResult:
    """Copy every item (id, vector, metadata) of ``src`` into ``dst``, in ``src``'s order, ``batch_size`` at a time.

    Works between any two backends (``EmbeddingIndex``, ``PgVectorIndex``, ``ChromaIndex``, ``RedisIndex``, ...):
    it reads with ``iter_items`` and writes with ``add``, so only one batch is in memory. An interrupted copy
    resumes when run again: items the destination already holds with the same vector (within float16 rounding)
    and metadata are skipped, so nothing is written twice and nothing is lost.

    Args:
        src: the store to read.
        dst: the store to write: empty, or holding items of an earlier run. Its dimension (if set), metric and
            model (if both record one) must be the source's; this is checked before anything is written.
        batch_size: items read and written per round trip.
        overwrite: write with ``upsert``: items the destination holds under the same ids are replaced, whatever
            their content (a rerun writes everything again).
        progress: a tqdm bar (default: only when stderr is a terminal).

    Returns:
        :class:`CopyResult`: how many items were written and how many were already there.

    Raises:
        DimensionMismatchError: the stores hold vectors of different dimensions.
        ConfigError: different metrics or models, or ``src`` is ``dst``.
        DuplicateIdError: (without ``overwrite``) the destination holds some ids with different content;
            ``.ids`` names them, and nothing of their batch was written.

    Example:
        >>> from finetune_embed.index import EmbeddingIndex
        >>> src, dst = EmbeddingIndex(2), EmbeddingIndex(2)
        >>> src.add(["a", "b", "c"], [[1, 0], [0, 1], [1, 1]], metadata=[{"n": 1}, {"n": 2}, {"n": 3}])
        >>> dst.add("a", [1, 0], {"n": 1})          # as an interrupted copy left it
        >>> copy(src, dst, batch_size=2)
        CopyResult(copied=2, skipped=1)
        >>> dst.ids, dst.get("c").metadata
        (['a', 'b', 'c'], {'n': 3})
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}.", argument="batch_size")
    _check_pair(src, dst)
    copied = skipped = 0
    with progress_bar(total=len(src), desc="copy", unit="item", progress=progress) as bar:
        for ids, vectors, metadata in src.iter_items(batch_size):
            if overwrite:
                dst.upsert(ids, vectors, metadata)
                copied += len(ids)
            else:
                written, already = _add_new(dst, ids, np.asarray(vectors, dtype=np.float32), metadata)
                copied += written
                skipped += already
            bar.update(len(ids))
    return CopyResult(copied, skipped)
