"""Benchmark: the Embedder against small quotas, local servers and an instant server, side by side with LangChain's
``OpenAIEmbeddings`` and a plain SDK loop, in one run (#12, #16).

Every client runs in its own process (this interpreter), one after the other, over real loopback HTTP.

Scenarios (``--scenarios``):

* ``tpm``     - OpenAI with a tight token quota: TPM 60,000 over a sliding minute, ``x-ratelimit-*`` headers.
* ``rpm``     - a gateway with RPM 20 over a sliding minute that takes at most 20 inputs per request (413 above).
* ``tei``     - text-embeddings-inference: 32 inputs per request (its 413 body), a CPU model (0.02 s per input).
* ``slow``    - a slow local model behind Ollama (all-minilm, 0.07 s per input on one worker), 1,000 reviews.
* ``instant`` - a server that answers at once from precomputed vectors (``_instant_server.py``): the client's
  own CPU and memory, at 100,000 × ~20 words and 20,000 × ~200 words; best of ``--repeat`` runs.

The first four run against ``FakeOpenAI`` (``finetune_embed.testing``) served on loopback in real time.

Clients: ``ours`` is ``Embedder`` with its defaults (``cache=False``; ``provider="openai"`` where the server plays
OpenAI, which is what an OpenAI URL infers; a loopback URL would say "compatible"). ``langchain`` is
``langchain_openai.OpenAIEmbeddings`` and ``sdk`` an ``openai.OpenAI().embeddings.create`` loop (2048 per request,
``encoding_format="base64"`` -> ``np.frombuffer``). Neither can learn a server's batch limit, so where a server
has one they get it as a setting (``chunk_size`` / the loop's batch), and LangChain gets
``check_embedding_ctx_length=False`` on non-OpenAI servers, as its documentation says; the "settings" column shows
what each was given. ``llamaindex`` runs too if ``llama-index-embeddings-openai`` is installed.

Columns: wall time; the theoretical minimum (``tpm``: ``60 s × (ceil(tokens of one pass / TPM) - 1)``; ``rpm``:
``60 s × (ceil(requests needed / RPM) - 1)``; ``tei`` / ``slow``: the server's compute time for the inputs);
ratio = wall / minimum; requests, 429s, 413s as the server saw them; tokens billed ÷ the tokens of one pass;
client CPU seconds (user + system); for ``instant`` also texts/s, CPU per 1,000 texts and peak RSS growth ÷ the
output array's size. Rows are checked against the exact vectors (a sample of 200).

Usage::

    pip install -e ".[bench]"              # langchain-openai among the benchmark-only extras
    python benchmarks/bench_embedder.py    # the full run (about 25 minutes: the quotas are real minutes)
    python benchmarks/bench_embedder.py --quick                 # a smoke run, under a minute
    python benchmarks/bench_embedder.py --scenarios instant     # one scenario
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "_out"
DATA = ROOT.parent / "shared" / "data" / "cookbook"
API_KEY = "sk-bench-0000000000000000"
SAMPLE = 200


# --- the children ------------------------------------------------------------------------------------------------


def _embed_ours(texts: list[str], url: str, s: dict[str, Any]) -> Any:
    from finetune_embed import Client
    from finetune_embed.embeddings import Embedder

    client_kwargs = {"provider": s["provider"]} if s.get("provider") else {}
    with Client(api_key=API_KEY, base_url=url, **client_kwargs) as client:
        return Embedder(client, model=s["model"], cache=False, progress=False).embed(texts)


def _embed_langchain(texts: list[str], url: str, s: dict[str, Any]) -> Any:
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(model=s["model"], base_url=url, api_key=API_KEY, **s.get("langchain", {})).embed_documents(
        texts
    )


def _embed_llamaindex(texts: list[str], url: str, s: dict[str, Any]) -> Any:
    from llama_index.embeddings.openai import OpenAIEmbedding  # type: ignore[import-not-found]

    return OpenAIEmbedding(model_name=s["model"], api_base=url, api_key=API_KEY).get_text_embedding_batch(texts)


def _embed_sdk(texts: list[str], url: str, s: dict[str, Any]) -> Any:
    import base64

    import numpy as np
    from openai import OpenAI

    batch = int(s.get("sdk_batch", 2048))
    client = OpenAI(base_url=url, api_key=API_KEY)
    parts = []
    for start in range(0, len(texts), batch):
        response = client.embeddings.create(model=s["model"], input=texts[start : start + batch], encoding_format="base64")
        for item in response.data:
            e: Any = item.embedding
            parts.append(np.frombuffer(base64.b64decode(e), dtype=np.float32) if isinstance(e, str) else np.asarray(e, np.float32))
    return np.vstack(parts)


CHILDREN = {"ours": _embed_ours, "langchain": _embed_langchain, "llamaindex": _embed_llamaindex, "sdk": _embed_sdk}


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Start the peak-RSS count afresh (Linux: ``clear_refs`` 5), so that loading the corpus does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(name: str, url: str, corpus: Path, settings_json: str, result_path: Path) -> None:
    import numpy as np

    texts = json.loads(corpus.read_text(encoding="utf-8"))
    settings = json.loads(settings_json)
    fn = CHILDREN[name]
    import openai  # noqa: F401  (every client's imports happen before the clock starts)

    if name == "ours":
        import finetune_embed.embeddings  # noqa: F401
    elif name == "langchain":
        import langchain_openai  # noqa: F401
    _reset_peak()
    baseline = _rss_now()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    try:
        vectors, error = fn(texts, url, settings), None
    except Exception as exc:  # reported, not raised: a client may fail
        vectors, error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    report: dict[str, Any] = {
        "seconds": seconds,
        "cpu": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
        "sys": cpu1.ru_stime - cpu0.ru_stime,
        "baseline_rss": baseline,
        "peak_rss": _peak_rss(),
        "error": error,
    }
    if vectors is not None:
        n = len(vectors)
        rows = sorted(random.Random(1).sample(range(n), min(SAMPLE, n)))
        report["n"] = n
        report["dim"] = len(vectors[0])
        report["sample"] = {str(i): np.asarray(vectors[i], dtype=np.float32).tolist() for i in rows}
    result_path.write_text(json.dumps(report), encoding="utf-8")


# --- corpora ---------------------------------------------------------------------------------------------------


def _words() -> list[str]:
    words: list[str] = []
    for file, column in (("fine_food_reviews_1k.csv", "Text"), ("AG_news_samples.csv", "description")):
        with open(DATA / file, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                words.extend((row.get(column) or "").split())
    return words


def corpus_of(n: int, words_per_text: int, seed: int = 0) -> list[str]:
    """``n`` distinct texts of about ``words_per_text`` words cut from the cookbook's reviews and news."""
    words = _words()
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        length = max(1, int(rng.uniform(0.75, 1.25) * words_per_text))
        start = rng.randrange(0, len(words) - length)
        texts.append(f"{i}: " + " ".join(words[start : start + length]))
    return texts


def reviews(n: int) -> list[str]:
    with open(DATA / "fine_food_reviews_1k.csv", encoding="utf-8") as fh:
        rows = [f"Title: {r['Summary']}; Content: {r['Text']}" for r in csv.DictReader(fh)]
    return rows[:n]


# --- scenarios -------------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    title: str
    texts: list[str]
    settings: dict[str, Any]  # for the children: model, provider, langchain kwargs, sdk_batch
    fake: dict[str, Any] = field(default_factory=dict)  # FakeOpenAI(**fake); empty for the instant server

    def minimum(self, one_pass_tokens: int) -> float | None:
        f = self.fake
        if "tpm" in f:
            return 60.0 * max(0, math.ceil(one_pass_tokens / f["tpm"]) - 1)
        if "rpm" in f:
            requests = math.ceil(len(self.texts) / f["server"].max_batch_inputs)
            return 60.0 * max(0, math.ceil(requests / f["rpm"]) - 1)
        if "processing" in f:
            p = f["processing"]
            limit = getattr(f.get("server"), "max_batch_inputs", None) or len(self.texts)
            return p.per_input * len(self.texts) + p.per_request * math.ceil(len(self.texts) / limit)
        return None


def scenarios(quick: bool) -> list[Scenario]:
    from finetune_embed.testing import PROFILES, Processing, ServerProfile

    q = 0.05 if quick else 1.0
    small = "text-embedding-3-small"
    compatible = {"check_embedding_ctx_length": False}
    tei_cpu = Processing(per_request=0.005, per_input=0.02, workers=1)
    slow_cpu = Processing(per_request=0.005, per_input=0.07, workers=1)
    gateway = ServerProfile("gateway", openai_catalog=True, max_batch_inputs=20, rate_limit_headers=True)
    return [
        Scenario("tpm", "TPM 60k, sliding minute", corpus_of(int(2400 * q), 75),
                 {"model": small, "provider": "openai"},
                 {"tpm": 60_000, "rate_limit_window": "sliding"}),
        Scenario("rpm", "RPM 20, sliding minute, 20 inputs per request", corpus_of(int(1200 * q), 8, seed=1),
                 {"model": small, "provider": "openai", "langchain": {"chunk_size": 20}, "sdk_batch": 20},
                 {"rpm": 20, "rate_limit_window": "sliding", "server": gateway}),
        Scenario("tei", "text-embeddings-inference, 32 per request, 0.02 s per input",
                 corpus_of(int(2000 * q), 30, seed=2),
                 {"model": "bge-small-en-v1.5", "langchain": {**compatible, "chunk_size": 32}, "sdk_batch": 32},
                 {"server": PROFILES["tei"].with_options(processing=tei_cpu), "processing": tei_cpu}),
        Scenario("slow", "Ollama all-minilm on CPU, 0.07 s per input", reviews(int(1000 * q)),
                 {"model": "all-minilm", "langchain": compatible},
                 {"server": PROFILES["ollama"].with_options(processing=slow_cpu), "processing": slow_cpu}),
    ]


def instant_scenarios(quick: bool) -> list[Scenario]:
    n_short, n_long = (2_000, 400) if quick else (100_000, 20_000)
    s = {"model": "text-embedding-3-small", "provider": "openai"}
    return [
        Scenario("instant", f"instant server, {n_short:,} × ~20 words", corpus_of(n_short, 20, seed=3), s),
        Scenario("instant", f"instant server, {n_long:,} × ~200 words", corpus_of(n_long, 200, seed=4), s),
    ]


# --- the parent ------------------------------------------------------------------------------------------------


def run_child(name: str, url: str, corpus: Path, settings: dict[str, Any]) -> dict[str, Any]:
    result = OUT / f"result-{name}.json"
    result.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", name, url, str(corpus), json.dumps(settings),
         str(result)],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0 or not result.exists():
        return {"error": (proc.stderr or proc.stdout).strip()[-400:] or f"exit {proc.returncode}",
                "process_seconds": time.perf_counter() - started}
    report: dict[str, Any] = json.loads(result.read_text())
    return report


def settings_note(name: str, settings: dict[str, Any]) -> str:
    if name == "ours":
        return "defaults" + (f" (provider={settings['provider']})" if settings.get("provider") else "")
    if name == "langchain":
        given = settings.get("langchain", {})
        return ", ".join(f"{k}={v}" for k, v in given.items()) or "defaults"
    if name == "sdk":
        return f"{settings.get('sdk_batch', 2048)}/request, base64"
    return "defaults"


def one_pass_tokens(texts: list[str]) -> int:
    from finetune_embed.tokenizer import Tokenizer

    return sum(Tokenizer("cl100k_base").count_batch(texts))


def check(report: dict[str, Any], expected: Any) -> bool | None:
    import numpy as np

    sample = report.get("sample")
    if not sample:
        return None
    return all(np.allclose(np.asarray(v, np.float32), expected(int(i)), atol=1e-6) for i, v in sample.items())


def run_fake_scenario(sc: Scenario, names: list[str]) -> list[dict[str, Any]]:
    from finetune_embed.testing import FakeOpenAI

    kwargs = {k: v for k, v in sc.fake.items() if k != "processing"}
    if "processing" in sc.fake:
        kwargs["processing"] = sc.fake["processing"]
    corpus = OUT / "corpus.json"
    corpus.write_text(json.dumps(sc.texts), encoding="utf-8")
    tokens = one_pass_tokens(sc.texts)
    minimum = sc.minimum(tokens)
    rows = []
    for name in names:
        fake = FakeOpenAI(api_key=API_KEY, **kwargs)  # a fresh server per client: quotas start empty
        print(f"  {sc.name}: {name} ...", flush=True)
        with fake.serve() as url:
            report = run_child(name, url, corpus, sc.settings)
        print(f"    {report.get('seconds', report.get('process_seconds', 0)):.1f} s", flush=True)
        ledger = fake.ledger
        model = sc.settings["model"]
        rows.append({
            **report,
            "scenario": sc.name, "title": sc.title, "client": name, "settings": settings_note(name, sc.settings),
            "minimum": minimum, "requests": ledger.embedding_requests, "429s": ledger.rate_limited,
            "413s": ledger.count("/v1/embeddings", status=413), "billed": ledger.tokens_billed, "one_pass": tokens,
            "correct": check(report, lambda i, f=fake, m=model: f.embedding(sc.texts[i], model=m)),
        })
        report.pop("sample", None)
    return rows


def run_instant_scenario(sc: Scenario, names: list[str], repeat: int) -> list[dict[str, Any]]:
    sys.path.insert(0, str(HERE))
    from _instant_server import InstantServer

    server = InstantServer()
    corpus = OUT / "corpus.json"
    corpus.write_text(json.dumps(sc.texts), encoding="utf-8")
    rows = []
    with server.serve() as url:
        for name in names:
            best: dict[str, Any] | None = None
            for r in range(repeat):
                print(f"  {sc.title}: {name} (run {r + 1}) ...", flush=True)
                server.reset()
                report = run_child(name, url, corpus, sc.settings)
                report["server_cpu"] = server.server_cpu
                report["requests"] = server.requests
                if best is None or (report.get("n") and report["seconds"] < best.get("seconds", math.inf)):
                    best = report
            assert best is not None
            best["correct"] = check(best, lambda i: server.expected(sc.texts[i]))
            best.pop("sample", None)
            rows.append({**best, "scenario": sc.name, "title": sc.title, "client": name,
                         "settings": settings_note(name, sc.settings), "texts": len(sc.texts)})
    return rows


def failed(r: dict[str, Any]) -> str | None:
    if r.get("error") and not r.get("n"):
        return "failed: " + str(r["error"]).strip().splitlines()[-1][:110]
    return None


def print_quota_table(rows: list[dict[str, Any]]) -> None:
    header = ("scenario", "client", "settings", "wall s", "minimum s", "ratio", "requests", "429s", "413s",
              "billed ÷ one pass", "client CPU s", "rows ok")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        lead = f"| {r['title']} | {r['client']} | {r['settings']} |"
        why = failed(r)
        if why:
            print(f"{lead} {why} | | | {r['requests']} | {r['429s']} | {r['413s']} | | | |")
            continue
        ratio = "-" if not r["minimum"] else f"{r['seconds'] / r['minimum']:.2f}"
        print(
            f"{lead} {r['seconds']:.1f} | {r['minimum']:.1f} | {ratio} | {r['requests']} | {r['429s']} | "
            f"{r['413s']} | {r['billed'] / r['one_pass']:.2f} | {r['cpu']:.2f} | {r['correct']} ({r['n']:,}) |"
        )


def print_instant_table(rows: list[dict[str, Any]]) -> None:
    header = ("texts", "client", "settings", "wall s", "texts/s", "client CPU s", "of which system", "CPU per 1k s",
              "requests", "server CPU s", "Δ RSS ÷ array", "rows ok")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        lead = f"| {r['title']} | {r['client']} | {r['settings']} |"
        why = failed(r)
        if why:
            print(f"{lead} {why} |")
            continue
        array = r["n"] * r["dim"] * 4
        grow = (r["peak_rss"] - r["baseline_rss"]) / array
        print(
            f"{lead} {r['seconds']:.2f} | {r['n'] / r['seconds']:,.0f} | {r['cpu']:.2f} | {r['sys']:.2f} | "
            f"{1000 * r['cpu'] / r['n']:.3f} | {r['requests']} | {r['server_cpu']:.2f} | {grow:.2f} | "
            f"{r['correct']} ({r['n']:,}) |"
        )
    by = {(r["title"], r["client"]): r for r in rows if r.get("n")}
    for title in dict.fromkeys(r["title"] for r in rows):
        ours = by.get((title, "ours"))
        for other in ("sdk", "langchain"):
            them = by.get((title, other))
            if ours and them:
                print(f"{title}: ours ÷ {other}: {ours['n'] / ours['seconds'] / (them['n'] / them['seconds']):.2f}× "
                      f"the throughput, {ours['cpu'] / them['cpu']:.2f}× the CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every scenario")
    parser.add_argument("--scenarios", default="tpm,rpm,tei,slow,instant")
    parser.add_argument("--only", default="ours,langchain,sdk", help="clients (llamaindex too, if installed)")
    parser.add_argument("--repeat", type=int, default=None, help="instant scenario: best of N (default 2, quick 1)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, url, corpus, settings, result = args.child
        child(name, url, Path(corpus), settings, Path(result))
        return

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken-cache"))
    OUT.mkdir(exist_ok=True)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    wanted = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    repeat = args.repeat or (1 if args.quick else 2)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs", flush=True)
    quota_rows = [r for sc in scenarios(args.quick) if sc.name in wanted for r in run_fake_scenario(sc, names)]
    instant_rows = []
    if "instant" in wanted:
        instant_rows = [r for sc in instant_scenarios(args.quick) for r in run_instant_scenario(sc, names, repeat)]
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    if quota_rows:
        print_quota_table(quota_rows)
        print()
    if instant_rows:
        print_instant_table(instant_rows)
    (OUT / "bench_embedder.json").write_text(json.dumps(quota_rows + instant_rows, indent=2, default=str))


if __name__ == "__main__":
    main()
