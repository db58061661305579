"""A message name outside [a-zA-Z0-9_-] draws the invalid_message_name warning, in files and in memory."""

from __future__ import annotations

from dataset_helpers import good_rows

from finetune_embed.dataset import CODE_INFO, Dataset, IssueCode


def test_name_with_space_and_punctuation_is_a_warning_with_a_suggestion() -> None:
    rows = good_rows(10)
    rows[1]["messages"][1]["name"] = "Jane Doe!"
    rows[2]["messages"][1]["name"] = "jane_doe-2"  # allowed
    report = Dataset.from_list(rows).validate()
    issues = [i for i in report.issues if i.code is IssueCode.INVALID_MESSAGE_NAME]
    assert [(i.line, i.path, i.severity) for i in issues] == [(2, "messages[1].name", "warning")]
    assert "'Jane Doe!'" in issues[0].message
    assert "write it as 'Jane_Doe'" in issues[0].message
    assert report.ok  # a warning: the file can still be uploaded
    assert CODE_INFO[IssueCode.INVALID_MESSAGE_NAME].severity == "warning"


def test_name_that_has_no_allowed_character_suggests_the_allowed_set() -> None:
    rows = good_rows(10)
    rows[0]["messages"][2]["name"] = "???"
    (issue,) = [i for i in Dataset.from_list(rows).validate().issues if i.code is IssueCode.INVALID_MESSAGE_NAME]
    assert issue.message.endswith("use letters, digits, _ and - only")
