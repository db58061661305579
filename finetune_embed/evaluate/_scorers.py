"""Scorers: each compares a model's answer with the reference answer and gives a number (usually 0..1), or
``None`` when it does not apply to that example (e.g. a JSON scorer on a plain-text reference).

Built in: :func:`exact_match`, :func:`normalized_match`, :func:`json_valid`, :func:`json_match`,
:func:`tool_call_match` (and names only: ``tool_call_match(arguments=False)``), :func:`embedding_similarity`
(cosine with our :class:`~finetune_embed.Embedder`), :func:`regex`, and any callable via :func:`custom`.
:func:`resolve` turns names (``"exact"``, ``"regex:^(yes|no)$"``, ...) into scorers, as the CLI does.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import ConfigError
from ._answers import Answer, EvalExample

if TYPE_CHECKING:
    from ..embeddings import AsyncEmbedder, Embedder

__all__ = [
    "SCORER_NAMES",
    "EmbeddingSimilarity",
    "Scorer",
    "custom",
    "default_scorers",
    "embedding_similarity",
    "exact_match",
    "json_match",
    "json_valid",
    "normalize",
    "normalized_match",
    "regex",
    "resolve",
    "tool_call_match",
]

Item = tuple[Answer, Answer, EvalExample]  # (prediction, reference, example)
_SPACE = re.compile(r"\s+")
_EDGE = string.punctuation + "“”‘’«»…"


class Scorer:
    """Base class: override :meth:`score` (one item) or :meth:`score_many` (a batch, e.g. one embedding call).

    ``name`` labels the scorer's column in reports; ``higher_is_better`` orders wins and worst examples.
    """

    name: str = "scorer"
    higher_is_better: bool = True

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        raise NotImplementedError

    def applies(self, reference: Answer) -> bool:
        """Whether the scorer can judge answers to this reference (used to pick default scorers)."""
        return True

    def score_many(self, items: Sequence[Item]) -> list[float | None]:
        """Scores of many items (default: :meth:`score` one by one)."""
        return [self.score(p, r, e) for p, r, e in items]

    async def ascore_many(self, items: Sequence[Item]) -> list[float | None]:
        """The async twin of :meth:`score_many` (default: the sync one)."""
        return self.score_many(items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def normalize(text: str) -> str:
    """Folded for comparison: Unicode NFKC, case folded, whitespace collapsed, surrounding punctuation and quotes
    stripped (``"  Yes."`` → ``"yes"``)."""
    folded = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return folded.strip(_EDGE + " ")


def _parse_json(text: str | None) -> tuple[bool, Any]:
    if text is None:
        return False, None
    stripped = text.strip()
    if stripped.startswith("```"):  # a fenced block: ```json ... ```
        stripped = stripped.strip("`")
        stripped = stripped[4:] if stripped.lower().startswith("json") else stripped
    try:
        return True, json.loads(stripped)
    except ValueError:
        return False, None


class _Exact(Scorer):
    name = "exact"

    def applies(self, reference: Answer) -> bool:
        return reference.content is not None

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        if reference.content is None:
            return None
        return float(prediction.content == reference.content)


class _Normalized(Scorer):
    name = "normalized"

    def applies(self, reference: Answer) -> bool:
        return reference.content is not None

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        if reference.content is None:
            return None
        return float(normalize(prediction.content or "") == normalize(reference.content))


class _JSONValid(Scorer):
    name = "json_valid"

    def applies(self, reference: Answer) -> bool:
        ok, value = _parse_json(reference.content)
        return ok and isinstance(value, dict | list)

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        if not self.applies(reference):
            return None
        ok, value = _parse_json(prediction.content)
        return float(ok and isinstance(value, dict | list))


def _leaves(value: Any, path: str = "$") -> dict[str, Any]:
    if isinstance(value, dict):
        if not value:
            return {path: {}}
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{path}.{k}"))
        return out
    if isinstance(value, list):
        if not value:
            return {path: []}
        out = {}
        for i, v in enumerate(value):
            out.update(_leaves(v, f"{path}[{i}]"))
        return out
    return {path: value}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


class _JSONMatch(Scorer):
    name = "json_match"

    def applies(self, reference: Answer) -> bool:
        ok, value = _parse_json(reference.content)
        return ok and isinstance(value, dict | list)

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        ok, ref = _parse_json(reference.content)
        if not ok or not isinstance(ref, dict | list):
            return None
        ok, pred = _parse_json(prediction.content)
        if not ok:
            return 0.0
        want, got = _leaves(ref), _leaves(pred)
        keys = set(want) | set(got)
        matched = sum(1 for k in want if k in got and _same(want[k], got[k]))
        return matched / len(keys) if keys else 1.0


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return ("unparsed", text)


class _ToolCalls(Scorer):
    def __init__(self, arguments: bool = True) -> None:
        self.arguments = arguments
        self.name = "tool_call" if arguments else "tool_name"

    def applies(self, reference: Answer) -> bool:
        return bool(reference.tool_calls)

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        if not reference.tool_calls:
            return None
        left = list(prediction.tool_calls)
        matched = 0
        for want in reference.tool_calls:
            for i, got in enumerate(left):
                if got.name != want.name:
                    continue
                if self.arguments and _arguments(got.arguments) != _arguments(want.arguments):
                    continue
                matched += 1
                del left[i]
                break
        return matched / max(len(reference.tool_calls), len(prediction.tool_calls))


class EmbeddingSimilarity(Scorer):
    """Cosine similarity of the answer's and the reference's embeddings (texts as :attr:`Answer.text`), with an
    :class:`~finetune_embed.Embedder` (sync runs) or :class:`~finetune_embed.AsyncEmbedder` (async runs; a sync
    embedder runs in a worker thread there). An empty answer scores 0."""

    name = "embedding"

    def __init__(self, embedder: Embedder | AsyncEmbedder, *, name: str = "embedding") -> None:
        self.embedder = embedder
        self.name = name

    def _texts(self, items: Sequence[Item]) -> tuple[list[str], list[int]]:
        texts: list[str] = []
        live: list[int] = []
        for i, (pred, ref, _ex) in enumerate(items):
            if pred.text.strip() and ref.text.strip():
                live.append(i)
                texts.extend((pred.text, ref.text))
        return texts, live

    @staticmethod
    def _cosines(vectors: Any, live: list[int], n: int, items: Sequence[Item]) -> list[float | None]:
        out: list[float | None] = [0.0 if items[i][1].text.strip() else None for i in range(n)]
        if live:
            v = np.asarray(vectors, dtype=np.float64).reshape(len(live), 2, -1)
            a, b = v[:, 0], v[:, 1]
            norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            sims = np.einsum("ij,ij->i", a, b) / np.where(norms > 0, norms, 1.0)
            for i, s in zip(live, sims.tolist(), strict=True):
                out[i] = float(min(1.0, max(-1.0, s)))
        return out

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        return self.score_many([(prediction, reference, example)])[0]

    def score_many(self, items: Sequence[Item]) -> list[float | None]:
        from ..embeddings import Embedder

        if not isinstance(self.embedder, Embedder):
            raise ConfigError("a sync evaluation needs a sync Embedder for the embedding scorer (not an AsyncEmbedder)")
        texts, live = self._texts(items)
        vectors = self.embedder.embed(texts) if texts else None
        return self._cosines(vectors, live, len(items), items)

    async def ascore_many(self, items: Sequence[Item]) -> list[float | None]:
        from ..embeddings import Embedder

        texts, live = self._texts(items)
        if not texts:
            return self._cosines(None, live, len(items), items)
        if isinstance(self.embedder, Embedder):
            vectors = await asyncio.to_thread(self.embedder.embed, texts)
        else:
            vectors = await self.embedder.embed(texts)
        return self._cosines(vectors, live, len(items), items)


class _Regex(Scorer):
    def __init__(self, pattern: str, *, name: str | None = None, full: bool = False, flags: int = 0) -> None:
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise ConfigError(f"regex scorer: {pattern!r} is not a valid regular expression ({exc})") from exc
        self.full = full
        self.name = name or f"regex:{pattern}"

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        text = prediction.text
        found = self.pattern.fullmatch(text) if self.full else self.pattern.search(text)
        return float(found is not None)


class _Custom(Scorer):
    def __init__(self, fn: Callable[..., Any], name: str, answers: bool) -> None:
        self.fn = fn
        self.name = name
        self.answers = answers

    def score(self, prediction: Answer, reference: Answer, example: EvalExample) -> float | None:
        if self.answers:
            value = self.fn(prediction, reference, example)
        else:
            value = self.fn(prediction.text, reference.text)
        if value is None:
            return None
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, int | float) or not math.isfinite(float(value)):
            raise ConfigError(
                f"scorer {self.name!r} returned {value!r} for the example at line {example.line}; a scorer returns a "
                "finite number, a bool, or None (not applicable)"
            )
        return float(value)


def exact_match() -> Scorer:
    """1 when the answer's text equals the reference's exactly, else 0 (references without text: not applicable)."""
    return _Exact()


def normalized_match() -> Scorer:
    """:func:`exact_match` after :func:`normalize` (case, Unicode forms, spacing, surrounding punctuation)."""
    return _Normalized()


def json_valid() -> Scorer:
    """1 when the answer is a JSON object or array (a fenced ```json block too), for references that are JSON."""
    return _JSONValid()


def json_match() -> Scorer:
    """Key/value agreement with a JSON reference: the leaf paths whose values match, over the leaf paths of either
    (1 = the same JSON; an extra or a missing key lowers it; invalid JSON scores 0)."""
    return _JSONMatch()


def tool_call_match(*, arguments: bool = True) -> Scorer:
    """For references with tool calls: the calls matched (same function name and, with ``arguments``, the same
    arguments compared as JSON) over the larger of the two call counts. ``arguments=False``: names only
    (``tool_name``)."""
    return _ToolCalls(arguments)


def embedding_similarity(embedder: Embedder | AsyncEmbedder, *, name: str = "embedding") -> Scorer:
    """Cosine similarity of answer and reference embeddings (see :class:`EmbeddingSimilarity`)."""
    return EmbeddingSimilarity(embedder, name=name)


def regex(pattern: str, *, name: str | None = None, full: bool = False, flags: int = 0) -> Scorer:
    """1 when ``pattern`` is found in the answer's text (``full=True``: matches all of it), else 0."""
    return _Regex(pattern, name=name, full=full, flags=flags)


def custom(fn: Callable[..., Any], *, name: str | None = None) -> Scorer:
    """Any callable as a scorer: ``fn(prediction_text, reference_text)`` or, with three parameters,
    ``fn(prediction: Answer, reference: Answer, example: EvalExample)``; it returns a number, a bool or ``None``."""
    if not callable(fn):
        raise ConfigError(f"custom scorer: {fn!r} is not callable")
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        answers = len(params) >= 3
    except (TypeError, ValueError):  # builtins without a signature
        answers = False
    label = name or getattr(fn, "__name__", None) or "custom"
    return _Custom(fn, "custom" if label == "<lambda>" else label, answers)


SCORER_NAMES = (
    "exact",
    "normalized",
    "json_valid",
    "json_match",
    "tool_call",
    "tool_name",
    "embedding",
    "regex:PATTERN",
)


def resolve(spec: str | Scorer | Callable[..., Any], *, embedder: Embedder | AsyncEmbedder | None = None) -> Scorer:
    """A scorer from a name (see :data:`SCORER_NAMES`), a :class:`Scorer`, or a callable (:func:`custom`)."""
    if isinstance(spec, Scorer):
        return spec
    if isinstance(spec, str):
        name = spec.strip()
        simple: dict[str, Callable[[], Scorer]] = {
            "exact": exact_match,
            "normalized": normalized_match,
            "json_valid": json_valid,
            "json_match": json_match,
            "tool_call": tool_call_match,
            "tool_name": lambda: tool_call_match(arguments=False),
        }
        if name in simple:
            return simple[name]()
        if name.startswith("regex:"):
            return regex(name[len("regex:") :])
        if name == "embedding":
            if embedder is None:
                raise ConfigError("the 'embedding' scorer needs an embedder: pass embedder=Embedder(client)")
            return embedding_similarity(embedder)
        raise ConfigError(f"unknown scorer {spec!r}; known: {', '.join(SCORER_NAMES)}, or pass a Scorer or a callable")
    if callable(spec):
        return custom(spec)
    raise ConfigError(f"a scorer is a name, a Scorer or a callable, not {type(spec).__name__}")


def default_scorers(references: Sequence[Answer], *, embedder: Embedder | AsyncEmbedder | None = None) -> list[Scorer]:
    """The scorers that fit the data: exact and normalized match for text references, JSON validity and key/value
    match when references are JSON, tool-call match when they call tools, embedding similarity with an embedder."""
    out: list[Scorer] = []
    candidates: list[Scorer] = [exact_match(), normalized_match(), json_valid(), json_match(), tool_call_match()]
    for scorer in candidates:
        if any(scorer.applies(r) for r in references):
            out.append(scorer)
    if embedder is not None:
        out.append(embedding_similarity(embedder))
    return out or [exact_match()]
