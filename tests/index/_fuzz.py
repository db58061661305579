"""Hostile-input fuzzing of saved index directories (#11): corrupt, truncate, extend and edit every file, load,
and classify what happened.

Outcomes of ``EmbeddingIndex.load(..., verify=True)`` followed by a search:

- ``typed``: a :class:`~finetune_embed.FinetuneEmbedError` (the damage was detected and explained);
- ``identical``: the load succeeded and the index is exactly the saved one (the change had no effect, e.g. a
  flipped bit in JSON whitespace that still parses the same);
- ``silent``: the load succeeded with a *different* index - a silent wrong result; must never happen;
- ``crash``: any other exception; must never happen.

Forged changes (every checksum recomputed, as someone rewriting the files on purpose would) are a separate
class: checksums cannot detect them, so there a well-formed different index may load (``forged-loaded``);
they must still never crash.

The test suite runs a few hundred examples; ``python -m tests.index._fuzz --examples 20000`` runs more and
prints the counts.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_embed import FinetuneEmbedError
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index._manifest import manifest_bytes

KINDS = ("float32-cosine", "float16-dot", "int8-cosine", "int8-dot", "empty")
FILES = ("manifest.json", "vectors.npy", "ids.json", "metadata.jsonl", "codes.npy", "residuals.npy",
         "quantization.json")


def _build(kind: str) -> EmbeddingIndex:
    dtype, metric = kind.split("-") if kind != "empty" else ("float32", "dot")
    index = EmbeddingIndex(8, metric=metric, dtype=dtype, model="text-embedding-3-small")  # type: ignore[arg-type]
    if kind == "empty":
        return index
    rng = np.random.default_rng(len(kind))
    n = 40
    meta = [{"n": i, "text": f"review {i} ✓", "nested": {"k": [i, None, True]}} for i in range(n)]
    index.add([f"id{i}" for i in range(n)], rng.standard_normal((n, 8)) * (3 if metric == "dot" else 1), meta)
    index.delete(["id5"])
    return index


_QUERIES = np.random.default_rng(99).standard_normal((3, 8)).astype(np.float32)


def _fingerprint(index: EmbeddingIndex) -> tuple[Any, ...]:
    hits = index.search(_QUERIES, k=5) if len(index) else None
    return (
        index.dim,
        index.metric,
        index.dtype,
        index.model,
        index.ids,
        json.dumps(index.metadata, sort_keys=True),
        hashlib.sha256(np.ascontiguousarray(index.vectors).tobytes()).hexdigest(),
        None if hits is None else (hits.ids, [s.tobytes() for s in hits.scores]),
    )


@dataclass
class Fuzzer:
    """Template index directories and the tally of outcomes."""

    root: Path
    templates: dict[str, Path] = field(default_factory=dict)
    expected: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    by_mutation: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    failures: list[str] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            index = _build(kind)
            self.templates[kind] = index.save(self.root / f"template-{kind}")
            self.expected[kind] = _fingerprint(EmbeddingIndex.load(self.templates[kind]))

    def copy(self, kind: str) -> Path:
        self._n += 1
        target = self.root / f"case-{self._n}"
        shutil.copytree(self.templates[kind], target)
        return target

    def run(self, kind: str, mutation: str, mutate: Callable[[Path], None], *, forged: bool = False) -> str:
        """Copy a template, apply ``mutate``, load it, classify and count the outcome."""
        target = self.copy(kind)
        try:
            mutate(target)
            outcome = self.classify(kind, target, forged)
        finally:
            shutil.rmtree(target, ignore_errors=True)
        self.counts["inputs"] += 1
        self.counts[outcome] += 1
        self.by_mutation[mutation][outcome] += 1
        return outcome

    def classify(self, kind: str, target: Path, forged: bool) -> str:
        try:
            loaded = EmbeddingIndex.load(target, verify=True, mmap=bool(self._n % 2))
            got = _fingerprint(loaded)
        except FinetuneEmbedError:
            return "typed"
        except Exception:
            self.failures.append(f"crash ({kind}):\n{traceback.format_exc()}")
            return "crash"
        if got == self.expected[kind]:
            return "identical"
        if forged:
            return "forged-loaded"
        self.failures.append(f"silent ({kind}): loaded a different index from {target}")
        return "silent"


# --- mutations ----------------------------------------------------------------------------------------------


def _files_of(target: Path) -> list[str]:
    return [name for name in FILES if (target / name).exists()]


def flip_bit(name: str, bit: int) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        files = _files_of(target)
        file = target / files[FILES.index(name) % len(files)] if name not in files else target / name
        data = bytearray(file.read_bytes())
        if not data:
            return
        at = bit % (8 * len(data))
        data[at // 8] ^= 1 << (at % 8)
        file.write_bytes(bytes(data))

    return go


def truncate(name: str, keep: float) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        file = target / name
        if file.exists():
            data = file.read_bytes()
            file.write_bytes(data[: int(len(data) * keep)])

    return go


def append(name: str, extra: bytes) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        file = target / name
        if file.exists():
            file.write_bytes(file.read_bytes() + extra)

    return go


def overwrite(name: str, at: float, junk: bytes) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        file = target / name
        if file.exists():
            data = bytearray(file.read_bytes())
            start = int(len(data) * at)
            data[start : start + len(junk)] = junk
            file.write_bytes(bytes(data))

    return go


def remove(name: str) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        (target / name).unlink(missing_ok=True)

    return go


def deep_json(name: str, depth: int) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        (target / name).write_bytes(b"[" * depth + b"]" * depth)

    return go


def deep_field_text(key: str, depth: int) -> Callable[[Path], None]:
    """Replace a manifest field's value with deeply nested lists, in the text itself."""

    def go(target: Path) -> None:
        fields = json.loads((target / "manifest.json").read_text())
        fields[key] = "@DEEP@"
        text = json.dumps(fields).replace('"@DEEP@"', "[" * depth + "]" * depth)
        (target / "manifest.json").write_text(text)

    return go


def manifest_edit(change: Callable[[dict[str, Any]], None], *, forge: bool) -> Callable[[Path], None]:
    def go(target: Path) -> None:
        fields = json.loads((target / "manifest.json").read_text())
        if forge:
            del fields["manifest_sha256"]
            change(fields)
            (target / "manifest.json").write_bytes(manifest_bytes(fields))
        else:
            change(fields)
            (target / "manifest.json").write_text(json.dumps(fields, indent=2))

    return go


def replace_and_forge(name: str, content: bytes) -> Callable[[Path], None]:
    """Replace a data file and recompute every checksum (a forger)."""

    def go(target: Path) -> None:
        if not (target / name).exists():
            return
        (target / name).write_bytes(content)

        def change(fields: dict[str, Any]) -> None:
            fields["files"][name] = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
            if name == "vectors.npy":
                fields["vector_sha256"] = fields["files"][name]["sha256"]

        manifest_edit(change, forge=True)(target)

    return go


# --- strategies ---------------------------------------------------------------------------------------------

_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)
)
json_values = st.recursive(
    _json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = ("format", "format_version", "dim", "metric", "dtype", "model", "count", "created", "library_version",
           "vector_sha256", "files")


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m.__setitem__(key, value)


def _swap(a: str, b: str) -> Callable[[dict[str, Any]], None]:
    def go(m: dict[str, Any]) -> None:
        m[a], m[b] = m.get(b), m.get(a)

    return go


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda m: m.pop(key, None)


def _deep_field(key: str, depth: int) -> Callable[[dict[str, Any]], None]:
    def go(m: dict[str, Any]) -> None:
        value: Any = 1
        for _ in range(depth):
            value = [value]
        m[key] = value

    return go


kinds = st.sampled_from(KINDS)
names = st.sampled_from(FILES)
plain_mutations = st.one_of(
    st.tuples(st.just("bit flip"), st.builds(flip_bit, names, st.integers(0, 1 << 24))),
    st.tuples(st.just("truncate"), st.builds(truncate, names, st.floats(0, 0.999))),
    st.tuples(st.just("append"), st.builds(append, names, st.binary(min_size=1, max_size=16))),
    st.tuples(st.just("overwrite"), st.builds(overwrite, names, st.floats(0, 1), st.binary(min_size=1, max_size=8))),
    st.tuples(st.just("remove file"), st.builds(remove, names)),
    st.tuples(st.just("deep JSON file"), st.builds(deep_json, names, st.integers(1, 300_000))),
    st.tuples(st.just("manifest: set field"), st.builds(
        manifest_edit, st.builds(_set, st.sampled_from(_FIELDS), json_values), forge=st.just(False))),
    st.tuples(st.just("manifest: swap fields"), st.builds(
        manifest_edit, st.builds(_swap, st.sampled_from(_FIELDS), st.sampled_from(_FIELDS)), forge=st.just(False))),
    st.tuples(st.just("manifest: deep field"), st.builds(
        deep_field_text, st.sampled_from(_FIELDS), st.integers(1, 300_000))),
    st.tuples(st.just("manifest: drop field"), st.builds(
        manifest_edit, st.builds(_drop, st.sampled_from((*_FIELDS, "manifest_sha256"))), forge=st.just(False))),
)
forged_mutations = st.one_of(
    st.tuples(st.just("forged: set field"), st.builds(
        manifest_edit, st.builds(_set, st.sampled_from(_FIELDS), json_values), forge=st.just(True))),
    st.tuples(st.just("forged: swap fields"), st.builds(
        manifest_edit, st.builds(_swap, st.sampled_from(_FIELDS), st.sampled_from(_FIELDS)), forge=st.just(True))),
    st.tuples(st.just("forged: drop field"), st.builds(
        manifest_edit, st.builds(_drop, st.sampled_from(_FIELDS)), forge=st.just(True))),
    st.tuples(st.just("forged: deep field"), st.builds(  # as deep as a forger's json.dumps can write
        manifest_edit, st.builds(_deep_field, st.sampled_from(_FIELDS), st.integers(1, 500)),
        forge=st.just(True))),
    st.tuples(st.just("forged: replace file"), st.builds(
        replace_and_forge, st.sampled_from(FILES[1:]),
        st.one_of(st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode()),
                  st.integers(1, 300_000).map(lambda d: b"[" * d + b"]" * d)))),
)


def fuzz(fuzzer: Fuzzer, examples: int, seed: int | None = None) -> None:
    """Run ``examples`` plain and ``examples // 4`` forged mutations through ``fuzzer``."""
    common = settings(max_examples=examples, deadline=None, database=None, derandomize=seed is None,
                      suppress_health_check=list(HealthCheck))

    @common
    @given(kind=kinds, mutation=plain_mutations)
    def plain(kind: str, mutation: tuple[str, Callable[[Path], None]]) -> None:
        fuzzer.run(kind, mutation[0], mutation[1])

    @settings(parent=common, max_examples=max(1, examples // 4))
    @given(kind=kinds, mutation=forged_mutations)
    def forged(kind: str, mutation: tuple[str, Callable[[Path], None]]) -> None:
        fuzzer.run(kind, mutation[0], mutation[1], forged=True)

    plain()
    forged()


def every_bit_of_the_manifest(fuzzer: Fuzzer, kind: str) -> None:
    """Flip each bit of a manifest in turn."""
    size = (fuzzer.templates[kind] / "manifest.json").stat().st_size
    for bit in range(8 * size):
        fuzzer.run(kind, "manifest: every single bit", flip_bit("manifest.json", bit))


def report(fuzzer: Fuzzer, seconds: float) -> str:
    c = fuzzer.counts
    lines = [
        f"inputs tried {c['inputs']:,}; typed errors {c['typed']:,}; loaded identical {c['identical']:,}; "
        f"silent wrong results {c['silent']}; crashes {c['crash']}; forged and loaded as a different "
        f"well-formed index {c['forged-loaded']:,} ({seconds:.0f} s)",
        "",
        "| mutation | inputs | typed | identical | silent | crash | forged-loaded |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, n in sorted(fuzzer.by_mutation.items()):
        lines.append(f"| {name} | {sum(n.values()):,} | {n['typed']:,} | {n['identical']:,} | {n['silent']} | "
                     f"{n['crash']} | {n['forged-loaded']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis examples (plain; forged: a quarter)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fuzzer = Fuzzer(Path(tmp))
        for kind in ("float32-cosine", "int8-cosine"):
            every_bit_of_the_manifest(fuzzer, kind)
        fuzz(fuzzer, args.examples, args.seed)
    print(report(fuzzer, time.perf_counter() - start))
    for failure in fuzzer.failures[:5]:
        print(failure, file=sys.stderr)
    return 1 if fuzzer.counts["silent"] or fuzzer.counts["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
