"""Read-your-writes on a Typesense cluster: after a write, wait until every node has applied it.

How Typesense 0.24.1 replicates (read in its source, ``src/raft_server.cpp``, ``src/batched_indexer.cpp``,
``src/http_server.cpp``): a write (any POST / PUT / PATCH / DELETE except ``multi_search``) sent to a follower is
forwarded over HTTP to the leader; the leader appends it to the Raft log and answers once a majority holds it *and*
its own indexer has applied it. Every other node applies the entry later, on its own indexer thread. Reads (GET,
``multi_search``) are answered by whichever node receives them, from what that node has applied, so a read sent to
another node right after a write can miss it. The only replication state Typesense exposes is ``GET /status``
(``committed_index`` and ``queued_writes``), and a committed entry is handed to the indexer a moment after it is
counted as committed, so "committed and nothing queued" does not prove a node has applied a given write.

A follower also learns that an entry is committed only from the leader's next message: without other writes, its
heartbeat, every 500 ms (election timeout 5 s, braft's heartbeat factor 10). So when a node is behind, one no-op
write (``POST /health``, a Raft write in 0.24) carries the commit position to the followers at once.

So the wait looks at the data itself, on each node alone: the documents a write tagged with its own token are all
there, the ids it deleted are gone, the collection it created (or dropped) is there (or gone). Polling is bounded
by ``timeout`` and ends with :class:`~finetune_embed.ReplicationLagError` naming the node. A node that refuses the
connection (it is down, so it serves no reads) is not waited for; a node that answers ``503 Not Ready or Lagging``
(more than ``--healthy-read-lag`` entries behind: it refuses reads) is waited for like any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from .._exceptions import ConfigError, ReplicationLagError
from .._logging import get_logger

__all__ = ["Check", "NodeWait", "absent", "count_is", "node_urls", "present"]

_log = get_logger("stores.typesense")

Check = Callable[[httpx.Client, str], bool]  # (HTTP client, node URL) -> has this node applied the write?


def node_urls(config: Any) -> list[str]:
    """The URLs of the nodes a ``typesense.Client`` may send a request to (its ``nodes`` and ``nearest_node``)."""
    nodes = [*config.nodes, *([config.nearest_node] if config.nearest_node is not None else [])]
    return list(dict.fromkeys(f"{n.protocol}://{n.host}:{n.port}{n.path}".rstrip("/") for n in nodes))


class NodeWait:
    """Polls every node of a cluster until a condition holds on each (see the module's docstring)."""

    nudge = True  # send one no-op write when a node is behind (see _nudge); benchmarks/ turns it off to compare

    def __init__(self, urls: Sequence[str], api_key: str, *, timeout: float, request_timeout: float) -> None:
        self.urls = list(urls)
        self.timeout = timeout
        self._api_key = api_key
        self._request_timeout = request_timeout

    def __repr__(self) -> str:
        return f"NodeWait(urls={self.urls!r}, timeout={self.timeout})"

    def _nudge(self, http: httpx.Client) -> None:
        """Send one no-op write through Raft (``POST /health``, which Typesense 0.24 routes as a write) to the first
        node that takes it. A follower learns that an entry is committed only from the leader's next message, which
        otherwise is the heartbeat (every 500 ms: Typesense's election timeout of 5 s over braft's factor 10); the
        no-op's entry carries the leader's commit position to every follower at once. When it fails, the
        heartbeat still does it: the wait only takes longer."""
        for url in self.urls:
            try:
                http.post(url + "/health")
                return
            except httpx.TransportError:
                continue

    def until(self, what: str, *checks: Check) -> None:
        """Return when every one of ``checks`` holds on every node that answers; :class:`ReplicationLagError` after
        ``timeout`` seconds, naming the first node on which one did not. After the first round that finds a node
        behind, one no-op write is sent (see :meth:`_nudge`)."""
        start = time.monotonic()
        pending = list(self.urls)
        delay = 0.002
        nudged = not self.nudge
        headers = {"X-TYPESENSE-API-KEY": self._api_key}
        with httpx.Client(headers=headers, timeout=self._request_timeout) as http:
            while True:
                behind = []
                for url in pending:
                    try:
                        if not all(check(http, url) for check in checks):
                            behind.append(url)
                    except httpx.ConnectError:
                        _log.warning("Typesense node %s refused the connection: not waited for (%s)", url, what)
                    except httpx.TransportError:  # up but slow, or cut off mid-answer: still behind
                        behind.append(url)
                if not behind:
                    return
                pending = behind
                if not nudged:
                    nudged = True
                    self._nudge(http)
                    continue
                waited = time.monotonic() - start
                if waited >= self.timeout:
                    raise ReplicationLagError(
                        f"Typesense node {behind[0]} had not applied {what} after {waited:.1f} s (of the "
                        f"{len(self.urls)} nodes, {len(behind)} had not). The cluster's leader acknowledged the write, "
                        "so it is stored and every node will apply it, but a read served by that node may miss it "
                        "until then. Check the node (GET /health, its log, its load); raise replication_timeout=, "
                        "or pass read_your_writes=False if your reads may trail your writes.",
                        node=behind[0],
                        waited=waited,
                    )
                time.sleep(min(delay, max(self.timeout - waited, 0.0)))
                delay = min(delay * 2, 0.1)


def _answer(response: httpx.Response, url: str) -> Any:
    """The JSON of a 200 answer; ``None`` for 404 (not there yet) and 503 (lagging); any other status raises."""
    if response.status_code in (404, 503):
        return None
    if response.status_code != 200:
        raise ConfigError(
            f"Typesense node {url} answered {response.status_code} to a read while waiting for a write to reach "
            f"it: {response.text[:300]}"
        )
    return response.json()


def count_is(collection: str, filter_by: Sequence[str], expected: int) -> Check:
    """The documents of ``collection`` matching the ``filter_by`` clauses (their counts summed) number ``expected``
    (a missing collection counts as none)."""

    def check(http: httpx.Client, url: str) -> bool:
        total = 0
        for clause in filter_by:
            params: dict[str, str | int] = {"q": "*", "filter_by": clause, "per_page": 0}
            response = http.get(f"{url}/collections/{collection}/documents/search", params=params)
            if response.status_code == 404:  # no collection (yet, or any more): no documents
                continue
            found = _answer(response, url)
            if found is None:  # 503: lagging
                return False
            total += int(found.get("found", 0))
        return total == expected

    return check


def present(path: str, field: str | None = None, value: Any = None) -> Check:
    """``GET path`` answers 200 (and, with ``field``, a JSON object whose ``field`` is ``value``)."""

    def check(http: httpx.Client, url: str) -> bool:
        found = _answer(http.get(url + path), url)
        return found is not None and (field is None or found.get(field) == value)

    return check


def absent(path: str) -> Check:
    """``GET path`` answers 404."""

    def check(http: httpx.Client, url: str) -> bool:
        response = http.get(url + path)
        if response.status_code == 404:
            return True
        _answer(response, url)
        return False

    return check
