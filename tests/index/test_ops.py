"""The seed's use cases over an index: clustering, classification, recommendations, anomalies, diversity."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_embed import ConfigError
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index._ops import (
    kmeans,
    knn_classify,
    mmr,
    outlier_scores,
    recommend,
    similarity_distribution,
    zero_shot_classify,
)


def _blobs(seed: int = 0, per: int = 60, d: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, d)) * 4
    labels = np.repeat(np.arange(3), per)
    x = centers[labels] + rng.standard_normal((3 * per, d)) * 0.3
    return x.astype(np.float32), labels


def _index(x: np.ndarray, labels: np.ndarray | None = None) -> EmbeddingIndex:
    index = EmbeddingIndex()
    meta = None if labels is None else [{"label": f"c{int(v)}"} for v in labels]
    index.add([f"i{i}" for i in range(len(x))], x, meta)
    return index


def test_kmeans_recovers_separated_clusters_and_is_seeded() -> None:
    x, truth = _blobs()
    result = kmeans(_index(x), 3, seed=1)
    # the same partition as the truth, up to renaming the clusters
    pairs = {(int(t), int(p)) for t, p in zip(truth, result.labels, strict=True)}
    assert len(pairs) == 3
    assert result.centroids.shape == (3, 16)
    assert result.ids is not None
    assert result.members(int(result.labels[0]))[0] == "i0"
    again = kmeans(_index(x), 3, seed=1)
    np.testing.assert_array_equal(result.labels, again.labels)
    assert result.inertia == again.inertia
    on_matrix = kmeans(x, 3, seed=0, n_init=2)
    assert on_matrix.ids is None
    assert len(on_matrix.members(0)) > 0
    assert "KMeansResult(k=3" in repr(result)
    with pytest.raises(ConfigError, match="k must"):
        kmeans(x, 0)
    with pytest.raises(ConfigError, match="k must"):
        kmeans(x, len(x) + 1)


def test_kmeans_handles_duplicate_points() -> None:
    x = np.array([[1, 0]] * 10 + [[0, 1]] * 10, dtype=np.float32)
    result = kmeans(x, 3, seed=0)
    assert result.inertia == pytest.approx(0.0, abs=1e-6)
    assert sorted(np.bincount(result.labels, minlength=3).tolist())[-1] <= 10


def test_zero_shot_classification() -> None:
    x, truth = _blobs(seed=2)
    centers = np.stack([x[truth == c].mean(axis=0) for c in range(3)])
    result = zero_shot_classify(_index(x), centers, ["a", "b", "c"])
    assert result.labels == [["a", "b", "c"][t] for t in truth]
    assert result.scores.shape == (len(x), 3)
    assert result.classes == ["a", "b", "c"]
    assert "Classification(n=180" in repr(result)
    assert zero_shot_classify(x[:2], centers, ["a", "b", "c"]).labels == ["a", "a"]


def test_knn_classification() -> None:
    x, truth = _blobs(seed=3)
    index = _index(x[::2], truth[::2])
    result = knn_classify(index, x[1::2], "label", k=5)
    assert result.labels == [f"c{t}" for t in truth[1::2]]
    assert result.scores.sum(axis=1) == pytest.approx(np.ones(len(x[1::2])))
    # items without the label are ignored; a filter narrows the voters
    index.upsert(["i0"], x[0], [{}])
    only = knn_classify(index, x[1::2][:3], "label", k=3, where={"label": "c2"})
    assert only.labels == ["c2", "c2", "c2"]


def test_recommend_excludes_itself_and_exact_duplicates() -> None:
    index = EmbeddingIndex(metric="dot")
    index.add(["a", "a-copy", "b", "c", "a-copy2"], [[1, 0], [1, 0], [0.9, 0.1], [0.5, 0.5], [1, 0]])
    assert recommend(index, "a", k=2).ids == ["b", "c"]
    assert recommend(index, "a", k=2, exclude_duplicates=False).ids == ["a-copy", "a-copy2"]
    many = EmbeddingIndex(2)
    many.add([f"d{i}" for i in range(40)], [[1, 0]] * 40)  # more duplicates than the first fetch
    many.add(["other"], [[1, 1]])
    assert recommend(many, "d0", k=3).ids == ["other"]


def test_outlier_scores_find_the_planted_outlier() -> None:
    x, _ = _blobs(seed=4)
    x = np.vstack([x, -x.mean(axis=0) * 3 + 5])
    index = _index(x)
    scores = outlier_scores(index, k=5)
    assert scores.shape == (len(x),)
    assert int(np.argmax(scores)) == len(x) - 1
    assert (scores >= -1e-6).all()
    assert outlier_scores(_index(x[:1])).tolist() == [0.0]


def test_similarity_distribution() -> None:
    x, _ = _blobs(seed=5, per=20)
    exact = similarity_distribution(_index(x))
    assert exact.exact
    assert exact.values.size == 60 * 59 // 2
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = (xn @ xn.T)[np.triu_indices(60, k=1)]
    assert exact.mean == pytest.approx(full.mean(), abs=1e-5)
    assert exact.quantiles[0.5] == pytest.approx(np.median(full), abs=1e-5)
    sampled = similarity_distribution(x, sample=500, seed=1)
    assert not sampled.exact
    assert sampled.values.size == 500
    assert sampled.mean == pytest.approx(full.mean(), abs=0.1)
    assert similarity_distribution(x, sample=500, seed=1).values.tolist() == sampled.values.tolist()
    assert "SimilarityStats(pairs=500" in repr(sampled)


def test_mmr_trades_relevance_for_diversity() -> None:
    index = EmbeddingIndex(3)
    index.add(["a1", "a2", "a3", "b"], [[1, 0.01, 0], [1, 0.02, 0], [1, 0.03, 0], [0.7, 0, 0.7]])
    q = [1, 0, 0.2]
    plain = index.search(q, k=2)
    assert plain.ids == ["a1", "a2"]
    assert mmr(index, q, k=2, lambda_=1.0).ids == plain.ids
    diverse = mmr(index, q, k=2, lambda_=0.5)
    assert diverse.ids == ["a1", "b"]
    np.testing.assert_allclose(diverse.scores[1], index.search(q, k=4).scores[3])
    with pytest.raises(ConfigError, match="lambda_"):
        mmr(index, q, lambda_=2)
