#!/usr/bin/env python
"""Exact top-k search on one core: EmbeddingIndex against faiss IndexFlatIP (BLAS forced), by CPU time.

A shared 2-core machine makes wall-clock ratios swing by 20-50% from minute to minute. CPU time of one
thread is far steadier: this script pins BLAS to one thread (``OPENBLAS_NUM_THREADS=1``, set before numpy
loads), faiss to one OpenMP thread, searches with ``threads=1``, and times both engines interleaved (best of
``--rounds``). It measures the work each engine does, not how it spreads over cores: ``bench_index.py`` remains
the wall-clock benchmark of the issue's targets.

Every answer of ours is checked against the exact top-k (``bench_index.check_exact``: equal up to float32
near-ties); any other difference prints the failure and exits with status 1.

Usage::

    python benchmarks/bench_index_cpu.py                         # 100k x 384, 1M x 384, 200k x 1536
    python benchmarks/bench_index_cpu.py --sizes 50k:1536 --queries 4,16
    python benchmarks/bench_index_cpu.py --quick                 # 20k x 384 and 20k x 1536, seconds
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads OpenBLAS (this script's own process only)

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from finetune_embed.index import EmbeddingIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import FAILURES, _parse_size, as_int_ids, check_exact, exact_reference, unit_rows

try:
    import faiss
except ImportError:  # pragma: no cover - optional
    faiss = None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="comma-separated N:d (default 100k:384,1M:384,200k:1536)")
    p.add_argument("--queries", default="1,4,16,64,256", help="batch sizes, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts")
    p.add_argument("--quick", action="store_true", help="20k rows, 2 rounds")
    p.add_argument("-k", type=int, default=10)
    args = p.parse_args(argv)
    sizes = [_parse_size(s) for s in (args.sizes or ("20k:384,20k:1536" if args.quick else
                                                      "100k:384,1M:384,200k:1536")).split(",")]
    rounds = 2 if args.quick else args.rounds
    qs = [int(q) for q in args.queries.split(",")]
    if faiss is not None:
        faiss.omp_set_num_threads(1)
    print(f"load average at the start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| N x d | Q | ours CPU ms | faiss (BLAS forced) CPU ms | ours / faiss speed |")
    print("|---|--:|--:|--:|--:|")
    for n, d in sizes:
        x = unit_rows(n, d, seed=n + d)
        index = EmbeddingIndex(d)
        index.add([str(i) for i in range(n)], x)
        del x
        x = index.vectors
        fx = None
        if faiss is not None:
            fx = faiss.IndexFlatIP(d)
            fx.add(x)
        all_q = unit_rows(max(qs), d, seed=7)
        truth = exact_reference(x, all_q, args.k)
        for q in qs:
            queries = np.ascontiguousarray(all_q[:q])
            ours = theirs = float("inf")
            result = None
            for _ in range(rounds):
                t = time.process_time()
                result = index.search(queries[0] if q == 1 else queries, args.k, threads=1)
                ours = min(ours, time.process_time() - t)
                if fx is not None:
                    shipped = faiss.cvar.distance_compute_blas_threshold
                    faiss.cvar.distance_compute_blas_threshold = 1
                    try:
                        t = time.process_time()
                        fx.search(queries, args.k)
                        theirs = min(theirs, time.process_time() - t)
                    finally:
                        faiss.cvar.distance_compute_blas_threshold = shipped
            assert result is not None
            check_exact("EmbeddingIndex float32 (one thread)", as_int_ids(result), truth[:q], x, queries)
            faiss_ms = f"{theirs * 1e3:,.1f}" if fx is not None else "-"
            ratio = f"{theirs / ours:.2f}x" if fx is not None else "-"
            print(f"| {n:,} x {d} | {q} | {ours * 1e3:,.1f} | {faiss_ms} | {ratio} |", flush=True)
        del index, x, fx
    print(f"\nload average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if FAILURES:
        print("\n## RESULTS DIFFER FROM THE EXACT REFERENCE")
        for failure in FAILURES:
            print(f"- {failure}")
        return 1
    print("Every result matched the exact reference (up to float32 near-ties).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
