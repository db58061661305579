"""The loopback HTTP server: same behaviour over real sockets; the clock runs in (scaled) real time there."""

from __future__ import annotations

import time

import httpx
import numpy as np
import openai
import pytest

from finetune_embed import Client
from finetune_embed.testing import FakeClock, FakeOpenAI, JobSpeed

from ._data import chat_file


def test_sdk_over_loopback() -> None:
    fake = FakeOpenAI()
    with fake.serve() as base_url, openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as sdk:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        assert fake.base_url == base_url
        resp = sdk.embeddings.create(model="text-embedding-3-small", input=["over", "http"])
        assert np.array_equal(np.asarray(resp.data[1].embedding, dtype=np.float32), fake.embedding("http"))
        f = sdk.files.create(file=("t.jsonl", chat_file(3)), purpose="fine-tune")
        assert sdk.files.content(f.id).content == chat_file(3)
        with pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("ft:gpt-4o-mini-2024-07-18:fake::nope")
    assert fake.base_url is None
    assert not fake.clock.realtime  # back to the manual clock


def test_our_client_over_loopback_with_rate_limit_headers() -> None:
    fake = FakeOpenAI(rpm=100, tpm=10_000)
    with fake.serve() as base_url, Client(api_key="sk-test", base_url=base_url) as client:
        raw = client.request_raw(
            lambda sdk: sdk.with_raw_response.embeddings.create(model="text-embedding-3-small", input="hi")
        )
        assert raw.rate_limits.limit_requests == 100
        assert raw.rate_limits.remaining_tokens == 10_000 - 1
        assert raw.request_id is not None
        assert raw.request_id.startswith("req_")


def test_faults_over_loopback() -> None:
    fake = FakeOpenAI()
    with fake.serve() as base_url, openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=0.5) as sdk:
        fake.inject_disconnect()
        with pytest.raises(openai.APIConnectionError):
            sdk.embeddings.create(model="text-embedding-3-small", input="x")
        fake.inject_timeout(hold=1.5)
        with pytest.raises(openai.APITimeoutError):
            sdk.embeddings.create(model="text-embedding-3-small", input="x")
        fake.inject(502)
        with pytest.raises(openai.InternalServerError):
            sdk.embeddings.create(model="text-embedding-3-small", input="x")
        sdk.embeddings.create(model="text-embedding-3-small", input="x")


def test_jobs_run_by_themselves_on_a_scaled_clock() -> None:
    fake = FakeOpenAI(job_speed=JobSpeed(validating=1, queued=1, per_step=0.5, finalizing=1))
    with fake.serve(scale=200.0) as base_url, openai.OpenAI(base_url=base_url, api_key="k", max_retries=0) as sdk:
        f = sdk.files.create(file=("t.jsonl", chat_file(12)), purpose="fine-tune")
        job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=f.id, hyperparameters={"n_epochs": 1})
        deadline = time.monotonic() + 10
        while sdk.fine_tuning.jobs.retrieve(job.id).status != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_latency_really_waits_over_loopback() -> None:
    fake = FakeOpenAI(latency=(0.05, 0.1))
    with fake.serve() as base_url, httpx.Client(base_url=base_url) as http:
        start = time.monotonic()
        r = http.get("/models", headers={"Authorization": "Bearer k"})
        assert r.status_code == 200
        assert time.monotonic() - start >= 0.05


def test_real_time_clock_constructor() -> None:
    clock = FakeClock.real(scale=1000.0, start=0.0)
    time.sleep(0.01)
    assert clock.realtime
    assert clock.now() >= 10.0
