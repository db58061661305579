"""Benchmark: embed 100k texts against FakeOpenAI over loopback HTTP, with latency and RPM / TPM limits.

Contenders, each run in its own subprocess against the same server, one after the other:

* ``ours``       - ``finetune_embed.embeddings.Embedder`` with its defaults (a fresh cache file);
* ``langchain``  - ``langchain_openai.OpenAIEmbeddings().embed_documents`` (langchain-openai 1.7.4, defaults);
* ``llamaindex`` - ``llama_index.embeddings.openai.OpenAIEmbedding().get_text_embedding_batch``
  (llama-index-embeddings-openai 0.7.0, defaults);
* ``sdk``        - a plain ``openai.OpenAI().embeddings.create`` loop in batches of 2048 (SDK defaults).

LangChain and LlamaIndex are installed with pip into their own virtualenvs under ``.bench-venvs/`` (created on
first run; ``--no-setup`` skips that). Each child reports its wall time and peak RSS (``ru_maxrss``) and the RSS
before embedding; the server's ledger gives requests, 429s and tokens billed (and texts billed more than once).

Usage::

    python benchmarks/bench_embedder.py                       # the full run (a few minutes)
    python benchmarks/bench_embedder.py --texts 20000 --rpm 0 --tpm 0   # no limits: each client's own speed

The "% of limit" column is the lower-bound time the limits allow for the tokens and requests that contender
sent (budgets start full and refill evenly, as OpenAI's do: ``max((tokens - TPM) / TPM, (requests - RPM) / RPM)``
minutes), divided by its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "_out"
VENVS = ROOT / ".bench-venvs"
MODEL = "text-embedding-3-small"
API_KEY = "sk-bench-0000000000000000"
SAMPLE = 200  # rows checked against the exact vectors

COMPETITORS = {
    "langchain": ["langchain-openai==1.7.4", "numpy"],
    "llamaindex": ["llama-index-embeddings-openai==0.7.0", "numpy"],
}


# --- the children (stdlib + numpy + the client under test only: they run in other virtualenvs) ---------------


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _embed_ours(texts: list[str], url: str, workdir: Path) -> object:
    from finetune_embed import Client
    from finetune_embed.embeddings import Embedder

    cache = workdir / "ours-cache.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(cache) + suffix).unlink(missing_ok=True)
    embedder = Embedder(Client(api_key=API_KEY, base_url=url), model=MODEL, cache=cache, progress=False)
    return embedder.embed(texts)


def _embed_langchain(texts: list[str], url: str, workdir: Path) -> object:
    from langchain_openai import OpenAIEmbeddings  # type: ignore[import-not-found]

    return OpenAIEmbeddings(model=MODEL, base_url=url, api_key=API_KEY).embed_documents(texts)


def _embed_llamaindex(texts: list[str], url: str, workdir: Path) -> object:
    from llama_index.embeddings.openai import OpenAIEmbedding  # type: ignore[import-not-found]

    return OpenAIEmbedding(model=MODEL, api_base=url, api_key=API_KEY).get_text_embedding_batch(texts)


def _embed_sdk(texts: list[str], url: str, workdir: Path) -> object:
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key=API_KEY)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), 2048):
        response = client.embeddings.create(model=MODEL, input=texts[start : start + 2048])
        vectors.extend(item.embedding for item in response.data)
    return vectors


def child(name: str, url: str, corpus: Path, result_path: Path) -> None:
    texts = json.loads(corpus.read_text(encoding="utf-8"))
    fn = {"ours": _embed_ours, "langchain": _embed_langchain, "llamaindex": _embed_llamaindex, "sdk": _embed_sdk}[name]
    # warm the imports so that the baseline includes them
    fn.__code__  # noqa: B018
    if name == "ours":
        import finetune_embed.embeddings  # noqa: F401
    baseline = _rss_now()
    start = time.perf_counter()
    try:
        vectors = fn(texts, url, result_path.parent)
        error = None
    except Exception as exc:  # reported, not raised: a contender may fail
        vectors, error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report: dict[str, object] = {"seconds": seconds, "baseline_rss": baseline, "peak_rss": peak, "error": error}
    if vectors is not None:
        import numpy as np

        n = len(vectors)  # type: ignore[arg-type]
        rng = random.Random(1)
        rows = sorted(rng.sample(range(n), min(SAMPLE, n)))
        report["n"] = n
        report["dim"] = len(vectors[0])  # type: ignore[index]
        report["sample"] = {str(i): np.asarray(vectors[i], dtype=np.float32).tolist() for i in rows}  # type: ignore[index]
    result_path.write_text(json.dumps(report), encoding="utf-8")


# --- setup ---------------------------------------------------------------------------------------------------


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def setup_venvs(names: list[str]) -> dict[str, str]:
    """Create the competitors' virtualenvs with pip; returns name -> error for those that failed."""
    failed: dict[str, str] = {}
    for name in names:
        if name not in COMPETITORS:
            continue
        py = venv_python(name)
        marker = VENVS / name / ".installed"
        if marker.exists() and marker.read_text() == " ".join(COMPETITORS[name]):
            continue
        print(f"setting up {VENVS / name} ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", *COMPETITORS[name]], check=True)
            marker.write_text(" ".join(COMPETITORS[name]))
        except subprocess.CalledProcessError as exc:
            failed[name] = f"pip install failed ({exc})"
    return failed


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct texts of mixed length (lognormal, 1 to 2000 words) cut from real English reviews and news."""
    import csv

    words: list[str] = []
    data = ROOT.parent / "shared" / "data" / "cookbook"
    for file, column in (("fine_food_reviews_1k.csv", "Text"), ("AG_news_samples.csv", "description")):
        with open(data / file, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                words.extend((row.get(column) or "").split())
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        length = max(1, min(2000, int(rng.lognormvariate(3.6, 1.0))))
        start = rng.randrange(0, len(words) - length)
        texts.append(f"{i}: " + " ".join(words[start : start + length]))
    return texts


# --- the parent ------------------------------------------------------------------------------------------------


def lower_bound(tokens: int, requests: int, rpm: int | None, tpm: int | None) -> float:
    bounds = [0.0]
    if tpm:
        bounds.append(max(0.0, tokens - tpm) / tpm * 60.0)
    if rpm:
        bounds.append(max(0.0, requests - rpm) / rpm * 60.0)
    return max(bounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--rpm", type=int, default=3_000, help="0: no limit")
    parser.add_argument("--tpm", type=int, default=3_000_000, help="0: no limit")
    parser.add_argument("--latency", type=float, nargs=2, default=(0.05, 0.2))
    parser.add_argument("--only", default="ours,langchain,llamaindex,sdk")
    parser.add_argument("--no-setup", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("NAME", "URL", "CORPUS", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, url, corpus, result = args.child
        child(name, url, Path(corpus), Path(result))
        return

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken-cache"))
    import numpy as np

    from finetune_embed.testing import FakeOpenAI

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    failed = {} if args.no_setup else setup_venvs(names)
    OUT.mkdir(exist_ok=True)
    texts = make_corpus(args.texts)
    corpus = OUT / "corpus.json"
    corpus.write_text(json.dumps(texts), encoding="utf-8")
    rpm = args.rpm or None
    tpm = args.tpm or None
    fake = FakeOpenAI(rpm=rpm, tpm=tpm, latency=tuple(args.latency), api_key=API_KEY)
    rows = []
    print(
        f"{len(texts):,} texts; FakeOpenAI over loopback, latency {args.latency[0]}-{args.latency[1]} s, "
        f"RPM {rpm or 'unlimited'}, TPM {tpm or 'unlimited'}; model {MODEL}",
        flush=True,
    )
    with fake.serve() as url:
        for name in names:
            if name in failed:
                rows.append({"name": name, "error": failed[name]})
                continue
            python = str(venv_python(name)) if name in COMPETITORS else sys.executable
            fake.ledger.clear()
            fake.set_rate_limits(rpm=rpm, tpm=tpm)  # budgets start full for everyone
            result_path = OUT / f"result-{name}.json"
            result_path.unlink(missing_ok=True)
            env = {**os.environ, "PYTHONPATH": str(ROOT) if name in ("ours", "sdk") else ""}
            env.pop("OPENAI_API_KEY", None)
            print(f"running {name} ...", flush=True)
            started = time.perf_counter()
            proc = subprocess.run(
                [python, str(Path(__file__).resolve()), "--child", name, url, str(corpus), str(result_path)],
                env=env, capture_output=True, text=True,
            )
            wall = time.perf_counter() - started
            if proc.returncode != 0 or not result_path.exists():
                rows.append({"name": name, "error": (proc.stderr or proc.stdout)[-400:]})
                continue
            report = json.loads(result_path.read_text())
            ledger = fake.ledger
            billed = ledger.billed_texts
            requests = ledger.embedding_requests
            tokens = ledger.tokens_billed
            correct = None
            if report.get("sample"):
                correct = all(
                    np.allclose(np.asarray(v, np.float32), fake.embedding(texts[int(i)]), atol=1e-6)
                    for i, v in report["sample"].items()
                )
            n, dim = report.get("n", 0), report.get("dim", 0)
            array_bytes = n * dim * 4
            bound = lower_bound(tokens, requests, rpm, tpm)
            rows.append({
                "name": name,
                "error": report.get("error"),
                "seconds": report["seconds"],
                "process_seconds": wall,
                "requests": requests,
                "rate_limited": ledger.rate_limited,
                "tokens": tokens,
                "billed_twice": sum(c - 1 for c in billed.values() if c > 1),
                "peak_mb": report["peak_rss"] / 2**20,
                "extra_mb": (report["peak_rss"] - report["baseline_rss"]) / 2**20,
                "array_mb": array_bytes / 2**20,
                "texts_per_s": n / report["seconds"] if report["seconds"] and n else 0.0,
                "limit_pct": 100.0 * bound / report["seconds"] if bound and report["seconds"] else None,
                "correct": correct,
                "rows": n,
            })
    print()
    header = ("contender", "wall s", "texts/s", "requests", "429s", "tokens billed", "billed twice", "peak RSS MB",
              "Δ RSS MB", "Δ / array", "% of limit", "rows ok")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        if r.get("error") and not r.get("rows"):
            print(f"| {r['name']} | failed: {str(r['error']).strip().splitlines()[-1][:120]} |")
            continue
        pct = "-" if r["limit_pct"] is None else f"{r['limit_pct']:.0f} %"
        ratio = r["extra_mb"] / r["array_mb"] if r["array_mb"] else 0.0
        print(
            f"| {r['name']} | {r['seconds']:.1f} | {r['texts_per_s']:,.0f} | {r['requests']} | {r['rate_limited']} | "
            f"{r['tokens']:,} | {r['billed_twice']} | {r['peak_mb']:,.0f} | {r['extra_mb']:,.0f} | {ratio:.2f} | "
            f"{pct} | {r['correct']} ({r['rows']:,}) |"
        )
    ours = next((r for r in rows if r["name"] == "ours" and r.get("texts_per_s")), None)
    if ours:
        for r in rows:
            if r["name"] != "ours" and r.get("texts_per_s"):
                print(f"ours / {r['name']}: {ours['texts_per_s'] / r['texts_per_s']:.1f}x throughput")
    (OUT / "bench_embedder.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
