"""Faults that strike after the server acted (``after=True``): the object exists, the client hears an error."""

from __future__ import annotations

import httpx
import openai
import pytest

from finetune_embed.testing import FakeOpenAI


def _file(sdk: openai.OpenAI) -> object:
    return sdk.files.create(file=("a.jsonl", b'{"x": 1}\n'), purpose="batch")


def test_a_late_status_hides_an_answer_the_server_gave() -> None:
    """The file is created (and listed), but the caller gets the injected 502."""
    fake = FakeOpenAI()
    sdk = fake.openai_client()
    fake.inject(502, path="/v1/files", method="POST", after=True)
    with pytest.raises(openai.InternalServerError):
        _file(sdk)
    assert len(fake.store.files) == 1
    assert fake.ledger.requests[-1].injected
    _file(sdk)  # used up: the next create answers normally
    assert len(fake.store.files) == 2


def test_a_late_timeout_in_process_and_a_before_fault_that_never_acts() -> None:
    """after=True times out once the work is done; the default (before) fault leaves no trace on the server."""
    fake = FakeOpenAI()
    sdk = fake.openai_client()
    fake.inject_timeout("/v1/files", method="POST", after=True)
    with pytest.raises(openai.APITimeoutError):
        _file(sdk)
    assert len(fake.store.files) == 1
    fake.inject(500, path="/v1/files", method="POST")
    with pytest.raises(openai.InternalServerError):
        _file(sdk)
    assert len(fake.store.files) == 1


def test_a_late_fault_is_kept_for_a_request_the_server_refused() -> None:
    """A request the server refuses (400) does not use up a late fault: only work that was done is hidden."""
    fake = FakeOpenAI()
    sdk = fake.openai_client()
    fake.inject(500, path="/v1/files", method="POST", after=True)
    with pytest.raises(openai.BadRequestError):
        sdk.files.create(file=("a.txt", b"x"), purpose="fine-tune")  # not .jsonl
    assert len(fake.faults.pending) == 1


def test_a_late_timeout_over_loopback_holds_the_connection() -> None:
    """Over loopback the server acts, then stays silent past the client's timeout."""
    fake = FakeOpenAI()
    with fake.serve() as base_url:
        fake.inject_timeout("/v1/files", method="POST", after=True, hold=1.0)
        with httpx.Client(timeout=0.3) as http:
            sdk = openai.OpenAI(api_key="sk-x", base_url=base_url, max_retries=0, http_client=http)
            with pytest.raises(openai.APITimeoutError):
                _file(sdk)
    assert len(fake.store.files) == 1
