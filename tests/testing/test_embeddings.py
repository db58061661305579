"""POST /v1/embeddings through the official SDK: shapes, vectors, usage and every refusal."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import openai
import pytest

from finetune_embed.testing import FakeOpenAI
from finetune_embed.tokenizer import Tokenizer

MODEL = "text-embedding-3-small"


def _raw_post(fake: FakeOpenAI, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST a body the SDK would not send itself (unknown fields, wrong types)."""
    import httpx

    with httpx.Client(transport=fake.transport, base_url="https://api.openai.com/v1") as http:
        r = http.post("/embeddings", json=body, headers={"Authorization": "Bearer sk-test"})
    return r.status_code, r.json()


def _error(exc: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = exc.value.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    return body


class TestVectors:
    def test_float_format_is_the_exact_vector(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        resp = sdk.embeddings.create(model=MODEL, input="The food was delicious", encoding_format="float")
        vec = np.asarray(resp.data[0].embedding, dtype=np.float32)
        assert vec.shape == (1536,)
        assert np.array_equal(vec, fake.embedding("The food was delicious"))
        assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5

    def test_base64_format_is_little_endian_float32(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        resp = sdk.embeddings.create(model=MODEL, input=["a b c"], encoding_format="base64")
        raw = resp.data[0].embedding
        assert isinstance(raw, str)  # the SDK leaves an explicit base64 untouched
        vec = np.frombuffer(base64.b64decode(raw), dtype="<f4")
        assert np.array_equal(vec, fake.embedding("a b c"))

    def test_sdk_default_encoding_decodes_to_the_same_vector(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        resp = sdk.embeddings.create(model=MODEL, input="x y")
        assert np.array_equal(np.asarray(resp.data[0].embedding, dtype=np.float32), fake.embedding("x y"))

    def test_deterministic_across_fakes_and_seeded(self) -> None:
        assert np.array_equal(FakeOpenAI().embedding("same text"), FakeOpenAI().embedding("same text"))
        assert not np.array_equal(FakeOpenAI(seed=1).embedding("same text"), FakeOpenAI().embedding("same text"))
        assert not np.array_equal(
            FakeOpenAI().embedding("same text", "text-embedding-3-large")[:1536], FakeOpenAI().embedding("same text")
        )

    def test_lexically_similar_texts_are_closer(self, fake: FakeOpenAI) -> None:
        q = fake.embedding("How do I reset my password?")
        near = fake.embedding("Reset a forgotten password")
        far = fake.embedding("Quarterly earnings rose sharply at the bank")
        assert float(q @ near) > float(q @ far) + 0.2

    @pytest.mark.parametrize("dims", [1, 8, 256, 512, 1536])
    def test_dimensions_truncate_and_renormalise(self, fake: FakeOpenAI, sdk: openai.OpenAI, dims: int) -> None:
        resp = sdk.embeddings.create(model=MODEL, input="hello there", dimensions=dims, encoding_format="float")
        vec = np.asarray(resp.data[0].embedding, dtype=np.float32)
        assert vec.shape == (dims,)
        assert np.array_equal(vec, fake.embedding("hello there", dimensions=dims))
        full = fake.embedding("hello there").astype(np.float64)
        expected = full[:dims] / np.linalg.norm(full[:dims])
        assert np.allclose(vec, expected, atol=1e-6)

    def test_large_model_has_3072_dimensions(self, sdk: openai.OpenAI) -> None:
        resp = sdk.embeddings.create(model="text-embedding-3-large", input="x", encoding_format="float")
        assert len(resp.data[0].embedding) == 3072

    def test_token_inputs_embed_like_their_text(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        tok = Tokenizer.for_model(MODEL)
        ids = tok.encode("tokens in, vectors out")
        single = sdk.embeddings.create(model=MODEL, input=ids, encoding_format="float")
        many = sdk.embeddings.create(model=MODEL, input=[ids, ids[:2]], encoding_format="float")
        assert np.array_equal(
            np.asarray(single.data[0].embedding, dtype=np.float32), fake.embedding("tokens in, vectors out")
        )
        assert len(many.data) == 2
        assert many.usage.prompt_tokens == len(ids) + 2

    def test_usage_counts_tiktoken_tokens(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        texts = ["The quick brown fox", "jumps over", "the lazy dog!"]
        resp = sdk.embeddings.create(model=MODEL, input=texts)
        n = sum(Tokenizer.for_model(MODEL).count_batch(texts))
        assert resp.usage.prompt_tokens == resp.usage.total_tokens == n
        assert fake.ledger.tokens_billed == n

    def test_shuffled_data_keeps_indices(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        fake.shuffle_embeddings = True
        texts = [f"text number {i}" for i in range(20)]
        resp = sdk.embeddings.create(model=MODEL, input=texts, encoding_format="float")
        order = [d.index for d in resp.data]
        assert sorted(order) == list(range(20))
        assert order != list(range(20))
        for d in resp.data:
            assert np.array_equal(np.asarray(d.embedding, dtype=np.float32), fake.embedding(texts[d.index]))

    def test_response_headers(self, sdk: openai.OpenAI) -> None:
        raw = sdk.embeddings.with_raw_response.create(model=MODEL, input="x")
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.headers["openai-organization"] == "org-fake"
        assert raw.parse().data[0].object == "embedding"


class TestRefusals:
    def test_unknown_field(self, fake: FakeOpenAI) -> None:
        status, body = _raw_post(fake, {"model": MODEL, "input": "x", "foo": 1})
        assert status == 400
        assert body == {
            "error": {
                "message": "Unrecognized request argument supplied: foo",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }

    def test_unknown_model(self, sdk: openai.OpenAI) -> None:
        with pytest.raises(openai.NotFoundError) as exc:
            sdk.embeddings.create(model="text-embedding-4-nope", input="x")
        err = _error(exc)
        assert err["code"] == "model_not_found"
        assert "text-embedding-4-nope" in err["message"]

    def test_bad_encoding_format(self, fake: FakeOpenAI) -> None:
        status, body = _raw_post(fake, {"model": MODEL, "input": "x", "encoding_format": "int8"})
        assert status == 400
        assert body["error"]["message"] == "'int8' is not one of ['float', 'base64'] - 'encoding_format'"

    @pytest.mark.parametrize(
        "value",
        ["", ["ok", ""], [], [[]], [1, "a"], {"text": "x"}, 12, [-1], [[1, 2], []]],
        ids=[
            "empty",
            "empty-in-list",
            "empty-list",
            "empty-tokens",
            "mixed",
            "object",
            "int",
            "neg-token",
            "empty-inner",
        ],
    )
    def test_invalid_input(self, fake: FakeOpenAI, value: Any) -> None:
        status, body = _raw_post(fake, {"model": MODEL, "input": value})
        assert status == 400
        assert body["error"]["message"].startswith("'$.input' is invalid.")
        assert body["error"]["type"] == "invalid_request_error"

    def test_more_than_2048_inputs(self, sdk: openai.OpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.embeddings.create(model=MODEL, input=["a"] * 2049)
        assert _error(exc)["message"].startswith("'$.input' is invalid.")
        sdk.embeddings.create(model=MODEL, input=["a"] * 2048)  # the limit itself is fine

    def test_input_over_8191_tokens(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        tok = Tokenizer.for_model(MODEL)
        ok = tok.decode(tok.encode(" hello" * 9000)[:8191])
        assert tok.count(ok) == 8191
        sdk.embeddings.create(model=MODEL, input=ok)
        too_long = [1] * 8192
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.embeddings.create(model=MODEL, input=[[5, 6], too_long])
        assert _error(exc) == {
            "message": "This model's maximum context length is 8191 tokens, however you requested 8192 tokens "
            "(8192 in your prompt; 0 for the completion). Please reduce your prompt; or completion length.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        assert fake.ledger.tokens_billed == 8191  # the refused request billed nothing

    def test_request_over_300k_tokens(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        inputs = [[1] * 8000 for _ in range(38)]  # 304,000 tokens
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.embeddings.create(model=MODEL, input=inputs)
        assert _error(exc) == {
            "message": "Requested 304000 tokens, max 300000 tokens per request",
            "type": "max_tokens_per_request",
            "param": None,
            "code": "max_tokens_per_request",
        }
        assert fake.ledger.tokens_billed == 0

    def test_dimensions_refused_for_ada(self, sdk: openai.OpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=256)
        assert _error(exc)["message"] == "This model does not support specifying dimensions."

    @pytest.mark.parametrize(("dims", "fragment"), [(0, "less than the minimum of 1"), (1537, "maximum number")])
    def test_dimensions_out_of_range(self, sdk: openai.OpenAI, dims: int, fragment: str) -> None:
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.embeddings.create(model=MODEL, input="x", dimensions=dims)
        assert fragment in _error(exc)["message"]

    def test_missing_model_and_input(self, fake: FakeOpenAI) -> None:
        assert _raw_post(fake, {"input": "x"})[1]["error"]["message"] == "you must provide a model parameter"
        assert _raw_post(fake, {"model": MODEL})[1]["error"]["message"] == "'input' is a required property"

    def test_not_json(self, fake: FakeOpenAI) -> None:
        import httpx

        with httpx.Client(transport=fake.transport) as http:
            r = http.post(
                "https://api.openai.com/v1/embeddings", content=b"{nope", headers={"Authorization": "Bearer k"}
            )
        assert r.status_code == 400
        assert r.json()["error"]["message"].startswith("We could not parse the JSON body of your request.")


class TestAuth:
    def test_missing_key(self, fake: FakeOpenAI) -> None:
        import httpx

        with httpx.Client(transport=fake.transport) as http:
            r = http.post("https://api.openai.com/v1/embeddings", json={"model": MODEL, "input": "x"})
        assert r.status_code == 401
        assert r.json()["error"]["message"].startswith("You didn't provide an API key.")

    def test_required_key(self) -> None:
        fake = FakeOpenAI(api_key="sk-right-key-123456")
        fake.openai_client().embeddings.create(model=MODEL, input="x")
        with pytest.raises(openai.AuthenticationError) as exc:
            fake.openai_client(api_key="sk-wrong-key-654321").embeddings.create(model=MODEL, input="x")
        err = _error(exc)
        assert err["code"] == "invalid_api_key"
        assert "sk-wrong-key-654321" not in err["message"]  # masked, as the service does
        assert err["message"].endswith(
            "4321. You can find your API key at https://platform.openai.com/account/api-keys."
        )


def test_embedding_helper_refuses_what_the_api_refuses() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ValueError, match="serves no embedding model"):
        fake.embedding("x", model="nope")
    with pytest.raises(ValueError, match="does not support"):
        fake.embedding("x", model="text-embedding-ada-002", dimensions=8)
    with pytest.raises(ValueError, match="between 1 and 1536"):
        fake.embedding("x", dimensions=1537)
    assert fake.embeddings(["a", "b"]).shape == (2, 1536)


def test_extra_embedding_models_for_compatible_servers() -> None:
    fake = FakeOpenAI()
    fake.add_embedding_model("nomic-embed-text", dimensions=768)
    resp = fake.openai_client().embeddings.create(model="nomic-embed-text", input="x", encoding_format="float")
    assert len(resp.data[0].embedding) == 768
