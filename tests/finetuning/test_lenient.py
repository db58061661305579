"""Statuses, fields and event kinds the SDK does not know never crash anything (the SDK's construct path)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from finetune_embed import Client, JobFailedError
from finetune_embed.finetuning import JobManager
from finetune_embed.retry import RetryPolicy


def _job(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "ftjob-x", "object": "fine_tuning.job", "created_at": 1, "status": status, "model": "gpt-4o-mini",
        "organization_id": "org", "result_files": [], "seed": 1, "training_file": "file-t", "hyperparameters": {},
        "error": None, "fine_tuned_model": None, "finished_at": None, "trained_tokens": None,
        "validation_file": None, "brand_new_field": {"nested": [1, 2]}, **extra,
    }


class Server:
    """A tiny scripted server: the job moves through ``statuses``, one per retrieve."""

    def __init__(self, statuses: list[str], events: list[dict[str, Any]], **final: Any) -> None:
        self.statuses = statuses
        self.events = events
        self.final = final
        self.retrieves = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/fine_tuning/jobs/ftjob-x":
            status = self.statuses[min(self.retrieves, len(self.statuses) - 1)]
            self.retrieves += 1
            extra = self.final if self.retrieves >= len(self.statuses) else {}
            return httpx.Response(200, json=_job(status, **extra))
        if path == "/v1/fine_tuning/jobs/ftjob-x/events":
            shown = self.events[: self.retrieves * 2]
            return httpx.Response(200, json={"object": "list", "data": list(reversed(shown)), "has_more": False})
        if path == "/v1/fine_tuning/jobs":
            return httpx.Response(200, json={"object": "list", "data": [_job("some_new_status")], "has_more": False})
        return httpx.Response(404, json={"error": {"message": "no", "type": "x", "param": None, "code": None}})


def _events() -> list[dict[str, Any]]:
    return [
        {"id": f"ev{i}", "object": "fine_tuning.job.event", "created_at": 100 + i, "level": "debug",
         "message": f"event {i}", "type": "hyperparameter_search", "data": {"anything": i}, "extra_key": True}
        for i in range(8)
    ]


def _manager(server: Server) -> JobManager:
    client = Client(api_key="sk-test-lenient-0000", transport=httpx.MockTransport(server),
                    retry=RetryPolicy(sleep=lambda s: None))
    return JobManager(client, sleep=lambda s: None)


def test_unknown_statuses_are_waited_through() -> None:
    server = Server(["validating_files", "weird_new_status", "paused", "succeeded"], _events(),
                    fine_tuned_model="ft:x")
    job = _manager(server).wait("ftjob-x", progress=True)
    assert job.status == "succeeded"
    assert job.brand_new_field == {"nested": [1, 2]}  # type: ignore[attr-defined]
    assert server.retrieves == 4


def test_unknown_event_types_and_levels_are_followed() -> None:
    server = Server(["running", "new_phase", "succeeded"], _events())
    seen = list(_manager(server).follow("ftjob-x"))
    assert [e.id for e in seen] == [f"ev{i}" for i in range(6)]
    assert seen[0].level == "debug"
    assert seen[0].type == "hyperparameter_search"


def test_unknown_statuses_in_listings_and_partial_errors() -> None:
    manager = _manager(Server(["failed"], [], error={"code": "odd", "unexpected": 1}))
    assert [j.status for j in manager.list()] == ["some_new_status"]
    assert [j.id for j in manager.list(status="some_new_status")] == ["ftjob-x"]
    with pytest.raises(JobFailedError, match=r"failed; the server gave no reason \(code=odd\)") as info:
        manager.wait("ftjob-x")
    assert info.value.error.code == "odd"
