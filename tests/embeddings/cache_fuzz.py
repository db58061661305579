"""Hostile-input fuzzing of the embedding cache file: damage a real cache file, then embed through it.

Each case takes a cache file written by the embedder, damages it (bit flips, overwritten byte ranges, a
truncated or extended file, or garbage), and embeds the same texts again through it against the fake. The
outcome is one of:

* ``ok`` - the call returned, and every vector equals the service's (damaged rows were re-fetched);
* ``typed`` - the call raised a :class:`~finetune_embed.FinetuneEmbedError` (a damaged file);
* ``wrong`` - the call returned a vector that differs from the service's: a silent wrong result;
* ``crash`` - any other exception.

``wrong`` and ``crash`` must never happen. ``python tests/embeddings/cache_fuzz.py --cases 3000`` runs many
random cases and prints the counts (for the issue note); the test suite runs a smaller hypothesis-driven sample.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finetune_embed import FinetuneEmbedError
from finetune_embed.embeddings import Embedder
from finetune_embed.testing import FakeOpenAI

TEXTS = [f"fuzzed review {i}: " + "tasty beans " * (i % 5) for i in range(60)]
DIMS = 16


@dataclass(frozen=True)
class Damage:
    """What to do to the file: bit flips ``(offset, bit)``, overwrites ``(offset, bytes)``, then an optional
    new length (truncate or pad with ``pad`` bytes); or replace everything with ``garbage``."""

    flips: tuple[tuple[int, int], ...] = ()
    overwrites: tuple[tuple[int, bytes], ...] = ()
    length: int | None = None
    pad: int = 0
    garbage: bytes | None = None
    extra: dict[str, int] = field(default_factory=dict, compare=False)

    def apply(self, data: bytes) -> bytes:
        if self.garbage is not None:
            return self.garbage
        buf = bytearray(data)
        for offset, bit in self.flips:
            if buf:
                buf[offset % len(buf)] ^= 1 << (bit % 8)
        for offset, chunk in self.overwrites:
            if buf:
                start = offset % len(buf)
                buf[start : start + len(chunk)] = chunk[: max(0, len(buf) - start)]
        if self.length is not None:
            n = self.length % (len(buf) + 4096 + 1)
            buf = buf[:n] if n <= len(buf) else buf + bytes([self.pad % 256]) * (n - len(buf))
        return bytes(buf)


def base_file(folder: Path) -> tuple[Path, np.ndarray]:
    """A cache file holding the vectors of :data:`TEXTS`, written by the embedder; and the exact vectors."""
    fake = FakeOpenAI()
    path = folder / "base.sqlite"
    with Embedder(fake.client(), dimensions=DIMS, cache=path, progress=False) as emb:
        truth = emb.embed(TEXTS)
    return path, truth


def run_case(base: Path, truth: np.ndarray, damage: Damage, folder: Path) -> str:
    """Damage a copy of ``base`` and embed through it; the outcome (see the module docstring)."""
    path = folder / "case.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(damage.apply(base.read_bytes()))
    fake = FakeOpenAI()
    try:
        with Embedder(fake.client(), dimensions=DIMS, cache=path, progress=False) as emb:
            got = emb.embed(TEXTS)
    except FinetuneEmbedError:
        return "typed"
    except Exception:  # a crash: anything untyped
        import traceback

        traceback.print_exc()
        return "crash"
    return "ok" if got.shape == truth.shape and np.array_equal(got, truth) else "wrong"


def random_damage(rng: random.Random, size: int) -> Damage:
    kind = rng.random()
    if kind < 0.05:
        return Damage(garbage=rng.randbytes(rng.randrange(0, 3 * 4096)))
    flips = tuple((rng.randrange(size), rng.randrange(8)) for _ in range(rng.choice([1, 1, 1, 2, 3, 8, 32])))
    overwrites: tuple[tuple[int, bytes], ...] = ()
    length = None
    if kind < 0.25:
        overwrites = ((rng.randrange(size), rng.randbytes(rng.randrange(1, 600))),)
    elif kind < 0.35:
        length = rng.randrange(0, size + 4096)
    return Damage(flips=flips if kind >= 0.15 else (), overwrites=overwrites, length=length, pad=rng.randrange(256))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "tiktoken-cache"))
    import logging

    logging.getLogger("finetune_embed").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="cache-fuzz-"))
    try:
        base, truth = base_file(folder)
        size = base.stat().st_size
        rng = random.Random(args.seed)
        counts: Counter[str] = Counter()
        for i in range(args.cases):
            counts[run_case(base, truth, random_damage(rng, size), folder)] += 1
            if (i + 1) % 500 == 0:
                print(f"{i + 1} cases: {dict(counts)}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"cache file: {size:,} bytes, {len(TEXTS)} vectors of {DIMS} dimensions")
    print("| inputs tried | ok (exact vectors) | typed errors | silent wrong results | crashes |")
    print("|---|---|---|---|---|")
    print(f"| {args.cases:,} | {counts['ok']:,} | {counts['typed']:,} | {counts['wrong']} | {counts['crash']} |")
    if counts["wrong"] or counts["crash"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
