"""Data-quality analysis with embeddings (``Dataset.analyze``): the checks of the fine-tuning guide's advice on
iterating on data quality that need meaning, not just text.

Each example becomes two texts: its **prompt** (the conversation before the last assistant reply, without system
messages) and its **answer** (that reply; tool calls as JSON). Both are embedded (any
:class:`~finetune_embed.Embedder`: OpenAI, Azure, a compatible server, the fake), then:

* **conflicts** - groups of examples whose prompts are near-identical (cosine >= ``similarity``) but whose answers
  differ (different text after :func:`~finetune_embed.evaluate.normalize` and answer cosine < ``answer_similarity``):
  inconsistent labelling, which caps what the model can learn;
* **near-duplicates** - pairs with near-identical prompts *and* answers; ``lexical`` says whether the dataset's
  own check (case and spacing folded) already catches the pair, so the others are the ones only meaning finds;
* **clusters** - k-means topics over the prompts (:func:`finetune_embed.index.kmeans` on their first 64 principal
  components): sizes, the examples nearest each centre, distinctive words, the most frequent answers and the share
  of refusal-like replies per topic;
* **leakage** - validation examples that are near-duplicates of training examples (prompt and answer);
* **outliers** - examples far from their nearest neighbours (robust z-score of the mean distance to the 5 nearest
  prompts above ``outlier_z``).

Every finding points at source line numbers. The pairwise step is exact (chunked matrix products): about
``n^2 * d`` multiply-adds, seconds for thousands of examples.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError
from ._answers import EvalExample, conversation_text, examples_from_rows
from ._scorers import normalize

if TYPE_CHECKING:
    import os

    import pandas as pd

    from ..dataset import Dataset
    from ..embeddings import AsyncEmbedder, Embedder

__all__ = [
    "ConflictGroup",
    "DatasetAnalysis",
    "DuplicatePair",
    "Leak",
    "Outlier",
    "TopicCluster",
    "analyze_dataset",
    "analyze_dataset_async",
]

_CHUNK = 512
_CLUSTER_DIMS = 64  # topics are found on the prompts' first 64 principal components
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_STOP_WORDS = (
    "the and for you your with that this from are was were have has had not but can could would should will what "
    "when where which who how why all any our out about into than then them they their there these those its just "
    "also been being more most some such very please thanks thank"
)
_STOP = frozenset(_STOP_WORDS.split())
_EXCERPT = 120


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


@dataclass(frozen=True)
class ConflictGroup:
    """Examples whose prompts are near-identical but whose answers differ. ``answers`` maps each distinct answer
    to the lines that give it; ``similarity`` is the lowest prompt similarity that links the group."""

    lines: list[int]
    prompt: str
    answers: dict[str, list[int]]
    similarity: float

    def __str__(self) -> str:
        said = "; ".join(f"{_excerpt(a)!r} at line {', '.join(map(str, ls))}" for a, ls in self.answers.items())
        where = ", ".join(map(str, self.lines))
        return f"lines {where}: near-identical prompts ({_excerpt(self.prompt)!r}) answered {said}"


@dataclass(frozen=True)
class DuplicatePair:
    """Two examples with near-identical prompts and answers; ``lexical`` when they are equal after folding case
    and spacing (what ``Dataset.validate`` already reports)."""

    lines: tuple[int, int]
    similarity: float
    answer_similarity: float
    lexical: bool


@dataclass(frozen=True)
class TopicCluster:
    """One topic: its ``size`` and ``share`` of the data, every member's line, the ``examples`` nearest its
    centre, distinctive ``terms``, the most frequent answers and the share of refusal-like replies."""

    id: int
    size: int
    share: float
    lines: list[int]
    examples: list[int]
    terms: list[str]
    top_answers: list[tuple[str, int]]
    refusal_share: float


@dataclass(frozen=True)
class Leak:
    """A validation example that is a near-duplicate of a training example."""

    validation_line: int
    train_line: int
    similarity: float
    lexical: bool


@dataclass(frozen=True)
class Outlier:
    """An example far from the others: ``distance`` is 1 - its mean cosine to its nearest prompts, ``z`` the
    robust z-score of that distance."""

    line: int
    distance: float
    z: float
    prompt: str


@dataclass
class DatasetAnalysis:
    """What :meth:`Dataset.analyze` found (see :mod:`finetune_embed.evaluate._analysis` for each check)."""

    n_examples: int
    conflicts: list[ConflictGroup]
    near_duplicates: list[DuplicatePair]
    clusters: list[TopicCluster]
    outliers: list[Outlier]
    leaks: list[Leak] | None
    refusal_share: float
    skipped: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list, repr=False)
    cluster_of: list[int] = field(default_factory=list, repr=False)
    outlier_z: list[float] = field(default_factory=list, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def semantic_duplicates(self) -> list[DuplicatePair]:
        """The near-duplicates that the lexical check misses."""
        return [d for d in self.near_duplicates if not d.lexical]

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data."""
        out = {
            "n_examples": self.n_examples,
            "skipped_lines": self.skipped,
            "refusal_share": self.refusal_share,
            "conflicts": [asdict(c) for c in self.conflicts],
            "near_duplicates": [asdict(d) for d in self.near_duplicates],
            "clusters": [asdict(c) for c in self.clusters],
            "outliers": [asdict(o) for o in self.outliers],
            "leaks": None if self.leaks is None else [asdict(x) for x in self.leaks],
            "settings": self.settings,
        }
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per analysed example: line, cluster, outlier z-score and whether it is in a conflict, a
        near-duplicate pair or (as a training example) a leak."""
        import pandas as pd

        conflict = {line for c in self.conflicts for line in c.lines}
        dup = {line for d in self.near_duplicates for line in d.lines}
        leaked = {x.train_line for x in self.leaks or []}
        return pd.DataFrame(
            {
                "line": self.lines,
                "cluster": self.cluster_of,
                "outlier_z": self.outlier_z,
                "conflict": [line in conflict for line in self.lines],
                "near_duplicate": [line in dup for line in self.lines],
                "leaked": [line in leaked for line in self.lines],
            }
        )

    def format(self, *, limit: int = 10) -> str:
        """A plain-text report."""
        parts = [
            f"{self.n_examples} examples analysed"
            + (f" ({len(self.skipped)} skipped: no assistant reply)" if self.skipped else "")
            + f"; {self.refusal_share:.1%} refusal-like replies"
        ]
        parts.append(f"Conflicting examples (near-identical prompts, different answers): {len(self.conflicts)}")
        parts += [f"  {c}" for c in self.conflicts[:limit]]
        beyond = self.semantic_duplicates
        parts.append(f"Near-duplicates: {len(self.near_duplicates)} pairs ({len(beyond)} beyond the lexical check)")
        parts += [
            f"  lines {d.lines[0]} and {d.lines[1]} (prompt {d.similarity:.3f}, answer {d.answer_similarity:.3f})"
            + ("" if not d.lexical else ", also a lexical duplicate")
            for d in self.near_duplicates[:limit]
        ]
        if self.leaks is not None:
            parts.append(f"Validation examples leaked from training: {len(self.leaks)}")
            parts += [
                f"  validation line {x.validation_line} ~ training line {x.train_line} ({x.similarity:.3f})"
                for x in self.leaks[:limit]
            ]
        parts.append(f"Topics: {len(self.clusters)}")
        for c in self.clusters:
            answers = ", ".join(f"{_excerpt(a)!r} x{n}" for a, n in c.top_answers)
            parts.append(
                f"  #{c.id}: {c.size} ({c.share:.0%}) {', '.join(c.terms)}; e.g. lines "
                f"{', '.join(map(str, c.examples))}; refusals {c.refusal_share:.0%}"
                + (f"; answers {answers}" if answers else "")
            )
        parts.append(f"Outliers: {len(self.outliers)}")
        parts += [f"  line {o.line} (z={o.z:.1f}): {o.prompt!r}" for o in self.outliers[:limit]]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.format()


# --- the computation ------------------------------------------------------------------------------------------


@dataclass
class _Texts:
    examples: list[EvalExample]
    prompts: list[str]
    answers: list[str]
    skipped: list[int]
    rows: list[Any]


def _prepare(dataset: Dataset) -> _Texts:
    rows = dataset.convert("chat").to_list() if len(dataset) else []
    examples, skipped = examples_from_rows(rows, dataset.lines)
    kept: list[EvalExample] = []
    prompts: list[str] = []
    answers: list[str] = []
    for ex in examples:
        prompt = conversation_text(ex.messages).strip()
        if not prompt:
            skipped.append(ex.line)
            continue
        kept.append(ex)
        prompts.append(prompt)
        answers.append(ex.reference.text.strip() or "(no answer)")
    return _Texts(kept, prompts, answers, sorted(skipped), rows)


def _unit(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (v / np.where(norms > 0, norms, np.float32(1.0))).astype(np.float32)
    return out


def _pairs_above(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32] | None, threshold: float
) -> list[tuple[int, int, float]]:
    """``(i, j, cos)`` for every pair at or above ``threshold``: within ``a`` (i < j) when ``b`` is None."""
    out: list[tuple[int, int, float]] = []
    other = a if b is None else b
    for start in range(0, a.shape[0], _CHUNK):
        sims = a[start : start + _CHUNK] @ other.T
        if b is None:  # each pair once: keep j > i
            rows = start + np.arange(sims.shape[0])
            sims[np.arange(other.shape[0])[None, :] <= rows[:, None]] = -2.0
        hit_i, hit_j = np.nonzero(sims >= threshold - 1e-6)
        out.extend((start + int(i), int(j), float(sims[i, j])) for i, j in zip(hit_i, hit_j, strict=True))
    return out


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _same_answer(i: int, j: int, norm: list[str], ans: npt.NDArray[np.float32], threshold: float) -> bool:
    return norm[i] == norm[j] or float(ans[i] @ ans[j]) >= threshold


def _principal(x: npt.NDArray[np.float32], dims: int, seed: int) -> npt.NDArray[np.float32]:
    """``x`` (unit rows) projected on its first ``dims`` principal components: a seeded randomized SVD (a range
    finder with two power iterations), O(n * d * dims). Distances between prompts are kept where the data varies;
    k-means then costs ``dims`` instead of ``d`` per vector."""
    if x.shape[1] <= dims or x.shape[0] <= dims:
        return x
    centred = (x - x.mean(axis=0)).astype(np.float32)
    rng = np.random.default_rng(seed)
    basis = centred @ rng.standard_normal((x.shape[1], dims + 10)).astype(np.float32)
    for _ in range(2):
        basis, _r = np.linalg.qr(basis)
        basis = centred @ (centred.T @ basis)
    q, _r = np.linalg.qr(basis)
    _u, _s, vt = np.linalg.svd(q.T @ centred, full_matrices=False)
    out: npt.NDArray[np.float32] = (centred @ vt[:dims].T).astype(np.float32)
    return out


def _default_k(n: int) -> int:
    if n < 4:
        return 1
    return max(2, min(12, round(math.sqrt(n / 2))))


def _terms(prompts: list[str], labels: npt.NDArray[np.int64], k: int) -> list[list[str]]:
    counts = [Counter[str]() for _ in range(k)]
    for text, label in zip(prompts, labels.tolist(), strict=True):
        counts[label].update(w for w in _WORD.findall(text.casefold()) if w not in _STOP)
    df = Counter[str]()
    for c in counts:
        df.update(set(c))
    out = []
    for c in counts:
        scored = sorted(c.items(), key=lambda kv: (-kv[1] * math.log(1 + k / df[kv[0]]), kv[0]))
        out.append([w for w, _n in scored[:5]])
    return out


def _outliers(p: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each example's distance (1 - mean cosine to its 5 nearest prompts) and its robust z-score."""
    n = p.shape[0]
    if n < 3:
        return np.zeros(n), np.zeros(n)
    k = min(5, n - 1)
    distance = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        sims = p[start : start + _CHUNK] @ p.T
        for r in range(sims.shape[0]):
            sims[r, start + r] = -np.inf
        top = np.partition(sims, -k, axis=1)[:, -k:]
        distance[start : start + sims.shape[0]] = 1.0 - top.mean(axis=1)
    median = float(np.median(distance))
    mad = float(np.median(np.abs(distance - median)))
    scale = 1.4826 * mad if mad > 1e-9 else float(distance.std()) or 1.0
    return distance, (distance - median) / scale


def _compute(
    texts: _Texts,
    p_vec: npt.ArrayLike,
    a_vec: npt.ArrayLike,
    *,
    validation: tuple[_Texts, npt.ArrayLike, npt.ArrayLike] | None,
    clusters: int | None,
    similarity: float,
    answer_similarity: float,
    outlier_z: float,
    seed: int,
) -> DatasetAnalysis:
    from ..dataset._checks import _looks_like_refusal
    from ..dataset._memory import near_digest
    from ..index._ops import kmeans

    p, a = _unit(p_vec), _unit(a_vec)
    n = len(texts.examples)
    lines = [ex.line for ex in texts.examples]
    norm = [normalize(x) for x in texts.answers]
    digests = [near_digest(ex.row) for ex in texts.examples]

    # near-identical prompts: conflicts (answers differ) and near-duplicates (answers agree)
    pairs = _pairs_above(p, None, similarity)
    union = _Union(n)
    duplicates: list[DuplicatePair] = []
    weakest: dict[tuple[int, int], float] = {}
    for i, j, s in pairs:
        union.join(i, j)
        if _same_answer(i, j, norm, a, answer_similarity):
            duplicates.append(
                DuplicatePair((lines[i], lines[j]), round(s, 6), round(float(a[i] @ a[j]), 6), digests[i] == digests[j])
            )
        weakest[(i, j)] = s
    groups: dict[int, list[int]] = {}
    for i, _j, _s in pairs:
        groups.setdefault(union.find(i), [])
    for i in range(n):
        root = union.find(i)
        if root in groups:
            groups[root].append(i)
    conflicts: list[ConflictGroup] = []
    for members in groups.values():
        distinct: list[int] = []  # one representative per distinct answer
        for m in members:
            if not any(_same_answer(m, d, norm, a, answer_similarity) for d in distinct):
                distinct.append(m)
        if len(distinct) < 2:
            continue
        answers: dict[str, list[int]] = {}
        for m in members:
            rep = next(d for d in distinct if _same_answer(m, d, norm, a, answer_similarity))
            answers.setdefault(texts.answers[rep], []).append(lines[m])
        member_set = set(members)
        low = min(s for (i, j), s in weakest.items() if i in member_set and j in member_set)
        conflicts.append(
            ConflictGroup(sorted(lines[m] for m in members), texts.prompts[members[0]], answers, round(low, 6))
        )
    conflicts.sort(key=lambda c: c.lines[0])
    duplicates.sort(key=lambda d: d.lines)

    # topics
    k = clusters if clusters is not None else _default_k(n)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max(1, n):
        raise ConfigError(f"clusters must be an integer from 1 to the number of examples ({n}), got {clusters!r}")
    reduced = _principal(p, _CLUSTER_DIMS, seed)
    result = kmeans(reduced, k, seed=seed)
    labels = result.labels
    refusal = [_looks_like_refusal(ex.reference.content or "") for ex in texts.examples]
    words = _terms(texts.prompts, labels, k)
    topics: list[TopicCluster] = []
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        if not idx.size:
            continue
        gap = np.square(reduced[idx] - result.centroids[c]).sum(axis=1)
        closest = idx[np.argsort(gap, kind="stable")[:3]]
        short = Counter(texts.answers[m] for m in idx.tolist() if len(texts.answers[m]) <= 60)
        top = [(ans, cnt) for ans, cnt in short.most_common(3) if cnt > 1]
        topics.append(
            TopicCluster(
                id=c,
                size=int(idx.size),
                share=idx.size / n,
                lines=[lines[m] for m in idx.tolist()],
                examples=[lines[m] for m in closest.tolist()],
                terms=words[c],
                top_answers=top,
                refusal_share=sum(refusal[m] for m in idx.tolist()) / idx.size,
            )
        )
    topics.sort(key=lambda t: (-t.size, t.id))

    # outliers
    distance, z = _outliers(p)
    order = np.argsort(-z, kind="stable")
    outliers = [
        Outlier(lines[i], round(float(distance[i]), 6), round(float(z[i]), 3), _excerpt(texts.prompts[i]))
        for i in order.tolist()
        if z[i] > outlier_z
    ]

    # leakage
    leaks: list[Leak] | None = None
    if validation is not None:
        vt, vp_vec, va_vec = validation
        vp, va = _unit(vp_vec), _unit(va_vec)
        leaks = []
        vnorm = [normalize(x) for x in vt.answers]
        for start in range(0, vp.shape[0], _CHUNK):
            sims = vp[start : start + _CHUNK] @ p.T
            for r in range(sims.shape[0]):
                v = start + r
                hits = np.flatnonzero(sims[r] >= similarity - 1e-6)
                for j in hits[np.argsort(-sims[r, hits], kind="stable")].tolist():
                    if vnorm[v] == norm[j] or float(va[v] @ a[j]) >= answer_similarity:
                        lexical = near_digest(vt.examples[v].row) == digests[j]
                        leaks.append(Leak(vt.examples[v].line, lines[j], round(float(sims[r, j]), 6), lexical))
                        break
    return DatasetAnalysis(
        n_examples=n,
        conflicts=conflicts,
        near_duplicates=duplicates,
        clusters=topics,
        outliers=outliers,
        leaks=leaks,
        refusal_share=sum(refusal) / n if n else 0.0,
        skipped=texts.skipped,
        lines=lines,
        cluster_of=[int(x) for x in labels.tolist()],
        outlier_z=[round(float(x), 3) for x in z.tolist()],
        settings={
            "similarity": similarity,
            "answer_similarity": answer_similarity,
            "outlier_z": outlier_z,
            "clusters": k,
            "seed": seed,
        },
    )


def _check(similarity: float, answer_similarity: float, outlier_z: float) -> None:
    for name, value in (("similarity", similarity), ("answer_similarity", answer_similarity)):
        if not isinstance(value, int | float) or not 0.0 < value <= 1.0:
            raise ConfigError(f"{name} must be a cosine threshold in (0, 1], got {value!r}")
    if not isinstance(outlier_z, int | float) or outlier_z <= 0:
        raise ConfigError(f"outlier_z must be a positive number, got {outlier_z!r}")


def _as_dataset(data: Any) -> Dataset:
    from ._evaluation import _as_dataset as convert

    return convert(data)


def analyze_dataset(
    dataset: Dataset,
    embedder: Embedder | None = None,
    *,
    validation: Dataset | str | os.PathLike[str] | None = None,
    clusters: int | None = None,
    similarity: float = 0.95,
    answer_similarity: float = 0.95,
    outlier_z: float = 3.5,
    seed: int = 0,
) -> DatasetAnalysis:
    """Analyse ``dataset`` with ``embedder`` (default: ``Embedder(Client())``, text-embedding-3-small); see
    :meth:`Dataset.analyze <finetune_embed.Dataset.analyze>`."""
    from ..embeddings import Embedder

    _check(similarity, answer_similarity, outlier_z)
    texts = _prepare(dataset)
    if not texts.examples:
        raise ConfigError("no example to analyse: each needs a prompt and an assistant reply")
    val = _prepare(_as_dataset(validation)) if validation is not None else None
    own = embedder is None
    emb = Embedder() if embedder is None else embedder
    if not isinstance(emb, Embedder):
        raise ConfigError("analyze needs a sync Embedder; with an AsyncEmbedder use analyze_dataset_async")
    try:
        vectors = emb.embed(texts.prompts + texts.answers)
        val_vectors = emb.embed(val.prompts + val.answers) if val is not None and val.examples else None
    finally:
        if own:
            emb.close()
    n = len(texts.prompts)
    validation_part = None
    if val is not None:
        m = len(val.prompts)
        vv = val_vectors if val_vectors is not None else np.zeros((0, vectors.shape[1]), dtype=np.float32)
        validation_part = (val, vv[:m], vv[m:])
    return _compute(
        texts,
        vectors[:n],
        vectors[n:],
        validation=validation_part,
        clusters=clusters,
        similarity=similarity,
        answer_similarity=answer_similarity,
        outlier_z=outlier_z,
        seed=seed,
    )


async def analyze_dataset_async(
    dataset: Dataset,
    embedder: AsyncEmbedder,
    *,
    validation: Dataset | str | os.PathLike[str] | None = None,
    clusters: int | None = None,
    similarity: float = 0.95,
    answer_similarity: float = 0.95,
    outlier_z: float = 3.5,
    seed: int = 0,
) -> DatasetAnalysis:
    """The asyncio twin of :func:`analyze_dataset` (embeddings through an :class:`~finetune_embed.AsyncEmbedder`)."""
    _check(similarity, answer_similarity, outlier_z)
    texts = _prepare(dataset)
    if not texts.examples:
        raise ConfigError("no example to analyse: each needs a prompt and an assistant reply")
    val = _prepare(_as_dataset(validation)) if validation is not None else None
    vectors = await embedder.embed(texts.prompts + texts.answers)
    validation_part = None
    if val is not None and val.examples:
        vv = await embedder.embed(val.prompts + val.answers)
        validation_part = (val, vv[: len(val.prompts)], vv[len(val.prompts) :])
    elif val is not None:
        empty = np.zeros((0, vectors.shape[1]), dtype=np.float32)
        validation_part = (val, empty, empty)
    n = len(texts.prompts)
    return _compute(
        texts,
        vectors[:n],
        vectors[n:],
        validation=validation_part,
        clusters=clusters,
        similarity=similarity,
        answer_similarity=answer_similarity,
        outlier_z=outlier_z,
        seed=seed,
    )
