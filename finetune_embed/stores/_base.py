"""What the engine adapters share: argument checks, the typed ``search`` overloads, search by id or text.

An adapter subclasses :class:`StoreBase` and implements the engine calls (``get``, ``_search_rows`` and the
writes); the checks here give every adapter the in-process index's errors for the same bad input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DimensionMismatchError
from ..index._filters import Filter, Where, parse_filter
from ..index._index import Item, SupportsEmbed, _check_k, _check_metric, _reject_repeats
from ..index._index import _as_ids as _any_ids
from ..index._matches import BatchMatches, Matches
from ..index._vectors import as_matrix, as_queries, clean_metadata, embed_query, metadata_per_id, normalize_rows

__all__ = ["StoreBase", "check_ids", "check_metric", "last_occurrences", "reject_repeats"]

Metric = Literal["cosine", "dot"]

check_metric: Callable[[str], Metric] = _check_metric
reject_repeats: Callable[[list[str]], None] = _reject_repeats


def check_ids(ids: str | Iterable[str], what: str = "ids", *, allow_nul: bool = False) -> list[str]:
    """Ids as a list of non-empty strings, without NUL characters unless ``allow_nul`` (most engines cannot store
    those reliably; Redis keys are binary-safe)."""
    out = _any_ids(ids, what, allow_nul=True)
    if not allow_nul:
        for x in out:
            if "\x00" in x:
                raise ConfigError(f"{what} cannot hold NUL characters: {x!r}.")
    return out


def last_occurrences(ids: list[str]) -> list[int]:
    """The positions to keep when an id repeats in one ``upsert``: its last occurrence, in order."""
    last = {item_id: j for j, item_id in enumerate(ids)}
    return sorted(last.values())



@overload
def positive(name: str, value: int, low: int = 1) -> int: ...
@overload
def positive(name: str, value: int | None, low: int = 1) -> int | None: ...
def positive(name: str, value: int | None, low: int = 1) -> int | None:
    """``value`` when it is an integer ``>= low`` (``None`` passes: "not set"); else :class:`ConfigError` naming the
    argument. Shared by the adapters' constructors."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}.")
    return value

class StoreBase(ABC):
    """The engine-independent half of an adapter. Subclasses set ``_engine``, ``_dim``, ``_metric``, ``_model``
    and implement :meth:`get` and :meth:`_search_rows`."""

    _engine: str = "store"
    _nul_ids: bool = False  # whether ids may hold NUL characters (an engine whose keys are binary-safe)
    _dim: int | None
    _metric: Metric
    _model: str | None

    # --- properties ------------------------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        """The vector dimension (``None`` until the first vectors arrive)."""
        return self._dim

    @property
    def metric(self) -> Metric:
        """``"cosine"`` or ``"dot"``."""
        return self._metric

    @property
    def model(self) -> str | None:
        """The embedding model recorded for the store, if any."""
        return self._model

    # --- checks shared by the writes -------------------------------------------------------------------------

    def _rows(self, ids: list[str], vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The vectors as checked float32 rows, scaled to unit length for cosine (as EmbeddingIndex stores them)."""
        normalize = self._metric == "cosine"
        rows = as_matrix(vectors, self._dim, ids, copy=normalize)
        normalize_rows(rows, ids, normalize=normalize)
        return rows

    @staticmethod
    def _metadata(ids: list[str], metadata: Any) -> list[dict[str, Any]]:
        """One JSON-ready metadata mapping per id (``{}`` where none is given)."""
        given = metadata_per_id(metadata, ids)
        if given is None:
            return [{} for _ in ids]
        return [clean_metadata(meta, item_id) for meta, item_id in zip(given, ids, strict=True)]

    def _check_dim(self, given: int | None, stored: int | None, name: str) -> None:
        if given is not None and stored is not None and given != stored:
            raise DimensionMismatchError(
                f"{self._engine} collection {name!r} holds {stored}-dimensional vectors, not {given}; open it "
                f"with dim={stored} (or without dim).",
                expected=stored,
                got=given,
            )

    def _filter(self, where: Where | None) -> Filter | None:
        """``where`` parsed; a callable cannot run inside an engine."""
        if where is None:
            return None
        if callable(where) and not isinstance(where, Mapping):
            raise ConfigError(
                f"{type(self).__name__} filters inside {self._engine}, so `where` must be a mapping such as "
                "{'lang': 'en', 'stars': {'$gte': 4}} (see docs/vector-stores.md); a Python callable cannot run "
                "there. Express the filter as a mapping, or search with a larger k and filter the matches in Python."
            )
        return parse_filter(where)

    # --- what subclasses implement ---------------------------------------------------------------------------

    @abstractmethod
    def get(self, item_id: str) -> Item:
        """The stored vector and metadata of one item (:class:`~finetune_embed.UnknownIdError` if unknown)."""

    @abstractmethod
    def _search_rows(
        self, queries: npt.NDArray[np.float32], k: int, tree: Filter | None, excluded: list[str]
    ) -> list[Matches]:
        """One :class:`Matches` per row of ``queries`` (checked), filtered by ``tree``, without ``excluded``."""

    # --- search ----------------------------------------------------------------------------------------------

    @overload
    def search(
        self,
        queries: np.ndarray[tuple[int, int], np.dtype[Any]] | Sequence[Sequence[float]],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> BatchMatches: ...

    @overload
    def search(
        self,
        queries: np.ndarray[tuple[int], np.dtype[Any]] | Sequence[float],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> Matches: ...

    @overload
    def search(
        self,
        queries: npt.ArrayLike,
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> Matches | BatchMatches: ...

    def search(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches | BatchMatches:
        """The ``k`` nearest items of one query (:class:`Matches`) or of each row of a matrix
        (:class:`BatchMatches`), best first, filtered by ``where`` inside the engine.

        Raises:
            DimensionMismatchError: queries of another dimension.
            UnsupportedFilterError: a filter operator the engine cannot run (``.engine``, ``.operator``).
            ConfigError: a malformed ``where``, or a callable.
        """
        k = _check_k(k)
        tree = self._filter(where)
        rows, single = as_queries(queries, self._dim, normalize=self._metric == "cosine")
        excluded = check_ids(list(exclude), "exclude", allow_nul=self._nul_ids) if exclude else []
        results = self._search_rows(rows, k, tree, excluded)
        return results[0] if single else BatchMatches(results)

    def search_by_id(
        self,
        item_id: str,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        exclude_self: bool = True,
    ) -> Matches:
        """The ``k`` nearest items of the stored item ``item_id`` (itself left out unless ``exclude_self`` is
        false). Raises :class:`~finetune_embed.UnknownIdError` for an unknown id."""
        k = _check_k(k)
        tree = self._filter(where)
        vector = self.get(item_id).vector
        skip = list(exclude or ()) + ([item_id] if exclude_self else [])
        excluded = check_ids(skip, "exclude", allow_nul=self._nul_ids)
        return self._search_rows(vector.reshape(1, -1), k, tree, excluded)[0]

    def search_text(
        self,
        text: str,
        embedder: SupportsEmbed,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches:
        """Embed ``text`` with ``embedder`` (its ``model`` must be the store's) and search."""
        vector = embed_query(embedder, text, self._model, f"the {self._engine} collection")
        result = self.search(vector, k, where=where, exclude=exclude)
        assert isinstance(result, Matches)
        return result
