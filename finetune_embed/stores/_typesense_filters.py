"""Our filter language as Typesense ``filter_by``, and the fields each document carries for it.

Typesense indexes fields of one declared type each, while metadata is schemaless JSON. Each document therefore
carries, besides its vector and its metadata as JSON text:

- ``t`` (``string[]``): hashed tokens, so that no user text is ever spliced into a filter and nothing needs
  escaping: one every document has, one for its id, and per reachable metadata path "present", "equals <value>"
  (the value in a canonical form that follows :func:`~finetune_embed.index._filters.json_equal`: ``1`` equals
  ``1.0``, ``true`` is not ``1``, lists and objects item by item) and, for a number, "is a number";
- ``n_<hash of the path>`` (``int64``) per path holding a number: the float64 value mapped to an integer with the
  same order, so ranges compare exactly (Typesense's ``float`` is 32-bit).

Typesense 0.24's ``filter_by`` has ``&&``, ``||`` and parentheses but no negation of a group, so ``$not`` is
pushed down to the leaves, each of which has a negated form: ``t:!=`` (which matches a document without the
token, as our rules want for ``$ne`` / ``$nin``), and "not a number, or on the other side" for a range. A range
with a string bound cannot be expressed (Typesense orders numbers only) and raises
:class:`~finetune_embed.UnsupportedFilterError`; so does a filter longer than Typesense's 100 terms.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import ConfigError, UnsupportedFilterError
from ..index._filters import And, Condition, Filter, Not
from ._canonical import filter_paths

__all__ = ["ENGINE", "EVERY", "MAX_TERMS", "compile_filter", "document_fields", "id_token", "numeric_field"]

ENGINE = "typesense"
MAX_TERMS = 100  # Typesense 0.24 refuses a filter_by of more terms (operands, operators, parentheses)
_BELOW = {"$gt": "$lte", "$gte": "$lt", "$lt": "$gte", "$lte": "$gt"}
_SIGN = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _canonical(value: Any) -> Any:
    """``value`` rewritten so that values ``json_equal`` calls equal serialise to the same text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return ["num", str(value)]
    if isinstance(value, float):
        return ["num", str(int(value)) if value.is_integer() else repr(value)]
    if isinstance(value, Mapping):
        return {"obj": {str(key): _canonical(item) for key, item in sorted(value.items())}}
    if isinstance(value, list | tuple):
        return {"list": [_canonical(item) for item in value]}
    raise ConfigError(f"filter values are JSON values; got {type(value).__name__}: {value!r}.")


def _hash(*parts: Any) -> str:
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


EVERY = _hash("every document")


def id_token(item_id: str) -> str:
    """The token naming one document (filters on ids never splice the id itself into ``filter_by``)."""
    return _hash("id", item_id)


def _present(path: str) -> str:
    return _hash("has", path)


def _equals(path: str, value: Any) -> str:
    return _hash("eq", path, _canonical(value))


def _numeric(path: str) -> str:
    return _hash("number", path)


def numeric_field(path: str) -> str:
    """The ``int64`` field holding the numbers at ``path``."""
    return "n_" + _hash("field", path)


def order_key(number: float) -> int:
    """A float64 as a signed 64-bit integer with the same order (``-0.0`` and ``0.0`` alike)."""
    if number == 0:
        number = 0.0
    (bits,) = struct.unpack("<q", struct.pack("<d", number))
    return int(bits) if bits >= 0 else int(bits) ^ 0x7FFF_FFFF_FFFF_FFFF


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond doubles: it still sorts past every double
        return math.copysign(math.inf, value)


def document_fields(item_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The filter fields of one document: ``t`` (tokens) and an ``n_...`` field per numeric path."""
    tokens = [EVERY, id_token(item_id)]
    fields: dict[str, Any] = {}
    for path, value in filter_paths(metadata):
        tokens += (_present(path), _equals(path, value))
        if _is_number(value):
            tokens.append(_numeric(path))
            fields[numeric_field(path)] = order_key(_as_float(value))
    fields["t"] = tokens
    return fields


# --- compiling ----------------------------------------------------------------------------------------------------

# A compiled node: ("true",), ("false",), ("in", tokens), ("out", tokens), ("raw", text, terms), or
# ("and" | "or", parts). "in": the document holds one of the tokens; "out": it holds none of them.
Node = tuple[Any, ...]
TRUE: Node = ("true",)
FALSE: Node = ("false",)


def _combine(kind: str, parts: list[Node]) -> Node:
    neutral, absorbing = (TRUE, FALSE) if kind == "and" else (FALSE, TRUE)
    kept: list[Node] = []
    for part in parts:
        if part == absorbing:
            return absorbing
        if part == neutral:
            continue
        kept.extend(part[1] if part[0] == kind else [part])
    # t:=[a, b] is "a or b"; t:!=[a, b] is "neither a nor b": merge them into one term
    merge = "in" if kind == "or" else "out"
    tokens = [tok for part in kept if part[0] == merge for tok in part[1]]
    kept = [part for part in kept if part[0] != merge]
    if tokens:
        kept.insert(0, (merge, sorted(set(tokens))))
    if not kept:
        return neutral
    return kept[0] if len(kept) == 1 else (kind, kept)


class _Compiler:
    def __init__(self, has_field: Callable[[str], bool]) -> None:
        self._has_field = has_field

    def node(self, tree: Filter, negate: bool) -> Node:
        if isinstance(tree, Condition):
            return self.leaf(tree, negate)
        if isinstance(tree, Not):
            return self.node(tree.filter, not negate)
        kind = "and" if isinstance(tree, And) != negate else "or"
        return _combine(kind, [self.node(part, negate) for part in tree.filters])

    def leaf(self, cond: Condition, negate: bool) -> Node:
        field, op, value = cond.field, cond.op, cond.value
        if op == "$exists":
            positive = bool(value) != negate
            return ("in" if positive else "out", [_present(field)])
        if op in ("$eq", "$ne"):
            positive = (op == "$eq") != negate
            return ("in" if positive else "out", [_equals(field, value)])
        if op in ("$in", "$nin"):
            positive = (op == "$in") != negate
            if not value:
                return FALSE if positive else TRUE
            return ("in" if positive else "out", sorted({_equals(field, v) for v in value}))
        if isinstance(value, str):
            raise UnsupportedFilterError(
                f"engine {ENGINE!r}: Typesense compares only numbers by order; where[{field!r}][{op!r}] has the "
                f"string bound {value!r}. Filter strings with $eq / $in, or store the value as a number.",
                engine=ENGINE,
                operator=f"{op}:string",
            )
        name = numeric_field(field)
        if not self._has_field(name):  # no document ever held a number at this path
            return TRUE if negate else FALSE
        bound = order_key(_as_float(value))
        if not negate:
            return ("raw", f"{name}:{_SIGN[op]}{bound}", 1)
        other = ("raw", f"{name}:{_SIGN[_BELOW[op]]}{bound}", 1)
        return _combine("or", [("out", [_numeric(field)]), other])


def _render(node: Node, top: bool = True) -> tuple[str, int]:
    """``filter_by`` text of a compiled node, and how many terms Typesense counts in it."""
    kind = node[0]
    if kind == "true":
        return f"t:={EVERY}", 1
    if kind == "false":
        return f"t:!={EVERY}", 1
    if kind in ("in", "out"):
        tokens = node[1]
        sign = ":=" if kind == "in" else ":!="
        return (f"t{sign}{tokens[0]}" if len(tokens) == 1 else f"t{sign}[{','.join(tokens)}]"), 1
    if kind == "raw":
        return node[1], node[2]
    texts, terms = [], 0
    for part in node[1]:
        text, count = _render(part, top=False)
        texts.append(text)
        terms += count
    joined = (" && " if kind == "and" else " || ").join(texts)
    terms += len(texts) - 1
    if top:
        return joined, terms
    return f"({joined})", terms + 2


def compile_filter(
    tree: Filter | None, has_field: Callable[[str], bool], *, exclude: list[str] | None = None,
    always: bool = False,
) -> str | None:
    """The ``filter_by`` for a parsed filter, with the documents of ``exclude`` (ids) left out. ``None`` when
    nothing is filtered, unless ``always``: then a filter every document passes (Typesense ranks exactly only
    under a filter). ``has_field`` says whether the collection has a numeric field yet.

    Raises:
        UnsupportedFilterError: a range with a string bound, or a filter of more than 100 terms.
    """
    parts = [] if tree is None else [_Compiler(has_field).node(tree, False)]
    if exclude:
        parts.append(("out", sorted({id_token(i) for i in exclude})))
    node = _combine("and", parts)
    if node == TRUE and not always:
        return None
    text, terms = _render(node)
    if terms > MAX_TERMS:
        raise UnsupportedFilterError(
            f"engine {ENGINE!r}: this filter compiles to {terms} terms of Typesense's filter_by, which takes at most "
            f"{MAX_TERMS}. Simplify it (a list with $in / $nin counts once), or split the search.",
            engine=ENGINE,
            operator="filter of more than 100 terms",
        )
    return text
