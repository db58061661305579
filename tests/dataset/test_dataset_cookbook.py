"""The cookbook's own data: its counting vectors reproduced, and the drone dataset's real bug found."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_embed.dataset import Dataset, IssueCode, default_epochs

TOY_COOKBOOK = [45, 111, 26, 28, 8032]
TOY_ASSISTANT_COOKBOOK = [10, 28, 9, 4, 8000]
# our own count for gpt-4o-mini (o200k_base, same per-message framing); documented in docs/datasets.md
TOY_GPT_4O_MINI = [43, 106, 26, 27, 8031]
TOY_GPT_4O_MINI_ASSISTANT = [8, 25, 9, 3, 8000]


@pytest.fixture
def toy(cookbook: Path) -> Path:
    return cookbook / "toy_chat_fine_tuning.jsonl"


def test_cookbook_counting_vectors(toy: Path) -> None:
    counts = Dataset.from_json(toy).token_counts(counting="cookbook")
    assert [c.total for c in counts] == TOY_COOKBOOK
    assert [c.assistant for c in counts] == TOY_ASSISTANT_COOKBOOK
    assert sum(TOY_COOKBOOK) == 8242


def test_cookbook_distribution_epochs_and_billing(toy: Path) -> None:
    stats = Dataset.stats_file(toy, counting="cookbook")
    d = stats.tokens_per_example
    assert (d.min, d.max, d.p50) == (26, 8032, 45)
    assert d.p10 == pytest.approx(26.8)  # the notebook prints np.quantile(0.1) as "p5"
    assert d.p90 == pytest.approx(4863.6)  # ... and np.quantile(0.9) as "p95"
    assert d.mean == pytest.approx(8242 / 5)
    assert stats.encoding == "cl100k_base"
    assert stats.n_epochs == 20
    assert stats.max_example_tokens == 16_385  # the notebook's constant when no model is given
    assert (stats.billed_tokens_per_epoch, stats.billed_tokens) == (8242, 164_840)
    assert stats.n_missing_system == 1
    assert stats.n_missing_user == 1
    assert stats.n_over_limit == 0


@pytest.mark.parametrize(("cap", "per_epoch"), [(4096, 4306), (16_385, 8242), (65_536, 8242)])
def test_cookbook_billing_with_caps(toy: Path, cap: int, per_epoch: int) -> None:
    stats = Dataset.from_json(toy).stats(counting="cookbook", max_example_tokens=cap)
    assert stats.billed_tokens_per_epoch == per_epoch
    assert stats.billed_tokens == per_epoch * 20
    assert stats.n_over_limit == (1 if cap == 4096 else 0)


def test_our_counts_use_the_models_own_encoding(toy: Path) -> None:
    ds = Dataset.from_json(toy)
    mini = ds.token_counts(model="gpt-4o-mini")
    assert [c.total for c in mini] == TOY_GPT_4O_MINI
    assert [c.assistant for c in mini] == TOY_GPT_4O_MINI_ASSISTANT
    # gpt-3.5-turbo uses cl100k_base: there our formula and the cookbook's agree exactly
    assert [c.total for c in ds.token_counts(model="gpt-3.5-turbo")] == TOY_COOKBOOK
    stats = ds.stats(model="gpt-4o-mini")
    assert stats.encoding == "o200k_base"
    assert stats.model == "gpt-4o-mini-2024-07-18"
    assert stats.total_tokens == sum(TOY_GPT_4O_MINI) == 8233
    assert stats.max_example_tokens == 65_536
    assert stats.billed_tokens == 20 * 8233
    assert stats.price_per_1m == 3.0
    assert stats.cost_usd == pytest.approx(20 * 8233 / 1e6 * 3.0)
    assert stats.tokens_by_role["other"] == 15  # 3 tokens of reply priming per example


@pytest.mark.parametrize(
    ("n", "epochs"),
    [
        (1, 25),
        (4, 25),
        (5, 20),
        (10, 10),
        (20, 5),
        (33, 3),
        (34, 3),
        (100, 3),
        (8333, 3),
        (8334, 2),
        (12500, 2),
        (25000, 1),
        (25001, 1),
    ],
)
def test_default_epochs_vectors(n: int, epochs: int) -> None:
    assert default_epochs(n) == epochs


def test_drone_double_encoded_arguments(cookbook: Path) -> None:
    report = Dataset.validate_file(cookbook / "drone_training_excerpt.jsonl")
    flagged = report.lines_with(IssueCode.DOUBLE_ENCODED_ARGUMENTS)
    assert flagged == [3, 4, 5, 6]
    for issue in report.by_code(IssueCode.DOUBLE_ENCODED_ARGUMENTS):
        assert issue.path == "messages[2].tool_calls[0].function.arguments"
        assert issue.severity == "error"
        assert f"Example {issue.line}, message 3" in issue.message
    # lines 1-2 pass: no issue at all on them (the cookbook notebook flags every line 3 times)
    assert not [i for i in report.issues if i.line in (1, 2)]
    # the only other issue is the file-level count (6 < 10 examples)
    assert {i.code for i in report.issues if i.line is None} == {IssueCode.TOO_FEW_EXAMPLES}


def test_drone_fix_decodes_the_arguments_once(cookbook: Path, tmp_path: Path) -> None:
    import json
    import shutil

    src = tmp_path / "drone.jsonl"
    shutil.copy(cookbook / "drone_training_excerpt.jsonl", src)
    result = Dataset.fix_file(src)
    assert result.changes == {"double_encoded_arguments": 4}
    assert result.n_kept == 6
    assert result.n_rejected == 0
    rows = [json.loads(line) for line in result.fixed_path.read_text().splitlines()]
    args = [json.loads(r["messages"][2]["tool_calls"][0]["function"]["arguments"]) for r in rows]
    assert args[2] == {"location": "current"}
    assert args[5] == {"location": "home_base"}
    assert result.report is not None
    assert not result.report.by_code(IssueCode.DOUBLE_ENCODED_ARGUMENTS)
