"""``/v1/models``: the base models the fake knows and the fine-tuned models its jobs created."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..catalog import default_catalog
from ._clock import DEFAULT_START
from ._errors import ApiError, not_found
from ._http import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["handle_delete_model", "handle_list_models", "handle_retrieve_model"]

_BASE_CREATED = int(DEFAULT_START) - 400 * 86400


def _base_models(fake: FakeOpenAI) -> list[str]:
    cat = default_catalog()
    names: list[str] = []
    for info in cat.fine_tune_models.values():
        names.append(info.name)
        names.extend(info.aliases)
    names.extend(cat.embedding_models)
    names.extend(fake._extra_embedding_models)
    return sorted(set(names))


def _model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def _find(fake: FakeOpenAI, model_id: str) -> dict[str, Any] | None:
    with fake.store.lock:
        rec = fake.store.models.get(model_id)
        if rec is not None:
            return _model_object(rec.id, rec.created, rec.owned_by)
    if model_id in _base_models(fake):
        return _model_object(model_id, _BASE_CREATED, "system")
    return None


def _missing(model_id: str) -> ApiError:
    return not_found(f"The model '{model_id}' does not exist", param="model", code="model_not_found")


def handle_list_models(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/models``."""
    data = [_model_object(m, _BASE_CREATED, "system") for m in _base_models(fake)]
    with fake.store.lock:
        data += [_model_object(r.id, r.created, r.owned_by) for r in fake.store.models.values()]
    return FakeResponse.json({"object": "list", "data": data})


def handle_retrieve_model(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/models/{model}``."""
    found = _find(fake, req.params["model"])
    if found is None:
        raise _missing(req.params["model"])
    return FakeResponse.json(found)


def handle_delete_model(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``DELETE /v1/models/{model}``: only fine-tuned models of the organization can be deleted."""
    model_id = req.params["model"]
    with fake.store.lock:
        rec = fake.store.models.pop(model_id, None)
        if rec is not None:
            fake.store.deleted_models.add(model_id)
            return FakeResponse.json({"id": model_id, "object": "model", "deleted": True})
    if _find(fake, model_id) is not None:
        raise ApiError(
            403,
            f"You do not have permission to delete the model '{model_id}'. Only fine-tuned models owned by your "
            "organization can be deleted.",
            param="model",
            code="model_not_owned",
        )
    raise _missing(model_id)
