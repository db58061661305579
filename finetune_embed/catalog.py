"""The model catalog: what each fine-tunable and embedding model accepts and costs, as dated data.

The figures live in ``finetune_embed/data/models.json``; each one names its source and the catalog its date
(``as_of``). Users override any figure, for the whole process or for one catalog::

    from finetune_embed import catalog
    catalog.override_fine_tune_model("gpt-4o-mini", training_price_per_1m=2.5)
    catalog.default_catalog().fine_tune_model("gpt-4o-mini").training_price_per_1m   # 2.5

or point ``FINETUNE_EMBED_CATALOG`` at a JSON file of the same shape, whose entries replace or extend the
shipped ones. An unknown model never crashes anything: it gets a generic entry and a warning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any, Literal

__all__ = [
    "Availability",
    "EmbeddingModelInfo",
    "FineTuneModelInfo",
    "ModelCatalog",
    "UnknownModelWarning",
    "default_catalog",
    "override_embedding_model",
    "override_fine_tune_model",
]

Provider = Literal["openai", "azure", "compatible"]


class UnknownModelWarning(UserWarning):
    """A model the catalog does not know: generic limits are assumed."""


@dataclass(frozen=True)
class FineTuneModelInfo:
    """A fine-tunable base model.

    ``max_example_tokens`` is the per-example training context (longer examples are truncated);
    ``training_price_per_1m`` is USD per 1M billed training tokens (``None`` when billed otherwise, see
    ``training_price_unit``); ``shutdown`` is OpenAI's announced shutdown date of the base model.
    ``input_price_per_1m`` / ``output_price_per_1m`` are USD per 1M tokens for calling the base model, and
    ``ft_input_price_per_1m`` / ``ft_output_price_per_1m`` for calling a model fine-tuned from it (``None`` when the
    catalog has no sourced figure).
    """

    name: str
    encoding: str = "o200k_base"
    max_example_tokens: int | None = None
    methods: frozenset[str] = frozenset({"supervised"})
    training_price_per_1m: float | None = None
    training_price_unit: str = "1M tokens"
    shutdown: date | None = None
    aliases: tuple[str, ...] = ()
    prompt_completion: bool = False
    vision: bool = False
    sources: tuple[str, ...] = ()
    known: bool = True
    input_price_per_1m: float | None = None
    output_price_per_1m: float | None = None
    ft_input_price_per_1m: float | None = None
    ft_output_price_per_1m: float | None = None


@dataclass(frozen=True)
class EmbeddingModelInfo:
    """An embedding model: default ``dimensions``, whether the ``dimensions`` parameter is accepted, limits, and
    USD prices per 1M input tokens (standard and Batch API)."""

    name: str
    encoding: str = "cl100k_base"
    dimensions: int | None = None
    accepts_dimensions: bool = False
    max_input_tokens: int = 8191
    price_per_1m: float | None = None
    batch_price_per_1m: float | None = None
    sources: tuple[str, ...] = ()
    known: bool = True


@dataclass(frozen=True)
class Availability:
    """Whether a model can be fine-tuned on a given day, on a given provider."""

    status: Literal["available", "shutting_down", "shut_down", "no_new_jobs", "unknown"]
    message: str
    shutdown: date | None = None

    @property
    def ok(self) -> bool:
        """False when the provider will refuse the model."""
        return self.status not in ("shut_down", "no_new_jobs")


def _to_date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


@dataclass
class ModelCatalog:
    """Lookup of model facts by name. Resolves aliases (``gpt-4o-mini``), dated snapshots and fine-tuned names
    (``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` resolves to its base)."""

    fine_tune_models: dict[str, FineTuneModelInfo] = field(default_factory=dict)
    embedding_models: dict[str, EmbeddingModelInfo] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    as_of: date | None = None
    new_jobs_until: date | None = None
    max_inputs_per_request: int = 2048
    max_tokens_per_request: int = 300_000
    max_batch_file_inputs: int = 50_000
    warning_days: int = 60

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCatalog:
        """Build a catalog from the JSON shape of ``data/models.json``."""
        cat = cls()
        cat.update_from_dict(data)
        return cat

    def update_from_dict(self, data: dict[str, Any]) -> None:
        """Add or replace entries from a dict of the ``models.json`` shape; malformed data raises
        :class:`~finetune_embed.ConfigError` (nothing is changed then)."""
        staged = ModelCatalog(
            fine_tune_models=dict(self.fine_tune_models),
            embedding_models=dict(self.embedding_models),
            sources=dict(self.sources),
            as_of=self.as_of,
            new_jobs_until=self.new_jobs_until,
            max_inputs_per_request=self.max_inputs_per_request,
            max_tokens_per_request=self.max_tokens_per_request,
            max_batch_file_inputs=self.max_batch_file_inputs,
            warning_days=self.warning_days,
        )
        try:
            if not isinstance(data, dict):
                raise TypeError(f"the data is {type(data).__name__}, not an object")
            staged._update(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            from ._exceptions import ConfigError

            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(
                f"Malformed model catalog data ({type(exc).__name__}: {what}); it must have the shape of "
                "finetune_embed/data/models.json (lists of objects with at least a 'name', ISO dates)."
            ) from exc
        self.__dict__.update(staged.__dict__)

    def _update(self, data: dict[str, Any]) -> None:
        self.sources.update(data.get("sources", {}))
        if data.get("as_of"):
            self.as_of = _to_date(data["as_of"])
        cut = data.get("openai_fine_tuning_new_jobs_until")
        if cut:
            self.new_jobs_until = _to_date(cut["date"])
        limits = data.get("embedding_request_limits") or {}
        self.max_inputs_per_request = int(limits.get("max_inputs", self.max_inputs_per_request))
        self.max_tokens_per_request = int(limits.get("max_tokens_per_request", self.max_tokens_per_request))
        self.max_batch_file_inputs = int(limits.get("max_batch_inputs", self.max_batch_file_inputs))
        for raw in data.get("fine_tune_models", []):
            info = FineTuneModelInfo(
                name=raw["name"],
                encoding=raw.get("encoding", "o200k_base"),
                max_example_tokens=raw.get("max_example_tokens"),
                methods=frozenset(raw.get("methods", ["supervised"])),
                training_price_per_1m=raw.get("training_price_per_1m"),
                training_price_unit=raw.get("training_price_unit", "1M tokens"),
                shutdown=_to_date(raw.get("shutdown")),
                aliases=tuple(raw.get("aliases", ())),
                prompt_completion=bool(raw.get("prompt_completion", False)),
                vision=bool(raw.get("vision", False)),
                sources=tuple(raw.get("sources", ())),
                input_price_per_1m=raw.get("input_price_per_1m"),
                output_price_per_1m=raw.get("output_price_per_1m"),
                ft_input_price_per_1m=raw.get("ft_input_price_per_1m"),
                ft_output_price_per_1m=raw.get("ft_output_price_per_1m"),
            )
            self.fine_tune_models[info.name] = info
        for raw in data.get("embedding_models", []):
            emb = EmbeddingModelInfo(
                name=raw["name"],
                encoding=raw.get("encoding", "cl100k_base"),
                dimensions=raw.get("dimensions"),
                accepts_dimensions=bool(raw.get("accepts_dimensions", False)),
                max_input_tokens=int(raw.get("max_input_tokens", 8191)),
                price_per_1m=raw.get("price_per_1m"),
                batch_price_per_1m=raw.get("batch_price_per_1m"),
                sources=tuple(raw.get("sources", ())),
            )
            self.embedding_models[emb.name] = emb

    @classmethod
    def load_default(cls) -> ModelCatalog:
        """The shipped catalog, extended by the JSON file named in ``FINETUNE_EMBED_CATALOG`` if set."""
        text = resources.files("finetune_embed").joinpath("data/models.json").read_text(encoding="utf-8")
        cat = cls.from_dict(json.loads(text))
        extra = os.environ.get("FINETUNE_EMBED_CATALOG")
        if extra:
            from ._exceptions import ConfigError
            from ._lines import open_input

            try:
                with open_input(extra) as fh:
                    data = json.loads(fh.read().decode("utf-8"))
            except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON
                raise ConfigError(
                    f"FINETUNE_EMBED_CATALOG names {extra}, which is not a JSON file ({type(exc).__name__}: {exc}); "
                    "fix it or unset the variable."
                ) from exc
            try:
                cat.update_from_dict(data)
            except ConfigError as exc:
                raise ConfigError(f"FINETUNE_EMBED_CATALOG file {extra}: {exc}") from exc
        return cat

    # --- lookups --------------------------------------------------------------------------------------------

    @staticmethod
    def base_model_name(model: str) -> str:
        """``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` → ``gpt-4o-mini-2024-07-18``; other names unchanged."""
        if model.startswith("ft:"):
            parts = model.split(":")
            if len(parts) > 1 and parts[1]:
                return parts[1]
        return model

    def find_fine_tune_model(self, model: str) -> FineTuneModelInfo | None:
        """The entry for ``model`` (an alias, a snapshot or a fine-tuned model's name), or ``None``."""
        name = self.base_model_name(model)
        if name in self.fine_tune_models:
            return self.fine_tune_models[name]
        for info in self.fine_tune_models.values():
            if name in info.aliases:
                return info
        # an undated name of a known family, e.g. a newer snapshot: longest alias that prefixes the name
        best: FineTuneModelInfo | None = None
        best_len = 0
        for info in self.fine_tune_models.values():
            for alias in info.aliases:
                if name.startswith(alias + "-") and len(alias) > best_len and _is_snapshot_suffix(
                    name[len(alias) + 1 :]
                ):
                    best, best_len = info, len(alias)
        return best

    def fine_tune_model(self, model: str, *, warn: bool = True) -> FineTuneModelInfo:
        """The entry for ``model``; an unknown model gets a generic entry and an :class:`UnknownModelWarning`."""
        info = self.find_fine_tune_model(model)
        if info is not None:
            return info
        if warn:
            warnings.warn(
                f"Model {model!r} is not in finetune_embed's catalog (as of {self.as_of}); assuming o200k_base, "
                "no per-example token limit and no price. Add it with catalog.override_fine_tune_model().",
                UnknownModelWarning,
                stacklevel=2,
            )
        return FineTuneModelInfo(name=model, known=False)

    def find_embedding_model(self, model: str) -> EmbeddingModelInfo | None:
        """The entry for an embedding model, or ``None``."""
        return self.embedding_models.get(model)

    def embedding_model(self, model: str, *, warn: bool = True) -> EmbeddingModelInfo:
        """The entry for ``model``; an unknown model gets generic limits (8191 tokens, cl100k_base) and a warning."""
        info = self.find_embedding_model(model)
        if info is not None:
            return info
        if warn:
            warnings.warn(
                f"Embedding model {model!r} is not in finetune_embed's catalog; assuming cl100k_base, 8191 tokens "
                "per input, `dimensions` passed through, and no price.",
                UnknownModelWarning,
                stacklevel=2,
            )
        return EmbeddingModelInfo(name=model, accepts_dimensions=True, known=False)

    def availability(self, model: str, *, on: date | None = None, provider: Provider = "openai") -> Availability:
        """Can ``model`` be fine-tuned on day ``on`` (default today) at ``provider``?

        On OpenAI: an error after the base model's shutdown date and after OpenAI's last day for new jobs
        (2027-01-06), a warning in the ``warning_days`` before either. Azure OpenAI keeps fine-tuning: only the
        catalog's facts about the model apply, as warnings. Compatible servers: always available.
        """
        today = on or date.today()
        info = self.find_fine_tune_model(model)
        if provider == "compatible":
            return Availability("available", f"{model}: availability is up to the server.")
        if info is None:
            return Availability("unknown", f"{model} is not in the catalog; its availability is unknown.")
        shutdown = info.shutdown
        if provider == "azure":
            if shutdown and today >= shutdown:
                return Availability(
                    "shutting_down",
                    f"{info.name} was shut down on OpenAI on {shutdown}; Azure OpenAI retires models on its own "
                    "schedule, check your region's model retirement table.",
                    shutdown,
                )
            return Availability("available", f"{info.name} is available on Azure OpenAI.", shutdown)
        if shutdown and today >= shutdown:
            return Availability(
                "shut_down",
                f"{info.name} was shut down by OpenAI on {shutdown}; pick a newer base model, or fine-tune it on "
                "Azure OpenAI.",
                shutdown,
            )
        cutoff = self.new_jobs_until
        if cutoff and today > cutoff:
            return Availability(
                "no_new_jobs",
                f"OpenAI accepts no new fine-tuning jobs after {cutoff}; use Azure OpenAI (Client.azure(...)).",
                shutdown,
            )
        notes = []
        if cutoff and (cutoff - today).days <= self.warning_days:
            notes.append(f"OpenAI accepts no new fine-tuning jobs after {cutoff} ({(cutoff - today).days} days)")
        if shutdown and (shutdown - today).days <= self.warning_days:
            notes.append(
                f"{info.name} shuts down on {shutdown} ({(shutdown - today).days} days); models fine-tuned from "
                "it stop working then too"
            )
        if notes:
            return Availability("shutting_down", "; ".join(notes) + ". Azure OpenAI keeps fine-tuning.", shutdown)
        return Availability("available", f"{info.name} is available.", shutdown)

    # --- overrides ------------------------------------------------------------------------------------------

    def override_fine_tune_model(self, model: str, **changes: Any) -> FineTuneModelInfo:
        """Replace fields of a fine-tunable model's entry (adding the model if unknown); returns the new entry."""
        current = self.find_fine_tune_model(model) or FineTuneModelInfo(name=model)
        if "shutdown" in changes and isinstance(changes["shutdown"], str):
            changes["shutdown"] = date.fromisoformat(changes["shutdown"])
        if "methods" in changes:
            changes["methods"] = frozenset(changes["methods"])
        updated = dataclasses.replace(current, **changes, known=True)
        self.fine_tune_models[updated.name] = updated
        return updated

    def override_embedding_model(self, model: str, **changes: Any) -> EmbeddingModelInfo:
        """Replace fields of an embedding model's entry (adding the model if unknown); returns the new entry."""
        current = self.find_embedding_model(model) or EmbeddingModelInfo(name=model)
        updated = dataclasses.replace(current, **changes, known=True)
        self.embedding_models[updated.name] = updated
        return updated


def _is_snapshot_suffix(text: str) -> bool:
    pieces = text.split("-")
    return all(p.isdigit() for p in pieces) and bool(pieces)


_default: ModelCatalog | None = None
_default_lock = threading.Lock()


def default_catalog() -> ModelCatalog:
    """The process-wide catalog (loaded once, on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelCatalog.load_default()
        return _default


def override_fine_tune_model(model: str, **changes: Any) -> FineTuneModelInfo:
    """Override a fine-tunable model's figures in the process-wide catalog."""
    return default_catalog().override_fine_tune_model(model, **changes)


def override_embedding_model(model: str, **changes: Any) -> EmbeddingModelInfo:
    """Override an embedding model's figures in the process-wide catalog."""
    return default_catalog().override_embedding_model(model, **changes)
