"""Two processes embedding through one cache file at the same time (docs/errors.md, "What is guaranteed"):
both get exact vectors, the file stays consistent (every row passes its checksum), and a text both runs needed
before either had cached it may be paid for twice: at most once per process, never more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from finetune_embed import Client
from finetune_embed.embeddings import EmbeddingCache
from finetune_embed.embeddings._namespace import cache_model
from finetune_embed.testing import FakeOpenAI

N_TEXTS = 600

CHILD = f"""
import sys
import numpy as np
from finetune_embed import Client
from finetune_embed.embeddings import Embedder

url, cache, out, offset = sys.argv[1:]
texts = [f"shared text {{i}} " + "lorem " * (i % 7) for i in range(int(offset), int(offset) + {N_TEXTS})]
client = Client(api_key="sk-test", base_url=url, timeout=120)
with Embedder(client, cache=cache, max_batch_inputs=25, max_concurrency=2, progress=False) as embedder:
    np.save(out, embedder.embed(texts))
"""


def texts(offset: int) -> list[str]:
    return [f"shared text {i} " + "lorem " * (i % 7) for i in range(offset, offset + N_TEXTS)]


def test_two_processes_writing_one_cache(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cache = tmp_path / "cache.sqlite"
    fake = FakeOpenAI(latency=(0.005, 0.02))
    env = {**os.environ, "FINETUNE_EMBED_PROGRESS": "0"}
    offsets = (0, N_TEXTS // 2)  # half of the texts overlap
    with fake.serve() as url:
        procs = [
            subprocess.Popen([sys.executable, str(script), url, str(cache), str(tmp_path / f"out{o}.npy"), str(o)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for o in offsets
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-3000:]
    for offset in offsets:
        np.testing.assert_array_equal(np.load(tmp_path / f"out{offset}.npy"), fake.embeddings(texts(offset)))
    every_text = sorted(set(texts(0)) | set(texts(N_TEXTS // 2)))
    billed = fake.ledger.billed_texts
    assert set(billed) == set(every_text)
    assert max(billed.values()) <= 2  # at most once per process
    overlap = set(texts(0)) & set(texts(N_TEXTS // 2))
    assert all(billed[t] == 1 for t in every_text if t not in overlap)  # only shared texts can be paid twice
    # rows are kept per server: read them under the name the children's client gives this one
    name = cache_model(Client(api_key="sk-test", base_url=url), "text-embedding-3-small")
    with EmbeddingCache(cache) as reopened:  # every row reads back and passes its checksum
        stored = np.stack([reopened.get(name, None, t) for t in every_text])  # type: ignore[misc]
    np.testing.assert_array_equal(stored, fake.embeddings(every_text))
