"""Search results: :class:`Match` (one hit), :class:`Matches` (one query's hits) and :class:`BatchMatches`.

Scores are similarities: higher is better (cosine similarity, or the dot product for ``metric="dot"``).
Hits are ordered best first; equal scores keep a deterministic order (insertion position, then id).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BatchMatches", "DenseMatches", "Match", "Matches"]


@dataclass(frozen=True)
class Match:
    """One search hit: the item's ``id``, its ``score`` (higher is better) and its ``metadata``."""

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"id": ..., "score": ..., "metadata": {...}}``, ready for JSON."""
        return {"id": self.id, "score": self.score, "metadata": self.metadata}


def _empty_scores() -> npt.NDArray[np.float32]:
    return np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Matches:
    """The hits of one query, best first.

    ``ids[i]``, ``scores[i]`` and ``metadata[i]`` describe the i-th hit; ``len(matches)`` may be less than
    ``k`` when the index (or the filtered part of it) holds fewer items.

    Example:
        >>> m = Matches(ids=["a", "b"], scores=np.array([0.9, 0.5], dtype=np.float32), metadata=[{}, {}])
        >>> m[0]
        Match(id='a', score=0.8999999761581421, metadata={})
        >>> m
        Matches(k=2)
    """

    ids: list[str] = field(default_factory=list)
    scores: npt.NDArray[np.float32] = field(default_factory=_empty_scores)
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.scores) == len(self.metadata)):
            raise InvalidArgumentError(
                f"Matches needs as many ids ({len(self.ids)}), scores ({len(self.scores)}) and metadata "
                f"({len(self.metadata)}) entries"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Match]:
        for i in range(len(self.ids)):
            yield self[i]

    def __getitem__(self, i: int) -> Match:
        return Match(self.ids[i], float(self.scores[i]), self.metadata[i])

    def __repr__(self) -> str:
        return f"Matches(k={len(self)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matches):
            return NotImplemented
        return (
            self.ids == other.ids
            and np.array_equal(self.scores, other.scores)
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]

    def to_list(self) -> list[dict[str, Any]]:
        """The hits as ``[{"id": ..., "score": ..., "metadata": {...}}, ...]`` (JSON-ready)."""
        return [m.to_dict() for m in self]

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with columns ``rank``, ``id``, ``score`` and one column per top-level metadata key.

        A metadata key that collides with ``id``, ``score`` or ``rank`` becomes ``metadata.<key>``. Needs
        pandas (``pip install finetune-embed[pandas]``).
        """
        import pandas as pd

        rows = []
        for rank, m in enumerate(self):
            row: dict[str, Any] = {"rank": rank, "id": m.id, "score": m.score}
            for key, value in m.metadata.items():
                row[f"metadata.{key}" if key in ("id", "score", "rank") else key] = value
            rows.append(row)
        return pd.DataFrame(rows, columns=None if rows else ["rank", "id", "score"])


class DenseMatches(NamedTuple):
    """A batch's hits as ``(n, k)`` arrays, for vectorised work (as faiss's ``(D, I)`` and usearch's
    ``BatchMatches``): row ``i`` holds query ``i``'s hits, best first, in its first ``counts[i]`` columns; the
    rest is padding (id ``""``, score ``-inf``)."""

    ids: npt.NDArray[np.str_]
    scores: npt.NDArray[np.float32]
    counts: npt.NDArray[np.int64]


@dataclass(frozen=True)
class BatchMatches:
    """One :class:`Matches` per query, in query order.

    Example:
        >>> b = BatchMatches([Matches(), Matches()])
        >>> len(b), b[0]
        (2, Matches(k=0))
    """

    results: list[Matches] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Matches]:
        return iter(self.results)

    @overload
    def __getitem__(self, i: int) -> Matches: ...

    @overload
    def __getitem__(self, i: slice) -> BatchMatches: ...

    def __getitem__(self, i: int | slice) -> Matches | BatchMatches:
        if isinstance(i, slice):
            return BatchMatches(self.results[i])
        return self.results[i]

    def __repr__(self) -> str:
        ks = {len(m) for m in self.results}
        k = f"k={ks.pop()}" if len(ks) == 1 else f"k={min(ks)}..{max(ks)}" if ks else "k=0"
        return f"BatchMatches(queries={len(self)}, {k})"

    @property
    def ids(self) -> list[list[str]]:
        """The ids of every query's hits."""
        return [m.ids for m in self.results]

    @property
    def scores(self) -> list[npt.NDArray[np.float32]]:
        """The scores of every query's hits (one array per query; lengths may differ under filters)."""
        return [m.scores for m in self.results]

    @property
    def metadata(self) -> list[list[dict[str, Any]]]:
        """The metadata of every query's hits."""
        return [m.metadata for m in self.results]

    def dense(self, k: int | None = None) -> DenseMatches:
        """The hits as ``(n, k)`` id and score arrays plus each query's hit count (see :class:`DenseMatches`).

        ``k`` defaults to the most hits any query has; queries with fewer are padded with id ``""`` and score
        ``-inf``, hits beyond ``k`` are dropped.

        Example:
            >>> b = BatchMatches([Matches(["a", "b"], np.array([0.9, 0.5], np.float32), [{}, {}]), Matches()])
            >>> d = b.dense()
            >>> d.ids.tolist(), d.scores[1].tolist(), d.counts.tolist()
            ([['a', 'b'], ['', '']], [-inf, -inf], [2, 0])
        """
        width = max((len(m) for m in self.results), default=0) if k is None else int(k)
        if width < 0:
            raise InvalidArgumentError(f"k must be at least 0, got {k!r}", argument="k")
        n = len(self.results)
        counts = np.array([min(len(m), width) for m in self.results], dtype=np.int64)
        longest = max((len(i) for m in self.results for i in m.ids[:width]), default=1)
        ids = np.full((n, width), "", dtype=f"<U{max(longest, 1)}")
        scores = np.full((n, width), -np.inf, dtype=np.float32)
        for row, (m, c) in enumerate(zip(self.results, counts.tolist(), strict=True)):
            ids[row, :c] = m.ids[:c]
            scores[row, :c] = m.scores[:c]
        return DenseMatches(ids, scores, counts)

    def to_list(self) -> list[list[dict[str, Any]]]:
        """One :meth:`Matches.to_list` per query."""
        return [m.to_list() for m in self.results]

    def to_pandas(self) -> pd.DataFrame:
        """One DataFrame for all queries: a ``query`` column (its position), then the hits' columns."""
        import pandas as pd

        frames = []
        for q, m in enumerate(self.results):
            df = m.to_pandas()
            df.insert(0, "query", q)
            frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["query", "rank", "id", "score"])
        return pd.concat(frames, ignore_index=True)
