"""``exc.docs`` (and a dataset issue's ``docs``) link to a page that exists wherever the package is installed: the
wheel ships docs/ inside the package, and the link is a ``file://`` URI to it with the section's anchor (#15)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import finetune_embed
from finetune_embed import ConfigError, FinetuneEmbedError
from finetune_embed._docs import docs_dir, docs_link
from finetune_embed.dataset import DatasetIssue, IssueCode

ROOT = Path(__file__).resolve().parents[2]


def _target(link: str) -> tuple[Path, str]:
    parts = urlparse(link)
    assert parts.scheme == "file"
    return Path(unquote(parts.path)), parts.fragment


def test_exception_links_point_at_an_existing_section() -> None:
    path, anchor = _target(ConfigError("x").docs)
    assert path.is_file()
    assert path.name == "errors.md"
    assert anchor == "configerror"
    assert "### configerror" in path.read_text(encoding="utf-8").lower()


def test_every_exported_exception_links_to_its_section() -> None:
    for name in finetune_embed.__all__:
        value = getattr(finetune_embed, name)
        if isinstance(value, type) and issubclass(value, FinetuneEmbedError):
            path, anchor = _target(docs_link("errors.md", value.docs_anchor))
            assert f"### {anchor}" in path.read_text(encoding="utf-8").lower(), name


def test_dataset_issue_links() -> None:
    issue = DatasetIssue(None, "", IssueCode.TOO_FEW_EXAMPLES, "error", "m")
    path, anchor = _target(issue.docs)
    assert anchor == "too_few_examples"
    assert f"### {anchor}" in path.read_text(encoding="utf-8").lower()


def test_the_shipped_folder_wins_over_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune_embed._docs as docs

    assert docs_dir() == ROOT / "docs"  # a checkout: the repository's folder
    package = tmp_path / "site-packages" / "finetune_embed"
    (package / "docs").mkdir(parents=True)
    (package / "docs" / "errors.md").write_text("### configerror\n")
    monkeypatch.setattr(docs, "_PACKAGE", package)
    assert docs.docs_dir() == package / "docs"
    assert _target(docs.docs_link("errors.md", "configerror"))[0] == package / "docs" / "errors.md"


@pytest.mark.slow
def test_the_wheel_ships_the_docs(tmp_path: Path) -> None:
    """Build the wheel as pip would and look inside: every page of docs/ is under finetune_embed/docs/."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, env=env, capture_output=True, timeout=600,
    )
    (wheel,) = tmp_path.glob("finetune_embed-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert "errors.md" in pages
    assert {f"finetune_embed/docs/{p}" for p in pages} <= names
