"""Keep secrets out of everything we print, log, raise or write.

Every API key or token the library is given is registered here; :func:`redact` replaces each registered
secret (and anything shaped like an OpenAI key) with a fixed mask. Exceptions, log records and reprs pass
their text through it.
"""

from __future__ import annotations

import re
import threading

__all__ = ["MASK", "mask_secret", "redact", "register_secret"]

MASK = "[redacted]"

_lock = threading.Lock()
_secrets: set[str] = set()
# OpenAI keys (sk-..., sk-proj-..., sk-svcacct-...) and bearer tokens in free text.
_KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=]{8,}")


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` removes it from any text."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and key-shaped token masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _KEY_SHAPE.sub(MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def mask_secret(secret: str | None) -> str:
    """How a secret is shown in a repr: present or absent, never its value."""
    return "None" if not secret else "'" + MASK + "'"
