"""QdrantIndex's local mode is a Python re-implementation of Qdrant. The conformance suite checks local mode against
EmbeddingIndex; here the same points (the adapter's ids and payloads) and the same compiled filters run in Qdrant's
real segment engine (qdrant-edge-py, Qdrant's Rust shard in process), which must give EmbeddingIndex's ids and
scores too: every filter operator and 60 random nested filters, each compared over the whole filtered set (k = N,
best first), for both metrics; exact search, and the default search after the engine's optimiser ran."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finetune_embed import UnsupportedFilterError
from finetune_embed.index import EmbeddingIndex, parse_filter

from ._data import FILTERS, metadata, operators, random_filters, vectors
from ._engine_qdrant import STRING_RANGES
from .conftest import unavailable

try:
    import qdrant_edge as qe
    from qdrant_client.http import models

    from finetune_embed.stores._qdrant_filters import to_qdrant_filter
    from finetune_embed.stores._qdrant_layout import payload, point_id
except ImportError as exc:  # pragma: no cover - only without the extras
    qe = None
    _missing = str(exc)

N, DIM = 600, 24


def to_edge(cond: Any) -> Any:
    """A qdrant-client filter model as the same qdrant-edge object."""
    if isinstance(cond, models.Filter):
        def part(items: Any) -> Any:
            if items is None:
                return None
            return [to_edge(c) for c in (items if isinstance(items, list) else [items])]

        return qe.Filter(must=part(cond.must), should=part(cond.should), must_not=part(cond.must_not))
    if isinstance(cond, models.FieldCondition):
        match: Any = None
        if isinstance(cond.match, models.MatchValue):
            match = qe.MatchValue(cond.match.value)
        elif isinstance(cond.match, models.MatchAny):
            match = qe.MatchAny(list(cond.match.any))
        elif cond.match is not None:
            raise AssertionError(f"no edge equivalent for {cond.match!r}")
        limits = None
        if isinstance(cond.range, models.Range):
            r = cond.range
            limits = qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)
        return qe.FieldCondition(key=cond.key, match=match, range=limits)
    if isinstance(cond, models.IsEmptyCondition):
        return qe.IsEmptyCondition(cond.is_empty.key)
    if isinstance(cond, models.HasIdCondition):
        return qe.HasIdCondition(set(cond.has_id))
    raise AssertionError(f"no edge equivalent for {cond!r}")


class Pair:
    """The same items in an edge shard (as QdrantIndex lays them out) and in the in-process reference."""

    def __init__(self, folder: Path, metric: str) -> None:
        self.ids = [f"id-{i}" for i in range(N)]
        x, meta = vectors(N, DIM), metadata(N)
        self.reference = EmbeddingIndex(DIM, metric=metric)  # type: ignore[arg-type]
        self.reference.add(self.ids, x, meta)
        distance = qe.Distance.Cosine if metric == "cosine" else qe.Distance.Dot
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=DIM, distance=distance))
        self.edge = qe.EdgeShard.create(str(folder / "edge"), config)
        rows = self.reference.vectors  # what the adapter stores: unit rows for cosine
        points = [qe.Point(id=point_id(i), vector=row.tolist(), payload=payload(i, m, seq))
                  for seq, (i, row, m) in enumerate(zip(self.ids, rows, meta, strict=True))]
        self.edge.update(qe.UpdateOperation.upsert_points(points))
        self.by_point = {point_id(i): i for i in self.ids}  # point id -> our id (uuid5, as the adapter writes it)

    def edge_search(
        self, query: Any, where: Any, *, k: int = 10, exact: bool = True, exclude: Any = None
    ) -> tuple[list[str], Any]:
        tree = parse_filter(where) if where else None
        condition = to_qdrant_filter(tree, [point_id(i) for i in exclude or ()])
        found = self.edge.search(qe.SearchRequest(
            query=qe.Query.Nearest(query.tolist()), limit=k, filter=None if condition is None else to_edge(condition),
            with_payload=False, params=qe.SearchParams(exact=exact, hnsw_ef=200),
        ))
        return [self.by_point[str(p.id)] for p in found], np.array([p.score for p in found])

    def close(self) -> None:
        self.edge.close()


@pytest.fixture(scope="module", params=["cosine", "dot"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    if qe is None:
        unavailable(f"qdrant-edge-py or qdrant-client is missing ({_missing}); pip install 'finetune-embed[qdrant]' "
                    "qdrant-edge-py")
    with tempfile.TemporaryDirectory(prefix="fe-qdrant-edge-") as tmp:
        made = Pair(Path(tmp), request.param)
        try:
            yield made
        finally:
            made.close()


def _agree(pair: Pair, where: Any) -> None:
    """Every item the filter lets through, best first (k = N: the whole filtered set, not just a top 10)."""
    (q,) = vectors(1, DIM, seed=7)
    if operators(where) & STRING_RANGES:
        with pytest.raises(UnsupportedFilterError):
            to_qdrant_filter(parse_filter(where))
        return
    want = pair.reference.search(q, k=N, where=where)
    edge_ids, edge_scores = pair.edge_search(q, where, k=N)
    assert want.ids == edge_ids, where
    np.testing.assert_allclose(edge_scores, want.scores, atol=1e-5, rtol=0)


def test_every_filter_operator_on_the_real_engine(pair: Pair) -> None:
    """Each filter of the conformance suite: the engine gives the reference's ids (all that match) and scores."""
    for where in FILTERS:
        _agree(pair, where)


def test_random_nested_filters_on_the_real_engine(pair: Pair) -> None:
    for where in random_filters(60, seed=5):
        _agree(pair, where)


def test_excluded_ids_and_default_search_on_the_real_engine(pair: Pair) -> None:
    """Excluded ids are left out inside the engine; after its optimiser ran, the default search agrees too."""
    q = vectors(1, DIM, seed=9)[0]
    skip = pair.reference.search(q, k=3).ids
    ids, _ = pair.edge_search(q, {"cat": {"$ne": 2}}, exclude=skip)
    assert ids == pair.reference.search(q, k=10, where={"cat": {"$ne": 2}}, exclude=skip).ids
    pair.edge.optimize()
    ann, _ = pair.edge_search(q, {"lang": "en"}, exact=False)
    assert ann == pair.reference.search(q, k=10, where={"lang": "en"}).ids
