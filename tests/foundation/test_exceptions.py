"""Every openai SDK exception maps to ours, keeping what the server said."""

from __future__ import annotations

import inspect

import httpx
import openai
import openai._exceptions as sdk_exceptions
import pytest

import finetune_embed
from finetune_embed import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    FinetuneEmbedError,
    MissingAPIKeyError,
    NotFoundError,
    OpenAISDKError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnprocessableEntityError,
)
from finetune_embed._exceptions import map_openai_error, map_openai_errors

from ._http import Script, error_body

STATUS_TO_CLASS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    418: APIStatusError,
    500: ServerError,
    503: ServerError,
}


def sdk_exception_classes() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in (openai, sdk_exceptions):
        for value in list(vars(module).values()):
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__.startswith("openai"):
                found.add(value)
    return found


def bare_instance(cls: type[BaseException]) -> BaseException:
    """An instance without running the SDK's constructor (some need completions or sockets)."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, f"{cls.__name__} happened")
    for attr, value in {
        "message": f"{cls.__name__} happened",
        "body": None,
        "code": None,
        "param": None,
        "type": None,
    }.items():
        try:
            setattr(exc, attr, value)
        except AttributeError:
            pass
    return exc


def raise_through_sdk(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> BaseException:
    script = Script([httpx.Response(status, json=body, headers=headers)])
    client = openai.OpenAI(api_key="sk-x", http_client=httpx.Client(transport=script.transport()), max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.files.list()
    return info.value


class TestEveryClassMaps:
    def test_all_sdk_exception_classes_are_known(self) -> None:
        """The test below covers every exception class the installed SDK defines (fails when a new one appears)."""
        names = {cls.__name__ for cls in sdk_exception_classes()}
        expected = {
            "OpenAIError",
            "APIError",
            "APIStatusError",
            "APIConnectionError",
            "APITimeoutError",
            "APIResponseValidationError",
            "BadRequestError",
            "AuthenticationError",
            "OAuthError",
            "PermissionDeniedError",
            "NotFoundError",
            "ConflictError",
            "UnprocessableEntityError",
            "RateLimitError",
            "InternalServerError",
            "LengthFinishReasonError",
            "ContentFilterFinishReasonError",
            "InvalidWebhookSignatureError",
            "SubjectTokenProviderError",
            "WebSocketConnectionClosedError",
            "WebSocketQueueFullError",
            "_AmbiguousModuleClientUsageError",
        }
        assert names <= expected, f"new SDK exception classes to map: {sorted(names - expected)}"

    @pytest.mark.parametrize("cls", sorted(sdk_exception_classes(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
    def test_each_class_maps_to_ours(self, cls: type[BaseException]) -> None:
        """Whatever the SDK raises, the caller gets a FinetuneEmbedError."""
        if issubclass(cls, openai.APIStatusError):
            status = {
                "BadRequestError": 400,
                "AuthenticationError": 401,
                "OAuthError": 401,
                "PermissionDeniedError": 403,
                "NotFoundError": 404,
                "ConflictError": 409,
                "UnprocessableEntityError": 422,
                "RateLimitError": 429,
                "InternalServerError": 500,
            }.get(cls.__name__, 418)
            exc = raise_through_sdk(status, error_body("server says no", code="c1", param="p1"))
        else:
            exc = bare_instance(cls)
        mapped = map_openai_error(exc)
        assert isinstance(mapped, FinetuneEmbedError)
        if isinstance(exc, openai.APIStatusError):
            assert isinstance(mapped, APIStatusError)
        elif isinstance(exc, openai.APITimeoutError):
            assert isinstance(mapped, APITimeoutError)
        elif isinstance(exc, openai.APIConnectionError):
            assert isinstance(mapped, APIConnectionError)
        elif isinstance(exc, openai.APIResponseValidationError):
            assert isinstance(mapped, APIResponseValidationError)
        elif isinstance(exc, openai.APIError):
            assert isinstance(mapped, APIError)
        else:
            assert isinstance(mapped, OpenAISDKError | MissingAPIKeyError)

    @pytest.mark.parametrize(("status", "ours"), sorted(STATUS_TO_CLASS.items()))
    def test_status_codes_keep_server_fields(self, status: int, ours: type[APIStatusError]) -> None:
        """The server's message, code, param, type and request id survive; the SDK error is the __cause__."""
        body = error_body("The thing is wrong.", type_="invalid_request_error", code="bad_thing", param="input")
        script = Script([httpx.Response(status, json=body, headers={"x-request-id": "req_abc"})])
        client = Client(api_key="sk-test-000000", transport=script.transport(), retry=RetryPolicy.none())
        with pytest.raises(ours) as info:
            client.request(lambda sdk: sdk.files.list())
        err = info.value
        assert type(err) is ours
        assert err.status_code == status
        assert err.code == "bad_thing"
        assert err.param == "input"
        assert err.type == "invalid_request_error"
        assert err.request_id == "req_abc"
        assert "The thing is wrong." in str(err)
        assert "req_abc" in str(err)
        assert isinstance(err.__cause__, openai.APIStatusError)

    def test_quota_is_its_own_class(self) -> None:
        """429 insufficient_quota maps to QuotaExceededError, a RateLimitError."""
        exc = raise_through_sdk(429, error_body("quota", type_="insufficient_quota", code="insufficient_quota"))
        mapped = map_openai_error(exc)
        assert type(mapped) is QuotaExceededError
        assert isinstance(mapped, RateLimitError)

    def test_context_manager_and_passthrough(self) -> None:
        """map_openai_errors() re-raises SDK errors as ours, and leaves other exceptions alone."""
        exc = raise_through_sdk(404, error_body("No such file"))
        with pytest.raises(NotFoundError) as info, map_openai_errors():
            raise exc
        assert info.value.__cause__ is exc
        with pytest.raises(ZeroDivisionError), map_openai_errors():
            _ = 1 / 0
        ours = BadRequestError("x")
        assert map_openai_error(ours) is ours


class TestBuiltinBases:
    def test_natural_builtins(self) -> None:
        """Generic except clauses keep working."""
        assert issubclass(finetune_embed.ConfigError, ValueError)
        assert issubclass(finetune_embed.APITimeoutError, TimeoutError)
        assert issubclass(finetune_embed.JobTimeoutError, TimeoutError)
        assert issubclass(finetune_embed.UnknownIdError, KeyError)
        assert issubclass(finetune_embed.NotFoundError, LookupError)
        assert issubclass(finetune_embed.DimensionMismatchError, ValueError)

    def test_keyerror_subclass_prints_plainly(self) -> None:
        """KeyError subclasses print their message, not a quoted repr."""
        err = finetune_embed.UnknownIdError("ids not in the index: 'a'", ids=["a"])
        assert str(err) == "ids not in the index: 'a'"
        assert err.ids == ["a"]

    def test_every_exported_exception_has_a_docs_anchor(self) -> None:
        """Each exception points at its own section of docs/errors.md, and that section exists."""
        from pathlib import Path

        errors_md = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text(encoding="utf-8").lower()
        for name in finetune_embed.__all__:
            value = getattr(finetune_embed, name)
            if inspect.isclass(value) and issubclass(value, FinetuneEmbedError):
                assert value.docs_anchor == name.lower(), name
                assert f"### {name.lower()}" in errors_md, f"docs/errors.md lacks a section for {name}"
