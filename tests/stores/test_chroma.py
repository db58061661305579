"""ChromaIndex beyond the conformance suite: the record layout, Chroma's quirks, names, opening rules."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import ConfigError, DimensionMismatchError, UnsupportedFilterError

from .conftest import unavailable

try:
    import chromadb
    from chromadb.config import Settings

    from finetune_embed.stores import ChromaIndex
    from finetune_embed.stores._canonical import canonical
    from finetune_embed.stores._chroma_layout import flatten
except ImportError as exc:  # pragma: no cover - only without the extra
    chromadb = None
    _missing = str(exc)


@pytest.fixture
def folder() -> Iterator[Path]:
    if chromadb is None:
        unavailable(f"chromadb is not installed ({_missing}); pip install 'finetune-embed[chroma]'")
    with tempfile.TemporaryDirectory(prefix="fe-chroma-") as tmp:
        yield Path(tmp)


def test_canonical_json_equality() -> None:
    """Equal JSON values (1 and 1.0, key order, -0.0) give one text; true is not 1; NaN equals nothing."""
    assert canonical([1, {"b": 2, "a": -0.0}]) == canonical([1.0, {"a": 0, "b": 2.0}])
    assert canonical(True) != canonical(1)
    assert canonical([1]) != canonical(["1"])
    assert canonical(10**20) == canonical(1e20)
    assert canonical(2**53 + 1) != canonical(float(2**53 + 1))
    assert canonical(float("nan")) is None
    assert canonical({1: "x"}) is None


def test_flattened_record() -> None:
    """Each reachable field gets a type key, scalars a native key, containers their canonical text."""
    record = flatten({"a": {"b": 1, "c": None, "d": [1]}, "s": "x", "t": True, "dot.ted": 1, "#h": 2}, "id")
    assert record["fe:t:a"] == "object"
    assert record["a.b"] == 1.0
    assert isinstance(record["a.b"], float)
    assert record["fe:t:a.c"] == "null"
    assert "a.c" not in record
    assert record["fe:c:a.d"] == "[1.0]"
    assert record["s"] == "x"
    assert record["t"] is True
    assert not any(key.startswith(("dot", "#")) or "dot.ted" in key for key in record)
    assert record["fe:json"].startswith('{"a":')


def test_upsert_removes_stale_keys_from_the_record(folder: Path) -> None:
    """Chroma merges metadata on upsert; the adapter removes every key of the old record that is gone."""
    with ChromaIndex("items", path=str(folder), dim=2) as store:
        store.add(["a"], [[1, 0]], [{"x": {"y": 1}, "keep": "k"}])
        store.upsert(["a"], [[0, 1]], [{"keep": "k2"}])
        raw = store.collection.get(ids=["a"], include=["metadatas"])["metadatas"]
        assert raw is not None
        assert set(raw[0]) == {"fe:json", "fe:t:keep", "keep"}
        assert store.get("a").metadata == {"keep": "k2"}


def test_add_never_overwrites(folder: Path) -> None:
    """Chroma's add silently skips an existing id; the adapter refuses it before sending anything."""
    from finetune_embed import DuplicateIdError

    with ChromaIndex("items", path=str(folder), dim=2) as store:
        store.add(["a"], [[1, 0]], [{"v": 1}])
        with pytest.raises(DuplicateIdError):
            store.add(["b", "a"], [[0, 1], [0, 1]])
        assert "b" not in store
        assert store.get("a").metadata == {"v": 1}


@pytest.mark.parametrize("name", ["ab", "a" * 513, "-abc", "abc-", "a..b", "192.168.0.1", "sp ace", ""])
def test_collection_names(folder: Path, name: str) -> None:
    """Names Chroma refuses are a ConfigError saying the rules, before any client is made."""
    with pytest.raises(ConfigError, match="3 to 512 characters"):
        ChromaIndex(name, path=str(folder))


def test_exactly_one_place(folder: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        ChromaIndex("items")
    with pytest.raises(ConfigError, match="exactly one"):
        ChromaIndex("items", path=str(folder), url="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="http://host:port"):
        ChromaIndex("items", url="127.0.0.1:8000")


def test_reopen_checks_metric_dim_and_model(folder: Path) -> None:
    with ChromaIndex("items", path=str(folder), metric="dot", model="m1") as store:
        store.add(["a"], [[1, 2, 3]])
    with pytest.raises(ConfigError, match="metric='dot'"):
        ChromaIndex("items", path=str(folder), metric="cosine")
    with pytest.raises(DimensionMismatchError):
        ChromaIndex("items", path=str(folder), dim=4)
    with pytest.raises(ConfigError, match="'m1' embeddings"):
        ChromaIndex("items", path=str(folder), model="m2")
    with ChromaIndex("items", path=str(folder)) as again:
        assert (again.dim, again.metric, again.model) == (3, "dot", "m1")
    with pytest.raises(ConfigError, match="does not exist"):
        ChromaIndex("other", path=str(folder), create=False)


def test_foreign_collection_is_refused(folder: Path) -> None:
    """A collection made by plain chromadb lacks the layout our filters need."""
    client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
    try:
        client.create_collection("plain")
        with pytest.raises(ConfigError, match="not created by finetune_embed"):
            ChromaIndex("plain", client=client)
    finally:
        client.close()


def test_a_client_passed_in_stays_open(folder: Path) -> None:
    client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
    try:
        with ChromaIndex("items", client=client, dim=2) as store:
            store.add(["a"], [[1, 0]])
        assert client.get_collection("items").count() == 1
    finally:
        client.close()


@pytest.mark.parametrize(
    ("where", "operator"),
    [({"s": {"$gt": "a"}}, "$gt:string"), ({"$not": {"s": {"$lte": "b"}}}, "$lte:string"),
     ({"#tag": 1}, "field '#tag'")],
)
def test_unsupported_filters_name_engine_and_operator(folder: Path, where: dict[str, Any], operator: str) -> None:
    with ChromaIndex("items", path=str(folder), dim=2) as store:
        store.add(["a"], [[1, 0]], [{"s": "x"}])
        with pytest.raises(UnsupportedFilterError) as info:
            store.search([1, 0], k=1, where=where)
        assert (info.value.engine, info.value.operator) == ("chroma", operator)


def test_metadata_chroma_cannot_hold(folder: Path) -> None:
    """An integer beyond doubles, or a string that is not valid Unicode, is refused with the item named."""
    with ChromaIndex("items", path=str(folder), dim=2) as store:
        with pytest.raises(ConfigError, match="too large"):
            store.add(["a"], [[1, 0]], [{"n": 10**400}])
        with pytest.raises(ConfigError, match=r"'b'.*Unicode"):
            store.add(["b"], [[1, 0]], [{"s": "\ud800"}])
        assert len(store) == 0


def test_ef_search_is_recorded(folder: Path) -> None:
    with ChromaIndex("items", path=str(folder), dim=2, ef_search=321) as store:
        assert store.ef_search == 321
    with pytest.raises(ConfigError, match="ef_search"):
        ChromaIndex("items", path=str(folder), ef_search=0)
