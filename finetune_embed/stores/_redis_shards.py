"""Where a Redis store's search indexes live: one server, or one index per master of a Redis Cluster.

RediSearch (without Redis Enterprise's coordinator) indexes only the keys of the server it runs on, and a
Redis Cluster sends ``FT.CREATE name`` to the master that owns ``name``'s hash slot. So in a cluster each master
gets an index of its own, named with a hash tag that lands on one of its slots, and a search asks every master
and merges (:meth:`Shard`-wise top-k, then the global top-k: the same answer as one server holding all keys).

Also here: reading ``FT.SEARCH`` / ``FT.INFO`` replies in both RESP2 (lists) and RESP3 (maps) form, so any
``redis.Redis`` a caller passes works.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster

from .._exceptions import ConfigError

__all__ = ["Shard", "attribute_names", "check_client", "command", "info_field", "search_hits", "shards_of"]

Client = redis.Redis | RedisCluster


@dataclass(frozen=True)
class Shard:
    """One search index and the connection to the server that holds it."""

    index: str
    conn: redis.Redis


def command(conn: redis.Redis | redis.client.Pipeline, *args: Any) -> Any:
    """``conn.execute_command(*args)`` (redis-py leaves it untyped)."""
    return conn.execute_command(*args)  # type: ignore[no-untyped-call]


def check_client(client: redis.Redis) -> None:
    """Refuse a client that decodes replies to ``str``: vectors are stored as raw float32 bytes."""
    if client.get_connection_kwargs().get("decode_responses"):
        raise ConfigError("Give a Redis client made with decode_responses=False: vectors are stored as raw bytes.")


def shards_of(client: Client, name: str) -> list[Shard]:
    """The index name and connection of every shard: the server itself, or each master of a cluster."""
    if not isinstance(client, RedisCluster):
        return [Shard(name, client)]
    shards: list[Shard] = []
    primaries = client.get_primaries()  # type: ignore[no-untyped-call]
    for node in sorted(primaries, key=lambda n: (n.host, n.port)):
        index = _owned_name(client, name, node.name)
        conn = client.get_redis_connection(node)
        shards.append(Shard(index, conn))
    return shards


def _owned_name(client: RedisCluster, name: str, node_name: str) -> str:
    """``name:idx:{N}`` with the smallest N whose hash slot the node owns (the same answer on every call while
    the slots stay where they are)."""
    for n in itertools.count():
        candidate = f"{name}:idx:{{{n}}}"
        if client.get_node_from_key(candidate).name == node_name:  # type: ignore[no-untyped-call]
            return candidate
        if n > 1_000_000:  # pragma: no cover - a master with slots is hit within a few hundred tries
            break
    raise ConfigError(f"Redis Cluster node {node_name} owns no hash slot; a search index cannot live on it.")


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def search_hits(reply: Any) -> list[tuple[bytes, dict[str, Any]]]:
    """``(key, fields)`` for each hit of an ``FT.SEARCH`` reply, in either protocol."""
    if isinstance(reply, dict):  # RESP3
        results: list[Any] = reply.get(b"results", reply.get("results")) or []
        out = []
        for raw in results:
            hit = {_text(k): v for k, v in raw.items()}
            fields: dict[Any, Any] = hit.get("extra_attributes") or {}
            out.append((_as_bytes(hit["id"]), {_text(k): v for k, v in fields.items()}))
        return out
    items = list(reply)[1:]  # RESP2: total, key, [field, value, ...], key, ...
    return [(_as_bytes(items[i]), _pairs(list(items[i + 1] or []))) for i in range(0, len(items) - 1, 2)]


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def info_field(reply: Any, field: str) -> Any:
    """One field of an ``FT.INFO`` reply, in either protocol (``None`` when absent)."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}.get(field)
    return _pairs(list(reply)).get(field)


def attribute_names(reply: Any) -> set[str]:
    """The attribute (field) names of an ``FT.INFO`` reply."""
    names: set[str] = set()
    attributes: list[Any] = info_field(reply, "attributes") or []
    for attribute in attributes:
        entry = {_text(k): v for k, v in attribute.items()} if isinstance(attribute, dict) else _pairs(list(attribute))
        names.add(_text(entry.get("attribute", entry.get("identifier", ""))))
    return names
