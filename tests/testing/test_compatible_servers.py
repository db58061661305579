"""The fake's compatible-server stand-ins, sliding-window quotas, processing time and any-model mode (#12)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from finetune_embed.testing import PROFILES, FakeOpenAI, Processing


def post(fake: FakeOpenAI, body: dict[str, Any], timeout: float | None = None) -> httpx.Response:
    with httpx.Client(transport=fake.transport, base_url="http://localhost:8080/v1") as http:
        return http.post("/embeddings", json=body, headers={"Authorization": "Bearer EMPTY"}, timeout=timeout)


def test_tei_refuses_a_batch_over_its_limit_with_its_own_body() -> None:
    fake = FakeOpenAI(server="tei")
    r = post(fake, {"model": "anything", "input": [f"t{i}" for i in range(64)]})
    assert r.status_code == 413
    assert r.json() == {"error": "batch size 64 > maximum allowed batch size 32", "error_type": "Validation"}
    r = post(fake, {"model": "anything", "input": ["word " * 600]})
    assert r.status_code == 413
    assert r.json()["error"].startswith("Input validation error: `inputs` must have less than 512 tokens. Given: ")
    ok = post(fake, {"model": "anything", "input": ["a", "b"], "encoding_format": "float"})
    assert ok.status_code == 200
    assert len(ok.json()["data"][0]["embedding"]) == 384
    assert not any(k.startswith("x-ratelimit") for k in ok.headers)


def test_llama_cpp_refuses_an_input_over_its_physical_batch_with_a_500() -> None:
    r = post(FakeOpenAI(server="llamacpp"), {"model": "x", "input": ["one two three " * 200]})
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error"
    assert error["message"].endswith("increase the physical batch size (current batch size: 512)")


def test_ollama_serves_its_pulled_models_in_floats_and_404s_others() -> None:
    fake = FakeOpenAI(server="ollama")
    r = post(fake, {"model": "nomic-embed-text", "input": ["a"], "encoding_format": "base64"})
    assert isinstance(r.json()["data"][0]["embedding"], list)  # floats whatever was asked
    assert len(r.json()["data"][0]["embedding"]) == 768
    missing = post(fake, {"model": "text-embedding-3-small", "input": ["a"]})
    assert missing.status_code == 404
    assert "try pulling it first" in missing.json()["error"]["message"]


def test_vllm_has_one_served_name_and_openai_shaped_errors() -> None:
    fake = FakeOpenAI(server="vllm")
    assert post(fake, {"model": "BAAI/bge-small-en-v1.5", "input": ["a"]}).status_code == 200
    r = post(fake, {"model": "other", "input": ["a"]})
    assert r.status_code == 404
    assert r.json()["object"] == "error"
    long = post(fake, {"model": "BAAI/bge-small-en-v1.5", "input": ["word " * 600]})
    assert long.status_code == 400
    assert "maximum context length is 512 tokens" in long.json()["message"]


def test_litellm_renames_the_rate_limit_headers_and_rewords_429s() -> None:
    fake = FakeOpenAI(server="litellm", tpm=100)
    ok = post(fake, {"model": "text-embedding-3-small", "input": ["hello world"]})
    assert "llm_provider-x-ratelimit-limit-tokens" in ok.headers
    assert "x-ratelimit-limit-tokens" not in ok.headers
    too_much = post(fake, {"model": "text-embedding-3-small", "input": ["word " * 99]})
    assert too_much.status_code == 429
    error = too_much.json()["error"]
    assert error["message"].startswith("litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached")
    assert error["code"] == "429"


def test_any_model_mode_serves_any_name_at_the_chosen_size() -> None:
    fake = FakeOpenAI(any_model=96)
    r = post(fake, {"model": "my-own-model", "input": ["a"], "encoding_format": "float"})
    assert len(r.json()["data"][0]["embedding"]) == 96
    assert post(fake, {"model": "text-embedding-3-small", "input": ["a"], "encoding_format": "float"}).json()[
        "data"
    ][0]["embedding"].__len__() == 1536  # OpenAI's own models keep their size
    assert fake.embedding("a", model="my-own-model").shape == (96,)


def test_a_sliding_window_refuses_until_the_minute_has_passed() -> None:
    fake = FakeOpenAI(rpm=2, rate_limit_window="sliding")
    body = {"model": "text-embedding-3-small", "input": ["a"]}
    assert post(fake, body).status_code == 200
    fake.advance(30)
    assert post(fake, body).status_code == 200
    fake.advance(29)
    r = post(fake, body)  # a bucket would have refilled one request by now; the window has not
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    fake.advance(1.5)
    assert post(fake, body).status_code == 200


def test_processing_time_queues_requests_and_a_short_timeout_bites() -> None:
    fake = FakeOpenAI(processing=Processing(per_input=2.0, workers=1))
    start = fake.clock.now()
    assert post(fake, {"model": "text-embedding-3-small", "input": ["a", "b"]}).status_code == 200
    assert fake.clock.now() - start == pytest.approx(4.0)
    with pytest.raises(httpx.ReadTimeout, match=r"the server needed 6\.0 s"):
        post(fake, {"model": "text-embedding-3-small", "input": ["a", "b", "c"]}, timeout=5.0)
    assert fake.ledger.billed_texts["c"] == 1  # the server finished it and billed it all the same


def test_profiles_can_be_adjusted() -> None:
    fake = FakeOpenAI(server=PROFILES["tei"].with_options(max_batch_inputs=64))
    assert post(fake, {"model": "m", "input": [f"t{i}" for i in range(64)]}).status_code == 200
    with pytest.raises(ValueError, match="unknown server profile"):
        FakeOpenAI(server="nonesuch")
