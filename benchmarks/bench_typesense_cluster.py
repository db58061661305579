"""Benchmark: reads right after writes on a 3-node Typesense 0.24.1 Raft cluster, with and without read_your_writes.

A 3-node cluster is started on 127.0.0.1 (tests/stores/_engine_typesense.py). A store's client sends every request
to one follower (``nearest_node``), so each write is forwarded to the leader and each read is answered by that
follower. Each round upserts one item with a new metadata value, then at once reads it back on the follower
(``get``) and counts the rounds where the follower still returned the previous value. One row per mode:

* ``stale reads``: rounds whose read right after the write returned the old value (``read_your_writes=False`` shows
  how often Typesense's own behaviour would bite; ``True`` must be 0);
* ``write median`` / ``write p95``: the latency of ``upsert`` (with the wait, it includes every node applying it);
  the middle row waits without the one no-op write the adapter sends when a node is behind, so followers learn of
  the commit only from the leader's heartbeat (every 500 ms).

Run: ``python benchmarks/bench_typesense_cluster.py [--rounds 200]``; ``--quick`` (30 rounds) is the smoke run.
Timings on a shared machine are noisy: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stores._engine_typesense import Node, follower, running


def _round_trips(nodes: list[Node], rounds: int, wait: bool, nudge: bool = True) -> tuple[int, list[float]]:
    import typesense

    from finetune_embed.stores import TypesenseIndex

    near = follower(nodes)
    client = typesense.Client({"nodes": [n.url for n in nodes], "nearest_node": near.url, "api_key": near.api_key})
    name = f"bench_ryw_{int(wait)}_{os.getpid()}"
    vector = np.ones(4, dtype=np.float32)
    stale, seconds = 0, []
    with TypesenseIndex(client, name, dim=4, read_your_writes=wait) as store:
        if store._nodes_wait is not None:  # the adapter's internal knob, to show what the no-op write saves
            store._nodes_wait.nudge = nudge
        store.upsert("x", vector, {"round": -1})
        for r in range(rounds):
            start = time.perf_counter()
            store.upsert("x", vector, {"round": r})
            seconds.append(time.perf_counter() - start)
            if store.get("x").metadata != {"round": r}:
                stale += 1
        store.drop()
    return stale, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 rounds")
    args = parser.parse_args()
    rounds = 30 if args.quick else args.rounds
    rows = []
    with running(3, timeout=90) as nodes:
        for label, wait, nudge in (("read_your_writes=False", False, False),
                                   ("read_your_writes=True, no no-op write (heartbeat only)", True, False),
                                   ("read_your_writes=True (default)", True, True)):  # fmt: skip
            stale, seconds = _round_trips(nodes, rounds, wait, nudge)
            ms = sorted(s * 1000 for s in seconds)
            p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
            rows.append((label, f"{stale} / {rounds}", f"{statistics.median(ms):.1f} ms",
                         f"{p95:.1f} ms"))  # fmt: skip
    head = ("mode", "stale reads right after", "write median", "write p95")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; 3 nodes on 127.0.0.1, "
          "every request to one follower")  # fmt: skip


if __name__ == "__main__":
    main()
