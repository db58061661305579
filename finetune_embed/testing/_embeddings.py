"""``POST /v1/embeddings``: validation with the service's messages, usage via tiktoken, deterministic vectors."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..catalog import EmbeddingModelInfo, default_catalog
from ..tokenizer import Tokenizer
from ._errors import ApiError, bad_request, not_found
from ._http import FakeRequest, FakeResponse
from ._vectors import embedding_vector

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["EmbeddingJob", "handle_embeddings", "parse_embedding_request", "run_embedding_job"]

ALLOWED_KEYS = ("input", "model", "encoding_format", "dimensions", "user")
ENCODING_FORMATS = ("float", "base64")
INPUT_INVALID = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


def _type_name(value: Any) -> str:
    return json.dumps(value)[:60] if not isinstance(value, str) else repr(value)


def _not_of_type(value: Any, type_: str, param: str) -> ApiError:
    shown = "None" if value is None else _type_name(value)
    return bad_request(f"{shown} is not of type '{type_}' - '{param}'")


@dataclass
class EmbeddingJob:
    """A validated embeddings request."""

    model: str
    info: EmbeddingModelInfo
    texts: list[str]  # token inputs decoded, for vectors and the ledger
    tokens: list[int]  # per input
    encoding_format: str
    dimensions: int | None

    @property
    def total_tokens(self) -> int:
        """Tokens of the whole request."""
        return sum(self.tokens)


def _model_info(fake: FakeOpenAI, model: str) -> EmbeddingModelInfo:
    info = fake.embedding_model_info(model)
    if info is None and fake.profile is not None and not fake.profile.openai_catalog:
        raise fake.profile.unknown_model(model)
    if info is None:
        raise not_found(f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")
    return info


def parse_embedding_request(
    fake: FakeOpenAI, body: dict[str, Any], *, model_override: str | None = None
) -> EmbeddingJob:
    """Validate an embeddings request body the way the service does; raise :class:`ApiError` otherwise."""
    unknown = [k for k in body if k not in ALLOWED_KEYS]
    if unknown:
        if len(unknown) == 1:
            raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}")
        raise bad_request(f"Unrecognized request arguments supplied: {', '.join(unknown)}")
    model = body.get("model") if model_override is None else model_override
    if model is None or model == "":
        raise bad_request("you must provide a model parameter")
    if not isinstance(model, str):
        raise _not_of_type(model, "string", "model")
    if "input" not in body:
        raise bad_request("'input' is a required property")
    fmt = body.get("encoding_format", "float")
    if fmt is None:
        fmt = "float"
    if fmt not in ENCODING_FORMATS:
        raise bad_request(f"{_type_name(fmt)} is not one of ['float', 'base64'] - 'encoding_format'")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _not_of_type(user, "string", "user")
    dims = body.get("dimensions")
    if dims is not None:
        if isinstance(dims, bool) or not isinstance(dims, int):
            raise _not_of_type(dims, "integer", "dimensions")
        if dims < 1:
            raise bad_request(f"{dims} is less than the minimum of 1 - 'dimensions'")
    info = _model_info(fake, model)
    if dims is not None:
        if not info.accepts_dimensions:
            raise bad_request("This model does not support specifying dimensions.")
        full = info.dimensions or 0
        if full and dims > full:
            raise bad_request(
                f"Invalid value for 'dimensions' = {dims}. The maximum number of dimensions for {model} is {full}.",
                param="dimensions",
            )
    tokenizer = Tokenizer.for_model(info.name)
    texts, counts = _inputs(body["input"], tokenizer)
    limit = info.max_input_tokens
    for n in counts:
        if n > limit:
            raise bad_request(
                f"This model's maximum context length is {limit} tokens, however you requested {n} tokens "
                f"({n} in your prompt; 0 for the completion). Please reduce your prompt; or completion length."
            )
    total = sum(counts)
    cap = default_catalog().max_tokens_per_request
    if total > cap:
        raise ApiError(
            400,
            f"Requested {total} tokens, max {cap} tokens per request",
            type="max_tokens_per_request",
            code="max_tokens_per_request",
        )
    return EmbeddingJob(model, info, texts, counts, fmt, dims)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _inputs(value: Any, tokenizer: Tokenizer) -> tuple[list[str], list[int]]:
    max_inputs = default_catalog().max_inputs_per_request
    if isinstance(value, str):
        if value == "":
            raise bad_request(INPUT_INVALID)
        return [value], tokenizer.count_batch([value])
    if not isinstance(value, list) or not value or len(value) > max_inputs:
        raise bad_request(INPUT_INVALID)
    if all(isinstance(x, str) for x in value):
        if any(x == "" for x in value):
            raise bad_request(INPUT_INVALID)
        return list(value), tokenizer.count_batch(value)
    if all(_is_int(x) for x in value):
        arrays = [value]
    elif all(isinstance(x, list) and x and all(_is_int(t) for t in x) for x in value):
        arrays = value
    else:
        raise bad_request(INPUT_INVALID)
    n_vocab = tokenizer.encoding.n_vocab
    for arr in arrays:
        if any(t < 0 or t >= n_vocab for t in arr):
            raise bad_request(INPUT_INVALID)
    return [tokenizer.decode(arr) for arr in arrays], [len(arr) for arr in arrays]


def vector_for(
    fake: FakeOpenAI, text: str, info: EmbeddingModelInfo, dimensions: int | None
) -> npt.NDArray[np.float32]:
    """The vector the fake returns for ``text`` (see :meth:`FakeOpenAI.embedding`)."""
    full = info.dimensions or 1536
    truncate = dimensions if dimensions is not None and dimensions < full else None
    return embedding_vector(f"{info.name}:{fake.seed}", full, text, truncate)


def run_embedding_job(fake: FakeOpenAI, job: EmbeddingJob) -> dict[str, Any]:
    """The response body for a validated request (data in input order)."""
    data: list[dict[str, Any]] = []
    for i, text in enumerate(job.texts):
        vec = vector_for(fake, text, job.info, job.dimensions)
        if job.encoding_format == "base64":
            emb: Any = base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")
        else:
            emb = vec.astype(np.float64).tolist()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return {
        "object": "list",
        "data": data,
        "model": job.model,
        "usage": {"prompt_tokens": job.total_tokens, "total_tokens": job.total_tokens},
    }


def handle_embeddings(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/embeddings`` (and Azure's ``/openai/deployments/{name}/embeddings``)."""
    body = req.json_object()
    override = None
    if req.layout == "azure":
        override = fake.deployment_model(req.params["deployment"])
    job = parse_embedding_request(fake, body, model_override=override)
    req.meta["model"] = job.model
    req.meta["n_inputs"] = len(job.texts)
    profile = fake.profile
    if profile is not None:
        if profile.max_batch_inputs is not None and len(job.texts) > profile.max_batch_inputs:
            raise profile.batch_too_large(len(job.texts))
        if profile.max_input_tokens is not None:
            for n in job.tokens:
                server_tokens = profile.server_tokens(n)
                if server_tokens > profile.max_input_tokens:
                    raise profile.input_too_long(server_tokens)
        if not profile.base64:
            job.encoding_format = "float"  # the server answers float lists whatever was asked
    headers = fake.rate_limiter.acquire(job.model, job.total_tokens, fake.clock.now())
    if fake.queue is not None:
        req.meta["processing"] = fake.queue.delay(fake.clock.now(), len(job.texts), job.total_tokens)
    result = run_embedding_job(fake, job)
    if fake.shuffle_embeddings:
        fake.shuffle(result["data"])
    if fake.faults.take(req.endpoint, req.path, req.method, kinds=("wrong_count",)) is not None and result["data"]:
        result["data"].pop()
    fake.ledger.bill(job.texts, job.total_tokens)
    req.meta["tokens"] = job.total_tokens
    headers["openai-model"] = job.model
    return FakeResponse.json(result, headers=headers)
