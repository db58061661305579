"""The model catalog: dated facts, aliases, availability and overrides."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from finetune_embed.catalog import ModelCatalog, UnknownModelWarning, default_catalog


@pytest.fixture(name="cat")
def _cat() -> ModelCatalog:
    return ModelCatalog.load_default()


class TestFacts:
    def test_every_figure_has_a_source_and_the_catalog_a_date(self, cat: ModelCatalog) -> None:
        """Each entry names sources that the catalog defines, and the catalog carries its as_of date."""
        assert cat.as_of == date(2026, 11, 25)
        for info in [*cat.fine_tune_models.values(), *cat.embedding_models.values()]:
            assert info.sources, info.name
            for key in info.sources:
                assert key in cat.sources, (info.name, key)

    def test_fine_tune_limits_and_prices(self, cat: ModelCatalog) -> None:
        """Per-example limits, methods and prices from the reference table."""
        mini = cat.fine_tune_model("gpt-4o-mini")
        assert mini.name == "gpt-4o-mini-2024-07-18"
        assert mini.max_example_tokens == 65536
        assert mini.training_price_per_1m == 3.0
        assert mini.encoding == "o200k_base"
        assert cat.fine_tune_model("gpt-3.5-turbo").max_example_tokens == 16385
        assert cat.fine_tune_model("gpt-3.5-turbo-0613").max_example_tokens == 4096
        assert cat.fine_tune_model("o4-mini").methods == frozenset({"reinforcement"})
        assert "dpo" in cat.fine_tune_model("gpt-4.1-mini").methods

    def test_embedding_models(self, cat: ModelCatalog) -> None:
        """Dimensions, the dimensions parameter, limits and both prices."""
        small = cat.embedding_model("text-embedding-3-small")
        assert (small.dimensions, small.accepts_dimensions, small.max_input_tokens) == (1536, True, 8191)
        assert (small.price_per_1m, small.batch_price_per_1m) == (0.02, 0.01)
        assert cat.embedding_model("text-embedding-ada-002").accepts_dimensions is False
        assert cat.embedding_model("text-embedding-3-large").dimensions == 3072
        assert (cat.max_inputs_per_request, cat.max_tokens_per_request) == (2048, 300_000)

    def test_names_resolve(self, cat: ModelCatalog) -> None:
        """Aliases, fine-tuned model names and newer snapshots of a known family resolve to their base."""
        assert cat.fine_tune_model("ft:gpt-4o-mini-2024-07-18:acme:support:abc").name == "gpt-4o-mini-2024-07-18"
        assert cat.find_fine_tune_model("gpt-4.1-2026-01-01") is not None
        assert cat.find_fine_tune_model("gpt-4.1-mini-2025-04-14").name == "gpt-4.1-mini-2025-04-14"  # type: ignore[union-attr]

    def test_unknown_model_warns_never_crashes(self, cat: ModelCatalog) -> None:
        """An unknown model gets a generic entry and a warning."""
        with pytest.warns(UnknownModelWarning, match="not in finetune_embed's catalog"):
            info = cat.fine_tune_model("my-custom-model")
        assert not info.known
        assert info.max_example_tokens is None
        with pytest.warns(UnknownModelWarning):
            emb = cat.embedding_model("nomic-embed-text")
        assert emb.max_input_tokens == 8191


class TestAvailability:
    @pytest.mark.parametrize(
        ("model", "day", "status"),
        [
            ("gpt-4o-mini", date(2026, 6, 1), "available"),
            ("gpt-4o-mini", date(2026, 11, 25), "shutting_down"),
            ("gpt-4o-mini", date(2027, 1, 7), "no_new_jobs"),
            ("gpt-4o-mini", date(2027, 1, 14), "shut_down"),
            ("gpt-3.5-turbo", date(2026, 10, 23), "shut_down"),
            ("gpt-4.1-nano", date(2026, 11, 25), "shut_down"),
            ("o4-mini", date(2026, 10, 22), "shutting_down"),
            ("unknown-model", date(2026, 11, 25), "unknown"),
        ],
    )
    def test_openai_dates(self, cat: ModelCatalog, model: str, day: date, status: str) -> None:
        """Warnings before a shutdown or the 2027-01-06 cut-off, errors after."""
        avail = cat.availability(model, on=day)
        assert avail.status == status
        assert avail.ok == (status not in ("shut_down", "no_new_jobs"))

    def test_cutoff_message_points_to_azure(self, cat: ModelCatalog) -> None:
        """After OpenAI's last day for new jobs, the message says where to go."""
        avail = cat.availability("gpt-4.1", on=date(2027, 1, 7))
        assert "2027-01-06" in avail.message
        assert "Azure" in avail.message

    def test_azure_keeps_fine_tuning(self, cat: ModelCatalog) -> None:
        """On Azure the OpenAI cut-off does not apply; OpenAI shutdowns are only a warning."""
        assert cat.availability("gpt-4o-mini", on=date(2027, 2, 1), provider="azure").ok
        assert cat.availability("gpt-4.1-nano", on=date(2026, 11, 25), provider="azure").status == "shutting_down"
        assert cat.availability("anything", provider="compatible").ok


class TestOverrides:
    def test_override_in_one_catalog(self, cat: ModelCatalog) -> None:
        """Any figure can be overridden; unknown models can be added."""
        cat.override_fine_tune_model("gpt-4o-mini", training_price_per_1m=2.5, shutdown="2027-06-30")
        info = cat.fine_tune_model("gpt-4o-mini")
        assert info.training_price_per_1m == 2.5
        assert info.shutdown == date(2027, 6, 30)
        added = cat.override_fine_tune_model("my-model", max_example_tokens=1000, methods=["supervised"])
        assert cat.fine_tune_model("my-model") == added
        cat.override_embedding_model("text-embedding-3-small", price_per_1m=0.015)
        assert cat.embedding_model("text-embedding-3-small").price_per_1m == 0.015

    def test_override_file_from_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """FINETUNE_EMBED_CATALOG names a JSON file of the same shape that extends the shipped catalog."""
        extra = {
            "embedding_models": [
                {
                    "name": "my-embedder",
                    "dimensions": 768,
                    "accepts_dimensions": False,
                    "price_per_1m": 0.0,
                    "sources": ["mine"],
                }
            ],
            "sources": {"mine": "our own server"},
        }
        path = tmp_path / "extra.json"
        path.write_text(json.dumps(extra), encoding="utf-8")
        monkeypatch.setenv("FINETUNE_EMBED_CATALOG", str(path))
        cat = ModelCatalog.load_default()
        assert cat.embedding_model("my-embedder").dimensions == 768
        assert cat.fine_tune_model("gpt-4o").max_example_tokens == 65536

    def test_default_catalog_is_shared(self) -> None:
        """The process-wide catalog is loaded once."""
        assert default_catalog() is default_catalog()
