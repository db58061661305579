"""local_server(): a throwaway PostgreSQL + pgvector that starts, serves, and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psycopg", reason="the pgvector extra (psycopg) is not installed")

import psycopg

from finetune_embed import ConfigError
from finetune_embed.index.pgvector import LocalServerError, find_postgres, local_server, start_local_server

pytestmark = pytest.mark.pgvector


def test_session_server_has_pgvector(pg_server: Any) -> None:
    with psycopg.connect(pg_server.conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        (distance,) = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone() or (None,)
        (user,) = conn.execute("SELECT current_user").fetchone() or (None,)
    assert distance == pytest.approx(1.0)
    assert user == "postgres"
    assert pg_server.running
    assert pg_server.version.split(".")[0].isdigit()
    if os.geteuid() == 0:
        assert pg_server.os_user != "root"  # PostgreSQL refuses root; it runs as another OS user


def test_context_manager_stops_and_removes_everything(pg_server: Any) -> None:
    with local_server(tcp=True) as server:
        assert server.host == "127.0.0.1"
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        base = server.data_dir.parent
        assert base.is_dir()
    assert not server.running
    assert not base.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.conninfo, connect_timeout=2)


def test_create_database_has_the_extension(pg_server: Any) -> None:
    target = pg_server.create_database("second_db")
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("second_db",)
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)


def test_bad_settings_fail_with_the_server_log(pg_server: Any) -> None:
    with pytest.raises(LocalServerError, match="shared_buffers") as info:
        start_local_server(settings={"shared_buffers": "lots"}, timeout=20)
    assert isinstance(info.value, ConfigError)


def test_a_folder_without_postgres_is_explained(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError, match="pip install pgserver") as info:
        find_postgres(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_env_var_selects_the_binaries(monkeypatch: pytest.MonkeyPatch, pg_server: Any) -> None:
    monkeypatch.setenv("FINETUNE_EMBED_PG_BIN", str(pg_server.bin_dir))
    assert find_postgres() == pg_server.bin_dir
    monkeypatch.setenv("FINETUNE_EMBED_PG_BIN", "/nonexistent/bin")
    with pytest.raises(LocalServerError, match="/nonexistent/bin"):
        find_postgres()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to hand the binaries to another OS user")
def test_binaries_in_a_private_folder_are_copied_for_the_server_user(pg_server: Any) -> None:
    # a virtualenv in a 0700 folder (as CI's mktemp -d): the postgres user cannot reach its binaries
    install_root = pg_server.bin_dir.parent  # .../pgserver/pginstall
    private = Path(tempfile.mkdtemp())
    try:
        top = install_root.parents[1]  # site-packages: keep the wheel's relative layout
        relative = install_root.relative_to(top)
        for part in ("bin", "lib", "share"):
            if (install_root / part).is_dir():
                shutil.copytree(install_root / part, private / relative / part, symlinks=True)
        libs = top / f"{relative.parts[0]}.libs"
        if libs.is_dir():
            shutil.copytree(libs, private / libs.name, symlinks=True)
        assert oct(private.stat().st_mode & 0o777) == "0o700"
        with local_server(bin_dir=private / relative / "bin") as server:
            assert server.bin_dir != private / relative / "bin"  # it runs a readable copy
            with psycopg.connect(server.conninfo) as conn:
                conn.execute("CREATE EXTENSION vector")
            copy = server.bin_dir.parents[2]
        assert not copy.exists()
    finally:
        shutil.rmtree(private)


def test_a_system_postgres_without_pgvector_is_named() -> None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    shares = Path("/usr/share/postgresql")
    bare = [c for c in candidates if not (shares / c.parent.name / "extension" / "vector.control").exists()]
    if not bare:
        pytest.skip("no system PostgreSQL without pgvector on this machine")
    with pytest.raises(LocalServerError, match="no pgvector extension"):
        find_postgres(bare[0])
