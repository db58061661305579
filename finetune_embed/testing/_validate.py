"""Request validation with the service's current error messages and codes (``invalid_type``,
``invalid_value``, ``missing_required_parameter``, ``integer_above_max_value``, …)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ApiError, bad_request

__all__ = [
    "check_enum",
    "check_int",
    "check_metadata",
    "check_number",
    "check_object",
    "check_string",
    "check_unknown",
    "json_type",
    "require",
]


def json_type(value: Any) -> str:
    """The JSON type of ``value`` with its article, as the service writes it (``an integer``, ``a string``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown type"


def _quote(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _type_error(param: str, expected: str, value: Any) -> ApiError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def check_unknown(body: Mapping[str, Any], allowed: Iterable[str], *, prefix: str = "") -> None:
    """Refuse keys outside ``allowed`` (``Unknown parameter: 'x'.``)."""
    allowed_set = set(allowed)
    for key in body:
        if key not in allowed_set:
            param = f"{prefix}{key}"
            raise bad_request(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def require(body: Mapping[str, Any], *names: str, prefix: str = "") -> None:
    """Refuse a body lacking any of ``names``."""
    for name in names:
        if name not in body:
            param = f"{prefix}{name}"
            raise bad_request(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def check_object(value: Any, param: str) -> dict[str, Any]:
    """``value`` must be a JSON object."""
    if not isinstance(value, dict):
        raise _type_error(param, "an object", value)
    return value


def check_string(
    value: Any, param: str, *, min_length: int | None = None, max_length: int | None = None, nullable: bool = False
) -> str | None:
    """``value`` must be a string within the length bounds (or null when ``nullable``)."""
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _type_error(param, "a string", value)
    if min_length is not None and len(value) < min_length:
        got = "an empty string" if not value else f"a string with length {len(value)}"
        raise bad_request(
            f"Invalid '{param}': string too short. Expected a string with minimum length {min_length}, but got {got} "
            "instead.",
            param=param,
            code="string_below_min_length",
        )
    if max_length is not None and len(value) > max_length:
        raise bad_request(
            f"Invalid '{param}': string too long. Expected a string with maximum length {max_length}, but got a "
            f"string with length {len(value)} instead.",
            param=param,
            code="string_above_max_length",
        )
    return value


def check_enum(value: Any, options: Iterable[str], param: str) -> str:
    """``value`` must be one of ``options``."""
    opts = list(options)
    if not isinstance(value, str):
        raise _type_error(param, "one of " + ", ".join(f"'{o}'" for o in opts), value)
    if value not in opts:
        shown = ", ".join(f"'{o}'" for o in opts[:-1]) + (
            f", and '{opts[-1]}'" if len(opts) > 2 else f" and '{opts[-1]}'"
        )
        if len(opts) == 1:
            shown = f"'{opts[0]}'"
        raise bad_request(
            f"Invalid value: {_quote(value)}. Supported values are: {shown}.", param=param, code="invalid_value"
        )
    return value


def check_int(
    value: Any, param: str, *, minimum: int | None = None, maximum: int | None = None, auto: bool = False
) -> int | str:
    """``value`` must be an integer in ``[minimum, maximum]`` (or ``"auto"`` when allowed)."""
    if auto and value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _type_error(param, "'auto' or an integer" if auto else "an integer", value)
    assert isinstance(value, int)
    if minimum is not None and value < minimum:
        raise bad_request(
            f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
            param=param,
            code="integer_below_min_value",
        )
    if maximum is not None and value > maximum:
        raise bad_request(
            f"Invalid '{param}': integer above maximum value. Expected a value <= {maximum}, but got {value} instead.",
            param=param,
            code="integer_above_max_value",
        )
    return int(value)


def check_number(
    value: Any,
    param: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    auto: bool = False,
) -> float | str:
    """``value`` must be a number within the bounds (or ``"auto"`` when allowed)."""
    if auto and value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _type_error(param, "'auto' or a number" if auto else "a number", value)
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        op = ">" if exclusive_minimum else ">="
        raise bad_request(
            f"Invalid '{param}': decimal below minimum value. Expected a value {op} {minimum:g}, but got {value:g} "
            "instead.",
            param=param,
            code="decimal_below_min_value",
        )
    if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
        op = "<" if exclusive_maximum else "<="
        raise bad_request(
            f"Invalid '{param}': decimal above maximum value. Expected a value {op} {maximum:g}, but got {value:g} "
            "instead.",
            param=param,
            code="decimal_above_max_value",
        )
    return float(value)


def check_metadata(value: Any, param: str = "metadata") -> dict[str, str] | None:
    """Up to 16 string pairs, keys ≤ 64 characters, values ≤ 512 characters (or null)."""
    if value is None:
        return None
    obj = check_object(value, param)
    if len(obj) > 16:
        raise bad_request(
            f"Invalid '{param}': too many properties. Expected an object with at most 16 properties, but got an "
            f"object with {len(obj)} properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    for key, val in obj.items():
        if len(key) > 64:
            raise bad_request(
                f"Invalid '{param}': string too long. Expected a string with maximum length 64, but got a string "
                f"with length {len(key)} instead.",
                param=param,
                code="string_above_max_length",
            )
        check_string(val, f"{param}.{key}", max_length=512)
    return {str(k): str(v) for k, v in obj.items()}


def check_expires_after(value: Any, param: str) -> int:
    """``{anchor: "created_at", seconds: 3600..2592000}``; returns the seconds."""
    obj = check_object(value, param)
    check_unknown(obj, ("anchor", "seconds"), prefix=f"{param}.")
    require(obj, "anchor", "seconds", prefix=f"{param}.")
    check_enum(obj["anchor"], ["created_at"], f"{param}.anchor")
    seconds = check_int(obj["seconds"], f"{param}.seconds", minimum=3600, maximum=2592000)
    assert isinstance(seconds, int)
    return seconds
