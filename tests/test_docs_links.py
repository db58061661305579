"""Every relative link in README, CHANGELOG, DEVELOPERS and docs/ points at a file that exists (and, with a
``#fragment``, at a heading of that file); pages whose examples read ``../shared/data`` say where to get the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")])
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    return _CODE.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8")))}


def test_pages_are_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "CHANGELOG.md", "datasets.md", "fine-tuning.md", "errors.md"} <= names


def test_slugs_follow_github() -> None:
    assert _slug("Over loopback HTTP") == "over-loopback-http"
    assert _slug("`tokenizerunavailableerror`") == "tokenizerunavailableerror"
    assert _slug("4. Iterate on data quality") == "4-iterate-on-data-quality"


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or heading does not exist."""
    broken = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(f"{target} (no heading #{fragment} in {dest.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_finds_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "datasets.md").write_text("# Datasets\n## Command line\n", encoding="utf-8")
    page.write_text(
        "see [datasets](dataset.md), [ok](datasets.md), [cli](datasets.md#command-line), [bad](datasets.md#nope), "
        "`[code](x.md)`, [web](https://example.com/x.md)\n",
        encoding="utf-8",
    )
    found = broken_links(page)
    assert len(found) == 2
    assert found[0].startswith("dataset.md (no file")
    assert found[1] == "datasets.md#nope (no heading #nope in datasets.md)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_using_shared_data_say_where_to_get_it(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    for name in sorted({m for b in blocks for m in re.findall(r"\.\./shared/data/cookbook/([\w.-]+)", b)}):
        assert re.search(rf"\]\(https://github\.com/openai/openai-cookbook/[^)]*{re.escape(name)}\)", text), name
