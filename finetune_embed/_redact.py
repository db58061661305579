"""Keep secrets out of what we print, log, raise or write, with no process-wide state.

Two tools, each used only where a secret can appear:

* :func:`redact` masks text *shaped* like a credential: OpenAI keys (``sk-`` followed by a long random-looking
  token) and ``Bearer <token>``. Exception messages, our log records and the CLI's error line pass through it.
* :class:`Secrets` holds one client's own secrets (its API key, Azure AD token, and credentials taken out of its
  base URL). A client masks them in the exceptions its calls raise: their message and body, and the headers and URL
  of every request object reachable from them (``exc.__cause__.request.headers`` included).

A value shorter than :data:`MIN_SECRET_CHARS` (``"EMPTY"``, ``"ollama"``, ``"test"``, as local servers use) is a
placeholder, not a secret, and is never masked; a longer one is masked only as a whole token, never inside a longer
word, so ``tests/test_data.jsonl`` always prints intact. Nothing is remembered between clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["MASK", "MIN_SECRET_CHARS", "SENSITIVE_HEADERS", "Secrets", "mask_secret", "redact"]

MASK = "[redacted]"
#: Shorter values are placeholders (``EMPTY``, ``ollama``), not secrets.
MIN_SECRET_CHARS = 8
#: Request headers that carry credentials; their values are replaced by :data:`MASK` in exceptions.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "ocp-apim-subscription-key", "cookie"}
)

# An OpenAI key (sk-..., sk-proj-..., sk-svcacct-...): a long token with digits and both letter cases, so that a
# word such as "sk-learn-experiments" in a path is left alone.
_KEY_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{20,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9_\-\.=~+/]{8,}")


def _looks_random(token: str) -> bool:
    return any(c.isdigit() for c in token) and any(c.isupper() for c in token) and any(c.islower() for c in token)


def _mask_key(match: re.Match[str]) -> str:
    token = match.group(0)
    return MASK if _looks_random(token[3:]) else token


def redact(text: str) -> str:
    """Return ``text`` with key-shaped tokens and bearer tokens masked (nothing else is touched)."""
    if not text:
        return text
    text = _KEY_CANDIDATE.sub(_mask_key, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def mask_secret(secret: str | None) -> str:
    """How a secret is shown in a repr: present or absent, never its value."""
    return "None" if not secret else "'" + MASK + "'"


def _token_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for value in values:
        forms.add(value)
        forms.add(quote(value, safe=""))
    if not forms:
        return None
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Secrets:
    """The secrets of one client, and how to mask them where they can appear.

    >>> s = Secrets.of("abcdefgh12345678", "EMPTY", None)
    >>> s.scrub("key abcdefgh12345678 refused; see tests/test_data.jsonl")
    'key [redacted] refused; see tests/test_data.jsonl'
    """

    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, *candidates: str | None) -> Secrets:
        """The secrets among ``candidates`` (``None`` and placeholders shorter than 8 characters are dropped)."""
        kept = sorted({c for c in candidates if c and len(c) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        return cls(tuple(kept))

    def scrub(self, text: str) -> str:
        """``text`` with key shapes, bearer tokens and this client's secrets (whole tokens only) masked."""
        if not text:
            return text
        pattern = _token_pattern(self.values)
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return redact(text)

    def scrub_value(self, value: Any) -> Any:
        """A copy of a JSON-like value (an error body) with every string scrubbed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_value(v) for v in value)
        return value

    def scrub_headers(self, headers: Any) -> None:
        """Mask credential headers (by name) and any header value holding a secret, in place."""
        if not isinstance(headers, MutableMapping) and not hasattr(headers, "__setitem__"):
            return
        try:
            items = list(headers.items())
        except Exception:  # pragma: no cover - a headers object we cannot read
            return
        for name, value in items:
            if str(name).lower() in SENSITIVE_HEADERS:
                clean = MASK
            else:
                clean = self.scrub(str(value))
            if clean != value:
                try:
                    headers[name] = clean
                except Exception:  # pragma: no cover - immutable headers
                    pass

    def scrub_request(self, request: Any) -> None:
        """Mask the credentials of an ``httpx`` (or ``httpx2``) request object: its headers and its URL."""
        if request is None:
            return
        self.scrub_headers(getattr(request, "headers", None))
        url = getattr(request, "url", None)
        if url is None:
            return
        text = str(url)
        clean = self.scrub(text)
        if "@" in clean.split("//", 1)[-1].split("/", 1)[0]:  # userinfo in the authority
            scheme, _, rest = clean.partition("//")
            clean = scheme + "//" + rest.split("@", 1)[1]
        if clean != text:
            try:
                request.url = type(url)(clean)
            except Exception:  # pragma: no cover - a read-only request object
                pass

    def scrub_exception(self, exc: BaseException) -> None:
        """Mask secrets in ``exc`` and every exception chained to it (``__cause__`` / ``__context__``): messages,
        ``args``, ``body`` and the request objects they hold (``.request``, ``.response.request``)."""
        seen: set[int] = set()
        pending: list[BaseException | None] = [exc]
        while pending:
            current = pending.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            self._scrub_one(current)
            pending.extend((current.__cause__, current.__context__))

    def _scrub_one(self, exc: BaseException) -> None:
        try:
            exc.args = tuple(self.scrub(a) if isinstance(a, str) else a for a in exc.args)
        except Exception:  # pragma: no cover - exotic exceptions
            pass
        for name in ("message", "body"):
            value = getattr(exc, name, None) if name in getattr(exc, "__dict__", {}) else None
            if value is not None:
                try:
                    setattr(exc, name, self.scrub_value(value))
                except Exception:  # pragma: no cover - read-only attributes
                    pass
        for request in (_attr(exc, "request"), _attr(_attr(exc, "response"), "request")):
            self.scrub_request(request)


def _attr(obj: Any, name: str) -> Any:
    """``obj.name``, or ``None`` (httpx raises RuntimeError for a request that was never set)."""
    if obj is None:
        return None
    try:
        return getattr(obj, name, None)
    except Exception:
        return None
