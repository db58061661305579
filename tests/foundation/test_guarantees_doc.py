"""docs/errors.md's "What is guaranteed" names the test behind each promise: every named test exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+(?:::\w+)?)`")


def _section() -> str:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    start = text.index("## What is guaranteed")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _defines(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope: list[ast.stmt] = tree.body
    *owners, function = name.split("::")
    for owner in owners:
        classes = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == owner]
        if not classes:
            return False
        scope = classes[0].body
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function for n in scope)


def test_every_named_test_exists() -> None:
    refs = REF.findall(_section())
    assert len(refs) >= 20, refs
    missing = [
        f"{path}::{name}" for path, name in refs if not (ROOT / path).is_file() or not _defines(ROOT / path, name)
    ]
    assert not missing, f"docs/errors.md names tests that do not exist: {missing}"


def test_the_section_says_what_is_not_guaranteed() -> None:
    section = _section()
    assert "**Guaranteed**" in section
    assert "**Not guaranteed**" in section
    assert section.index("**Guaranteed**") < section.index("**Not guaranteed**")
