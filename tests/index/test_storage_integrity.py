"""#11 item 4: a saved index's manifest is checksummed and every field checked; tampering never loads silently."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finetune_embed import _exceptions as exc
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index._manifest import manifest_bytes, parse_manifest


def _index(kind: str = "int8", n: int = 60, d: int = 8, metric: str = "cosine") -> EmbeddingIndex:
    rng = np.random.default_rng(0)
    index = EmbeddingIndex(d, metric=metric, dtype=kind, model="text-embedding-3-small")  # type: ignore[arg-type]
    index.add([f"id{i}" for i in range(n)], rng.standard_normal((n, d)), [{"n": i} for i in range(n)])
    return index


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return _index().save(tmp_path / "idx")


def _fields(saved: Path) -> dict[str, Any]:
    return dict(json.loads((saved / "manifest.json").read_text()))


def _edit(saved: Path, change: Callable[[dict[str, Any]], None], *, forge: bool) -> None:
    """Change manifest fields; ``forge`` also recomputes the manifest's own checksum."""
    fields = _fields(saved)
    if forge:
        del fields["manifest_sha256"]
        change(fields)
        (saved / "manifest.json").write_bytes(manifest_bytes(fields))
    else:
        change(fields)
        (saved / "manifest.json").write_text(json.dumps(fields, indent=2))


def _rehash(saved: Path, name: str) -> Callable[[dict[str, Any]], None]:
    data = (saved / name).read_bytes()

    def change(fields: dict[str, Any]) -> None:
        fields["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        if name == "vectors.npy":
            fields["vector_sha256"] = fields["files"][name]["sha256"]

    return change


def test_the_manifest_carries_a_checksum_of_its_own(saved: Path) -> None:
    fields = _fields(saved)
    assert fields["format_version"] == 2
    body = {k: v for k, v in fields.items() if k != "manifest_sha256"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()
    assert fields["manifest_sha256"] == hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda m: m.update(metric="dot"), id="metric cosine->dot"),
        pytest.param(lambda m: m.update(model=None), id="model lost"),
        pytest.param(lambda m: m.pop("dim"), id="dim missing"),
        pytest.param(lambda m: m.update(count=59), id="count"),
        pytest.param(lambda m: m["files"]["vectors.npy"].update(bytes=1), id="file size"),
    ],
)
def test_an_edited_field_breaks_the_manifest_checksum(saved: Path, change: Callable[[dict[str, Any]], None]) -> None:
    _edit(saved, change, forge=False)
    for verify in (True, False):  # the manifest's checksum is always checked: it costs nothing
        with pytest.raises(exc.IndexFileError, match="does not match its own checksum"):
            EmbeddingIndex.load(saved, verify=verify)


def test_a_changed_file_with_its_hash_rewritten_is_refused(saved: Path) -> None:
    """The issue's case: rewriting the stored file hashes used to load silently with verify=True."""
    quant = json.loads((saved / "quantization.json").read_text())
    quant["max_norm"] = 0.5
    (saved / "quantization.json").write_text(json.dumps(quant))
    _edit(saved, _rehash(saved, "quantization.json"), forge=False)
    with pytest.raises(exc.IndexFileError, match="does not match its own checksum"):
        EmbeddingIndex.load(saved)


def test_a_forged_max_norm_is_refused_by_the_checks(saved: Path) -> None:
    """Even with every checksum recomputed, a NaN (or too small) max_norm never loads."""
    original = (saved / "quantization.json").read_text()
    for bad, pattern, verify in [("NaN", "invalid JSON", False), ("-1.0", "max_norm' must be a finite positive", False),
                                 ("1e400", "max_norm' must be a finite positive", False),
                                 ("0.5", "smaller than the largest vector", True)]:
        quant = original.replace(str(json.loads(original)["max_norm"]), bad)
        (saved / "quantization.json").write_text(quant)
        _edit(saved, _rehash(saved, "quantization.json"), forge=True)
        with pytest.raises(exc.IndexFileError, match=pattern):
            EmbeddingIndex.load(saved, verify=verify)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda m: m.pop("dim"), r"missing fields \['dim'\]"),
        (lambda m: m.update(dim=0), "dim must be an integer from 1"),
        (lambda m: m.update(dim=True), "dim must be an integer"),
        (lambda m: m.update(dim="8"), "dim must be an integer"),
        (lambda m: m.update(dim=None), "dim is null but count is 60"),
        (lambda m: m.update(count=-1), "count must be an integer"),
        (lambda m: m.update(count=1.5), "count must be an integer"),
        (lambda m: m.update(metric="l2"), "metric must be one of"),
        (lambda m: m.update(dtype="float64"), "dtype must be one of"),
        (lambda m: m.update(dtype="float32"), r"files lists .* a float32 index of 60 items consists of"),
        (lambda m: m.update(model=["x"]), "model must be a line of text"),
        (lambda m: m.update(model="a\nb"), "model must be a line of text"),
        (lambda m: m.update(created="yesterday"), "created must be an ISO 8601"),
        (lambda m: m.update(library_version=1), "library_version must be a line"),
        (lambda m: m.update(vector_sha256="0" * 64), "vector_sha256 must equal"),
        (lambda m: m.update(files=[]), "files must be an object"),
        (lambda m: m["files"].pop("codes.npy"), "files lists"),
        (lambda m: m["files"]["ids.json"].update(sha256="XYZ"), r"files\['ids.json'\] must be"),
        (lambda m: m["files"]["ids.json"].update(bytes=-5), r"files\['ids.json'\] must be"),
        (lambda m: m["files"]["ids.json"].update(extra=1), r"files\['ids.json'\] must be"),
        (lambda m: m.update(surprise=1), r"unknown fields \['surprise'\]"),
        (lambda m: m.update(metric="dot", dim=None, count=True), "count must be an integer"),
    ],
)
def test_every_field_is_checked_even_when_the_checksum_is_forged(
    saved: Path, change: Callable[[dict[str, Any]], None], pattern: str
) -> None:
    _edit(saved, change, forge=True)
    with pytest.raises(exc.IndexFileError, match=pattern) as info:
        EmbeddingIndex.load(saved)
    assert "manifest.json" in str(info.value)
    assert "restore" in str(info.value)


def test_swapped_fields_are_refused(saved: Path) -> None:
    def swap(m: dict[str, Any]) -> None:
        m["metric"], m["dtype"] = m["dtype"], m["metric"]

    _edit(saved, swap, forge=True)
    with pytest.raises(exc.IndexFileError, match=r"metric must be one of.*dtype must be one of"):
        EmbeddingIndex.load(saved)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"format": "finetune_embed.EmbeddingIndex", "format": 1}', "appears twice"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "not valid JSON"),
        (b'{"format": NaN}', "invalid JSON"),
        (b" " * (2 << 20), "a manifest has a few hundred"),
        (b"42", "not an EmbeddingIndex manifest"),
    ],
)
def test_a_broken_manifest_is_a_typed_error(saved: Path, text: bytes, pattern: str) -> None:
    (saved / "manifest.json").write_bytes(text)
    with pytest.raises(exc.IndexFileError, match=pattern):
        EmbeddingIndex.load(saved)


def test_deep_json_in_the_data_files_is_a_typed_error(saved: Path) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    lines = (saved / "metadata.jsonl").read_bytes().splitlines(keepends=True)
    (saved / "metadata.jsonl").write_bytes(b"".join(lines[:3]) + b'{"a": ' + deep + b"}\n" + b"".join(lines[4:]))
    _edit(saved, _rehash(saved, "metadata.jsonl"), forge=True)
    with pytest.raises(exc.IndexFileError, match=r"metadata.jsonl:4: the JSON is nested too deeply"):
        EmbeddingIndex.load(saved)
    for name in ("ids.json", "quantization.json"):
        other = _index().save(saved.parent / name)
        (other / name).write_bytes(deep)
        _edit(other, _rehash(other, name), forge=True)
        with pytest.raises(exc.IndexFileError, match="nested too deeply"):
            EmbeddingIndex.load(other)


def test_a_version_1_manifest_still_loads_with_a_warning(saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    fields = _fields(saved)
    del fields["manifest_sha256"]
    fields["format_version"] = 1
    (saved / "manifest.json").write_text(json.dumps(fields, indent=2))
    with caplog.at_level(logging.WARNING, logger="finetune_embed"):
        loaded = EmbeddingIndex.load(saved)
    assert len(loaded) == 60
    assert "no checksum of its own; save it again" in caplog.text
    fields["metric"] = "euclid"  # its fields are checked all the same
    (saved / "manifest.json").write_text(json.dumps(fields, indent=2))
    with pytest.raises(exc.IndexFileError, match="metric must be one of"):
        EmbeddingIndex.load(saved)


def test_a_data_file_that_is_not_a_regular_file_never_blocks(saved: Path) -> None:
    (saved / "ids.json").unlink()
    os.mkfifo(saved / "ids.json")  # reading a FIFO would wait forever
    with pytest.raises(exc.IndexFileError, match=r"ids.json is not a regular file"):
        EmbeddingIndex.load(saved)


def test_a_tampered_npy_header_is_refused(saved: Path) -> None:
    data = bytearray((saved / "vectors.npy").read_bytes())
    header_end = data.index(b"\n") + 1
    header = bytes(data[:header_end]).replace(b"'<f4'", b"'|O'")
    (saved / "vectors.npy").write_bytes(header + bytes(data[header_end:]))
    _edit(saved, _rehash(saved, "vectors.npy"), forge=True)
    with pytest.raises(exc.IndexFileError, match=r"vectors.npy"):
        EmbeddingIndex.load(saved)


def test_parse_manifest_accepts_what_save_writes(saved: Path) -> None:
    manifest = parse_manifest((saved / "manifest.json").read_bytes(), "m")
    assert (manifest.dim, manifest.count, manifest.metric, manifest.dtype) == (8, 60, "cosine", "int8")
    assert set(manifest.files) == {"vectors.npy", "ids.json", "metadata.jsonl", "codes.npy", "residuals.npy",
                                   "quantization.json"}
