"""A small OpenAPI 3.x schema checker and a generator of requests that violate a schema, for the contract test.

It understands what the spec uses for these endpoints: ``$ref``, ``type`` (and ``nullable``), ``enum``,
``minimum``/``maximum`` with OpenAPI 3.0 boolean or 3.1 numeric ``exclusive*``, ``minLength``/``maxLength``,
``minItems``/``maxItems``, ``items``, ``properties``, ``required``, ``additionalProperties``, ``oneOf``/``anyOf``/
``allOf``. ``format`` is ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

Schema = dict[str, Any]
UNKNOWN_FIELD = "x_unknown_field"


class Spec:
    """The loaded OpenAPI document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def schema(self, name: str) -> Schema:
        return self.resolve({"$ref": f"#/components/schemas/{name}"})

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    # --- validation -------------------------------------------------------------------------------------

    def accepts(self, schema: Schema, value: Any, *, response: bool = False, required: bool = True) -> bool:
        """Whether ``value`` conforms to ``schema``. In ``response`` mode an optional property may be null (the
        service sends nulls for absent optional fields)."""
        return not list(self.errors(schema, value, "$", response=response, required=required))

    def errors(self, schema: Schema, value: Any, path: str, *, response: bool, required: bool = True) -> Iterator[str]:
        schema = self.resolve(schema)
        if value is None and (schema.get("nullable") or (response and not required)):
            return
        if "allOf" in schema:
            for sub in schema["allOf"]:
                yield from self.errors(sub, value, path, response=response, required=required)
        if "anyOf" in schema and not any(
            self.accepts(s, value, response=response, required=required) for s in schema["anyOf"]
        ):
            yield f"{path}: matches no anyOf branch"
        if "oneOf" in schema:
            n = sum(self.accepts(s, value, response=response, required=required) for s in schema["oneOf"])
            if n != 1:
                yield f"{path}: matches {n} oneOf branches"
        if "enum" in schema and value not in schema["enum"]:
            yield f"{path}: {value!r} not in enum"
        kind = schema.get("type")
        if kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            if not any(_is_type(value, k) for k in kinds):
                yield f"{path}: not of type {kind}"
                return
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            yield from _bounds(schema, value, path)
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                yield f"{path}: too short"
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                yield f"{path}: too long"
        if isinstance(value, list):
            if len(value) < schema.get("minItems", 0):
                yield f"{path}: too few items"
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                yield f"{path}: too many items"
            if "items" in schema:
                for i, item in enumerate(value):
                    yield from self.errors(schema["items"], item, f"{path}[{i}]", response=response)
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    yield f"{path}.{name}: required"
            extra = schema.get("additionalProperties", True)
            for name, item in value.items():
                if name in props:
                    yield from self.errors(
                        props[name],
                        item,
                        f"{path}.{name}",
                        response=response,
                        required=name in schema.get("required", []),
                    )
                elif extra is False:
                    yield f"{path}.{name}: additional property"
                elif isinstance(extra, dict):
                    yield from self.errors(extra, item, f"{path}.{name}", response=response)

    # --- violations ---------------------------------------------------------------------------------------

    def violations(
        self, schema: Schema, value: Any, path: tuple[Any, ...] = ()
    ) -> Iterator[tuple[str, tuple[Any, ...], Any]]:
        """(description, path, replacement) candidates; ``replacement`` ``_DROP`` removes the key. Candidates are
        not guaranteed invalid: filter them with :meth:`accepts` on the whole body."""
        schema = self.resolve(schema)
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in schema.get(key, []):
                yield from self.violations(sub, value, path)
        if "enum" in schema:
            yield "enum", path, "not-a-valid-enum-value"
        kind = schema.get("type")
        if kind is not None:
            yield "type", path, _wrong_type(kind)
        if "minimum" in schema:
            low = schema["minimum"]
            yield "minimum", path, low if schema.get("exclusiveMinimum") is True else _below(low)
        if isinstance(schema.get("exclusiveMinimum"), int | float) and not isinstance(schema["exclusiveMinimum"], bool):
            yield "exclusiveMinimum", path, schema["exclusiveMinimum"]
        if "maximum" in schema:
            high = schema["maximum"]
            yield "maximum", path, high if schema.get("exclusiveMaximum") is True else _above(high)
        if schema.get("minLength", 0) >= 1:
            yield "minLength", path, ""
        if "maxLength" in schema:
            yield "maxLength", path, "x" * (schema["maxLength"] + 1)
        if "minItems" in schema and schema["minItems"] >= 1:
            yield "minItems", path, []
        if "maxItems" in schema and isinstance(value, list) and value:
            yield "maxItems", path, [copy.deepcopy(value[0]) for _ in range(schema["maxItems"] + 1)]
        if isinstance(value, list) and value and "items" in schema:
            yield from self.violations(schema["items"], value[0], (*path, 0))
        if isinstance(value, dict) and (schema.get("type") == "object" or "properties" in schema):
            for name in schema.get("required", []):
                if name in value:
                    yield "required", (*path, name), _DROP
            if schema.get("additionalProperties") is False:
                yield "additionalProperties", (*path, UNKNOWN_FIELD), 1
            for name, sub in schema.get("properties", {}).items():
                if name in value:
                    yield from self.violations(sub, value[name], (*path, name))
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for name in value:
                    if name not in schema.get("properties", {}):
                        yield from self.violations(extra, value[name], (*path, name))


class _Drop:
    def __repr__(self) -> str:
        return "<drop>"


_DROP = _Drop()


def apply(body: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    """A deep copy of ``body`` with ``path`` replaced (or removed)."""
    out = copy.deepcopy(body)
    if not path:
        return replacement
    node = out
    for key in path[:-1]:
        node = node[key]
    if replacement is _DROP:
        del node[path[-1]]
    else:
        node[path[-1]] = replacement
    return out


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def _bounds(schema: Schema, value: float, path: str) -> Iterator[str]:
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if "minimum" in schema and (value <= schema["minimum"] if ex_min is True else value < schema["minimum"]):
        yield f"{path}: below minimum"
    if "maximum" in schema and (value >= schema["maximum"] if ex_max is True else value > schema["maximum"]):
        yield f"{path}: above maximum"
    if isinstance(ex_min, int | float) and not isinstance(ex_min, bool) and value <= ex_min:
        yield f"{path}: not above exclusiveMinimum"
    if isinstance(ex_max, int | float) and not isinstance(ex_max, bool) and value >= ex_max:
        yield f"{path}: not below exclusiveMaximum"


def _wrong_type(kind: Any) -> Any:
    kinds = kind if isinstance(kind, list) else [kind]
    for candidate in ("not-a-number", 12345, {"x": 1}, ["x"], True):
        if not any(_is_type(candidate, k) for k in kinds):
            return candidate
    return None


def _below(x: float) -> float:
    return x - 1 if isinstance(x, int) else x - abs(x) * 0.5 - 1e-3


def _above(x: float) -> float:
    return x + 1 if isinstance(x, int) else x + abs(x) * 0.5 + 1e-3
