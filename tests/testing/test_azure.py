"""Azure OpenAI's URL layout on the same fake: /openai/deployments/{name}/embeddings?api-version=, api-key."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest

from finetune_embed import AuthenticationError
from finetune_embed.testing import FakeOpenAI

from ._data import chat_file, embedding_lines

ENDPOINT = "https://fake-resource.openai.azure.com"


def test_embeddings_through_a_deployment() -> None:
    fake = FakeOpenAI()
    fake.add_deployment("prod-embed", "text-embedding-3-large")
    az = fake.azure_openai_client()
    raw = az.embeddings.with_raw_response.create(model="prod-embed", input="hello", encoding_format="float")
    assert raw.http_request.url.path == "/openai/deployments/prod-embed/embeddings"
    assert raw.http_request.url.params["api-version"] == "2025-04-01-preview"
    assert "api-key" in raw.http_request.headers
    resp = raw.parse()
    assert resp.model == "text-embedding-3-large"
    assert np.array_equal(
        np.asarray(resp.data[0].embedding, dtype=np.float32), fake.embedding("hello", "text-embedding-3-large")
    )
    record = fake.ledger.requests[-1]
    assert (record.endpoint, record.layout) == ("/v1/embeddings", "azure")


def test_unmapped_deployment_is_its_model_name_and_unknown_is_404() -> None:
    fake = FakeOpenAI()
    az = fake.azure_openai_client()
    assert az.embeddings.create(model="text-embedding-3-small", input="x").model == "text-embedding-3-small"
    with pytest.raises(openai.NotFoundError) as exc:
        az.embeddings.create(model="no-such-deployment", input="x")
    assert exc.value.code == "DeploymentNotFound"


def test_files_jobs_and_batches_on_azure() -> None:
    fake = FakeOpenAI()
    az = fake.azure_openai_client()
    f = az.files.create(file=("t.jsonl", chat_file(12)), purpose="fine-tune")
    job = az.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=f.id)
    fake.run_until_idle()
    assert az.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    b = az.files.create(file=("b.jsonl", embedding_lines([["a"]])), purpose="batch")
    batch = az.batches.create(input_file_id=b.id, endpoint="/v1/embeddings", completion_window="24h")
    fake.run_until_idle()
    assert az.batches.retrieve(batch.id).status == "completed"
    assert {r.layout for r in fake.ledger.requests} == {"azure"}


def test_our_azure_client() -> None:
    fake = FakeOpenAI()
    client = fake.azure_client()
    assert client.provider == "azure"
    resp = client.request(lambda sdk: sdk.embeddings.create(model="text-embedding-3-small", input="x"))
    assert len(resp.data) == 1


def test_azure_errors_have_azure_bodies() -> None:
    fake = FakeOpenAI(api_key="right-key")
    with httpx.Client(transport=fake.transport, base_url=ENDPOINT) as http:
        no_key = http.get("/openai/files", params={"api-version": "2024-10-21"})
        no_version = http.get("/openai/files", headers={"api-key": "right-key"})
        ok = http.get("/openai/files", params={"api-version": "2024-10-21"}, headers={"api-key": "right-key"})
        bad_path = http.get("/openai/nothing", params={"api-version": "1"}, headers={"api-key": "right-key"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["code"] == "401"
    assert no_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert ok.status_code == 200
    assert bad_path.status_code == 404
    with pytest.raises(AuthenticationError):
        fake.azure_client(api_key="wrong").request(lambda sdk: sdk.files.list())
