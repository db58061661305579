"""finetune-embed index build | info | search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from finetune_embed.cli import main


def _files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "ids.txt").write_text("\n".join(f"doc{i}" for i in range(200)) + "\n")
    (tmp_path / "meta.jsonl").write_text("\n".join(json.dumps({"g": i % 3}) for i in range(200)) + "\n")
    np.save(tmp_path / "q.npy", vectors[:2])
    return tmp_path / "v.npy", tmp_path / "ids.txt", tmp_path / "meta.jsonl", tmp_path / "q.npy"


def test_build_info_search_from_npy(tmp_path: Path) -> None:
    v, ids, meta, q = _files(tmp_path)
    runner = CliRunner()
    out = tmp_path / "idx"
    r = runner.invoke(main, ["index", "build", str(v), "-o", str(out), "--ids", str(ids), "--metadata", str(meta),
                             "--model", "text-embedding-3-small", "--dtype", "int8"])
    assert r.exit_code == 0, r.output
    assert "Wrote 200 vectors of 8 dimensions (cosine, int8)" in r.output
    r = runner.invoke(main, ["index", "info", str(out), "--verify"])
    assert r.exit_code == 0, r.output
    assert "text-embedding-3-small" in r.output
    assert "yes" in r.output
    r = runner.invoke(main, ["index", "info", str(out), "--json"])
    info = json.loads(r.output)
    assert (info["count"], info["dim"], info["dtype"], info["ram_bytes"]) == (200, 8, "int8", 200 * 8 + 200 * 4)
    r = runner.invoke(main, ["index", "search", str(out), "--vector-file", str(q), "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert next(h["id"] for h in hits[0]) == "doc0"
    assert hits[1][0]["id"] == "doc1"
    r = runner.invoke(main, ["index", "search", str(out), "--id", "doc0", "-k", "2", "--where", '{"g": 1}'])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].split() == ["QUERY", "RANK", "ID", "SCORE", "METADATA"]
    assert len(lines) == 3
    assert all('{"g": 1}' in line for line in lines[1:])
    r = runner.invoke(main, ["index", "search", str(out), "--id", "doc0", "--exclude", "doc5", "--where",
                             '{"g": 9}'])
    assert r.exit_code == 0
    assert "No matches." in r.output


def test_build_from_csv_and_errors(tmp_path: Path) -> None:
    csv_file = tmp_path / "e.csv"
    csv_file.write_text('id,Score,ada_embedding\na,5,"[1, 0]"\nb,1,"[0, 1]"\n')
    runner = CliRunner()
    out = tmp_path / "idx"
    args = ["index", "build", str(csv_file), "-o", str(out), "--embedding-column", "ada_embedding", "--id-column", "id"]
    r = runner.invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["count"] == 2
    r = runner.invoke(main, args)
    assert r.exit_code == 2
    assert "--force" in r.output
    assert runner.invoke(main, [*args, "--force", "--metric", "dot"]).exit_code == 0
    (tmp_path / "q.json").write_text("[1, 0]")
    r = runner.invoke(main, ["index", "search", str(out), "--vector-file", str(tmp_path / "q.json"), "-k", "1",
                             "--where", '{"Score": {"$gte": 4}}'])
    assert r.exit_code == 0
    assert " a " in r.output
    # usage errors exit 2, our errors exit 1 with one line and no traceback
    assert runner.invoke(main, ["index", "search", str(out)]).exit_code == 2
    assert runner.invoke(main, ["index", "search", str(out), "--id", "a", "--where", "{bad"]).exit_code == 2
    r = runner.invoke(main, ["index", "search", str(out), "--id", "a", "--where", '{"x": {"$bad": 1}}'])
    assert r.exit_code == 1
    assert "unknown operator" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(main, ["index", "search", str(out), "--id", "zzz"])
    assert r.exit_code == 1
    assert "'zzz' is not in the index" in r.output
    (out / "ids.json").write_text("[]")
    r = runner.invoke(main, ["index", "search", str(out), "--id", "a"])
    assert r.exit_code == 1
    assert "changed after saving" in r.output
    r = runner.invoke(main, ["index", "info", str(tmp_path / "missing")])
    assert r.exit_code == 1
    assert "no saved index" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text('id,embedding\na,"[1, x]"\n')
    r = runner.invoke(main, ["index", "build", str(bad), "-o", str(tmp_path / "o2"), "--id-column", "id"])
    assert r.exit_code == 1
    assert "bad.csv:2:" in r.output
