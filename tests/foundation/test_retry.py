"""RetryPolicy: what is retried, how long it waits, and that exactly one retry layer exists."""

from __future__ import annotations

import email.utils
import logging
import time

import httpx
import pytest

from finetune_embed import (
    APIConnectionError,
    BadRequestError,
    Client,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from finetune_embed.retry import is_retryable, parse_duration, retry_after_seconds

from ._http import Script, error_body, ok


def make_client(script: Script, sleeps: list[float], **policy: object) -> Client:
    retry = RetryPolicy(sleep=sleeps.append, seed=1, **policy)  # type: ignore[arg-type]
    return Client(api_key="sk-test-retry-000000", transport=script.transport(), retry=retry)


def list_files(client: Client) -> object:
    return client.request(lambda sdk: sdk.files.list(), description="list files")


class TestWhatIsRetried:
    @pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
    def test_retryable_statuses_are_retried_until_success(self, status: int) -> None:
        """Retryable statuses get another attempt; the SDK itself makes no extra attempts."""
        script = Script([httpx.Response(status, json=error_body("boom")), ok()])
        sleeps: list[float] = []
        list_files(make_client(script, sleeps))
        assert script.attempts == 2
        assert len(sleeps) == 1
        assert [r.headers.get("x-stainless-retry-count") for r in script.requests] == ["0", "0"]

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    def test_other_4xx_are_not_retried(self, status: int) -> None:
        """A client error is raised after one attempt."""
        script = Script([httpx.Response(status, json=error_body("nope")), ok()])
        sleeps: list[float] = []
        with pytest.raises(Exception) as info:
            list_files(make_client(script, sleeps))
        assert script.attempts == 1
        assert sleeps == []
        assert info.value.attempts == 1  # type: ignore[attr-defined]

    def test_insufficient_quota_stops_at_once(self) -> None:
        """429 insufficient_quota is a billing stop: one attempt, QuotaExceededError."""
        body = error_body("You exceeded your current quota", type_="insufficient_quota", code="insufficient_quota")
        script = Script([httpx.Response(429, json=body, headers={"retry-after": "1"}), ok()])
        sleeps: list[float] = []
        with pytest.raises(QuotaExceededError) as info:
            list_files(make_client(script, sleeps))
        assert script.attempts == 1
        assert "retrying will not help" in str(info.value)

    def test_gives_up_after_max_attempts_with_the_last_error(self) -> None:
        """After max_attempts the real last error is raised (never tenacity.RetryError) with .attempts."""
        script = Script([httpx.Response(503, json=error_body("overloaded"), headers={"x-request-id": "req_9"})])
        sleeps: list[float] = []
        with pytest.raises(ServerError) as info:
            list_files(make_client(script, sleeps, max_attempts=4))
        assert script.attempts == 4
        assert info.value.attempts == 4
        assert info.value.request_id == "req_9"
        assert info.value.status_code == 503

    def test_connection_errors_are_retried(self) -> None:
        """A dropped connection is retried and mapped to APIConnectionError when attempts run out."""
        script = Script([httpx.ConnectError("refused")])
        sleeps: list[float] = []
        with pytest.raises(APIConnectionError):
            list_files(make_client(script, sleeps, max_attempts=3))
        assert script.attempts == 3

    def test_x_should_retry_false_wins(self) -> None:
        """The server's x-should-retry: false stops retries even for a 500."""
        script = Script([httpx.Response(500, json=error_body("x"), headers={"x-should-retry": "false"}), ok()])
        with pytest.raises(ServerError):
            list_files(make_client(script, []))
        assert script.attempts == 1

    def test_x_should_retry_true_wins(self) -> None:
        """x-should-retry: true makes even a 400 retryable."""
        script = Script([httpx.Response(400, json=error_body("x"), headers={"x-should-retry": "true"}), ok()])
        list_files(make_client(script, []))
        assert script.attempts == 2


class TestHowLongItWaits:
    def test_retry_after_seconds(self) -> None:
        """retry-after in seconds is honoured exactly."""
        script = Script([httpx.Response(429, json=error_body("slow down"), headers={"retry-after": "7"}), ok()])
        sleeps: list[float] = []
        list_files(make_client(script, sleeps))
        assert sleeps == [7.0]

    def test_retry_after_ms_wins_over_retry_after(self) -> None:
        """retry-after-ms is read before retry-after."""
        headers = {"retry-after-ms": "250", "retry-after": "9"}
        script = Script([httpx.Response(429, json=error_body("x"), headers=headers), ok()])
        sleeps: list[float] = []
        list_files(make_client(script, sleeps))
        assert sleeps == [0.25]

    def test_retry_after_http_date(self) -> None:
        """retry-after as an HTTP date becomes the seconds until then."""
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        script = Script([httpx.Response(503, json=error_body("x"), headers={"retry-after": when}), ok()])
        sleeps: list[float] = []
        list_files(make_client(script, sleeps))
        assert 27.0 <= sleeps[0] <= 30.5

    def test_try_again_in_message(self) -> None:
        """With no header, 'Please try again in 1.5s' in the message sets the wait."""
        body = error_body("Rate limit reached for requests. Please try again in 1.5s.", code="rate_limit_exceeded")
        script = Script([httpx.Response(429, json=body), ok()])
        sleeps: list[float] = []
        list_files(make_client(script, sleeps))
        assert sleeps == [1.5]

    def test_long_retry_after_is_honoured_within_the_deadline(self) -> None:
        """Unlike the SDK there is no 120 s cap: a 200 s wait inside a 600 s deadline is taken."""
        script = Script([httpx.Response(429, json=error_body("x"), headers={"retry-after": "200"}), ok()])
        sleeps: list[float] = []
        list_files(make_client(script, sleeps, max_elapsed=600))
        assert sleeps == [200.0]
        assert script.attempts == 2

    def test_wait_past_the_deadline_stops_at_once(self) -> None:
        """A requested wait that would end past max_elapsed is not taken: the 429 is raised after one attempt."""
        script = Script([httpx.Response(429, json=error_body("x"), headers={"retry-after": "400"}), ok()])
        sleeps: list[float] = []
        with pytest.raises(RateLimitError) as info:
            list_files(make_client(script, sleeps, max_elapsed=300))
        assert sleeps == []
        assert script.attempts == 1
        assert info.value.retry_after == 400.0

    def test_backoff_without_hint_grows_exponentially_with_jitter(self) -> None:
        """No hint: waits of initial*2**n plus jitter in [0, jitter), capped at max_wait."""
        script = Script([httpx.Response(500, json=error_body("x"))])
        sleeps: list[float] = []
        with pytest.raises(ServerError):
            list_files(make_client(script, sleeps, max_attempts=6, initial_wait=1.0, max_wait=10.0, jitter=0.5))
        bases = [1.0, 2.0, 4.0, 8.0, 10.0]
        assert len(sleeps) == 5
        for got, base in zip(sleeps, bases, strict=True):
            assert base <= got <= min(10.0, base + 0.5)


class TestPolicyDirectly:
    def test_call_and_acall(self) -> None:
        """The policy retries plain callables too (sync and async) and records .attempts on the error."""
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionError("reset")
            return "ok"

        policy = RetryPolicy(sleep=lambda s: None)
        assert policy.call(flaky) == "ok"
        assert len(calls) == 3

        import asyncio

        acalls = []

        async def aflaky() -> str:
            acalls.append(1)
            if len(acalls) < 2:
                raise TimeoutError("slow")
            return "ok"

        assert asyncio.run(policy.acall(aflaky)) == "ok"
        assert len(acalls) == 2

    def test_invalid_policy(self) -> None:
        """Nonsense settings are refused at construction."""
        with pytest.raises(ValueError, match="max_attempts"):
            RetryPolicy(max_attempts=0)
        with pytest.raises(ValueError, match="max_elapsed"):
            RetryPolicy(max_elapsed=0)

    def test_predicates(self) -> None:
        """is_retryable and retry_after_seconds work on plain httpx errors too."""
        request = httpx.Request("GET", "https://example.test")
        response = httpx.Response(429, headers={"retry-after": "3"}, request=request)
        exc = httpx.HTTPStatusError("429", request=request, response=response)
        assert is_retryable(exc)
        assert retry_after_seconds(exc) == 3.0
        assert not is_retryable(ValueError("bad"))
        assert is_retryable(httpx.ReadTimeout("slow"))
        assert parse_duration("6m0s") == 360.0
        assert parse_duration("12ms") == pytest.approx(0.012)
        assert parse_duration("1.5s") == 1.5
        assert parse_duration("nonsense") is None

    def test_each_retry_is_logged_without_secrets(self, caplog: pytest.LogCaptureFixture) -> None:
        """One WARNING per retry on finetune_embed.retry; the key never appears."""
        key = "sk-canary-retrylog-1234567890"
        body = error_body(f"Incorrect API key provided: {key}.")
        script = Script([httpx.Response(500, json=body), ok()])
        client = Client(api_key=key, transport=script.transport(), retry=RetryPolicy(sleep=lambda s: None))
        with caplog.at_level(logging.DEBUG, logger="finetune_embed"):
            list_files(client)
        warnings = [r for r in caplog.records if r.name == "finetune_embed.retry"]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert key not in caplog.text
        assert "list files" in warnings[0].getMessage()


class TestAsyncClientRetries:
    def test_async_client_retries_and_maps(self) -> None:
        """The async client applies the same policy."""
        import asyncio

        from finetune_embed import AsyncClient

        script = Script([httpx.Response(429, json=error_body("x"), headers={"retry-after": "2"}), ok()])
        sleeps: list[float] = []
        client = AsyncClient(
            api_key="sk-async-test-0000", transport=script.transport(), retry=RetryPolicy(sleep=sleeps.append)
        )

        async def go() -> None:
            await client.request(lambda sdk: sdk.files.list(), description="list files")
            await client.aclose()

        asyncio.run(go())
        assert script.attempts == 2
        assert sleeps == [2.0]

    def test_async_bad_request_not_retried(self) -> None:
        """A 400 from the async client is BadRequestError after one attempt."""
        import asyncio

        from finetune_embed import AsyncClient

        script = Script([httpx.Response(400, json=error_body("bad", param="input")), ok()])
        client = AsyncClient(api_key="sk-async-test-0000", transport=script.transport())

        async def go() -> None:
            await client.request(lambda sdk: sdk.files.list())

        with pytest.raises(BadRequestError) as info:
            asyncio.run(go())
        assert info.value.param == "input"
        assert script.attempts == 1
