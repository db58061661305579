"""Hostile-input fuzzing report (#11): index files, embedding caches, JSONL and CSV, one table.

Run from the repository root:

    python benchmarks/fuzz_report.py            # a few minutes on a quiet 2-core machine
    python benchmarks/fuzz_report.py --quick    # a smoke run, well under a minute

For each target, inputs are built from real files the library wrote (or a valid file written here), damaged by
hypothesis-chosen mutations (bit flips, truncation, appended / overwritten bytes, deep nesting, huge numbers,
NaN, bad UTF-8, edited fields...) and fed back. Each outcome is one of:

* ``ok``: the result equals what an independent reading of the input says it must be (for damaged inputs
  that still mean the same thing: a flipped bit in whitespace, a re-fetched cache row);
* ``typed``: a :class:`~finetune_embed.FinetuneEmbedError` subclass was raised (the damage was detected);
* ``silent``: a result that differs from the independent reading: a silent wrong result. Must be 0;
* ``crash``: any other exception (untyped). Must be 0.

Index files add ``forged``: every checksum recomputed by a forger, so a different but well-formed index may load
(checksums cannot catch that; it must still never crash). The script exits 1 when a silent or crash count is
not 0, and prints the first few of them.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_embed import EmbeddingIndex, FinetuneEmbedError
from finetune_embed.dataset import Dataset

ROOT = Path(__file__).resolve().parents[1]

OUTCOMES = ("ok", "typed", "silent", "crash")
FAILURES: list[str] = []


def classify(run: Callable[[], bool], what: str) -> str:
    """``ok`` when ``run()`` returns True (the result matches), ``silent`` when it returns False, ``typed`` for a
    FinetuneEmbedError, ``crash`` for anything else."""
    try:
        matched = run()
    except FinetuneEmbedError:
        return "typed"
    except Exception:
        FAILURES.append(f"crash in {what}:\n{traceback.format_exc()}")
        return "crash"
    if not matched:
        FAILURES.append(f"silent wrong result in {what}")
        return "silent"
    return "ok"


# --- mutations of bytes (JSONL and CSV) ---------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random damage to a text file, and its name."""
    kind = rng.randrange(10)
    buf = bytearray(data)
    if kind == 0 and buf:
        for _ in range(rng.choice([1, 1, 2, 8])):
            at = rng.randrange(len(buf) * 8)
            buf[at // 8] ^= 1 << (at % 8)
        return "bit flips", bytes(buf)
    if kind == 1:
        return "truncate", bytes(buf[: rng.randrange(len(buf) + 1)])
    if kind == 2:
        at = rng.randrange(len(buf) + 1)
        return "insert bytes", bytes(buf[:at]) + rng.randbytes(rng.randrange(1, 12)) + bytes(buf[at:])
    if kind == 3:
        depth = rng.choice([50, 101, 1000, 100_000])
        at = rng.randrange(len(buf) + 1)
        return "deep nesting", bytes(buf[:at]) + b"[" * depth + b"]" * depth + bytes(buf[at:])
    if kind == 4:
        token = rng.choice([b"9" * 400, b"-" + b"9" * 400, b"1e400", b"NaN", b"Infinity", b"-Infinity", b"1e-400"])
        digits = [i for i, c in enumerate(buf) if chr(c).isdigit()]
        at = rng.choice(digits) if digits else len(buf)
        return "huge / non-finite numbers", bytes(buf[:at]) + token + bytes(buf[at + 1 :])
    if kind == 5:
        token = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b'\\ud800', b"\x00", b"\xef\xbb\xbf", b"\r", b"\x0c"])
        at = rng.randrange(len(buf) + 1)
        return "bad UTF-8 / control bytes", bytes(buf[:at]) + token + bytes(buf[at:])
    if kind == 6:
        lines = bytes(buf).split(b"\n")
        if len(lines) > 1:
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines)), lines[i])
        return "duplicate a line", b"\n".join(lines)
    if kind == 7:
        return "CRLF line ends", bytes(buf).replace(b"\n", b"\r\n")
    if kind == 8:
        quote = [i for i, c in enumerate(buf) if c in b'",']
        if quote:
            del buf[rng.choice(quote)]
        return "drop a quote or comma", bytes(buf)
    return "random bytes", rng.randbytes(rng.randrange(0, 200))


# --- JSONL -------------------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def reference_jsonl(data: bytes) -> list[dict[str, Any]] | None:
    """What a JSONL file holds by the documented contract (one JSON object per non-blank line, ASCII whitespace
    around it ignored, a UTF-8 BOM allowed at the start, NaN/Infinity refused), or ``None`` if it is invalid."""
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        body = raw.strip()
        if number == 1 and body.startswith(b"\xef\xbb\xbf"):
            body = body[3:].strip()
        if not body:
            continue
        try:
            obj = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        rows.append(obj)
    return rows


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def jsonl_case(path: Path, data: bytes, label: str) -> tuple[str, str]:
    """(from_json outcome, validate_file outcome) for one file."""
    path.write_bytes(data)
    expected = reference_jsonl(data)

    def load() -> bool:
        rows = Dataset.from_json(path).to_list()
        return expected is not None and _same(rows, expected)

    def validate() -> bool:
        report = Dataset.validate_file(path, model="gpt-4o-mini")
        # damage that makes the file unreadable as JSONL must be reported as an error
        return expected is not None or not report.ok

    outcome_load = classify(load, f"Dataset.from_json ({label}): {data[:200]!r}")
    return outcome_load, classify(validate, f"Dataset.validate_file ({label}): {data[:200]!r}")


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
_json_values = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)
_chat = st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=30)}), min_size=1,
    max_size=4)})
_rows = st.lists(st.one_of(_chat, st.dictionaries(st.text(max_size=6), _json_values, max_size=4)), min_size=1,
                 max_size=6)


def fuzz_jsonl(examples: int, tmp: Path, counts: dict[str, Counter[str]]) -> None:
    path = tmp / "fuzz.jsonl"

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(rows=_rows, seed=st.integers(0, 2**32 - 1), damage=st.booleans())
    def case(rows: list[dict[str, Any]], seed: int, damage: bool) -> None:
        data = "".join(json.dumps(r, ensure_ascii=bool(seed % 2)) + "\n" for r in rows).encode("utf-8")
        label = "valid"
        if damage:
            label, data = mutate(data, random.Random(seed))
        load, validate = jsonl_case(path, data, label)
        counts["JSONL: Dataset.from_json"][load] += 1
        counts["JSONL: Dataset.validate_file"][validate] += 1

    case()


# --- CSV (EmbeddingIndex.from_csv, the cookbook's stringified vectors) ---------------------------------------


def reference_csv(data: bytes) -> tuple[list[str], np.ndarray] | None:
    """The ids and vectors an embeddings CSV (columns id, embedding, text) holds, or ``None`` if invalid: UTF-8,
    a header with those columns, each embedding a JSON list of finite numbers, all of one length >= 1, at least
    one non-zero value, ids unique and present."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    limit = csv.field_size_limit(1 << 30)  # long cells are fine (the library reads them too); restored below
    try:
        return _reference_rows(text)
    finally:
        csv.field_size_limit(limit)


def _reference_rows(text: str) -> tuple[list[str], np.ndarray] | None:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "embedding" not in reader.fieldnames or "id" not in reader.fieldnames:
        return None
    ids: list[str] = []
    vectors: list[list[float]] = []
    try:
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                return None  # a row with more or fewer fields than the header
            if not any((v or "").strip() for v in row.values()):
                continue
            vector = json.loads(row["embedding"], parse_constant=_no_constant)
            if (not isinstance(vector, list) or not vector
                    or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)):
                return None
            floats = [float(x) for x in vector]
            if not all(math.isfinite(x) and (x == 0 or abs(x) < 3.4e38) for x in floats):
                return None
            ids.append(row["id"])
            vectors.append(floats)
    except (ValueError, RecursionError, OverflowError, csv.Error):
        return None
    if not ids:
        return [], np.zeros((0, 0), dtype=np.float32)  # a header and no rows: an empty index
    if len(set(ids)) != len(ids) or len({len(v) for v in vectors}) != 1:
        return None
    matrix = np.asarray(vectors, dtype=np.float64)
    if not np.all(np.any(matrix != 0, axis=1)):
        return None
    return ids, matrix.astype(np.float32)


def csv_case(path: Path, data: bytes, label: str) -> str:
    path.write_bytes(data)
    expected = reference_csv(data)

    def load() -> bool:
        index = EmbeddingIndex.from_csv(path, id_column="id", metric="dot")
        if expected is None:
            return False
        ids, vectors = expected
        if not ids:
            return len(index) == 0
        return index.ids == ids and np.array_equal(np.asarray(index.vectors, dtype=np.float32), vectors)

    return classify(load, f"EmbeddingIndex.from_csv ({label}): {data[:200]!r}")


def fuzz_csv(examples: int, tmp: Path, counts: dict[str, Counter[str]]) -> None:
    path = tmp / "fuzz.csv"
    floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32).filter(lambda x: x != 0)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(dim=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 2**32 - 1), damage=st.booleans(),
           data=st.data())
    def case(dim: int, n: int, seed: int, damage: bool, data: st.DataObject) -> None:
        vectors = data.draw(st.lists(st.lists(floats, min_size=dim, max_size=dim), min_size=n, max_size=n))
        texts = data.draw(st.lists(st.text(max_size=20), min_size=n, max_size=n))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "embedding", "text"])
        for i, (vector, text) in enumerate(zip(vectors, texts, strict=True)):
            writer.writerow([f"row{i}", json.dumps(vector), text])
        raw = out.getvalue().encode("utf-8", "surrogatepass")
        label = "valid"
        if damage:
            label, raw = mutate(raw, random.Random(seed))
        counts["CSV: EmbeddingIndex.from_csv"][csv_case(path, raw, label)] += 1

    case()


# --- index files and embedding caches (the suites' own harnesses) --------------------------------------------


def _harness(relative: str) -> ModuleType:
    """One of the test suites' fuzzing harnesses (tests/...), loaded from its file."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"_fuzz_harness_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def fuzz_index_files(examples: int, tmp: Path, counts: dict[str, Counter[str]], bit_step: int) -> None:
    _fuzz = _harness("tests/index/_fuzz.py")

    fuzzer = _fuzz.Fuzzer(tmp / "index")
    for kind in ("float32-cosine", "int8-cosine"):
        size = (fuzzer.templates[kind] / "manifest.json").stat().st_size
        for bit in range(0, 8 * size, bit_step):
            fuzzer.run(kind, "manifest bit", _fuzz.flip_bit("manifest.json", bit))
    _fuzz.fuzz(fuzzer, examples)
    c = fuzzer.counts
    counts["index files: EmbeddingIndex.load"].update(
        {"ok": c["identical"], "typed": c["typed"], "silent": c["silent"], "crash": c["crash"],
         "forged": c["forged-loaded"]}
    )
    FAILURES.extend(fuzzer.failures)


def fuzz_cache(cases: int, tmp: Path, counts: dict[str, Counter[str]]) -> None:
    cache_fuzz = _harness("tests/embeddings/cache_fuzz.py")

    folder = tmp / "cache"
    folder.mkdir()
    base, truth = cache_fuzz.base_file(folder)
    size = base.stat().st_size
    rng = random.Random(0)
    names = {"ok": "ok", "typed": "typed", "wrong": "silent", "crash": "crash"}
    for _ in range(cases):
        outcome = cache_fuzz.run_case(base, truth, cache_fuzz.random_damage(rng, size), folder)
        counts["embedding cache: Embedder(cache=...)"][names[outcome]] += 1


# --- the report --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (small sizes, well under a minute)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--manifest-bit-step", type=int, default=None,
                        help="flip every Nth bit of two manifests (default 3; --quick: 37)")
    args = parser.parse_args(argv)
    scale = (0.05 if args.quick else 1.0) * args.scale
    sizes = {"jsonl": int(1500 * scale) or 5, "csv": int(1500 * scale) or 5, "index": int(600 * scale) or 5,
             "cache": int(400 * scale) or 3, "bit_step": args.manifest_bit_step or (37 if args.quick else 3)}
    logger = logging.getLogger("finetune_embed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # damaged caches log warnings by design; restored below
    counts: dict[str, Counter[str]] = {}
    seconds: dict[str, float] = {}
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("index files: EmbeddingIndex.load", lambda t: fuzz_index_files(sizes["index"], t, counts, sizes["bit_step"])),
        ("embedding cache: Embedder(cache=...)", lambda t: fuzz_cache(sizes["cache"], t, counts)),
        ("JSONL", lambda t: fuzz_jsonl(sizes["jsonl"], t, counts)),
        ("CSV: EmbeddingIndex.from_csv", lambda t: fuzz_csv(sizes["csv"], t, counts)),
    ]
    for name in ("index files: EmbeddingIndex.load", "embedding cache: Embedder(cache=...)",
                 "JSONL: Dataset.from_json", "JSONL: Dataset.validate_file", "CSV: EmbeddingIndex.from_csv"):
        counts[name] = Counter()
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, step in steps:
                start = time.perf_counter()
                folder = Path(tmp) / name.split(":")[0].replace(" ", "-")
                folder.mkdir()
                step(folder)
                seconds[name] = time.perf_counter() - start
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        logger.setLevel(level)
    load = os.getloadavg()
    print(f"Hostile-input fuzzing ({'quick' if args.quick else 'full'} run; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs)\n")
    print("| target | inputs tried | ok (exact result) | typed errors | silent wrong results | crashes/untyped |"
          " forged-loaded |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    total: Counter[str] = Counter()
    for name, c in counts.items():
        n = sum(c.values())
        total.update(c)
        print(f"| {name} | {n:,} | {c['ok']:,} | {c['typed']:,} | {c['silent']} | {c['crash']} | "
              f"{c['forged']:,} |" if "index" in name else
              f"| {name} | {n:,} | {c['ok']:,} | {c['typed']:,} | {c['silent']} | {c['crash']} | - |")
    print(f"| **all** | {sum(total.values()):,} | {total['ok']:,} | {total['typed']:,} | {total['silent']} | "
          f"{total['crash']} | {total['forged']:,} |")
    print("\nseconds: " + ", ".join(f"{k.split(':')[0]} {v:.0f}" for k, v in seconds.items()))
    for failure in FAILURES[:5]:
        print("\n" + failure[:3000], file=sys.stderr)
    return 1 if total["silent"] or total["crash"] else 0


if __name__ == "__main__":
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken-cache"))
    sys.exit(main())
