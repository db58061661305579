"""Dataset.analyze on the fake's vectors: planted conflicts, duplicates, leaks and outliers are found at their
lines; topics come with sizes, examples and refusal shares."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import AsyncEmbedder, ConfigError, Dataset, Embedder
from finetune_embed.evaluate import DatasetAnalysis, analyze_dataset_async
from finetune_embed.testing import FakeOpenAI

SYSTEM = "You are the support assistant of a parcel delivery company."
QUESTIONS = [
    ("Where is my parcel right now?", "Open Tracking and enter the parcel number."),
    ("How do I change the delivery address?", "Choose Change address under Orders before it ships."),
    ("Can I get a refund for a damaged item?", "Yes: send a photo and we refund within 5 days."),
    ("What are your opening hours?", "We answer every day from 8 am to 8 pm."),
    ("Do you deliver on Sundays?", "Not on Sundays; Saturday delivery costs 3 euros."),
    ("How much does express shipping cost?", "Express costs 9 euros and arrives the next day."),
    ("My parcel arrived empty, what now?", "Report it under Orders and we open a claim."),
    ("Can I pick up the parcel at a shop?", "Yes, choose a pickup point at checkout."),
    ("How do I return an order?", "Print the return label from Orders and drop it at any shop."),
    ("Why was my card charged twice?", "The second charge is a hold that disappears in 3 days."),
    ("How can I contact a human agent?", "Write 'agent' here and a colleague joins within minutes."),
    ("Is my data shared with partners?", "No, we never sell or share your personal data."),
]


def row(question: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


@pytest.fixture
def embedder(fake: FakeOpenAI) -> Embedder:
    return Embedder(fake.client(), dimensions=512, cache=False, progress=False)


def planted_file(path: Path) -> Path:
    """The support set with planted problems; returns the path. Lines (1-based):
    1-12 the clean examples; 13 = line 2's question re-typed with a different answer (a conflict);
    14 = line 5's question in capitals with a different answer (a conflict); 15 = line 9's question and answer
    with other punctuation (a semantic duplicate the lexical check misses); 16 = an exact copy of line 3 (a lexical
    duplicate); 17 = a refusal; 18 = line 7's question with the same answer re-worded."""
    rows = [row(q, a) for q, a in QUESTIONS]
    rows.append(row("How do I change the delivery address", "Addresses cannot be changed after ordering."))
    rows.append(row("DO YOU DELIVER ON SUNDAYS?", "Yes, every Sunday until noon."))
    rows.append(row("How do I return an order??", "Print the return label from Orders and drop it at any shop"))
    rows.append(row(*QUESTIONS[2]))
    rows.append(row("Can you hack my neighbour's account?", "I'm sorry, but I can't help with that."))
    rows.append(row("My parcel arrived empty, what now?", "Please report it under Orders so we can open a claim."))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_planted_conflicts_are_found_at_their_lines(tmp_path: Path, embedder: Embedder) -> None:
    data = Dataset.from_json(planted_file(tmp_path / "support.jsonl"))
    analysis = data.analyze(embedder, clusters=3)
    assert isinstance(analysis, DatasetAnalysis)
    assert analysis.n_examples == 18
    assert [c.lines for c in analysis.conflicts] == [[2, 13], [5, 14], [7, 18]]
    first = analysis.conflicts[0]
    assert first.answers == {
        "Choose Change address under Orders before it ships.": [2],
        "Addresses cannot be changed after ordering.": [13],
    }
    assert first.similarity >= 0.95
    assert "lines 2, 13" in str(first)
    pairs = {d.lines: d.lexical for d in analysis.near_duplicates}
    assert pairs == {(3, 16): True, (9, 15): False}  # line 15 differs only in punctuation: only meaning finds it
    assert [d.lines for d in analysis.semantic_duplicates] == [(9, 15)]
    assert analysis.refusal_share == pytest.approx(1 / 18)
    text = analysis.format()
    assert "Conflicting examples (near-identical prompts, different answers): 3" in text
    assert "1 beyond the lexical check" in text


def test_a_looser_answer_threshold_accepts_rewordings(tmp_path: Path, embedder: Embedder) -> None:
    data = Dataset.from_json(planted_file(tmp_path / "support.jsonl"))
    loose = data.analyze(embedder, clusters=2, answer_similarity=0.5)
    assert [c.lines for c in loose.conflicts] == [[2, 13], [5, 14]]  # lines 7 and 18 now count as the same answer
    with pytest.raises(ConfigError, match="cosine threshold"):
        data.analyze(embedder, similarity=1.5)


def test_topics_have_sizes_examples_terms_and_refusal_shares(embedder: Embedder) -> None:
    parcels = [row(f"Where is parcel number {i} now, tracking says in transit", "Check Tracking.") for i in range(12)]
    refunds = [row(f"Refund for order {i}: the item was broken and damaged", "We refund in 5 days.") for i in range(8)]
    refusals = [
        row(f"Give me the home address of customer {i} please", "I'm sorry, but I can't share that.") for i in range(4)
    ]
    data = Dataset.from_list(parcels + refunds + refusals)
    analysis = data.analyze(embedder, clusters=3)
    sizes = sorted(c.size for c in analysis.clusters)
    assert sizes == [4, 8, 12]
    assert sum(c.share for c in analysis.clusters) == pytest.approx(1.0)
    by_size = {c.size: c for c in analysis.clusters}
    assert by_size[12].lines == list(range(1, 13))  # lines of in-memory data are 1-based positions
    assert by_size[4].refusal_share == 1.0
    assert by_size[12].refusal_share == 0.0
    assert "parcel" in by_size[12].terms
    assert by_size[8].top_answers == [("We refund in 5 days.", 8)]
    assert all(line in by_size[8].lines for line in by_size[8].examples)
    frame = analysis.to_pandas()
    assert list(frame["line"]) == list(range(1, 25))
    assert frame.groupby("cluster").size().sort_values().tolist() == [4, 8, 12]


def test_outliers_stand_out(embedder: Embedder) -> None:
    similar = [
        row(f"Where is my parcel {i}? The tracking page shows parcel {i} in transit", "Soon.") for i in range(20)
    ]
    odd = row("Compose a sonnet about quantum chromodynamics and medieval falconry", "Sure.")
    data = Dataset.from_list([*similar[:10], odd, *similar[10:]])
    analysis = data.analyze(embedder, clusters=2)
    assert [o.line for o in analysis.outliers] == [11]
    assert analysis.outliers[0].z > 3.5
    assert "sonnet" in analysis.outliers[0].prompt


def test_validation_leakage_beyond_the_lexical_check(tmp_path: Path, embedder: Embedder) -> None:
    train = Dataset.from_list([row(q, a) for q, a in QUESTIONS])
    validation = Dataset.from_list(
        [
            row("Is there a fee for returns?", "Returns are free."),
            row(*QUESTIONS[4]),  # the same example: the lexical check finds it too
            row("what are your opening hours", "We answer every day from 8 am to 8 pm"),  # only meaning finds it
        ]
    )
    analysis = train.analyze(embedder, validation=validation, clusters=2)
    assert analysis.leaks is not None
    assert [(x.validation_line, x.train_line, x.lexical) for x in analysis.leaks] == [(2, 5, True), (3, 4, False)]
    path = tmp_path / "valid.jsonl"
    validation.to_json(path)
    assert train.analyze(embedder, validation=path, clusters=2).leaks == analysis.leaks
    assert train.analyze(embedder, clusters=2).leaks is None


def test_examples_without_a_reply_are_skipped_and_dicts_are_json(embedder: Embedder) -> None:
    data = Dataset.from_list([*[row(q, a) for q, a in QUESTIONS[:5]], {"messages": [{"role": "user", "content": "?"}]}])
    analysis = data.analyze(embedder, clusters=2)
    assert analysis.skipped == [6]
    assert analysis.n_examples == 5
    json.dumps(analysis.to_dict(), allow_nan=False)


def test_async_twin_matches(tmp_path: Path, fake: FakeOpenAI, embedder: Embedder) -> None:
    data = Dataset.from_json(planted_file(tmp_path / "support.jsonl"))
    sync = data.analyze(embedder, clusters=3)

    async def main() -> DatasetAnalysis:
        aembedder = AsyncEmbedder(fake.async_client(), dimensions=512, cache=False, progress=False)
        return await analyze_dataset_async(data, aembedder, clusters=3)

    result = asyncio.run(main())
    assert result.conflicts == sync.conflicts
    assert result.near_duplicates == sync.near_duplicates
    assert [c.lines for c in result.clusters] == [c.lines for c in sync.clusters]
