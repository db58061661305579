"""Injected faults: the next N matching requests fail with a status, time out, drop, or lose a vector."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from .._exceptions import InvalidArgumentError

__all__ = ["FaultRule", "Faults", "normalize_pattern"]

FaultKind = Literal["status", "timeout", "disconnect", "wrong_count"]


def normalize_pattern(path: str | None) -> str | None:
    """``"embeddings"`` / ``"/embeddings"`` → ``"/v1/embeddings"``; globs (``/v1/files*``) are kept."""
    if path is None or path == "*":
        return None
    if not path.startswith("/"):
        path = "/" + path
    if not (path.startswith(("/v1/", "/openai/", "*"))):
        path = "/v1" + path
    return path


@dataclass
class FaultRule:
    """One injected fault (``path`` is a canonical endpoint or a glob, ``None`` matches every request)."""

    kind: FaultKind
    path: str | None
    times: int
    method: str | None = None
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: float = 0.0
    after: bool = False  # the server acts first (creates, bills), then the fault replaces its answer

    def matches(self, endpoint: str, raw_path: str, method: str) -> bool:
        """Whether this rule applies to a request."""
        if self.method is not None and self.method != method.upper():
            return False
        if self.path is None:
            return True
        return any(p == self.path or fnmatch.fnmatchcase(p, self.path) for p in (endpoint, raw_path))


class Faults:
    """The queue of injected faults (first matching rule wins; each is used up after ``times`` requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        """Queue a fault."""
        if rule.times < 1:
            raise InvalidArgumentError(f"times must be ≥ 1, got {rule.times!r}", argument="times")
        with self._lock:
            self._rules.append(rule)

    def take(
        self, endpoint: str, raw_path: str, method: str, *, kinds: tuple[FaultKind, ...], after: bool = False
    ) -> FaultRule | None:
        """Use up one matching fault of one of ``kinds``, if any (``after``: the faults that strike once the
        server has acted, else the ones that strike before it does)."""
        with self._lock:
            for rule in self._rules:
                if rule.kind in kinds and rule.after == after and rule.matches(endpoint, raw_path, method):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    @property
    def pending(self) -> list[FaultRule]:
        """The faults not used up yet."""
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._rules.clear()
