"""Judge fine-tuned models and their data: evaluation against the base model, and data-quality analysis with
embeddings.

* :class:`Evaluation` runs held-out examples (typically ``train_test_split(...).test``) through one or more models
  (:class:`Candidate`), scores each answer against the reference reply (:mod:`scorers <finetune_embed.evaluate>`:
  exact / normalized match, JSON validity and key/value match, tool-call match, embedding similarity, regex, any
  callable) and returns an :class:`EvaluationReport`: per-example table, means with bootstrap intervals, paired
  comparisons (win / tie / loss), the worst examples, tokens, cost and latency per model. Answers are cached as
  they arrive: a rerun costs nothing and an interrupted run resumes.
* :func:`analyze_dataset` (``Dataset.analyze``) finds conflicting examples, topic clusters, semantic
  near-duplicates, train/validation leakage, outliers and the refusal share per cluster, each at its line numbers.

>>> from finetune_embed.testing import FakeOpenAI
>>> from finetune_embed import Dataset
>>> data = Dataset.from_pairs(["2+2?", "3+3?"], ["4", "6"])
>>> report = Evaluation(data, ["gpt-4o-mini"], client=FakeOpenAI().client(), cache=False).run()
>>> report.mean("gpt-4o-mini", "exact")
0.0
"""

from __future__ import annotations

from ._analysis import (
    ConflictGroup,
    DatasetAnalysis,
    DuplicatePair,
    Leak,
    Outlier,
    TopicCluster,
    analyze_dataset,
    analyze_dataset_async,
)
from ._answers import Answer, EvalExample
from ._evaluation import Candidate, Evaluation, EvaluationEstimate
from ._report import CandidateUsage, EvaluationReport, ResultRow, ScoreSummary
from ._scorers import (
    SCORER_NAMES,
    EmbeddingSimilarity,
    Scorer,
    custom,
    embedding_similarity,
    exact_match,
    json_match,
    json_valid,
    normalize,
    normalized_match,
    regex,
    tool_call_match,
)
from ._stats import Comparison, MeanCI, bootstrap_mean, paired_comparison

__all__ = [
    "SCORER_NAMES",
    "Answer",
    "Candidate",
    "CandidateUsage",
    "Comparison",
    "ConflictGroup",
    "DatasetAnalysis",
    "DuplicatePair",
    "EmbeddingSimilarity",
    "EvalExample",
    "Evaluation",
    "EvaluationEstimate",
    "EvaluationReport",
    "Leak",
    "MeanCI",
    "Outlier",
    "ResultRow",
    "ScoreSummary",
    "Scorer",
    "TopicCluster",
    "analyze_dataset",
    "analyze_dataset_async",
    "bootstrap_mean",
    "custom",
    "embedding_similarity",
    "exact_match",
    "json_match",
    "json_valid",
    "normalize",
    "normalized_match",
    "paired_comparison",
    "regex",
    "tool_call_match",
]
