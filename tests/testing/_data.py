"""Small JSONL builders for the fake's tests."""

from __future__ import annotations

import json
from typing import Any


def chat_example(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": str(2 * i)},
        ]
    }


def jsonl(rows: list[Any]) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode("utf-8")


def chat_file(n: int = 12) -> bytes:
    return jsonl([chat_example(i) for i in range(n)])


def embedding_lines(texts: list[list[str]], model: str = "text-embedding-3-small", start: int = 0) -> bytes:
    return jsonl(
        [
            {
                "custom_id": f"req-{start + i}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": model, "input": t},
            }
            for i, t in enumerate(texts)
        ]
    )
