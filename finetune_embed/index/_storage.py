"""Saving and loading an index directory: plain ``.npy`` and JSON files, a manifest with checksums, atomic
replacement that is safe with concurrent saves and loads. Nothing is ever unpickled or evaluated.

Layout (``format_version`` 2; see :mod:`finetune_embed.index._manifest` for the manifest)::

    manifest.json      format, dim, metric, dtype, model, count, ..., the sha256 and size of every file below,
                       and a checksum of the manifest itself
    vectors.npy        (count, dim) float32 (float16 for dtype="float16"), C order, allow_pickle=False
    ids.json           a JSON list of the ids, in insertion order
    metadata.jsonl     one JSON object per line, same order
    codes.npy          dtype="int8" only: (count, dim) int8 codes
    residuals.npy      dtype="int8" only: (count,) float32 quantisation-error norms
    quantization.json  dtype="int8" only: the per-dimension scale and the largest vector norm

Saving writes a complete new directory beside the target (``.<name>.tmp-<pid>-<random>``, a name no other save
uses, locked while the save runs), fsyncs it, then - holding the parent directory's lock - carries over any
files of the user's in the old directory (hard links: the same files, not copies), swaps the new directory in
(Linux ``renameat2(RENAME_EXCHANGE)``: one atomic step; elsewhere two renames via ``.<name>.old-<time>-<random>``)
and removes the old one. Concurrent saves to one path therefore each swap in a complete index, the last one
winning; loads take the parent's lock shared while they open the files, so they see one complete index, the
old or the new. A crash at any point leaves a loadable index: :func:`load_index` falls back to a leftover
``.old-`` directory when the target is missing, and the next save puts it back first. Leftovers of saves that
died are removed by later saves, but only the files a save writes (the index's own files and links to files
that are still in the index directory): anything else stays, with a warning.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import hashlib
import io
import json
import math
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from .._atomic import file_access_error
from .._exceptions import IndexFileError
from .._logging import get_logger
from ._dirlock import dir_lock, open_dir, try_lock
from ._manifest import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILES,
    MAX_MANIFEST_BYTES,
    Manifest,
    files_needed,
    manifest_bytes,
    parse_json,
    parse_manifest,
)

if TYPE_CHECKING:
    from ._index import EmbeddingIndex

__all__ = ["FORMAT", "FORMAT_VERSION", "check_index_files", "load_index", "read_manifest", "save_index"]

_CHUNK_ROWS = 65536
_MAX_QUANT_BYTES = 1 << 26
_log = get_logger("index")


# --- errors from the operating system -----------------------------------------------------------------------

def _real(path: Path) -> Path:
    """``path`` with symbolic links resolved: saving through a link saves where it points."""
    return Path(os.path.realpath(path))


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
        fd = open_dir(path)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_npy(
    path: Path, shape: tuple[int, ...], dtype: np.dtype[Any], chunks: Iterator[npt.NDArray[Any]]
) -> dict[str, Any]:
    with open(path, "wb") as raw:  # open() creates files as the umask says
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
    """The leftover ``.<name>.<kind>-*`` directories beside ``target``, oldest name first."""
    prefix = f".{target.name}.{kind}-"
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    return sorted(
        Path(e.path) for e in entries if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False)
    )


def _check_target(target: Path) -> None:
    """Refuse to replace anything but an index directory (or nothing)."""
    if target.exists() and not target.is_dir():
        raise IndexFileError(f"{target} exists and is not a directory; choose another path.")
    if target.is_dir():
        try:
            names = os.listdir(target)
        except OSError as exc:
            raise file_access_error(exc, target, "read the directory") from None
        if names and "manifest.json" not in names:
            raise IndexFileError(
                f"{target} is a non-empty directory that is not a saved index; refusing to replace it. "
                "Choose an empty or new directory."
            )


def save_index(index: EmbeddingIndex, path: str | os.PathLike[str]) -> Path:
    """Write ``index`` to the directory ``path`` atomically (see the module docstring); returns ``path``."""
    given = Path(path)
    target = _real(given)
    _check_target(target)  # fail before writing gigabytes; checked again under the lock
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise file_access_error(exc, target.parent, "create the directory") from None
    tmp, tmp_fd = _new_tmp(target)
    try:
        try:
            fields = _write_contents(index, tmp)
            _write_text(tmp / "manifest.json", iter([manifest_bytes(fields).decode("utf-8")]))
            _fsync_dir(tmp)
        except OSError as exc:
            raise file_access_error(exc, target, "write the index to") from None
        with dir_lock(target.parent, shared=False):
            _check_target(target)
            try:
                _recover(target)
                _carry_over(target, tmp)
                old = _swap_in(tmp, target)
            except OSError as exc:
                raise file_access_error(exc, target, "replace the index at") from None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            _clean_leftovers(target)
        _fsync_dir(target.parent)
    finally:
        os.close(tmp_fd)
        if tmp.exists():  # the save failed before the swap: everything in it is ours (files and links)
            shutil.rmtree(tmp, ignore_errors=True)
    return given


def _new_tmp(target: Path) -> tuple[Path, int]:
    """A new temporary directory beside ``target``, locked by this save (so no other save removes it)."""
    with dir_lock(target.parent, shared=True):  # leftovers are cleaned under the exclusive lock only
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            os.mkdir(tmp)  # mode 0o777 less the umask, as mkdir always does
            fd = open_dir(tmp)
        except OSError as exc:
            raise file_access_error(exc, target.parent, "create a directory in") from None
        try_lock(fd)
    return tmp, fd


def _recover(target: Path) -> None:
    """A save that died between its two renames left the previous index as ``.old-``: put it back."""
    if os.path.lexists(target):
        return
    for old in reversed(_siblings(target, "old")):
        if (old / "manifest.json").is_file():
            _log.warning("index %s was missing; restoring the previous version left at %s", target, old)
            os.rename(old, target)
            return


def _carry_over(target: Path, tmp: Path) -> None:
    """Link everything in the old index directory that is not the index's own into the new one."""
    if not target.is_dir():
        return
    for entry in os.scandir(target):
        if entry.name not in INDEX_FILES:
            _link_tree(Path(entry.path), tmp / entry.name)


def _link_tree(src: Path, dst: Path) -> None:
    info = src.lstat()
    if stat.S_ISDIR(info.st_mode):
        os.mkdir(dst)
        os.chmod(dst, stat.S_IMODE(info.st_mode))
        for entry in os.scandir(src):
            _link_tree(Path(entry.path), dst / entry.name)
        return
    try:
        os.link(src, dst, follow_symlinks=False)  # the same file, not a copy
    except OSError:
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(info.st_mode):
            shutil.copy2(src, dst, follow_symlinks=False)
        else:
            raise IndexFileError(
                f"{src} is not a regular file and cannot be kept in the new index directory; move it out of "
                f"{src.parent} and save again."
            ) from None


def _swap_in(tmp: Path, target: Path) -> Path | None:
    """Put ``tmp`` at ``target``; returns where the old directory went (to be removed), if there was one."""
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return None
    if _exchange(tmp, target):
        return tmp  # tmp now names the old directory
    old = target.parent / f".{target.name}.old-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    os.rename(tmp, target)  # a crash just before this leaves `old`, which load and the next save find
    return old


def _clean_leftovers(target: Path) -> None:
    """Remove what dead saves left beside ``target`` (called holding the parent's exclusive lock)."""
    for tmp in _siblings(target, "tmp"):
        try:
            fd = open_dir(tmp)
        except OSError:
            continue
        try:
            if try_lock(fd):  # nobody holds it: its save died
                _clean_dir(tmp, target)
        finally:
            os.close(fd)
    for old in _siblings(target, "old"):
        _clean_dir(old, target)


def _same_file(a: Path, b: Path) -> bool:
    try:
        x, y = a.lstat(), b.lstat()
    except OSError:
        return False
    return (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)


def _clean_dir(directory: Path, target: Path) -> None:
    """Remove from a leftover directory what saves write: the index's own files and links to files that are still
    in ``target``; remove the directory if nothing else is left, otherwise leave it and say so."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if (target / entry.name).is_dir():
                    _clean_dir(path, target / entry.name)
            elif (entry.name in INDEX_FILES and directory.name.startswith(f".{target.name}.")) or _same_file(
                path, target / entry.name
            ):
                path.unlink()
        except OSError:
            pass
    try:
        os.rmdir(directory)
    except OSError:
        _log.warning(
            "left %s in place: it holds files that no save of %s wrote; move them out and delete it", directory,
            target,
        )


def _live_chunks(chunks: Iterator[npt.NDArray[Any]], alive: npt.NDArray[np.bool_] | None) -> Iterator[npt.NDArray[Any]]:
    """``chunks`` (consecutive slots) without the deleted slots."""
    at = 0
    for chunk in chunks:
        n = chunk.shape[0]
        yield chunk if alive is None else chunk[alive[at : at + n]]
        at += n


def _write_contents(index: EmbeddingIndex, tmp: Path) -> dict[str, Any]:
    """Write the data files (live items only: the index itself is not changed) and return the manifest."""
    store = index._store
    count = len(index)
    dim = index.dim
    kind = index.dtype
    alive = None if not index._dead else np.array([i is not None for i in index._ids], dtype=bool)
    files: dict[str, dict[str, Any]] = {}
    vec_dtype = np.dtype(np.float16 if kind == "float16" else np.float32)
    if store is None:
        chunks: Iterator[npt.NDArray[Any]] = iter(())
    elif kind == "int8":
        chunks = store.iter_float32(_CHUNK_ROWS)
    else:
        chunks = store.iter_stored(_CHUNK_ROWS)
    files["vectors.npy"] = _write_npy(tmp / "vectors.npy", (count, dim or 0), vec_dtype, _live_chunks(chunks, alive))
    ids = [i for i in index._ids if i is not None]
    files["ids.json"] = _write_text(tmp / "ids.json", iter([json.dumps(ids, ensure_ascii=False) + "\n"]))
    meta_lines = (
        json.dumps(m or {}, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        for m, i in zip(index._meta, index._ids, strict=True)
        if i is not None
    )
    files["metadata.jsonl"] = _write_text(tmp / "metadata.jsonl", meta_lines)
    if kind == "int8" and store is not None and store.scale is not None and count:
        files["codes.npy"] = _write_npy(
            tmp / "codes.npy", (count, dim or 0), np.dtype(np.int8), _live_chunks(store.iter_stored(_CHUNK_ROWS), alive)
        )
        residuals = (s.residual[: s.used] for s in store.segments if s.residual is not None)
        files["residuals.npy"] = _write_npy(
            tmp / "residuals.npy", (count,), np.dtype(np.float32), _live_chunks(residuals, alive)
        )
        quant = {"scale": [float(x) for x in store.scale], "max_norm": store.max_norm}
        files["quantization.json"] = _write_text(tmp / "quantization.json", iter([json.dumps(quant) + "\n"]))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dim": dim,
        "metric": index.metric,
        "dtype": kind,
        "model": index.model,
        "count": count,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "library_version": _library_version(),
        "vector_sha256": files["vectors.npy"]["sha256"],
        "files": files,
    }


# --- reading ------------------------------------------------------------------------------------------------


def _resolve(path: Path) -> Path:
    if (path / "manifest.json").is_file():
        return path
    for old in reversed(_siblings(path, "old")):  # a save was killed between its two renames
        if (old / "manifest.json").is_file():
            _log.warning("index %s is missing; loading the previous version left at %s", path, old)
            return old
    if not os.path.lexists(path):
        raise IndexFileError(f"no saved index at {path} (the directory does not exist); check the path.")
    if not path.is_dir():
        raise IndexFileError(f"{path} is a file, not an index directory; give the directory EmbeddingIndex.save wrote.")
    raise IndexFileError(f"{path} is not a saved index: manifest.json is missing; check the path.")


def _open_at(dir_fd: int, name: str, where: Path) -> io.BufferedReader:
    """Open ``name`` inside the directory ``dir_fd`` for reading: a regular file, or IndexFileError."""
    path = where / name
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    except FileNotFoundError:
        raise IndexFileError(f"{path} is missing; the index is incomplete. Restore it from a backup.") from None
    except OSError as exc:
        raise file_access_error(exc, path, "read") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IndexFileError(f"{path} is not a regular file; the index is corrupt. Restore it from a backup.")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass
class _Opened:
    """An index directory's checked manifest and its files, opened together (so they belong to one save)."""

    where: Path
    manifest: Manifest
    files: dict[str, io.BufferedReader] = field(default_factory=dict)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _open(path: str | os.PathLike[str]) -> _Opened:
    real = _real(Path(path))
    with dir_lock(real.parent, shared=True):  # no save swaps directories while the files are opened
        where = _resolve(real)
        try:
            dir_fd = open_dir(where)
        except OSError as exc:
            raise file_access_error(exc, where, "open the index directory") from None
        try:
            with _open_at(dir_fd, "manifest.json", where) as f:
                try:
                    data = f.read(MAX_MANIFEST_BYTES + 1)
                except OSError as exc:
                    raise file_access_error(exc, where / "manifest.json", "read") from None
            manifest = parse_manifest(data, str(where / "manifest.json"))
            opened = _Opened(where, manifest)
            try:
                for name in files_needed(manifest.dtype, manifest.count):
                    opened.files[name] = _open_at(dir_fd, name, where)
            except BaseException:
                opened.close()
                raise
        finally:
            os.close(dir_fd)
    if manifest.format_version < FORMAT_VERSION:
        _log.warning(
            "%s was saved by finetune_embed 0.1: its manifest has no checksum of its own; save it again to add one",
            where,
        )
    return opened


def _check_sizes_and_hashes(opened: _Opened, verify: bool) -> None:
    for name, f in opened.files.items():
        info = opened.manifest.files[name]
        path = opened.where / name
        try:
            size = os.fstat(f.fileno()).st_size
            if size != info["bytes"]:
                raise IndexFileError(
                    f"{path} has {size} bytes but the manifest says {info['bytes']}: the file is truncated or was "
                    "changed after saving. Restore the index from a backup or build it again."
                )
            if verify:
                f.seek(0)
                digest = hashlib.file_digest(f, "sha256").hexdigest()
                if digest != info["sha256"]:
                    raise IndexFileError(
                        f"{path} does not match the sha256 in the manifest: the file is corrupt or was tampered "
                        "with. Restore the index from a backup or build it again."
                    )
        except OSError as exc:
            raise file_access_error(exc, path, "read") from None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked manifest of the index saved at ``path`` (with ``"_path"``, the directory it was read from)."""
    opened = _open(path)
    opened.close()
    return {**opened.manifest.to_dict(), "_path": str(opened.where)}


def check_index_files(path: str | os.PathLike[str], *, verify: bool) -> tuple[Path, Manifest]:
    """The directory and checked manifest of the index at ``path``, after checking every file's size (and, with
    ``verify``, its sha256); what ``finetune-embed index info`` shows."""
    opened = _open(path)
    try:
        _check_sizes_and_hashes(opened, verify)
    finally:
        opened.close()
    return opened.where, opened.manifest


def _read_npy(f: io.BufferedReader, path: Path, dtype: Any, shape: tuple[int, ...], mmap: bool) -> npt.NDArray[Any]:
    """The array in an ``.npy`` file, after checking its header against what the manifest needs."""
    want = np.dtype(dtype)
    try:
        f.seek(0)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            found_shape, fortran, found = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            found_shape, fortran, found = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError, RecursionError, MemoryError, TypeError) as exc:
        raise IndexFileError(
            f"{path} is not a readable .npy array ({exc}); restore the index from a backup or build it again."
        ) from None
    if found != want or tuple(found_shape) != shape or fortran:
        raise IndexFileError(
            f"{path} holds a {tuple(found_shape)} array of {found}{' in Fortran order' if fortran else ''}; "
            f"the manifest needs a {shape} array of {want} in C order. The index is corrupt: restore it or build it "
            "again."
        )
    nbytes = math.prod(shape) * want.itemsize
    size = os.fstat(f.fileno()).st_size
    if size != offset + nbytes:
        raise IndexFileError(f"{path} has {size - offset} bytes of data; {want} {shape} needs {nbytes}.")
    if nbytes == 0:
        return np.zeros(shape, dtype=want)
    if mmap:
        return np.memmap(f, dtype=want, mode="c", offset=offset, shape=shape)
    arr = np.empty(shape, dtype=want)
    view = arr.data.cast("B")
    done = 0
    while done < nbytes:
        got = f.readinto(view[done:])
        if not got:
            raise IndexFileError(f"{path} ended early; the index is corrupt.")
        done += got
    return arr


def _read_ids(f: io.BufferedReader, path: Path, count: int) -> list[str]:
    f.seek(0)
    ids = parse_json(f.read(), str(path))
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise IndexFileError(f"{path} must hold a JSON list of non-empty strings; the index is corrupt.")
    if len(ids) != count:
        raise IndexFileError(f"{path} has {len(ids)} ids but the manifest says count={count}; the index is corrupt.")
    if len(set(ids)) != len(ids):
        raise IndexFileError(f"{path} has repeated ids; the index is corrupt.")
    return ids


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_metadata(f: io.BufferedReader, path: Path, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    f.seek(0)
    for line_no, line in enumerate(f, 1):
        try:
            value = json.loads(line.decode("utf-8"), parse_constant=_no_constants)
        except RecursionError:
            raise IndexFileError(f"{path}:{line_no}: the JSON is nested too deeply; the index is corrupt.") from None
        except UnicodeDecodeError as exc:
            raise IndexFileError(f"{path}:{line_no}: not UTF-8 ({exc.reason}); the index is corrupt.") from None
        except json.JSONDecodeError as exc:
            raise IndexFileError(f"{path}:{line_no}: not valid JSON ({exc.msg}); the index is corrupt.") from None
        except ValueError as exc:
            raise IndexFileError(f"{path}:{line_no}: invalid JSON ({exc}); the index is corrupt.") from None
        if not isinstance(value, dict):
            raise IndexFileError(f"{path}:{line_no}: expected a JSON object, got {type(value).__name__}.")
        out.append(value)
        if len(out) > count:
            break
    if len(out) != count:
        raise IndexFileError(f"{path} has {len(out)} lines but the manifest says count={count}; the index is corrupt.")
    return out


def _read_quantization(f: io.BufferedReader, path: Path, dim: int) -> tuple[npt.NDArray[np.float32], float]:
    f.seek(0)
    quant = parse_json(f.read(_MAX_QUANT_BYTES), str(path))
    problem = ""
    scale = np.zeros(0, dtype=np.float32)
    max_norm = float("nan")
    if not isinstance(quant, dict) or set(quant) != {"scale", "max_norm"}:
        problem = "must be an object with exactly 'scale' and 'max_norm'"
    elif not isinstance(quant["scale"], list) or len(quant["scale"]) != dim or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in quant["scale"]
    ):
        problem = f"'scale' must be a list of {dim} numbers"
    elif isinstance(quant["max_norm"], bool) or not isinstance(quant["max_norm"], int | float):
        problem = "'max_norm' must be a number"
    else:
        with np.errstate(over="ignore"):
            try:
                scale = np.asarray(quant["scale"], dtype=np.float64).astype(np.float32)
                max_norm = float(quant["max_norm"])
            except (OverflowError, ValueError):
                problem = "holds numbers beyond float range"
        if not problem and (not np.isfinite(scale).all() or (scale <= 0).any()):
            problem = "'scale' must hold finite positive numbers"
        elif not problem and not (math.isfinite(max_norm) and 0 < max_norm < 3.4e38):
            problem = "'max_norm' must be a finite positive number"
    if problem:
        raise IndexFileError(f"{path}: {problem}; the index is corrupt. Restore it from a backup or build it again.")
    return scale, max_norm


def _largest_norm(vectors: npt.NDArray[np.float32]) -> float:
    top = 0.0
    for a in range(0, vectors.shape[0], _CHUNK_ROWS):
        part = np.asarray(vectors[a : a + _CHUNK_ROWS])
        top = max(top, float(np.einsum("ij,ij->i", part, part, dtype=np.float64).max()))
    return math.sqrt(top)


def load_index(
    path: str | os.PathLike[str], *, mmap: bool = True, verify: bool = True, spill_dir: str | None = None
) -> EmbeddingIndex:
    """Read the index saved at ``path``; see :meth:`EmbeddingIndex.load`."""
    opened = _open(path)
    try:
        _check_sizes_and_hashes(opened, verify)
        try:
            return _build(opened, mmap=mmap, verify=verify, spill_dir=spill_dir)
        except OSError as exc:
            raise file_access_error(exc, opened.where, "read the index at") from None
    finally:
        opened.close()  # memory maps keep their own reference to the files


def _build(opened: _Opened, *, mmap: bool, verify: bool, spill_dir: str | None) -> EmbeddingIndex:
    from ._index import EmbeddingIndex
    from ._store import Kind, Segment, VectorStore

    m, where, files = opened.manifest, opened.where, opened.files
    count, dim, kind = m.count, m.dim, m.dtype
    index = EmbeddingIndex(dim, metric=m.metric, dtype=kind, model=m.model, spill_dir=spill_dir)  # type: ignore[arg-type]
    ids = _read_ids(files["ids.json"], where / "ids.json", count)
    metadata = _read_metadata(files["metadata.jsonl"], where / "metadata.jsonl", count)
    if count == 0:
        return index
    assert dim is not None  # parse_manifest refuses count > 0 without dim
    vec_dtype = np.float16 if kind == "float16" else np.float32
    # the int8 kind always maps its float32 vectors: they are only read for re-ranking
    vectors = _read_npy(files["vectors.npy"], where / "vectors.npy", vec_dtype, (count, dim), mmap or kind == "int8")
    store = VectorStore(dim, cast("Kind", kind), spill_dir=spill_dir)
    if kind == "int8":
        codes = _read_npy(files["codes.npy"], where / "codes.npy", np.int8, (count, dim), mmap)
        residual = _read_npy(files["residuals.npy"], where / "residuals.npy", np.float32, (count,), False)
        scale, max_norm = _read_quantization(files["quantization.json"], where / "quantization.json", dim)
        if not np.isfinite(residual).all() or (residual < 0).any():
            raise IndexFileError(f"{where / 'residuals.npy'} has invalid values; the index is corrupt.")
        if verify and _largest_norm(vectors) > max_norm * (1 + 1e-6):
            raise IndexFileError(
                f"{where / 'quantization.json'}: max_norm {max_norm} is smaller than the largest vector's norm; the "
                "index is corrupt. Restore it from a backup or build it again."
            )
        _random_access(vectors)  # only shortlisted rows are read: no readahead around them
        store.scale = scale
        store.max_residual = float(residual.max())
        store.max_norm = max_norm
        store.segments.append(Segment(start=0, data=codes, used=count, exact=vectors, residual=residual))
    else:
        store.segments.append(Segment(start=0, data=vectors, used=count))
        store.max_norm = 1.0 if m.metric == "cosine" else 0.0
    store.n = count
    index._store = store
    index._ids = list(ids)
    index._meta = list(metadata)
    index._pos = {i: s for s, i in enumerate(ids)}
    return index


def _random_access(arr: npt.NDArray[Any]) -> None:
    """Tell the OS a mapped array is read at random (no readahead), where it can be told."""
    import mmap

    handle = getattr(arr, "_mmap", None)
    advice = getattr(mmap, "MADV_RANDOM", None)
    if handle is not None and advice is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            handle.madvise(advice)
