"""The manifest of a saved index: what it holds, the checksum of every file, and a checksum of its own.

``manifest.json`` (``format_version`` 2)::

    format, format_version, dim, metric, dtype, model, count, created, library_version,
    vector_sha256, files: {name: {"sha256", "bytes"}}, manifest_sha256

``manifest_sha256`` is the sha256 of the other fields in canonical form (keys sorted, no spaces, ASCII), so a
changed field - a flipped bit, an edited metric, a rewritten file hash - no longer matches it. Every field is
also checked for its type and range, and the listed files must be exactly the ones the dtype needs: anything
wrong raises :class:`~finetune_embed.IndexFileError` saying which field and how to recover.

Checksums detect corruption and edits; they are not a signature. Someone who rewrites a file *and* recomputes
every checksum produces a different, well-formed index that loads: keep indexes where only you can write, or
sign the directory, if that matters.

Version 1 manifests (finetune_embed 0.1) have no ``manifest_sha256``; they load after the same field checks,
with a warning that saving the index again adds the checksum.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import IndexFileError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INDEX_FILES",
    "MAX_DIM",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "files_needed",
    "manifest_bytes",
    "parse_json",
    "parse_manifest",
]

FORMAT = "finetune_embed.EmbeddingIndex"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few hundred bytes; anything this large is not one
MAX_DIM = 1 << 20
MAX_COUNT = (1 << 32) - 1
DATA_FILES = ("vectors.npy", "ids.json", "metadata.jsonl", "codes.npy", "residuals.npy", "quantization.json")
INDEX_FILES = frozenset((*DATA_FILES, "manifest.json"))
"""Every name an index directory's format uses; anything else in the directory belongs to someone else."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS_V1 = frozenset(
    ("format", "format_version", "dim", "metric", "dtype", "model", "count", "created", "library_version",
     "vector_sha256", "files")
)
_FIELDS_V2 = _FIELDS_V1 | {"manifest_sha256"}
_FIX = "restore the directory from a backup or build the index again"


@dataclass(frozen=True)
class Manifest:
    """A checked manifest."""

    format_version: int
    dim: int | None
    metric: str
    dtype: str
    model: str | None
    count: int
    created: str
    library_version: str
    files: Mapping[str, Mapping[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The fields as the CLI and :func:`read_manifest` show them."""
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "dim": self.dim,
            "metric": self.metric,
            "dtype": self.dtype,
            "model": self.model,
            "count": self.count,
            "created": self.created,
            "library_version": self.library_version,
            "vector_sha256": self.files["vectors.npy"]["sha256"],
            "files": {name: dict(info) for name, info in self.files.items()},
        }


def files_needed(dtype: str, count: int) -> tuple[str, ...]:
    """The data files an index of ``dtype`` with ``count`` items consists of."""
    if dtype == "int8" and count > 0:
        return DATA_FILES
    return DATA_FILES[:3]


def _canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


def manifest_bytes(fields: Mapping[str, Any]) -> bytes:
    """The text of ``manifest.json`` for ``fields`` (without ``manifest_sha256``), its checksum added."""
    body = dict(fields)
    body["manifest_sha256"] = hashlib.sha256(_canonical(fields)).hexdigest()
    return (json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes, where: str) -> Any:
    """Strict JSON (no repeated keys, no NaN / Infinity, UTF-8), or :class:`IndexFileError` naming ``where``.

    Nesting too deep for the parser is refused as well (never a raw ``RecursionError``).
    """
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError:
        raise IndexFileError(f"{where}: the JSON is nested too deeply to be ours; {_FIX}.") from None
    except UnicodeDecodeError as exc:
        raise IndexFileError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); {_FIX}.") from None
    except json.JSONDecodeError as exc:
        raise IndexFileError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); {_FIX}."
        ) from None
    except ValueError as exc:
        raise IndexFileError(f"{where}: invalid JSON ({exc}); {_FIX}.") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collects what is wrong with a manifest, field by field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def bad(self, field: str, why: str) -> None:
        self.problems.append(f"{field} {why} (found {_shown(self.raw.get(field, '<missing>'))})")

    def int_field(self, field: str, low: int, high: int, *, optional: bool = False) -> int | None:
        value: Any = self.raw.get(field)
        if value is None and optional and field in self.raw:
            return None
        if not _is_int(value) or not low <= value <= high:
            self.bad(field, f"must be an integer from {low} to {high}" + (" or null" if optional else ""))
            return None
        return int(value)

    def choice(self, field: str, allowed: tuple[str, ...]) -> str:
        value = self.raw.get(field)
        if value not in allowed:
            self.bad(field, f"must be one of {', '.join(map(repr, allowed))}")
            return allowed[0]
        return str(value)

    def text(self, field: str, limit: int, *, optional: bool = False) -> str | None:
        value = self.raw.get(field)
        if value is None and optional and field in self.raw:
            return None
        if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
            self.bad(field, f"must be a line of text of at most {limit} characters" + (" or null" if optional else ""))
            return None
        return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_files(c: _Checker, dtype: str, count: int) -> dict[str, dict[str, Any]]:
    files = c.raw.get("files")
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(files, Mapping):
        c.bad("files", "must be an object of {name: {sha256, bytes}}")
        return out
    needed = files_needed(dtype, count)
    if set(files) != set(needed):
        c.problems.append(
            f"files lists {sorted(files)} but a {dtype} index of {count} items consists of {sorted(needed)}"
        )
    for name, info in files.items():
        if name not in needed:
            continue
        ok = (
            isinstance(info, Mapping)
            and set(info) == {"sha256", "bytes"}
            and isinstance(info["sha256"], str)
            and _HEX64.fullmatch(info["sha256"]) is not None
            and _is_int(info["bytes"])
            and 0 <= info["bytes"] < 1 << 62
        )
        if not ok:
            c.problems.append(f"files[{name!r}] must be {{'sha256': 64 hex digits, 'bytes': a size}} "
                              f"(found {_shown(info)})")
            continue
        out[name] = {"sha256": info["sha256"], "bytes": int(info["bytes"])}
    vector = out.get("vectors.npy")
    if vector is not None and c.raw.get("vector_sha256") != vector["sha256"]:
        c.bad("vector_sha256", "must equal files['vectors.npy'].sha256")
    return out


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Check the text of a ``manifest.json`` completely: JSON, checksum, every field's type and range.

    Raises:
        IndexFileError: the first thing wrong, or every wrong field, with how to recover.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise IndexFileError(f"{where} has {len(data):,} bytes; a manifest has a few hundred. {_FIX[0].upper()}"
                             f"{_FIX[1:]}.")
    raw = parse_json(data, where)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise IndexFileError(f"{where} is not an EmbeddingIndex manifest (no format {FORMAT!r}); {_FIX}.")
    version: Any = raw.get("format_version")
    if not _is_int(version) or version not in READABLE_VERSIONS:
        if _is_int(version) and version > FORMAT_VERSION:
            raise IndexFileError(
                f"{where} has format_version {version!r}; this version of finetune_embed reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}. Upgrade finetune_embed to load it."
            )
        raise IndexFileError(f"{where} has an invalid format_version {_shown(version)}; {_FIX}.")
    if version >= 2:
        claimed = raw.get("manifest_sha256")
        body = {k: v for k, v in raw.items() if k != "manifest_sha256"}
        try:
            actual = hashlib.sha256(_canonical(body)).hexdigest()
        except (ValueError, TypeError, RecursionError):  # pragma: no cover - parse_json admits no such values
            actual = ""
        if claimed != actual:
            raise IndexFileError(
                f"{where} does not match its own checksum (manifest_sha256): the manifest is corrupt or was edited "
                f"after saving; {_FIX}."
            )
    c = _Checker(raw)
    extra = set(raw) - (_FIELDS_V2 if version >= 2 else _FIELDS_V1)
    if extra:
        c.problems.append(f"unknown fields {sorted(extra)}")
    missing = (_FIELDS_V2 if version >= 2 else _FIELDS_V1) - set(raw)
    if missing:
        c.problems.append(f"missing fields {sorted(missing)}")
    count = c.int_field("count", 0, MAX_COUNT)
    dim = c.int_field("dim", 1, MAX_DIM, optional=True)
    metric = c.choice("metric", ("cosine", "dot"))
    dtype = c.choice("dtype", ("float32", "float16", "int8"))
    model = c.text("model", 1000, optional=True)
    created = c.text("created", 100) or ""
    if created:
        try:
            dt.datetime.fromisoformat(created)
        except ValueError:
            c.bad("created", "must be an ISO 8601 date and time")
    library_version = c.text("library_version", 100) or ""
    if count is not None and count > 0 and "dim" in raw and raw["dim"] is None:
        c.problems.append(f"dim is null but count is {count}")
    files = _check_files(c, dtype, count if count is not None else 0)
    if c.problems:
        raise IndexFileError(f"{where} has invalid fields: {'; '.join(c.problems)}. The index is corrupt; {_FIX}.")
    assert count is not None
    return Manifest(
        format_version=int(version),
        dim=dim,
        metric=metric,
        dtype=dtype,
        model=model,
        count=count,
        created=created,
        library_version=library_version,
        files=files,
    )
