"""The route table: every endpoint the fake serves."""

from __future__ import annotations

from ._batches import handle_cancel_batch, handle_create_batch, handle_list_batches, handle_retrieve_batch
from ._chat import handle_chat_completions
from ._embeddings import handle_embeddings
from ._files import (
    handle_create_file,
    handle_delete_file,
    handle_file_content,
    handle_list_files,
    handle_retrieve_file,
)
from ._jobs import (
    handle_cancel_job,
    handle_create_job,
    handle_list_checkpoints,
    handle_list_events,
    handle_list_jobs,
    handle_pause_job,
    handle_resume_job,
    handle_retrieve_job,
)
from ._models import handle_delete_model, handle_list_models, handle_retrieve_model
from ._router import Route
from ._uploads import handle_add_part, handle_cancel_upload, handle_complete_upload, handle_create_upload

__all__ = ["ROUTES"]

ROUTES: list[Route] = [
    Route("POST", "/embeddings", handle_embeddings, azure_deployment=True),
    Route("POST", "/chat/completions", handle_chat_completions, azure_deployment=True),
    Route("GET", "/models", handle_list_models),
    Route("GET", "/models/{model}", handle_retrieve_model),
    Route("DELETE", "/models/{model}", handle_delete_model),
    Route("POST", "/files", handle_create_file),
    Route("GET", "/files", handle_list_files),
    Route("GET", "/files/{file_id}", handle_retrieve_file),
    Route("DELETE", "/files/{file_id}", handle_delete_file),
    Route("GET", "/files/{file_id}/content", handle_file_content),
    Route("POST", "/uploads", handle_create_upload),
    Route("POST", "/uploads/{upload_id}/parts", handle_add_part),
    Route("POST", "/uploads/{upload_id}/complete", handle_complete_upload),
    Route("POST", "/uploads/{upload_id}/cancel", handle_cancel_upload),
    Route("POST", "/fine_tuning/jobs", handle_create_job),
    Route("GET", "/fine_tuning/jobs", handle_list_jobs),
    Route("GET", "/fine_tuning/jobs/{job_id}", handle_retrieve_job),
    Route("POST", "/fine_tuning/jobs/{job_id}/cancel", handle_cancel_job),
    Route("POST", "/fine_tuning/jobs/{job_id}/pause", handle_pause_job),
    Route("POST", "/fine_tuning/jobs/{job_id}/resume", handle_resume_job),
    Route("GET", "/fine_tuning/jobs/{job_id}/events", handle_list_events),
    Route("GET", "/fine_tuning/jobs/{job_id}/checkpoints", handle_list_checkpoints),
    Route("POST", "/batches", handle_create_batch),
    Route("GET", "/batches", handle_list_batches),
    Route("GET", "/batches/{batch_id}", handle_retrieve_batch),
    Route("POST", "/batches/{batch_id}/cancel", handle_cancel_batch),
]
