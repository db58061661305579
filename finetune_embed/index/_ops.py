"""The seed's use cases as functions over an index (or a matrix of vectors).

Clustering (:func:`kmeans`), zero-shot classification (:func:`zero_shot_classify`), kNN classification
(:func:`knn_classify`), recommendations (:func:`recommend`), anomaly scores (:func:`outlier_scores`) and
diversity (:func:`similarity_distribution`, :func:`mmr`). All are deterministic for a given ``seed``.

Every function takes any :class:`~finetune_embed.index.VectorIndex` backend (in process, PostgreSQL, Chroma,
Qdrant, Redis, ...): searches and filters run inside the backend, and functions that need every vector read them
with ``iter_items``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DimensionMismatchError
from ._filters import MISSING, Where, lookup
from ._index import EmbeddingIndex
from ._matches import Match, Matches
from ._protocol import VectorIndex
from ._vectors import as_matrix, normalize_rows

__all__ = [
    "Classification",
    "KMeansResult",
    "SimilarityStats",
    "kmeans",
    "knn_classify",
    "mmr",
    "outlier_scores",
    "recommend",
    "similarity_distribution",
    "zero_shot_classify",
]

_CHUNK = 1024


def _contents(index: VectorIndex) -> tuple[list[str], npt.NDArray[np.float32]]:
    """The ids and vectors of every item of ``index``, in its iteration order."""
    if isinstance(index, EmbeddingIndex):
        return index.ids, np.ascontiguousarray(index.vectors, dtype=np.float32)
    ids: list[str] = []
    parts: list[npt.NDArray[np.float32]] = []
    for batch_ids, vectors, _ in index.iter_items():
        ids += batch_ids
        parts.append(np.asarray(vectors, dtype=np.float32))
    if not parts:
        return [], np.zeros((0, index.dim or 0), dtype=np.float32)
    return ids, np.ascontiguousarray(np.concatenate(parts))


def _matrix(data: VectorIndex | npt.ArrayLike, what: str = "vectors") -> npt.NDArray[np.float32]:
    if isinstance(data, VectorIndex):
        return _contents(data)[1]
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ConfigError(f"{what} must be a VectorIndex or a 2-D array (n, dim), got shape {arr.shape}.")
    return as_matrix(arr, None, [f"row {i}" for i in range(arr.shape[0])], what=what)


# --- clustering -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KMeansResult:
    """``labels[i]`` is the cluster of row ``i`` (of ``index.ids`` for an index); ``centroids`` is
    ``(k, dim)``; ``inertia`` the sum of squared distances to the assigned centroids."""

    labels: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float32]
    inertia: float
    n_iter: int
    ids: list[str] | None = None

    def __repr__(self) -> str:
        return f"KMeansResult(k={self.centroids.shape[0]}, n={self.labels.size}, inertia={self.inertia:.4g})"

    def members(self, cluster: int) -> list[str] | npt.NDArray[np.intp]:
        """The ids (or row numbers, for a matrix) in ``cluster``."""
        rows = np.flatnonzero(self.labels == cluster)
        return [self.ids[i] for i in rows] if self.ids is not None else rows


def _sq_dist(
    x: npt.NDArray[np.float32], x_sq: npt.NDArray[np.float32], c: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    d: npt.NDArray[np.float32] = x_sq[:, None] - 2.0 * (x @ c.T) + np.einsum("ij,ij->i", c, c)[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def _plus_plus(
    x: npt.NDArray[np.float32], x_sq: npt.NDArray[np.float32], k: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    n = x.shape[0]
    centers = np.empty((k, x.shape[1]), dtype=np.float32)
    centers[0] = x[rng.integers(n)]
    closest = _sq_dist(x, x_sq, centers[:1])[:, 0].astype(np.float64)
    trials = 2 + int(np.log(k))  # greedy k-means++ (as scikit-learn): best of a few candidates per step
    for c in range(1, k):
        total = closest.sum()
        if total <= 0:
            centers[c:] = x[rng.integers(n, size=k - c)]
            break
        cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * total).clip(max=n - 1)
        dist = np.minimum(closest[:, None], _sq_dist(x, x_sq, x[cand]).astype(np.float64))
        best = int(np.argmin(dist.sum(axis=0)))
        centers[c] = x[cand[best]]
        closest = dist[:, best]
    return centers


def kmeans(
    data: VectorIndex | npt.ArrayLike,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 3,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> KMeansResult:
    """Lloyd's k-means with greedy k-means++ seeding; the best of ``n_init`` runs by inertia.

    For a cosine index the vectors are unit length, so Euclidean k-means groups by cosine similarity.

    Example:
        >>> result = kmeans(np.array([[0, 1], [0, 1.1], [5, 5], [5.1, 5]]), 2, seed=0)
        >>> sorted(np.bincount(result.labels).tolist())
        [2, 2]
    """
    ids, x = _contents(data) if isinstance(data, VectorIndex) else (None, _matrix(data))
    n = x.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ConfigError(f"k must be an integer from 1 to the number of vectors ({n}), got {k!r}.")
    if n_init < 1 or max_iter < 1:
        raise ConfigError("n_init and max_iter must be at least 1.")
    rng = np.random.default_rng(seed)
    x_sq = np.einsum("ij,ij->i", x, x)
    best: KMeansResult | None = None
    for _ in range(n_init):
        centers = _plus_plus(x, x_sq, k, rng)
        labels = np.full(n, -1, dtype=np.int64)
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
            dist = _sq_dist(x, x_sq, centers)
            previous, labels = labels, np.argmin(dist, axis=1).astype(np.int64)
            if np.array_equal(previous, labels):  # converged: the centroids are the means of this partition
                break
            counts = np.bincount(labels, minlength=k)
            sums = np.zeros((k, x.shape[1]), dtype=np.float64)
            np.add.at(sums, labels, x)
            new = centers.copy()
            filled = counts > 0
            new[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
            for c in np.flatnonzero(~filled).tolist():  # an empty cluster takes the farthest point
                far = int(np.argmax(dist[np.arange(n), labels]))
                new[c] = x[far]
                labels[far] = c
            shift = float(np.square(new - centers).sum())
            centers = new
            if shift <= tol:
                break
        dist = _sq_dist(x, x_sq, centers)
        labels = np.argmin(dist, axis=1).astype(np.int64)
        inertia = float(np.square(x.astype(np.float64) - centers[labels]).sum())  # exact, not BLAS-rounded
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels, centers, inertia, it, ids)
    assert best is not None
    return best


# --- classification -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    """One predicted ``label`` per input; ``scores[i, j]`` is input ``i``'s score for ``classes[j]``
    (cosine similarity for zero-shot, the share of neighbour votes for kNN)."""

    labels: list[Any]
    classes: list[Any]
    scores: npt.NDArray[np.float32]

    def __repr__(self) -> str:
        return f"Classification(n={len(self.labels)}, classes={self.classes!r})"


def zero_shot_classify(
    vectors: VectorIndex | npt.ArrayLike,
    label_vectors: npt.ArrayLike,
    labels: Sequence[Any],
) -> Classification:
    """Label each vector with the label whose embedding is most similar (cosine), as in the cookbook's
    zero-shot classification; ties go to the earlier label.

    ``label_vectors`` are the embeddings of label descriptions (e.g. "An Amazon review with a negative
    sentiment."), one row per label.
    """
    x = _matrix(vectors)
    names = [str(lbl) for lbl in labels]
    lv = as_matrix(label_vectors, x.shape[1], names, what="label vectors", copy=True)
    normalize_rows(lv, names, normalize=True, what="label vectors")
    xn = x.copy()
    if not isinstance(vectors, VectorIndex) or vectors.metric != "cosine":
        normalize_rows(xn, [f"row {i}" for i in range(x.shape[0])], normalize=True)
    scores = (xn @ lv.T).astype(np.float32)
    picked = np.argmax(scores, axis=1)
    return Classification([labels[int(i)] for i in picked], list(labels), scores)


def knn_classify(
    index: VectorIndex,
    queries: npt.ArrayLike,
    label_field: str,
    k: int = 10,
    *,
    where: Where | None = None,
) -> Classification:
    """Predict ``metadata[label_field]`` for each query by a vote of its ``k`` nearest labelled items.

    Items without the field are ignored. Ties go to the label with the higher summed similarity, then to
    the label of the nearer neighbour. A dotted ``label_field`` reaches nested metadata.
    """
    path = tuple(label_field.split("."))
    labelled: Where = {label_field: {"$exists": True, "$ne": None}}
    if where is not None:
        if isinstance(where, Mapping):
            labelled = {"$and": [labelled, where]}
        else:  # a callable runs in process only (EmbeddingIndex); other backends refuse it
            user = where

            def labelled(meta: Mapping[str, Any]) -> bool:
                value = lookup(meta, path)
                return value is not MISSING and value is not None and bool(user(meta))

    result = index.search(np.atleast_2d(np.asarray(queries, dtype=np.float32)), k, where=labelled)
    assert not isinstance(result, Matches)
    classes: list[Any] = []
    seen: dict[Any, int] = {}
    per_query = []
    for matches in result:
        votes: dict[Any, list[float]] = {}
        for rank, m in enumerate(matches):
            label = lookup(m.metadata, path)
            key = _hashable(label)
            if key not in seen:
                seen[key] = len(classes)
                classes.append(label)
            entry = votes.setdefault(key, [0.0, 0.0, -float(rank)])
            entry[0] += 1
            entry[1] += m.score
        per_query.append(votes)
    scores = np.zeros((len(per_query), len(classes)), dtype=np.float32)
    predicted: list[Any] = []
    for i, votes in enumerate(per_query):
        total = sum(v[0] for v in votes.values()) or 1.0
        for key, v in votes.items():
            scores[i, seen[key]] = v[0] / total
        if votes:
            key = max(votes, key=lambda kk: (votes[kk][0], votes[kk][1], votes[kk][2]))
            predicted.append(classes[seen[key]])
        else:
            predicted.append(None)
    return Classification(predicted, classes, scores)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


# --- recommendations and anomalies ----------------------------------------------------------------------------


def recommend(
    index: VectorIndex,
    item_id: str,
    k: int = 10,
    *,
    exclude_duplicates: bool = True,
    where: Where | None = None,
) -> Matches:
    """The ``k`` items most similar to ``item_id``, leaving out the item itself and (by default) exact
    duplicates of it: items whose stored vector is identical, such as the same text embedded twice."""
    query = index.get(item_id).vector
    if not exclude_duplicates:
        return index.search_by_id(item_id, k, where=where)
    dupes: set[str] = set()
    fetch = k + 8
    kept: list[Match] = []
    while True:
        found = index.search_by_id(item_id, fetch, where=where, exclude=dupes)
        kept = []
        for m in found:
            if len(kept) == k:
                break
            if np.array_equal(index.get(m.id).vector, query):
                dupes.add(m.id)
            else:
                kept.append(m)
        if len(kept) == k or len(found) < fetch:
            break
        fetch *= 2
    return Matches(
        ids=[m.id for m in kept],
        scores=np.array([m.score for m in kept], dtype=np.float32),
        metadata=[m.metadata for m in kept],
    )


def outlier_scores(index: VectorIndex, k: int = 10) -> npt.NDArray[np.float32]:
    """Anomaly scores: each item's mean distance to its ``k`` nearest other items, aligned with
    ``index.ids`` (higher means more isolated).

    The distance is ``1 - cosine similarity`` for a cosine index and ``-dot`` for a dot index. Exact
    duplicates count as neighbours at distance 0.
    """
    if len(index) < 2:
        return np.zeros(len(index), dtype=np.float32)
    k = min(k, len(index) - 1)
    ids, vectors = _contents(index)
    out = np.empty(len(ids), dtype=np.float32)
    for a in range(0, len(ids), _CHUNK):
        batch = index.search(vectors[a : a + _CHUNK], k + 1)
        assert not isinstance(batch, Matches)
        for j, matches in enumerate(batch):
            own = ids[a + j]
            sims = [m.score for m in matches if m.id != own][:k]
            mean = float(np.mean(sims))
            out[a + j] = 1.0 - mean if index.metric == "cosine" else -mean
    return out


# --- diversity ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimilarityStats:
    """The distribution of pairwise similarities: ``values`` (the sampled pairs' similarities) and a summary.
    ``exact`` is true when every pair was used."""

    values: npt.NDArray[np.float32]
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[float, float]
    exact: bool

    def __repr__(self) -> str:
        return (
            f"SimilarityStats(pairs={self.values.size}, mean={self.mean:.4f}, std={self.std:.4f}, "
            f"min={self.min:.4f}, max={self.max:.4f})"
        )


def similarity_distribution(
    data: VectorIndex | npt.ArrayLike, *, sample: int = 100_000, seed: int = 0
) -> SimilarityStats:
    """Pairwise similarities of distinct items: every pair when there are at most ``sample`` pairs, else
    ``sample`` random pairs (seeded). Cosine similarities, except for a ``metric="dot"`` index (dot products).
    """
    x = _matrix(data)
    if not isinstance(data, VectorIndex):  # an index's cosine vectors are unit length already
        x = normalize_rows(x.copy(), [f"row {i}" for i in range(x.shape[0])], normalize=True)
    n = x.shape[0]
    if n < 2:
        raise ConfigError("the similarity distribution needs at least 2 items.")
    pairs = n * (n - 1) // 2
    if pairs <= sample:
        rows, cols = np.triu_indices(n, k=1)
        exact = True
    else:
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, n, size=sample)
        cols = (rows + rng.integers(1, n, size=sample)) % n  # never the same item
        exact = False
    values = np.empty(rows.size, dtype=np.float32)
    for a in range(0, rows.size, 1 << 16):
        r, c = rows[a : a + (1 << 16)], cols[a : a + (1 << 16)]
        values[a : a + r.size] = np.einsum("ij,ij->i", x[r], x[c])
    qs = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    qv = np.quantile(values, qs)
    return SimilarityStats(
        values,
        float(values.mean()),
        float(values.std()),
        float(values.min()),
        float(values.max()),
        {q: float(v) for q, v in zip(qs, qv, strict=True)},
        exact,
    )


def mmr(
    index: VectorIndex,
    query: npt.ArrayLike,
    k: int = 10,
    *,
    lambda_: float = 0.5,
    fetch_k: int | None = None,
    where: Where | None = None,
) -> Matches:
    """Maximal marginal relevance: re-rank the ``fetch_k`` nearest items (default ``4 * k``) to pick ``k``
    that are relevant yet unlike each other.

    Each step picks the candidate maximising ``lambda_ * sim(query, c) - (1 - lambda_) * max sim(c, picked)``;
    ``lambda_=1`` is plain similarity order. Scores in the result are the similarities to the query; the
    order is the selection order.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ConfigError(f"lambda_ must be between 0 and 1, got {lambda_!r}.")
    fetch = max(k, fetch_k if fetch_k is not None else 4 * k)
    found = index.search(np.asarray(query, dtype=np.float32), fetch, where=where)
    if not isinstance(found, Matches):
        raise DimensionMismatchError("mmr takes one query vector (1-D).", expected=1, got=2)
    if len(found) == 0:
        return found
    cand = np.stack([index.get(i).vector for i in found.ids])
    relevance = found.scores.astype(np.float64)
    pairwise = (cand @ cand.T).astype(np.float64)
    picked: list[int] = []
    penalty = np.full(len(found), -np.inf)
    left = np.ones(len(found), dtype=bool)
    for _ in range(min(k, len(found))):
        redundancy = np.where(np.isfinite(penalty), penalty, 0.0)
        value = lambda_ * relevance - (1 - lambda_) * redundancy
        value[~left] = -np.inf
        best = int(np.argmax(value))  # the first of equals: the more relevant one
        picked.append(best)
        left[best] = False
        penalty = np.maximum(penalty, pairwise[:, best])
    return Matches(
        ids=[found.ids[i] for i in picked],
        scores=found.scores[picked],
        metadata=[found.metadata[i] for i in picked],
    )
