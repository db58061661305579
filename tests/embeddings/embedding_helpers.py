"""Helpers shared by the embeddings tests."""

from __future__ import annotations


def words(n: int, seed: int = 0) -> str:
    """A text of about ``n`` tokens (distinct per seed)."""
    vocab = ["apple", "river", "stone", "cloud", "music", "paper", "light", "green", "table", "honey"]
    return " ".join(vocab[(seed * 7 + i * 3) % len(vocab)] for i in range(n)) + f" #{seed}"
