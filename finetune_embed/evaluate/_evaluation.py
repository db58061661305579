"""The :class:`Evaluation`: a held-out split through one or more models, every answer scored against the
reference, the results in an :class:`~finetune_embed.evaluate.EvaluationReport`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .._client import AsyncClient, Client
from .._exceptions import ConfigError
from .._logging import get_logger
from ..chat import AsyncChatCompletions, ChatCache, ChatCompletions, ChatRequest, ChatResult
from ..chat._base import ChatBase
from ._answers import Answer, EvalExample, examples_from_rows
from ._report import CandidateUsage, EvaluationReport, ResultRow
from ._scorers import Scorer, default_scorers, resolve

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..embeddings import AsyncEmbedder, Embedder

__all__ = ["Candidate", "Evaluation", "EvaluationEstimate"]

logger = get_logger("evaluate")

ScorerSpec = str | Scorer | Callable[..., Any]


@dataclass(frozen=True)
class Candidate:
    """A model to evaluate, and how to call it.

    * ``model`` - the model (``gpt-4.1-mini``, ``ft:...``, an Azure deployment, a compatible server's name).
    * ``name`` - its label in the report (default: ``model``).
    * ``system`` - replaces the data's system prompt for this candidate (``""`` removes it); ``None`` keeps the
      evaluation's choice.
    * ``params`` - body fields for this candidate (``temperature``, ``max_completion_tokens``, ...), over the
      evaluation's ``params``.
    * ``catalog_model`` - the catalog name that prices ``model`` when its own name does not say (an Azure
      deployment of a fine-tuned gpt-4o-mini: ``"ft:gpt-4o-mini"``).
    * ``price_per_1m`` - ``(input, output)`` USD per 1M tokens, overriding the catalog.
    """

    model: str
    name: str | None = None
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    catalog_model: str | None = None
    price_per_1m: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        return self.name or self.model

    def prices(self) -> tuple[float, float] | None:
        """USD per 1M (input, output) tokens, or ``None`` when unknown."""
        if self.price_per_1m is not None:
            return self.price_per_1m
        price_in, price_out = ChatBase.price(self.catalog_model or self.model)
        return None if price_in is None or price_out is None else (price_in, price_out)


@dataclass(frozen=True)
class EvaluationEstimate:
    """What a run would send, per candidate: requests not cached yet, their prompt tokens, the completion tokens
    expected (the references' length) and the cost at catalog prices (``None`` without a price)."""

    candidate: str
    requests: int
    cached: int
    prompt_tokens: int
    expected_completion_tokens: int
    cost_usd: float | None


def _as_dataset(data: Any) -> Dataset:
    from ..dataset import Dataset

    if isinstance(data, Dataset):
        return data
    if isinstance(data, str | os.PathLike):
        return Dataset.from_json(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return Dataset.from_list(list(data))
    raise ConfigError(f"data must be a Dataset, a JSONL path or a list of examples, not {type(data).__name__}")


def _with_system(messages: Sequence[Mapping[str, Any]], system: str | None) -> list[dict[str, Any]]:
    out = [dict(m) for m in messages]
    if system is None:
        return out
    rest = [m for m in out if m.get("role") not in ("system", "developer")]
    return ([{"role": "system", "content": system}] if system else []) + rest


class Evaluation:
    """Run held-out examples through one or more models and score every answer against the reference reply.

    **Parameters:**

    * ``data`` - a :class:`~finetune_embed.Dataset` (typically ``train_test_split(...).test``), a JSONL path or a
      list of examples. Chat, preference (the preferred reply is the reference) and prompt/completion data; each
      example's **last** assistant message is the reference, everything before it the prompt, its ``tools`` are
      sent along. Examples without an assistant reply are skipped (``report.skipped`` lists their lines).
    * ``models`` - model names or :class:`Candidate` objects, e.g. ``["gpt-4.1-mini", job.fine_tuned_model]``.
    * ``client`` - a :class:`~finetune_embed.Client` (for :meth:`run`) or :class:`~finetune_embed.AsyncClient`
      (for :meth:`arun`), or a configured ``ChatCompletions`` / ``AsyncChatCompletions``; default ``Client()``.
    * ``scorers`` - names (``"exact"``, ``"normalized"``, ``"json_valid"``, ``"json_match"``, ``"tool_call"``,
      ``"tool_name"``, ``"embedding"``, ``"regex:PATTERN"``), :class:`Scorer` objects or callables; default: the
      ones that fit the references (plus ``"embedding"`` when ``embedder`` is given).
    * ``embedder`` - an :class:`~finetune_embed.Embedder` (or ``AsyncEmbedder``) for the embedding scorer.
    * ``system`` - a system prompt replacing the data's for every candidate (``""`` removes it; ``None`` keeps it).
    * ``params`` - body fields for every request (e.g. ``{"temperature": 0, "max_completion_tokens": 200}``).
    * ``cache`` - the response cache (``True``: the default file, a path, a ``ChatCache``, ``False``). Every
      answer is stored as it arrives, so a rerun sends nothing and an interrupted run resumes where it stopped.
    * ``max_concurrency``, ``rpm``, ``tpm``, ``progress``, ``clock``, ``sleep`` - as for ``ChatCompletions``.
    * ``limit`` - evaluate only the first ``limit`` examples.
    * ``n_boot``, ``confidence``, ``seed`` - the bootstrap behind the intervals and comparisons.
    """

    def __init__(
        self,
        data: Dataset | str | os.PathLike[str] | Sequence[Mapping[str, Any]],
        models: Sequence[str | Candidate] | Mapping[str, str],
        *,
        client: Client | AsyncClient | ChatCompletions | AsyncChatCompletions | None = None,
        scorers: Sequence[ScorerSpec] | None = None,
        embedder: Embedder | AsyncEmbedder | None = None,
        system: str | None = None,
        params: Mapping[str, Any] | None = None,
        cache: ChatCache | str | os.PathLike[str] | bool = True,
        max_concurrency: int = 4,
        rpm: int | None = None,
        tpm: int | None = None,
        progress: bool | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
        limit: int | None = None,
        n_boot: int = 2000,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> None:
        dataset = _as_dataset(data)
        rows = dataset.convert("chat").to_list() if len(dataset) else []
        examples, skipped = examples_from_rows(rows, dataset.lines)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigError(f"limit must be a positive integer, got {limit!r}")
            examples = examples[:limit]
        if not examples:
            raise ConfigError(
                "no example to evaluate: each example needs an assistant reply to compare with (the last assistant "
                "message is the reference)"
            )
        self.examples: list[EvalExample] = examples
        self.skipped: list[int] = skipped
        if isinstance(models, Mapping):
            candidates = [Candidate(model, name=name) for name, model in models.items()]
        else:
            candidates = [m if isinstance(m, Candidate) else Candidate(str(m)) for m in models]
        if not candidates:
            raise ConfigError("models is empty: pass at least one model name or Candidate")
        labels = [c.label for c in candidates]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ConfigError(
                f"two candidates are called {duplicates[0]!r}: give them distinct names (Candidate(model, name=...))"
            )
        self.candidates = candidates
        self.embedder = embedder
        if scorers is None:
            self.scorers = default_scorers([e.reference for e in examples], embedder=embedder)
        else:
            self.scorers = [resolve(s, embedder=embedder) for s in scorers]
            if not self.scorers:
                raise ConfigError("scorers is empty: pass at least one, or None for the defaults")
        names = [s.name for s in self.scorers]
        if len(set(names)) != len(names):
            raise ConfigError(f"two scorers share a name among {names}: name them apart (name=...)")
        self.system = system
        self.params = dict(params or {})
        for key in ("model", "messages", "tools", "stream"):
            if key in self.params:
                raise ConfigError(f"params may not set {key!r} (it comes from the data and the candidates)")
        if not 0.0 < confidence < 1.0:
            raise ConfigError(f"confidence must be between 0 and 1, got {confidence}")
        if n_boot < 100:
            raise ConfigError(f"n_boot must be at least 100, got {n_boot}")
        self.n_boot, self.confidence, self.seed = n_boot, confidence, seed
        self._client = client
        self._chat_options: dict[str, Any] = {
            "cache": cache,
            "max_concurrency": max_concurrency,
            "rpm": rpm,
            "tpm": tpm,
            "progress": progress,
            "clock": clock,
            "sleep": sleep,
        }

    def __repr__(self) -> str:
        models = ", ".join(c.label for c in self.candidates)
        return f"Evaluation(n={len(self.examples)}, models=[{models}], scorers={[s.name for s in self.scorers]})"

    # --- requests ---------------------------------------------------------------------------------------------

    def requests(self) -> list[tuple[Candidate, EvalExample, ChatRequest]]:
        """Every request a run sends (candidate by candidate, examples in order)."""
        out = []
        for cand in self.candidates:
            system = cand.system if cand.system is not None else self.system
            params = {**self.params, **dict(cand.params)}
            for ex in self.examples:
                body = dict(params)
                if ex.tools:
                    body["tools"] = [dict(t) for t in ex.tools]
                    if ex.parallel_tool_calls is not None:
                        body["parallel_tool_calls"] = ex.parallel_tool_calls
                out.append((cand, ex, ChatRequest.build(cand.model, _with_system(ex.messages, system), **body)))
        return out

    def _sync_chat(self) -> ChatCompletions:
        client = self._client
        if isinstance(client, ChatCompletions):
            return client
        if client is None:
            client = Client()
        if not isinstance(client, Client):
            raise ConfigError("run() needs a sync Client (or ChatCompletions); with an AsyncClient use await arun()")
        return ChatCompletions(client, **self._chat_options)

    def _async_chat(self) -> AsyncChatCompletions:
        client = self._client
        if isinstance(client, AsyncChatCompletions):
            return client
        if client is None:
            client = AsyncClient()
        if not isinstance(client, AsyncClient):
            raise ConfigError("arun() needs an AsyncClient (or AsyncChatCompletions); with a Client use run()")
        return AsyncChatCompletions(client, **self._chat_options)

    def estimate(self) -> list[EvaluationEstimate]:
        """What :meth:`run` would send and cost, per candidate, before sending anything (reads the cache)."""
        chat = self._sync_chat() if not isinstance(self._client, AsyncClient | AsyncChatCompletions) else None
        counter = chat if chat is not None else self._async_chat()
        out = []
        try:
            for cand in self.candidates:
                reqs = [(ex, r) for c, ex, r in self.requests() if c is cand]
                todo = [(ex, r) for ex, r in reqs if counter.cached_result(r.key(counter.namespace)) is None]
                prompt = sum(counter.estimate_tokens(r) for _ex, r in todo)
                tok = counter._tokenizer(cand.model)
                completion = sum(tok.count(ex.reference.text) for ex, _r in todo)
                prices = cand.prices()
                cost = None if prices is None else (prompt * prices[0] + completion * prices[1]) / 1e6
                out.append(EvaluationEstimate(cand.label, len(todo), len(reqs) - len(todo), prompt, completion, cost))
        finally:
            if counter is not self._client:
                counter._close_cache()
        return out

    # --- runs -------------------------------------------------------------------------------------------------

    def run(self) -> EvaluationReport:
        """Send every request (cached answers cost nothing), score the answers and return the report."""
        chat = self._sync_chat()
        try:
            plan = self.requests()
            results = chat.create_many([r for _c, _e, r in plan], return_exceptions=True, desc="Evaluating")
            answers = [Answer.from_result(r if isinstance(r, ChatResult) else None) for r in results]
            scores = [scorer.score_many(self._items(plan, answers)) for scorer in self.scorers]
        finally:
            if chat is not self._client:
                chat.close()
        return self._report(plan, results, scores)

    async def arun(self) -> EvaluationReport:
        """The async twin of :meth:`run` (needs an ``AsyncClient``)."""
        chat = self._async_chat()
        try:
            plan = self.requests()
            results = await chat.create_many([r for _c, _e, r in plan], return_exceptions=True, desc="Evaluating")
            answers = [Answer.from_result(r if isinstance(r, ChatResult) else None) for r in results]
            scores = [await scorer.ascore_many(self._items(plan, answers)) for scorer in self.scorers]
        finally:
            if chat is not self._client:
                await chat.aclose()
        return self._report(plan, results, scores)

    @staticmethod
    def _items(
        plan: list[tuple[Candidate, EvalExample, ChatRequest]], answers: list[Answer]
    ) -> list[tuple[Answer, Answer, EvalExample]]:
        return [(answer, ex.reference, ex) for (_c, ex, _r), answer in zip(plan, answers, strict=True)]

    def _report(
        self,
        plan: list[tuple[Candidate, EvalExample, ChatRequest]],
        results: list[ChatResult | BaseException],
        scores: list[list[float | None]],
    ) -> EvaluationReport:
        for scorer, values in zip(self.scorers, scores, strict=True):
            if len(values) != len(plan):
                raise ConfigError(f"scorer {scorer.name!r} returned {len(values)} scores for {len(plan)} answers")
        rows: list[ResultRow] = []
        for k, ((cand, ex, _req), result) in enumerate(zip(plan, results, strict=True)):
            row_scores = {s.name: values[k] for s, values in zip(self.scorers, scores, strict=True)}
            base = ResultRow(
                example=ex.index,
                line=ex.line,
                candidate=cand.label,
                model=cand.model,
                prompt=ex.prompt,
                reference=ex.reference.text,
                prediction="",
                scores=row_scores,
            )
            if not isinstance(result, ChatResult):
                rows.append(replace(base, error=f"{type(result).__name__}: {result}"))
                continue
            prices = cand.prices()
            usage = result.usage
            cost = (
                None
                if prices is None
                else (usage.prompt_tokens * prices[0] + usage.completion_tokens * prices[1]) / 1e6
            )
            rows.append(
                replace(
                    base,
                    prediction=result.text,
                    finish_reason=result.finish_reason,
                    latency=result.latency,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    cost_usd=cost,
                    cached=result.cached,
                )
            )
        return EvaluationReport(
            candidates=[c.label for c in self.candidates],
            models={c.label: c.model for c in self.candidates},
            scorers=[s.name for s in self.scorers],
            rows=rows,
            n_examples=len(self.examples),
            skipped=list(self.skipped),
            higher_is_better={s.name: s.higher_is_better for s in self.scorers},
            usage={c.label: _usage(c, [r for r in rows if r.candidate == c.label]) for c in self.candidates},
            n_boot=self.n_boot,
            confidence=self.confidence,
            seed=self.seed,
        )


def _usage(cand: Candidate, rows: list[ResultRow]) -> CandidateUsage:
    prices = cand.prices()
    ok = [r for r in rows if r.error is None]
    latencies = np.array([r.latency for r in ok if r.latency is not None], dtype=np.float64)
    cost = None if prices is None else sum(r.cost_usd or 0.0 for r in ok)
    spent = None if prices is None else sum(r.cost_usd or 0.0 for r in ok if not r.cached)
    return CandidateUsage(
        candidate=cand.label,
        model=cand.model,
        requests=len(rows),
        cached=sum(r.cached for r in rows),
        errors=len(rows) - len(ok),
        prompt_tokens=sum(r.prompt_tokens for r in ok),
        completion_tokens=sum(r.completion_tokens for r in ok),
        cost_usd=cost,
        spent_usd=spent,
        latency_mean=float(latencies.mean()) if latencies.size else None,
        latency_p50=float(np.quantile(latencies, 0.5)) if latencies.size else None,
        latency_p95=float(np.quantile(latencies, 0.95)) if latencies.size else None,
        price_per_1m=prices,
    )
