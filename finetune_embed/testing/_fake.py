"""The :class:`FakeOpenAI` facade: configuration, the request pipeline, and helpers for tests."""

from __future__ import annotations

import contextlib
import random
import string
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidArgumentError
from .._logging import get_logger
from ..catalog import EmbeddingModelInfo, FineTuneModelInfo, default_catalog
from ._clock import FakeClock
from ._compatible import Processing, ServerProfile, ServerQueue, profile_named
from ._errors import ApiError, default_fault_body, error_body
from ._faults import FaultRule, Faults, normalize_pattern
from ._http import FakeRequest, FakeResponse
from ._ledger import Ledger, RequestRecord
from ._ratelimit import RateLimiter
from ._router import Router
from ._routes import ROUTES
from ._state import JobSpeed, Store
from ._transport import FakeTransport

if TYPE_CHECKING:
    import openai

    from .._client import AsyncClient, Client

__all__ = ["FakeOpenAI"]

logger = get_logger("testing")

DEFAULT_API_KEY = "sk-fake-0000000000000000000000000000"
DEFAULT_AZURE_ENDPOINT = "https://fake-resource.openai.azure.com"
DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
_ALNUM = string.ascii_letters + string.digits

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)


def _load_encodings() -> None:
    """Load the encodings the fake counts tokens with (cached per process): without tiktoken's BPE files (offline,
    no ``TIKTOKEN_CACHE_DIR``) this raises :class:`~finetune_embed.TokenizerUnavailableError` saying what to do."""
    from ..tokenizer import get_encoding

    for name in ("o200k_base", "cl100k_base"):
        get_encoding(name)


def _mask(key: str) -> str:
    return (key[:3] + "*" * max(4, len(key) - 7) + key[-4:]) if len(key) > 8 else "*" * len(key)


class FakeOpenAI:
    """A stateful, in-memory fake of OpenAI's files, uploads, fine-tuning, models, embeddings, chat completions and
    batches API.

    **Parameters** (all keyword-only):

    * ``rpm``, ``tpm`` - requests and tokens per minute for ``/v1/embeddings`` and ``/v1/chat/completions`` (per
      model), enforced as token buckets on ``clock``; ``None`` is unlimited and sends no ``x-ratelimit-*`` header
      for that limit.
    * ``latency`` - seconds before each response, or ``(low, high)`` for uniform jitter. In-process on the
      default manual clock it advances the clock instead of sleeping.
    * ``clock`` - a :class:`FakeClock` (default: a manual one at 2026-01-01T00:00:00Z).
    * ``organization`` - the ``organization_id`` of jobs and the ``openai-organization`` header.
    * ``seed`` - ids, metrics, shuffles and vectors derive from it (the same seed replays the same run).
    * ``job_speed`` - seconds of fake time per training step, or a :class:`JobSpeed` for every phase.
    * ``api_key`` - when given, only this key is accepted (otherwise any non-empty key is).

    The fake counts tokens with tiktoken, so it loads the ``o200k_base`` and ``cl100k_base`` encodings when it is
    created; offline without their files it raises :class:`~finetune_embed.TokenizerUnavailableError` at once
    (``finetune-embed tokenizer download`` fetches them; ``TIKTOKEN_CACHE_DIR`` names the folder).

    Use it in-process (``fake.client()``, ``fake.openai_client()``, ``fake.transport``) or over loopback HTTP
    (``with fake.serve() as base_url``).

    >>> fake = FakeOpenAI()
    >>> sdk = fake.openai_client()
    >>> resp = sdk.embeddings.create(model="text-embedding-3-small", input="hello world", encoding_format="float")
    >>> len(resp.data[0].embedding), resp.usage.total_tokens
    (1536, 2)
    """

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        latency: float | tuple[float, float] = 0.0,
        clock: FakeClock | None = None,
        organization: str = "org-fake",
        seed: int = 0,
        job_speed: JobSpeed | float | None = None,
        api_key: str | None = None,
        rate_limit_headers: bool = True,
        rate_limit_window: Literal["bucket", "sliding"] = "bucket",
        any_model: int | None = None,
        processing: Processing | None = None,
        server: str | ServerProfile | None = None,
    ) -> None:
        _load_encodings()  # fail here, once, with the tokenizer's own error, not with a 500 on every request
        self.clock = clock if clock is not None else FakeClock()
        self.profile: ServerProfile | None = profile_named(server) if server is not None else None
        if self.profile is not None and not self.profile.rate_limit_headers:
            rate_limit_headers = False
        if any_model is not None and (isinstance(any_model, bool) or any_model < 1):
            raise InvalidArgumentError(
                f"any_model must be a positive number of dimensions, got {any_model!r}", argument="any_model"
            )
        self.any_model = any_model
        if processing is None and self.profile is not None:
            processing = self.profile.processing
        self.processing = processing
        self.queue = ServerQueue(processing) if processing is not None else None
        self.organization = organization
        self.seed = seed
        self.api_key = api_key
        self.latency = latency
        self.shuffle_embeddings = False
        self.ledger = Ledger()
        self.faults = Faults()
        self.rate_limiter = RateLimiter(
            rpm, tpm, headers=rate_limit_headers, organization=organization, window=rate_limit_window
        )
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._deployments: dict[str, str] = {}
        self._extra_embedding_models: dict[str, EmbeddingModelInfo] = {}
        self._chat_models: dict[str, FineTuneModelInfo] = {}
        self._chat_memory: dict[str, Any] = {}  # what each fine-tuned model learned (testing/_chat.py)
        self.instance_id = uuid.uuid4().hex  # tells this fake's answers apart in a client's response cache
        self.errors: list[BaseException] = []
        speed = (
            job_speed
            if isinstance(job_speed, JobSpeed)
            else JobSpeed(per_step=float(job_speed) if job_speed is not None else JobSpeed().per_step)
        )
        self.store = Store(self, speed)
        self.router = Router(ROUTES)
        self.transport = FakeTransport(self)
        self.base_url: str | None = None  # set while serving over loopback

    def __repr__(self) -> str:
        return f"FakeOpenAI(organization={self.organization!r}, clock={self.clock!r})"

    # --- configuration --------------------------------------------------------------------------------------

    @property
    def job_speed(self) -> JobSpeed:
        """The timing of fine-tuning jobs and batches (assignable)."""
        return self.store.speed

    @job_speed.setter
    def job_speed(self, value: JobSpeed | float) -> None:
        self.store.speed = value if isinstance(value, JobSpeed) else JobSpeed(per_step=float(value))

    def set_rate_limits(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        headers: bool = True,
        window: Literal["bucket", "sliding"] = "bucket",
    ) -> None:
        """Replace the limits (budgets start full). ``headers=False`` sends no ``x-ratelimit-*`` headers, like
        Azure and many compatible servers; ``window="sliding"`` enforces them over a sliding minute instead of a
        token bucket."""
        self.rate_limiter.configure(rpm=rpm, tpm=tpm, headers=headers, window=window)

    def set_processing(self, processing: Processing | None) -> None:
        """How long the server computes each embeddings request (``None``: no time at all)."""
        self.processing = processing
        self.queue = ServerQueue(processing) if processing is not None else None

    def add_deployment(self, name: str, model: str) -> None:
        """Azure: serve ``model`` under deployment ``name`` (unmapped deployments are their model's name)."""
        if self.embedding_model_info(model) is None and not self._serves_chat(model):
            raise InvalidArgumentError(
                f"unknown model {model!r}; add it with add_embedding_model() / add_chat_model() first (fine-tuned "
                "models once their job succeeded)"
            )
        self._deployments[name] = model

    def add_chat_model(self, name: str, *, encoding: str = "o200k_base") -> None:
        """Serve an extra chat model (e.g. one an OpenAI-compatible server offers); it answers as base models do."""
        self._chat_models[name] = FineTuneModelInfo(name=name, encoding=encoding)

    def _serves_chat(self, model: str) -> bool:
        if model in self._chat_models:
            return True
        if model.startswith("ft:"):
            with self.store.lock:
                return model in self.store.models
        return default_catalog().find_fine_tune_model(model) is not None

    def add_embedding_model(
        self, name: str, *, dimensions: int, accepts_dimensions: bool = True, max_input_tokens: int = 8191
    ) -> None:
        """Serve an extra embedding model (e.g. one an OpenAI-compatible server offers); cl100k_base tokens."""
        self._extra_embedding_models[name] = EmbeddingModelInfo(
            name=name, dimensions=dimensions, accepts_dimensions=accepts_dimensions, max_input_tokens=max_input_tokens
        )

    def embedding_model_info(self, model: str) -> EmbeddingModelInfo | None:
        """The embedding model the fake serves as ``model``, or ``None``."""
        extra = self._extra_embedding_models.get(model)
        if extra is not None:
            return extra
        profile = self.profile
        if profile is None or profile.openai_catalog:
            known = default_catalog().find_embedding_model(model)
            if known is not None:
                return known
        dims = profile.dimensions_of(model) if profile is not None and not profile.openai_catalog else None
        if dims is None and profile is None:
            dims = self.any_model
        if dims is None:
            return None
        return EmbeddingModelInfo(name=model, dimensions=dims, accepts_dimensions=True, max_input_tokens=10**9)

    def deployment_model(self, deployment: str) -> str:
        """The model behind an Azure deployment; 404 ``DeploymentNotFound`` if there is none."""
        if deployment in self._deployments:
            return self._deployments[deployment]
        if self.embedding_model_info(deployment) is not None or self._serves_chat(deployment):
            return deployment
        raise ApiError(
            404,
            "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
            "minutes, please wait a moment and try again.",
            body={
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist. If you created the deployment "
                    "within the last 5 minutes, please wait a moment and try again.",
                }
            },
        )

    # --- faults ---------------------------------------------------------------------------------------------

    def inject(
        self,
        status: int = 500,
        *,
        path: str | None = "/v1/embeddings",
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        """The next ``times`` requests to ``path`` (a canonical endpoint such as ``/v1/files``, a glob such as
        ``/v1/fine_tuning/jobs/*``, or ``None`` for any) answer ``status`` with ``body`` (default: the
        service's body for that status; an injected 429 also gets ``retry-after: 1``).

        ``after=True``: the server does the work first (creates the job, file or batch; bills the tokens) and
        then answers ``status`` instead of its result, as a gateway or load balancer does when the backend
        answers too late. Only requests the server would have answered successfully use such a fault up."""
        hdrs = dict(headers or {})
        if status == 429 and body is None and not {"retry-after", "retry-after-ms"} & {k.lower() for k in hdrs}:
            hdrs.update({"retry-after": "1", "retry-after-ms": "1000"})  # only when the caller chose no wait
        self.faults.add(
            FaultRule(
                "status",
                normalize_pattern(path),
                times,
                method=method.upper() if method else None,
                status=status,
                body=body,
                headers=hdrs,
                after=after,
            )
        )

    def inject_timeout(
        self,
        path: str | None = "/v1/embeddings",
        *,
        times: int = 1,
        hold: float = 5.0,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        """The next ``times`` requests time out: in-process the transport raises ``httpx.ReadTimeout`` at once;
        over loopback the server stays silent for ``hold`` seconds, then closes the connection.

        ``after=True``: the server acts first (a server slower than the client's timeout: the job, file or batch
        exists, the tokens are billed), then the client hears nothing."""
        self.faults.add(
            FaultRule("timeout", normalize_pattern(path), times, hold=hold, method=_upper(method), after=after)
        )

    def inject_disconnect(
        self, path: str | None = "/v1/embeddings", *, times: int = 1, method: str | None = None, after: bool = False
    ) -> None:
        """The next ``times`` requests lose their connection without a response (``after=True``: once the server
        has acted)."""
        self.faults.add(FaultRule("disconnect", normalize_pattern(path), times, method=_upper(method), after=after))

    def inject_wrong_count(self, path: str | None = "/v1/embeddings", *, times: int = 1) -> None:
        """The next ``times`` successful embeddings responses lack their last ``data`` item (still billed)."""
        self.faults.add(FaultRule("wrong_count", normalize_pattern(path), times))

    # --- time -----------------------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Advance the fake clock by ``seconds`` (jobs and batches progress); pass as ``RetryPolicy(sleep=...)``."""
        self.clock.sleep(seconds)
        self.store.tick()

    def advance(self, seconds: float) -> None:
        """Move the clock forward and run the jobs and batches state machines up to the new time."""
        self.clock.advance(seconds)
        self.store.tick()

    def run_until_idle(self, *, max_seconds: float = 7 * 24 * 3600.0, step: float = 60.0) -> float:
        """Advance the clock until no job or batch is in progress (paused jobs wait); returns seconds advanced."""
        waited = 0.0
        while self.store.busy() and waited < max_seconds:
            self.advance(step)
            waited += step
        return waited

    # --- vectors --------------------------------------------------------------------------------------------

    def embedding(
        self, text: str, model: str = "text-embedding-3-small", dimensions: int | None = None
    ) -> npt.NDArray[np.float32]:
        """The exact float32 unit vector the fake returns for ``text`` (read-only array)."""
        from ._embeddings import vector_for

        info = self.embedding_model_info(model)
        if info is None:
            raise InvalidArgumentError(f"FakeOpenAI serves no embedding model {model!r}", argument="model")
        if dimensions is not None and not info.accepts_dimensions:
            raise InvalidArgumentError(f"{model} does not support `dimensions`", argument="dimensions")
        if dimensions is not None and not 1 <= dimensions <= (info.dimensions or dimensions):
            raise InvalidArgumentError(
                f"dimensions must be between 1 and {info.dimensions} for {model}, got {dimensions}",
                argument="dimensions",
            )
        return vector_for(self, text, info, dimensions)

    def embeddings(
        self, texts: list[str], model: str = "text-embedding-3-small", dimensions: int | None = None
    ) -> npt.NDArray[np.float32]:
        """:meth:`embedding` of many texts as one ``(n, d)`` array."""
        return np.stack([self.embedding(t, model, dimensions) for t in texts])

    # --- clients --------------------------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> Client:
        """A :class:`finetune_embed.Client` on this fake (in-process)."""
        from .._client import Client

        kwargs.setdefault("api_key", self.api_key or DEFAULT_API_KEY)
        if self.profile is not None and not self.profile.openai_catalog:
            kwargs.setdefault("provider", "compatible")  # what the URL of a local server would say
        return Client(transport=self.transport, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncClient:
        """A :class:`finetune_embed.AsyncClient` on this fake (in-process)."""
        from .._client import AsyncClient

        kwargs.setdefault("api_key", self.api_key or DEFAULT_API_KEY)
        if self.profile is not None and not self.profile.openai_catalog:
            kwargs.setdefault("provider", "compatible")
        return AsyncClient(transport=self.transport, **kwargs)

    def azure_client(self, **kwargs: Any) -> Client:
        """A :class:`finetune_embed.Client` for Azure OpenAI on this fake (``Client.azure(...)``)."""
        from .._client import Client

        kwargs.setdefault("endpoint", DEFAULT_AZURE_ENDPOINT)
        kwargs.setdefault("api_version", DEFAULT_AZURE_API_VERSION)
        kwargs.setdefault("api_key", self.api_key or DEFAULT_API_KEY)
        return Client.azure(transport=self.transport, **kwargs)

    def openai_client(self, **kwargs: Any) -> openai.OpenAI:
        """A plain ``openai.OpenAI`` on this fake (``max_retries=0``)."""
        import httpx
        import openai

        kwargs.setdefault("api_key", self.api_key or DEFAULT_API_KEY)
        kwargs.setdefault("max_retries", 0)
        kwargs["http_client"] = cast(Any, httpx.Client(transport=self.transport))
        return openai.OpenAI(**kwargs)

    def async_openai_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A plain ``openai.AsyncOpenAI`` on this fake (``max_retries=0``)."""
        import httpx
        import openai

        kwargs.setdefault("api_key", self.api_key or DEFAULT_API_KEY)
        kwargs.setdefault("max_retries", 0)
        kwargs["http_client"] = cast(Any, httpx.AsyncClient(transport=self.transport))
        return openai.AsyncOpenAI(**kwargs)

    def azure_openai_client(self, **kwargs: Any) -> openai.AzureOpenAI:
        """A plain ``openai.AzureOpenAI`` on this fake (``max_retries=0``)."""
        import httpx
        import openai

        kwargs.setdefault("azure_endpoint", DEFAULT_AZURE_ENDPOINT)
        kwargs.setdefault("api_version", DEFAULT_AZURE_API_VERSION)
        kwargs.setdefault("api_key", self.api_key or DEFAULT_API_KEY)
        kwargs.setdefault("max_retries", 0)
        kwargs["http_client"] = cast(Any, httpx.Client(transport=self.transport))
        return openai.AzureOpenAI(**kwargs)

    @contextlib.contextmanager
    def serve(
        self, *, host: str = "127.0.0.1", port: int = 0, realtime: bool = True, scale: float | None = None
    ) -> Iterator[str]:
        """Serve the fake over HTTP on ``host`` (a free port by default) in a background thread; yields the base
        URL (``http://127.0.0.1:PORT/v1``; Azure's endpoint is the same URL without ``/v1``). While serving, the
        clock runs in real time (``scale`` fake seconds per second) unless ``realtime=False``."""
        from ._server import serve

        with serve(self, host=host, port=port, realtime=realtime, scale=scale) as url:
            yield url

    # --- the request pipeline -------------------------------------------------------------------------------

    def new_id(self, prefix: str, length: int = 24, alphabet: str = _ALNUM) -> str:
        """A fresh id such as ``file-AbC…`` (deterministic for a given seed and call order)."""
        with self._rng_lock:
            return prefix + "".join(self._rng.choice(alphabet) for _ in range(length))

    def random(self) -> float:
        """A seeded uniform random number in [0, 1)."""
        with self._rng_lock:
            return self._rng.random()

    def shuffle(self, items: list[Any]) -> None:
        """Shuffle ``items`` in place with the fake's seeded generator."""
        with self._rng_lock:
            self._rng.shuffle(items)

    def _latency(self) -> float:
        if isinstance(self.latency, tuple):
            lo, hi = self.latency
            return lo + (hi - lo) * self.random()
        return float(self.latency)

    def _authenticate(self, req: FakeRequest) -> None:
        auth = req.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if req.layout == "azure":
            key = req.headers.get("api-key", "") or bearer
            if not key or (self.api_key is not None and key != self.api_key):
                raise ApiError(401, _AZURE_DENIED, body={"error": {"code": "401", "message": _AZURE_DENIED}})
            if "api-version" not in req.query:
                raise ApiError(
                    404, "Resource not found", body={"error": {"code": "404", "message": "Resource not found"}}
                )
            return
        if not bearer:
            raise ApiError(401, _NO_KEY)
        if self.api_key is not None and bearer != self.api_key:
            raise ApiError(
                401,
                f"Incorrect API key provided: {_mask(bearer)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def _fault_response(self, rule: FaultRule) -> FakeResponse:
        if rule.kind == "timeout":
            return FakeResponse(status=0, fault="timeout", hold=rule.hold)
        if rule.kind == "disconnect":
            return FakeResponse(status=0, fault="disconnect")
        body = rule.body if rule.body is not None else default_fault_body(rule.status)
        return FakeResponse.json(body, status=rule.status, headers=dict(rule.headers))

    def handle(self, req: FakeRequest) -> FakeResponse:
        """Answer one request (both transports call this). Never raises."""
        started = time.perf_counter()
        arrival = self.clock.now()
        request_id = self.new_id("req_", 32, "0123456789abcdef")
        injected = False
        try:
            handler = self.router.resolve(req)
            rule = self.faults.take(req.endpoint, req.path, req.method, kinds=("status", "timeout", "disconnect"))
            if rule is not None:
                injected = True
                resp = self._fault_response(rule)
            else:
                self._authenticate(req)
                if req.endpoint != "/v1/embeddings":
                    self.store.tick()
                resp = handler(self, req)
                if resp.fault is None and resp.status < 400:  # the server acted: a late fault may hide its answer
                    late = self.faults.take(
                        req.endpoint, req.path, req.method, kinds=("status", "timeout", "disconnect"), after=True
                    )
                    if late is not None:
                        injected = True
                        resp = self._fault_response(late)
        except ApiError as err:
            resp = FakeResponse.from_error(self.profile.rewrite_error(err) if self.profile is not None else err)
        except Exception as exc:  # a bug in the fake: answer 500 and keep the traceback for the test
            self.errors.append(exc)
            logger.error("FakeOpenAI failed on %s %s: %s", req.method, req.path, exc, exc_info=True)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            resp = FakeResponse.json(error_body(f"FakeOpenAI internal error: {detail}", type="server_error"), 500)
        if resp.fault is None:
            if req.endpoint == "/v1/embeddings" and not any(k.startswith("x-ratelimit-") for k in resp.headers):
                model = req.meta.get("model") or "text-embedding-3-small"
                resp.headers.update(self.rate_limiter.peek_headers(str(model), self.clock.now()))
            resp.headers["x-request-id"] = request_id
            if req.layout == "openai":
                resp.headers["openai-organization"] = self.organization
                resp.headers["openai-version"] = "2020-10-01"
            resp.headers["openai-processing-ms"] = str(max(1, round((time.perf_counter() - started) * 1000)))
            if self.profile is not None:
                self.profile.rewrite_headers(resp.headers)
        resp.arrival = arrival
        resp.delay = self._latency() + float(req.meta.get("processing", 0.0))
        self.ledger.record(
            RequestRecord(
                time=self.clock.now(),
                method=req.method,
                path=req.path,
                endpoint=req.endpoint,
                status=None if resp.fault else resp.status,
                request_id=request_id,
                tokens=int(req.meta.get("tokens", 0)),
                model=req.meta.get("model"),
                n_inputs=int(req.meta.get("n_inputs", 0)),
                fault=resp.fault,
                injected=injected,
                layout=req.layout,
            )
        )
        return resp


def _upper(method: str | None) -> str | None:
    return method.upper() if method else None
