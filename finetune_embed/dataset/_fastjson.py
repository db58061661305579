"""The fast way to parse a JSONL line: ``orjson``, trusted only where it provably agrees with the exact path.

The streaming validator's exact parser (``json`` with a duplicate-key hook, in ``_stream.py``) calls a Python
function for every object of every line. :func:`parse_fast` parses with ``orjson`` instead and answers
:data:`EXACT` — "let the exact parser decide" — whenever the result might differ from what that parser gives
or reports:

* ``orjson`` refuses the line. It refuses everything ``json`` refuses, and more that ``json`` takes: integers
  beyond 64 bits, lone surrogate escapes (``"\\ud800"``), ``NaN`` / ``Infinity`` (which the exact parser rejects
  with its own message). Those lines go the exact way and get its diagnostics.
* An object repeats a key. ``orjson`` keeps one value without a word; the exact parser names the keys. A repeated
  key is detected without a walk in Python: every ``:`` in a valid JSON text either separates a key from its
  value or sits inside a string, and JSON writes a colon inside a string as itself or as ``\\u003a``. If the line
  has no ``\\u003a`` escape, re-serialising the parsed value (``orjson.dumps``, which writes colons as themselves)
  gives exactly as many colons as the line when no key repeats — the same keys and the same strings — and
  strictly fewer when one does: the value keeps one member per repeated key, and each member dropped takes at
  least its own key's colon with it. So unequal counts (or a ``\\u003a`` escape) send the line the exact way.
* An integer may not fit in 64 bits: ``orjson`` reads such an integer as a float without a word, ``json`` as the
  integer itself. Such a float is at least 2**63 in size, which ``orjson`` writes with an exponent (``9.2e+18``),
  as it writes every float from 1e16 up: any ``e+`` in the re-serialised value sends the line the exact way (a
  string holding ``e+`` and a large float written in the line do too, harmlessly).
* The line is not an object or a list (a fine-tuning example is an object; the exact path reports the rest), or
  may nest deeper than the validator allows (more than ``MAX_NESTING`` brackets).

Values ``orjson`` accepts equal ``json``'s (the same types, the same floats: both round correctly), which a
differential test over generated lines checks, duplicate keys and escapes included.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ._checks import MAX_NESTING

__all__ = ["EXACT", "parse_fast"]

EXACT: Final[Any] = object()  # parse_fast's answer when the exact parser must decide
_loads = orjson.loads
_dumps = orjson.dumps
_Error = orjson.JSONDecodeError
_EncodeError = orjson.JSONEncodeError


def parse_fast(body: bytes) -> Any:
    """The JSON value of ``body`` (one line, whitespace stripped), or :data:`EXACT` when the exact parser must
    decide (see the module docstring)."""
    if body[:1] not in (b"{", b"[") or body.count(b"[") + body.count(b"{") > MAX_NESTING:
        return EXACT
    try:
        value = _loads(body)
        written = _dumps(value)
    except (_Error, _EncodeError):
        return EXACT
    if b"e+" in written or b"\\u003a" in body or b"\\u003A" in body:
        return EXACT
    return value if written.count(b":") == body.count(b":") else EXACT
