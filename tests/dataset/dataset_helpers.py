"""Helpers shared by the dataset tests (imported as ``dataset_helpers``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = date(2026, 11, 25)  # the day the catalog's availability facts were written for


def manifest() -> dict[str, Any]:
    """The corpus manifest: file name -> {"options", "expected": [[code, line, path], ...]}."""
    loaded: dict[str, Any] = json.loads((DATA / "MANIFEST.json").read_text(encoding="utf-8"))
    return loaded


def options_of(spec: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """validate_file keyword arguments from a manifest entry, and the codes to ignore."""
    opts = dict(spec["options"])
    ignore = set(opts.pop("ignore", []))
    if "on" in opts:
        opts["on"] = date.fromisoformat(opts["on"])
    return opts, ignore


def good_rows(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct valid chat examples."""
    return [
        {
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": f"What is {i} + {i}?"},
                {"role": "assistant", "content": f"{2 * i}."},
            ]
        }
        for i in range(start, start + n)
    ]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
