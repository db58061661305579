"""QdrantIndex beyond the conformance suite: ids as UUIDv5, the payload layout, opening rules, secrets."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import ConfigError, DimensionMismatchError, UnsupportedFilterError

from .conftest import unavailable

try:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models

    from finetune_embed.stores import QdrantIndex
    from finetune_embed.stores._qdrant_layout import ID_NAMESPACE, field_key, payload, point_id
except ImportError as exc:  # pragma: no cover - only without the extra
    QdrantClient = None  # type: ignore[assignment,misc]
    _missing = str(exc)


@pytest.fixture
def folder() -> Iterator[Path]:
    if QdrantClient is None:
        unavailable(f"qdrant-client is not installed ({_missing}); pip install 'finetune-embed[qdrant]'")
    with tempfile.TemporaryDirectory(prefix="fe-qdrant-") as tmp:
        yield Path(tmp)


def test_string_ids_become_uuid5_with_the_id_in_the_payload(folder: Path) -> None:
    with QdrantIndex("items", path=str(folder), dim=2) as store:
        store.add(["doc-1"], [[1, 0]], [{"lang": "en"}])
        (point,) = store.client.retrieve("items", [point_id("doc-1")], with_payload=True)
        assert str(point.id) == str(uuid.uuid5(ID_NAMESPACE, "doc-1"))
        assert point.payload is not None
        assert point.payload["fe_id"] == "doc-1"
        assert store.search([1, 0], k=1).ids == ["doc-1"]


def test_payload_types_every_field() -> None:
    """Booleans live in the type key, numbers as floats, containers as canonical text; dotted keys are JSON only."""
    got = payload("i", {"b": True, "n": {"x": 1}, "l": [1, 2], "dot.ted": 3, "z": None}, seq=4)
    fields = got["fe_f"]
    assert fields[field_key("t", "b")] == "true"
    assert field_key("v", "b") not in fields
    assert fields[field_key("v", "n.x")] == 1.0
    assert fields[field_key("t", "n")] == "object"
    assert fields[field_key("c", "l")] == "[1.0,2.0]"
    assert fields[field_key("t", "z")] == "null"
    assert field_key("t", "dot.ted") not in fields
    assert (got["fe_id"], got["fe_seq"]) == ("i", 4)


def test_reopen_checks_metric_dim_and_model(folder: Path) -> None:
    with QdrantIndex("items", path=str(folder), metric="dot", model="m1") as store:
        store.add(["a"], [[1, 2, 3]])
    with pytest.raises(ConfigError, match="metric='dot'"):
        QdrantIndex("items", path=str(folder), metric="cosine")
    with pytest.raises(DimensionMismatchError):
        QdrantIndex("items", path=str(folder), dim=4)
    with pytest.raises(ConfigError, match="'m1' embeddings"):
        QdrantIndex("items", path=str(folder), model="m2")
    with QdrantIndex("items", path=str(folder)) as again:
        assert (again.dim, again.metric, again.model, len(again)) == (3, "dot", "m1", 1)
    with pytest.raises(ConfigError, match="does not exist"):
        QdrantIndex("other", path=str(folder), create=False)


def test_no_collection_until_the_dimension_is_known(folder: Path) -> None:
    with QdrantIndex("items", path=str(folder)) as store:
        assert len(store) == 0
        assert store.search([1.0, 0.0], k=3).ids == []
        assert not store.client.collection_exists("items")
        store.upsert(["a"], [[1, 0]])
        assert store.dim == 2
        assert store.client.collection_exists("items")


def test_foreign_collection_is_refused(folder: Path) -> None:
    client = QdrantClient(path=str(folder))
    try:
        client.create_collection("plain", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        with pytest.raises(ConfigError, match="not created by finetune_embed"):
            QdrantIndex("plain", client=client)
        with QdrantIndex("ours", client=client, dim=2) as store:  # a client passed in stays open
            store.add(["a"], [[1, 0]])
        assert client.count("ours").count == 1
    finally:
        client.close()


@pytest.mark.parametrize("kwargs", [{}, {"path": "x", "url": "http://localhost:6333"}])
def test_exactly_one_place(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        QdrantIndex("items", **kwargs)


@pytest.mark.parametrize("name", ["", "a/b", "x" * 256])
def test_collection_names(name: str) -> None:
    with pytest.raises(ConfigError, match="collection names"):
        QdrantIndex(name, path="unused")


def test_the_api_key_stays_in_the_client(folder: Path) -> None:
    """QdrantIndex keeps no copy of the key: it goes to the QdrantClient it makes, and nowhere else."""
    secret = "sk-qdrant-" + "s3cr3t" * 4
    client = QdrantClient(path=str(folder))
    try:
        with QdrantIndex("items", client=client, dim=2) as store:
            assert secret not in repr(store)
            assert all(secret not in repr(value) for value in vars(store).values())
    finally:
        client.close()
    with pytest.raises(ConfigError) as info:
        QdrantIndex("items", url="localhost:6333", path="x", api_key=secret)
    assert secret not in str(info.value)


@pytest.mark.parametrize(("where", "operator"), [({"s": {"$gt": "a"}}, "$gt:string"),
                                                  ({"$not": {"s": {"$lte": "b"}}}, "$lte:string")])
def test_string_ranges_are_refused(folder: Path, where: dict[str, Any], operator: str) -> None:
    with QdrantIndex("items", path=str(folder), dim=2) as store:
        store.add(["a"], [[1, 0]], [{"s": "x"}])
        with pytest.raises(UnsupportedFilterError) as info:
            store.search([1, 0], k=1, where=where)
        assert (info.value.engine, info.value.operator) == ("qdrant", operator)


def test_iteration_keeps_insertion_order_across_upserts(folder: Path) -> None:
    with QdrantIndex("items", path=str(folder), dim=2) as store:
        ids = [f"i{n}" for n in range(25)]
        store.add(ids, [[1, n + 1] for n in range(25)])
        store.upsert(["i3", "new"], [[0, 1], [1, 1]], [{"v": 1}, None])
        seen = [i for batch, _, _ in store.iter_items(batch_size=7) for i in batch]
        assert seen == [*ids, "new"]
        assert store.get("i3").metadata == {"v": 1}
