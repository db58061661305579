"""What only the Milvus adapter has: ids and string bounds that need escaping, the token kept out of sight, names,
reopening checks, foreign collections, paging by hash range, and limits. Milvus Lite for most; the real server
where the engine's own parsing is the point."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finetune_embed import ConfigError, DimensionMismatchError, DuplicateIdError, UnknownIdError
from finetune_embed.index import EmbeddingIndex, parse_filter

from ._data import vectors
from .conftest import IN_CI, unique_name

try:
    import pymilvus

    from finetune_embed.stores import MilvusIndex
    from finetune_embed.stores._milvus_filters import compile_filter, quote
except ImportError as exc:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise RuntimeError(f"CI=true but pymilvus is missing ({exc}): pip install -e '.[dev,milvus]'") from exc
    pytest.skip(f"pymilvus is not installed ({exc}): pip install -e '.[dev,milvus]'", allow_module_level=True)

ODD_IDS = ['a"b', "a'b", "back\\slash", "line\nbreak", "tab\t", "é ✓ 日本", "x" * 2_000, "pk", "id in [1]", " "]
SECRET = "root:Sup3rSecretPassw0rd-7f3a9c"


@pytest.fixture(params=["milvus-lite", "milvus"])
def uri(request: pytest.FixtureRequest) -> str:
    fixture = "milvus_lite_uri" if request.param == "milvus-lite" else "milvus_uri"
    value: str = request.getfixturevalue(fixture)
    return value


@pytest.fixture
def lite(milvus_lite_uri: str) -> Iterator[MilvusIndex]:
    store = MilvusIndex(unique_name("mt"), uri=milvus_lite_uri, dim=4)
    yield store
    store.drop()
    store.close()


def test_ids_that_need_escaping_round_trip(uri: str) -> None:
    """Quotes, backslashes, line breaks, non-ASCII and 2,000-character ids: add, get, exclude, delete (the primary
    key is a hash, so no id is ever spliced into an expression)."""
    with MilvusIndex(unique_name("mt"), uri=uri, dim=3) as store:
        try:
            x = vectors(len(ODD_IDS), 3, seed=5)
            store.add(ODD_IDS, x, [{"i": i} for i in range(len(ODD_IDS))])
            assert len(store) == len(ODD_IDS)
            for i, item_id in enumerate(ODD_IDS):
                assert item_id in store
                assert store.get(item_id).metadata == {"i": i}
            hits = store.search(x[0], k=3, exclude=[ODD_IDS[0], ODD_IDS[1]])
            assert ODD_IDS[0] not in hits.ids
            assert ODD_IDS[1] not in hits.ids
            assert len(hits) == 3
            with pytest.raises(DuplicateIdError):
                store.add([ODD_IDS[3]], x[:1])
            assert store.delete(ODD_IDS[:4]) == 4
            assert len(store) == len(ODD_IDS) - 4
            assert sorted(i for ids, _, _ in store.iter_items() for i in ids) == sorted(ODD_IDS[4:])
        finally:
            store.drop()


def test_string_ranges_and_values_that_need_escaping(uri: str) -> None:
    """String bounds with quotes, backslashes and line breaks compare by code point, as EmbeddingIndex does."""
    values = ['a"', "a\\", "a\nb", "b'", "é", "", "Z", "a"]
    ids = [f"s{i}" for i in range(len(values))]
    x = vectors(len(values), 3, seed=6)
    reference = EmbeddingIndex(3)
    reference.add(ids, x, [{"s": v} for v in values])
    with MilvusIndex(unique_name("mt"), uri=uri, dim=3) as store:
        try:
            store.add(ids, x, [{"s": v} for v in values])
            for bound in values:
                for op in ("$gt", "$gte", "$lt", "$lte"):
                    where = {"s": {op: bound}}
                    got = store.search(x[0], k=20, where=where)
                    assert sorted(got.ids) == sorted(reference.search(x[0], k=20, where=where).ids), where
            assert store.search(x[0], k=20, where={"s": 'a"'}).ids == ["s0"]
        finally:
            store.drop()


def test_the_token_never_shows(milvus_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    """The token is in no repr, log line or error of ours, also when the connection fails."""
    caplog.set_level(logging.DEBUG)
    with MilvusIndex(unique_name("mt"), uri=milvus_uri, token=SECRET, dim=2) as store:
        try:
            store.add(["a"], [[1, 0]])
            assert SECRET not in repr(store)
            assert "Sup3rSecret" not in repr(store)
        finally:
            store.drop()
    dead = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ConfigError) as info:
        MilvusIndex("x", uri=dead, token=SECRET, timeout=2)
    assert "Sup3rSecret" not in str(info.value)
    assert "Sup3rSecret" not in repr(info.value)
    assert "Sup3rSecret" not in caplog.text
    assert hashlib.md5(SECRET.encode()).hexdigest() not in caplog.text  # pymilvus names connections so
    with pytest.raises(ConfigError) as info:
        MilvusIndex("x", uri=f"http://root:{SECRET}@127.0.0.1:{_closed_port()}", timeout=2)
    assert "Sup3rSecret" not in str(info.value)
    assert "Sup3rSecret" not in caplog.text


def _closed_port() -> int:
    from ._engine_milvus import free_port

    return free_port()


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a.b", "sp ace", "x" * 256, 3])
def test_collection_names(name: Any) -> None:
    """Names Milvus refuses are a ConfigError saying the rules, before any connection is made."""
    with pytest.raises(ConfigError, match="letters, digits and '_'"):
        MilvusIndex(name, uri="http://127.0.0.1:1")


def test_exactly_one_place(milvus_lite_uri: str) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        MilvusIndex("items")
    with pytest.raises(ConfigError, match="exactly one"):
        MilvusIndex("items", uri=milvus_lite_uri, client=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="index must be"):
        MilvusIndex("items", uri=milvus_lite_uri, index="ivf")  # type: ignore[arg-type]


def test_reopen_checks_metric_index_dim_and_model(milvus_lite_uri: str) -> None:
    name = unique_name("mt")
    with MilvusIndex(name, uri=milvus_lite_uri, metric="dot", model="m1", index="hnsw") as store:
        store.add(["a"], [[1, 2, 3]])
    try:
        with pytest.raises(ConfigError, match="metric='dot'"):
            MilvusIndex(name, uri=milvus_lite_uri, metric="cosine")
        with pytest.raises(ConfigError, match="index='hnsw'"):
            MilvusIndex(name, uri=milvus_lite_uri, index="flat")
        with pytest.raises(DimensionMismatchError):
            MilvusIndex(name, uri=milvus_lite_uri, dim=4)
        with pytest.raises(ConfigError, match="'m1' embeddings"):
            MilvusIndex(name, uri=milvus_lite_uri, model="m2")
        with MilvusIndex(name, uri=milvus_lite_uri) as again:
            assert (again.dim, again.metric, again.model, again.index) == (3, "dot", "m1", "hnsw")
            assert again.get("a").metadata == {}
        with pytest.raises(ConfigError, match="does not exist"):
            MilvusIndex(unique_name("mt"), uri=milvus_lite_uri, create=False)
    finally:
        MilvusIndex(name, uri=milvus_lite_uri).drop()


def test_a_collection_appears_with_the_first_write(milvus_lite_uri: str) -> None:
    """Without dim nothing is created until vectors arrive; then the collection has their dimension."""
    name = unique_name("mt")
    with MilvusIndex(name, uri=milvus_lite_uri) as store:
        assert len(store) == 0
        assert store.search([1.0, 0.0], k=3).ids == []
        assert "a" not in store
        assert not store.client.has_collection(name)
        store.upsert(["a"], [[1.0, 0.0]])
        assert store.dim == 2
        assert store.client.has_collection(name)
        store.drop()


def test_foreign_collection_is_refused(milvus_lite_uri: str) -> None:
    """A collection made by plain pymilvus lacks the fields our filters need."""
    client = pymilvus.MilvusClient(uri=milvus_lite_uri)
    name = unique_name("plain")
    try:
        client.create_collection(name, dimension=4)
        with pytest.raises(ConfigError, match="not created by finetune_embed"):
            MilvusIndex(name, client=client)
        with MilvusIndex(unique_name("mt"), client=client, dim=2) as store:  # a client passed in stays open
            store.add(["a"], [[1, 0]])
            store.drop()
        assert client.has_collection(name)
    finally:
        client.drop_collection(name)
        client.close()


def test_iter_items_pages_in_write_order(lite: MilvusIndex) -> None:
    """More items than one query returns (ranges of the write order split where they are full): every item exactly
    once, in the order written, an upsert keeping its place, in batches of at most batch_size."""
    n = 2_100
    ids = [f"i{i}" for i in range(n)]
    x = vectors(n, 4, seed=2)
    for a in range(0, n, 700):
        lite.add(ids[a : a + 700], x[a : a + 700], [{"n": i} for i in range(a, a + 700)])
    lite.upsert(["i5", "new"], x[:2], [{"n": 5}, {"n": -1}])
    seen: list[str] = []
    for batch_ids, rows, metas in lite.iter_items(batch_size=7):
        assert 1 <= len(batch_ids) <= 7
        assert rows.shape == (len(batch_ids), 4)
        assert [m["n"] for m in metas] == [int(i[1:]) if i != "new" else -1 for i in batch_ids]
        seen += batch_ids
    assert seen == [*ids, "new"]
    assert len(lite.search(x[0], k=100_000)) == n + 1


def test_metadata_milvus_cannot_hold(lite: MilvusIndex) -> None:
    """An integer beyond doubles, a string that is not valid Unicode, or metadata over 64 KB is refused with the
    item named, before anything is written."""
    with pytest.raises(ConfigError, match="too large"):
        lite.add(["a"], [[1, 0, 0, 0]], [{"n": 10**400}])
    with pytest.raises(ConfigError, match=r"'b'.*Unicode"):
        lite.add(["b"], [[1, 0, 0, 0]], [{"s": "\ud800"}])
    with pytest.raises(ConfigError, match="65535 bytes"):
        lite.add(["c"], [[1, 0, 0, 0]], [{"s": "x" * 70_000}])
    assert len(lite) == 0
    with pytest.raises(UnknownIdError):
        lite.get("a")


def test_expressions_carry_no_user_text_but_escaped_bounds() -> None:
    """Equality and membership are hashed tokens; only a range's string bound is spliced in, escaped."""
    where = {"$or": [{"name": 'x" or 1 == 1 or "'}, {"name": {"$in": ["a", 'zq"']}}], "n": {"$gt": 2}}
    expression = compile_filter(parse_filter(where))
    assert expression is not None
    assert "or 1 == 1" not in expression
    assert 'zq"' not in expression
    assert "> 2.0" in expression
    assert quote('a"b\\c\nd\te') == '"a\\"b\\\\c\\nd\\te"'
    assert compile_filter(None) is None


def test_a_deleted_item_is_gone_for_count_search_and_get(uri: str) -> None:
    """len() is Milvus's count(*): deleted rows are not counted (the collection statistics would still count
    them), and searches and reads see the delete at once (consistency level Session)."""
    with MilvusIndex(unique_name("mt"), uri=uri, dim=2) as store:
        try:
            store.add(["a", "b", "c"], [[1, 0], [0.9, 0.1], [0, 1]])
            assert store.delete(["a", "zz"]) == 1
            assert len(store) == 2
            assert store.search([1, 0], k=3).ids == ["b", "c"]
            store.upsert(["b"], [[0, 1]], {"v": 2})
            assert len(store) == 2
            assert store.get("b").metadata == {"v": 2}
        finally:
            store.drop()


def test_a_lite_database_in_a_new_folder() -> None:
    """A path ending in .db is Milvus Lite: created on first use, data kept after close."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "notes.db")
        with MilvusIndex("notes", uri=path, dim=2) as store:
            store.add(["a"], [[1, 0]], {"k": 1})
        with MilvusIndex("notes", uri=path, create=False) as again:
            assert again.get("a").metadata == {"k": 1}
            assert np.allclose(again.get("a").vector, [1, 0])
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)


def test_named_by_url_for_copy(tmp_path: Path) -> None:
    """``milvus:FILE.db?collection=`` names a Milvus Lite store for ``finetune-embed index copy``; wrong names are
    ConfigErrors that say the form."""
    from finetune_embed.stores import copy
    from finetune_embed.stores._names import open_store

    source = EmbeddingIndex(3)
    source.add(["a", "b"], [[1, 0, 0], [0, 1, 0]], [{"k": 1}, {"k": [2]}])
    name = f"milvus:{tmp_path / 'copy.db'}?collection=copied"
    opened = open_store(name, create=True, dim=3, metric="cosine")
    try:
        assert copy(source, opened.store).copied == 2
        assert opened.store.get("b").metadata == {"k": [2]}
        assert opened.store.search([1, 0, 0], k=1).ids == ["a"]
    finally:
        assert isinstance(opened.store, MilvusIndex)
        opened.store.drop()
        opened.store.close()
    with pytest.raises(ConfigError, match=r"ends in \.db"):
        open_store(f"milvus:{tmp_path / 'x.sqlite'}?collection=c", create=True)
    with pytest.raises(ConfigError, match="unknown query key"):
        open_store("milvus://127.0.0.1:1?colection=c", create=True)
    with pytest.raises(ConfigError, match="no Milvus Lite file"):
        open_store(f"milvus:{tmp_path / 'missing.db'}", create=False)


def test_a_server_named_by_url(milvus_uri: str) -> None:
    """``milvus://host:port?collection=`` reaches the server (``milvus+https://`` the same way over TLS)."""
    from finetune_embed.stores._names import open_store

    port = milvus_uri.rsplit(":", 1)[1]
    collection = unique_name("url")
    opened = open_store(f"milvus://127.0.0.1:{port}?collection={collection}&token={SECRET}", create=True, dim=2,
                        metric="dot")
    try:
        opened.store.add(["a"], [[1, 0]])
        assert len(opened.store) == 1
        assert opened.store.metric == "dot"
        assert "Sup3rSecret" not in repr(opened.store)
    finally:
        assert isinstance(opened.store, MilvusIndex)
        opened.store.drop()
        opened.store.close()
