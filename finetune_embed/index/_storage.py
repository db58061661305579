"""Saving and loading an index directory: plain ``.npy`` and JSON files, a manifest with checksums, atomic
replacement. Nothing is ever unpickled or evaluated.

Layout (``format_version`` 1)::

    manifest.json      format, format_version, dim, metric, dtype, model, count, created, library version,
                       vector_sha256, and {"files": {name: {"sha256", "bytes"}}} for every file below
    vectors.npy        (count, dim) float32 (float16 for dtype="float16"), C order, allow_pickle=False
    ids.json           a JSON list of the ids, in insertion order
    metadata.jsonl     one JSON object per line, same order
    codes.npy          dtype="int8" only: (count, dim) int8 codes
    residuals.npy      dtype="int8" only: (count,) float32 quantisation-error norms
    quantization.json  dtype="int8" only: the per-dimension scale and the largest vector norm

Saving writes a complete new directory beside the target (``.<name>.tmp-<random>``), fsyncs it, then swaps it
in: with Linux's ``renameat2(RENAME_EXCHANGE)`` where available (one atomic step), otherwise by renaming the old
directory away (``.<name>.old-<random>``) and the new one in. A crash at any point leaves a loadable index,
the old or the new: :func:`load_index` falls back to a leftover ``.old-`` directory when the target is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._exceptions import IndexFileError
from .._logging import get_logger

if TYPE_CHECKING:
    from ._index import EmbeddingIndex

__all__ = ["FORMAT", "FORMAT_VERSION", "load_index", "read_manifest", "save_index"]

FORMAT = "finetune_embed.EmbeddingIndex"
FORMAT_VERSION = 1
_CHUNK_ROWS = 65536
_log = get_logger("index")


# --- writing ------------------------------------------------------------------------------------------------


class _HashingFile:
    """A binary file that hashes what is written to it."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        return self.f.write(data)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # pragma: no cover - not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_npy(
    path: Path, shape: tuple[int, ...], dtype: np.dtype[Any], chunks: Iterator[npt.NDArray[Any]]
) -> dict[str, Any]:
    with open(path, "wb") as raw:
        out = _HashingFile(raw)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(out, header)
        written = 0
        for chunk in chunks:
            block = np.ascontiguousarray(chunk, dtype=dtype)
            out.write(block.data.cast("B"))
            written += block.shape[0] if block.ndim else 1
        if shape and written != shape[0]:  # pragma: no cover - guarded by the callers
            raise IndexFileError(f"internal error: wrote {written} rows of {path.name}, expected {shape[0]}")
        raw.flush()
        os.fsync(raw.fileno())
    return {"sha256": out.sha.hexdigest(), "bytes": out.bytes}


def _write_text(path: Path, lines: Iterator[str]) -> dict[str, Any]:
    with open(path, "wb") as raw:
        out = _HashingFile(raw)
        for line in lines:
            out.write(line.encode("utf-8"))
        raw.flush()
        os.fsync(raw.fileno())
    return {"sha256": out.sha.hexdigest(), "bytes": out.bytes}


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("finetune-embed")
    except PackageNotFoundError:  # pragma: no cover
        return "0+unknown"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":  # pragma: no cover
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - old glibc
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(rc == 0)


def _siblings(target: Path, kind: str) -> list[Path]:
    prefix = f".{target.name}.{kind}-"
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir())


def save_index(index: EmbeddingIndex, path: str | os.PathLike[str]) -> Path:
    """Write ``index`` to the directory ``path`` atomically (see the module docstring)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise IndexFileError(f"{target} exists and is not a directory; choose another path.")
    if target.is_dir() and any(target.iterdir()) and not (target / "manifest.json").is_file():
        raise IndexFileError(
            f"{target} is a non-empty directory that is not a saved index; refusing to replace it."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in _siblings(target, "tmp"):  # left by a save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        manifest = _write_contents(index, tmp)
        data = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        _write_text(tmp / "manifest.json", iter([data]))
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, target)
    return target


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        return
    if _exchange(tmp, target):
        _fsync_dir(target.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"  # pragma: no cover - non-Linux
    os.rename(target, old)  # pragma: no cover
    os.rename(tmp, target)  # pragma: no cover
    _fsync_dir(target.parent)  # pragma: no cover
    shutil.rmtree(old, ignore_errors=True)  # pragma: no cover


def _write_contents(index: EmbeddingIndex, tmp: Path) -> dict[str, Any]:
    index._compact_if_needed(force=True)
    store = index._store
    count = len(index)
    dim = index.dim or 0
    kind = index.dtype
    files: dict[str, dict[str, Any]] = {}
    vec_dtype = np.dtype(np.float16 if kind == "float16" else np.float32)
    if store is None:
        chunks: Iterator[npt.NDArray[Any]] = iter(())
    elif kind == "int8":
        chunks = store.iter_float32(_CHUNK_ROWS)
    else:
        chunks = store.iter_stored(_CHUNK_ROWS)
    files["vectors.npy"] = _write_npy(tmp / "vectors.npy", (count, dim), vec_dtype, chunks)
    ids = index.ids
    files["ids.json"] = _write_text(tmp / "ids.json", iter([json.dumps(ids, ensure_ascii=False) + "\n"]))
    meta_lines = (
        json.dumps(m or {}, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        for m, i in zip(index._meta, index._ids, strict=True)
        if i is not None
    )
    files["metadata.jsonl"] = _write_text(tmp / "metadata.jsonl", meta_lines)
    extra: dict[str, Any] = {}
    if kind == "int8" and store is not None and store.scale is not None:
        files["codes.npy"] = _write_npy(
            tmp / "codes.npy", (count, dim), np.dtype(np.int8), store.iter_stored(_CHUNK_ROWS)
        )
        residuals = (s.residual[: s.used] for s in store.segments if s.residual is not None)
        files["residuals.npy"] = _write_npy(tmp / "residuals.npy", (count,), np.dtype(np.float32), residuals)
        quant = {"scale": [float(x) for x in store.scale], "max_norm": store.max_norm}
        files["quantization.json"] = _write_text(tmp / "quantization.json", iter([json.dumps(quant) + "\n"]))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dim": index.dim,
        "metric": index.metric,
        "dtype": kind,
        "model": index.model,
        "count": count,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "library_version": _library_version(),
        "vector_sha256": files["vectors.npy"]["sha256"],
        "files": files,
        **extra,
    }


# --- reading ------------------------------------------------------------------------------------------------


def _resolve(path: Path) -> Path:
    if (path / "manifest.json").is_file():
        return path
    for old in reversed(_siblings(path, "old")):  # a save was killed between its two renames
        if (old / "manifest.json").is_file():
            _log.warning("index %s is missing; loading the previous version left at %s", path, old)
            return old
    if not path.exists():
        raise IndexFileError(f"no saved index at {path} (the directory does not exist).")
    raise IndexFileError(f"{path} is not a saved index: manifest.json is missing.")


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked manifest of the index saved at ``path``."""
    where = _resolve(Path(path))
    file = where / "manifest.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"{file} is unreadable or not JSON ({exc}); the index is corrupt.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFileError(f"{file} is not an EmbeddingIndex manifest (no format {FORMAT!r}).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFileError(
            f"{file} has format_version {version!r}; this version of finetune_embed reads {FORMAT_VERSION}. "
            "Upgrade finetune_embed to load it."
        )
    problems = []
    if not isinstance(manifest.get("count"), int) or manifest["count"] < 0:
        problems.append("count")
    if manifest.get("dim") is not None and (not isinstance(manifest["dim"], int) or manifest["dim"] < 1):
        problems.append("dim")
    if manifest.get("metric") not in ("cosine", "dot"):
        problems.append("metric")
    if manifest.get("dtype") not in ("float32", "float16", "int8"):
        problems.append("dtype")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
        for v in files.values()
    ):
        problems.append("files")
    if problems:
        raise IndexFileError(f"{file} has missing or invalid fields: {', '.join(problems)}.")
    manifest["_path"] = str(where)
    return manifest


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_files(where: Path, manifest: dict[str, Any], verify: bool) -> None:
    needed = ["vectors.npy", "ids.json", "metadata.jsonl"]
    if manifest["dtype"] == "int8" and manifest["count"] > 0:
        needed += ["codes.npy", "residuals.npy", "quantization.json"]
    for name in needed:
        info = manifest["files"].get(name)
        file = where / name
        if info is None:
            raise IndexFileError(f"{where / 'manifest.json'} does not list {name}; the index is corrupt.")
        if not file.is_file():
            raise IndexFileError(f"{file} is missing; the index is incomplete.")
        size = file.stat().st_size
        if size != info["bytes"]:
            raise IndexFileError(
                f"{file} has {size} bytes but the manifest says {info['bytes']}: the file is truncated or "
                "was changed after saving."
            )
        if verify and _sha256(file) != info["sha256"]:
            raise IndexFileError(
                f"{file} does not match the sha256 in the manifest: the file is corrupt or was tampered with."
            )


def _load_npy(file: Path, dtype: Any, shape: tuple[int, ...], mmap: bool) -> npt.NDArray[Any]:
    try:
        arr = np.load(file, mmap_mode="c" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IndexFileError(f"{file} is not a readable .npy array ({exc}).") from None
    if not isinstance(arr, np.ndarray):  # pragma: no cover - np.load of .npy always gives an array
        raise IndexFileError(f"{file} does not hold an array.")
    if arr.dtype != np.dtype(dtype) or arr.shape != shape:
        raise IndexFileError(
            f"{file} holds a {arr.dtype} array of shape {arr.shape}; the manifest needs {np.dtype(dtype)} "
            f"{shape}."
        )
    if arr.ndim == 2 and not arr.flags.c_contiguous:
        raise IndexFileError(f"{file} is stored in Fortran order; expected C order.")
    return arr


def _load_ids(file: Path, count: int) -> list[str]:
    try:
        ids = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"{file} is not valid JSON ({exc}).") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise IndexFileError(f"{file} must hold a JSON list of non-empty strings.")
    if len(ids) != count:
        raise IndexFileError(f"{file} has {len(ids)} ids but the manifest says count={count}.")
    if len(set(ids)) != len(ids):
        raise IndexFileError(f"{file} has repeated ids; the index is corrupt.")
    return ids


def _load_metadata(file: Path, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        with open(file, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise IndexFileError(f"{file}:{line_no}: not valid JSON ({exc.msg}).") from None
                if not isinstance(value, dict):
                    raise IndexFileError(f"{file}:{line_no}: expected a JSON object, got {type(value).__name__}.")
                out.append(value)
    except UnicodeDecodeError as exc:
        raise IndexFileError(f"{file} is not UTF-8 ({exc}).") from None
    if len(out) != count:
        raise IndexFileError(f"{file} has {len(out)} lines but the manifest says count={count}.")
    return out


def _random_access(arr: npt.NDArray[Any]) -> None:
    """Tell the OS a mapped array is read at random (no readahead), where it can be told."""
    import mmap

    handle = getattr(arr, "_mmap", None)
    advice = getattr(mmap, "MADV_RANDOM", None)
    if handle is not None and advice is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            handle.madvise(advice)


def load_index(
    path: str | os.PathLike[str], *, mmap: bool = True, verify: bool = True, spill_dir: str | None = None
) -> EmbeddingIndex:
    """Read the index saved at ``path``; see :meth:`EmbeddingIndex.load`."""
    from ._index import EmbeddingIndex
    from ._store import Segment, VectorStore

    manifest = read_manifest(path)
    where = Path(manifest["_path"])
    _check_files(where, manifest, verify)
    count, dim, kind = manifest["count"], manifest["dim"], manifest["dtype"]
    index = EmbeddingIndex(dim, metric=manifest["metric"], dtype=kind, model=manifest.get("model"), spill_dir=spill_dir)
    ids = _load_ids(where / "ids.json", count)
    metadata = _load_metadata(where / "metadata.jsonl", count)
    if count == 0:
        return index
    if dim is None:
        raise IndexFileError(f"{where / 'manifest.json'} has count={count} but no dim.")
    vec_dtype = np.float16 if kind == "float16" else np.float32
    # the int8 kind always maps its float32 vectors: they are only read for re-ranking
    vectors = _load_npy(where / "vectors.npy", vec_dtype, (count, dim), mmap or kind == "int8")
    store = VectorStore(dim, kind, spill_dir=spill_dir)
    if kind == "int8":
        codes = _load_npy(where / "codes.npy", np.int8, (count, dim), mmap)
        residual = _load_npy(where / "residuals.npy", np.float32, (count,), False)
        try:
            quant = json.loads((where / "quantization.json").read_text(encoding="utf-8"))
            scale = np.asarray(quant["scale"], dtype=np.float32)
            max_norm = float(quant["max_norm"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexFileError(f"{where / 'quantization.json'} is invalid ({exc}).") from None
        if scale.shape != (dim,) or not np.isfinite(scale).all() or (scale <= 0).any():
            raise IndexFileError(f"{where / 'quantization.json'} has an invalid scale.")
        if not np.isfinite(residual).all() or (residual < 0).any():
            raise IndexFileError(f"{where / 'residuals.npy'} has invalid values.")
        _random_access(vectors)  # only shortlisted rows are read: no readahead around them
        store.scale = scale
        store.max_residual = float(residual.max())
        store.max_norm = max_norm
        store.segments.append(Segment(start=0, data=codes, used=count, exact=vectors, residual=residual))
    else:
        store.segments.append(Segment(start=0, data=vectors, used=count))
        store.max_norm = 1.0 if manifest["metric"] == "cosine" else 0.0
    store.n = count
    index._store = store
    index._ids = list(ids)
    index._meta = list(metadata)
    index._pos = {i: s for s, i in enumerate(ids)}
    index._source = where
    return index
