#!/usr/bin/env python
"""Where the int8 mode's time goes, next to float32: CPU time per search and its parts, one thread.

The int8 mode (``EmbeddingIndex(dtype="int8")``) scans int8 codes and re-ranks a shortlist exactly from the
float32 rows, so against a float32 index it does the same matrix products plus three things of its own:
widening the codes to float32 (BLAS multiplies only floats), collecting the shortlist (every item within the
quantisation error bound of the running k-th best, not only the items that beat it) and the exact re-rank
(a gather of float32 rows from the memory-mapped file). This script measures each part, so the gap to float32
is a table, not a guess.

Everything runs on one core (``OPENBLAS_NUM_THREADS=1`` unless set, ``threads=1``) and is measured in CPU
time, interleaved (float32, int8, float32, ...), best of ``--rounds``: on a shared machine that is far steadier
than wall time. The parts come from one profiled search each (``cProfile`` with a CPU clock, so they carry a
little profiling overhead and add up to slightly more than the best time). Every int8 answer is checked against
the float32 index's (the same ids, or scores equal within float32 rounding at a near-tie); any other
difference makes the script exit with status 1.

Usage::

    python benchmarks/bench_int8.py                          # 100k x 384 and 50k x 1536; Q = 4, 16, 64, 256
    python benchmarks/bench_int8.py --quick                  # a smoke run (seconds)
    python benchmarks/bench_int8.py --sizes 1M:384 --queries 16,256
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS: one core, CPU time is wall time

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from finetune_embed.index import EmbeddingIndex

FAILURES: list[str] = []


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def parse_size(text: str) -> tuple[int, int]:
    n, d = text.lower().split(":")
    scale = {"k": 1_000, "m": 1_000_000}.get(n[-1], 1)
    return int(float(n.rstrip("km")) * scale), int(d)


def cpu_best(fns: dict[str, object], queries: np.ndarray, k: int, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, index in fns.items():
            assert isinstance(index, EmbeddingIndex)
            t = time.process_time()
            index.search(queries, k, threads=1)
            best[name] = min(best[name], time.process_time() - t)
    return best


def parts(index: EmbeddingIndex, queries: np.ndarray, k: int) -> dict[str, float]:
    """CPU seconds of each part of one search, from a profile."""
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    index.search(queries, k, threads=1)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]

    def own(name: str) -> float:
        return sum(v[2] for key, v in stats.items() if key[2] == name)

    def total(name: str) -> float:
        return max((v[3] for key, v in stats.items() if key[2] == name), default=0.0)

    return {
        "products": own("score") + total("row_scores") + total("code_scores"),
        "widening": total("widen_rows"),
        "selection": total("push") + total("pool"),
        "re-rank": total("_rerank"),
    }


def check(got: list[list[str]], ref: list[list[str]], x: np.ndarray, queries: np.ndarray, label: str) -> None:
    for j, (g, r) in enumerate(zip(got, ref, strict=True)):
        if g == r:
            continue
        q = queries[j].astype(np.float64)
        sg = x[[int(i) for i in g]].astype(np.float64) @ q
        sr = x[[int(i) for i in r]].astype(np.float64) @ q
        if len(g) != len(r) or np.abs(sg - sr).max() > 1e-5:
            FAILURES.append(f"{label}: query {j} int8 {g} != float32 {r}")
            return


def bench(n: int, d: int, qs: list[int], k: int, rounds: int, tmp: Path) -> list[str]:
    x = unit_rows(n, d, seed=n + d)
    ids = [str(i) for i in range(n)]
    f32 = EmbeddingIndex(d, metric="dot")
    f32.add(ids, x)
    i8 = EmbeddingIndex(d, metric="dot", dtype="int8", spill_dir=tmp)
    for a in range(0, n, 1 << 16):
        i8.add(ids[a : a + (1 << 16)], x[a : a + (1 << 16)])
    all_q = unit_rows(max(qs), d, seed=7)
    lines = []
    for q in qs:
        queries = np.ascontiguousarray(all_q[:q])
        label = f"{n:,} x {d}, Q={q}"
        check(i8.search(queries, k, threads=1).ids, f32.search(queries, k, threads=1).ids, x, queries, label)
        best = cpu_best({"float32": f32, "int8": i8}, queries, k, rounds)
        pf, pi = parts(f32, queries, k), parts(i8, queries, k)
        ms = {name: 1e3 * v for name, v in best.items()}
        lines.append(
            f"| {n:,} x {d} | {q} | {ms['float32']:.1f} | {ms['int8']:.1f} | {best['float32'] / best['int8']:.2f}x | "
            f"{1e3 * pf['products']:.1f} / {1e3 * pi['products']:.1f} | {1e3 * pi['widening']:.1f} | "
            f"{1e3 * pf['selection']:.1f} / {1e3 * pi['selection']:.1f} | {1e3 * pi['re-rank']:.1f} |"
        )
        print("   " + lines[-1], file=sys.stderr, flush=True)
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    p.add_argument("--sizes", default=None, help="comma-separated N:d, e.g. 100k:384,50k:1536")
    p.add_argument("--queries", default="4,16,64,256", help="batch sizes, comma-separated")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; quick 2)")
    args = p.parse_args()
    sizes = [parse_size(s) for s in (args.sizes or ("5k:384,2k:1536" if args.quick else "100k:384,50k:1536")).split(",")]
    qs = [int(q) for q in args.queries.split(",")]
    rounds = args.rounds or (2 if args.quick else 5)
    start_load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for n, d in sizes:
            rows += bench(n, d, qs, args.k, rounds, Path(tmp))
    end_load = os.getloadavg()
    print(f"\nCPU time per search, one thread (OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, threads=1), "
          f"best of {rounds} interleaved rounds, k={args.k}; load average {start_load[0]:.2f} at the start, "
          f"{end_load[0]:.2f} at the end. Parts from one profiled search each (ms).\n")
    print("| N x d | Q | float32 ms | int8 ms | int8 / float32 speed | products f32 / int8 | widening | "
          "selection f32 / int8 | re-rank |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for line in rows:
        print(line)
    if FAILURES:
        print("\nFAILED: int8 answers differ from float32:\n" + "\n".join(FAILURES))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
