"""Training-file validation as the fine-tuning service does it while a job is ``validating_files``: the first
problem fails the job with the server's "Example N" message and code (``invalid_file_format``,
``invalid_training_file``, ``invalid_n_examples``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..tokenizer import Tokenizer

__all__ = ["MIN_EXAMPLES", "TrainingFileError", "TrainingStats", "validate_training_file"]

MIN_EXAMPLES = 10
CHAT_KEYS = ("messages", "tools", "parallel_tool_calls", "functions")
DPO_KEYS = ("input", "preferred_output", "non_preferred_output")
COMPLETION_KEYS = ("prompt", "completion")
ROLES = ("system", "user", "assistant", "tool", "function", "developer")
RESERVED_TOKENS = (
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|endofprompt|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_sep|>",
)


class TrainingFileError(Exception):
    """The job fails: ``code`` and ``message`` go to ``job.error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TrainingStats:
    """What validation learned: example count and tokens per example."""

    n_examples: int
    tokens: tuple[int, ...]


def _fmt(message: str) -> TrainingFileError:
    return TrainingFileError("invalid_file_format", f"Invalid file format. {message}")


def _bad(message: str) -> TrainingFileError:
    return TrainingFileError("invalid_training_file", message)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _check_tokens(n: int, value: Any) -> None:
    for text in _strings(value):
        for tok in RESERVED_TOKENS:
            if tok in text:
                raise _fmt(f"Example {n} message contains an invalid token: {tok}.")


def _check_messages(n: int, messages: Any, *, need_assistant: bool) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad(f"Example {n} has an invalid 'messages' field: expected a non-empty list of messages.")
    has_assistant = False
    for m, msg in enumerate(messages, start=1):
        where = f"Example {n}, message {m}"
        if not isinstance(msg, dict):
            raise _bad(f"{where} is not an object.")
        if "role" not in msg:
            raise _bad(f"{where} Discriminator 'role' is missing in value")
        role = msg["role"]
        if role not in ROLES:
            expected = ", ".join(f"'{r}'" for r in ROLES)
            raise _bad(
                f"{where} Input tag '{role}' found using 'role' does not match any of the expected tags: {expected}"
            )
        if role == "assistant":
            has_assistant = True
            if "weight" in msg and (isinstance(msg["weight"], bool) or msg["weight"] not in (0, 1)):
                raise _bad(f"{where} has an invalid 'weight': it must be 0 or 1.")
        elif "weight" in msg:
            raise _bad(f"{where} has a 'weight', which is only allowed on assistant messages.")
        has_calls = bool(msg.get("tool_calls") or msg.get("function_call"))
        if "content" not in msg and not (role == "assistant" and has_calls):
            raise _bad(f"{where} is missing required field 'content'.")
        content = msg.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad(f"{where} has invalid 'content': expected a string or a list of content parts.")
        if role == "tool" and "tool_call_id" not in msg:
            raise _bad(f"{where} is missing required field 'tool_call_id'.")
    if need_assistant and not has_assistant:
        raise _bad(f"Example {n} has no assistant messages; each example needs at least one to train on.")


def _count(tokenizer: Tokenizer, example: dict[str, Any]) -> int:
    return 3 + sum(3 + tokenizer.count(s) for s in _strings(example))


def validate_training_file(
    content: bytes,
    *,
    method: str,
    prompt_completion: bool,
    encoding: str,
    min_examples: int = MIN_EXAMPLES,
    label: str = "Training",
) -> TrainingStats:
    """Check ``content`` (a JSONL file) for ``method``; raise :class:`TrainingFileError` on the first problem."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fmt(f"The file is not valid UTF-8 (byte {exc.start}).") from None
    tokenizer = Tokenizer(encoding)
    examples: list[dict[str, Any]] = []
    line_no = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        n = len(examples) + 1
        try:
            example = json.loads(line)
        except ValueError:
            raise _fmt(f"Example {n} cannot be parsed as JSON (line {line_no}).") from None
        if not isinstance(example, dict):
            raise _fmt(f"Line {line_no} is not a dictionary.")
        if prompt_completion and method == "supervised":
            allowed: tuple[str, ...] = COMPLETION_KEYS
            required: tuple[str, ...] = COMPLETION_KEYS
        elif method == "dpo":
            allowed = required = DPO_KEYS
        elif method == "reinforcement":
            allowed, required = (), ("messages",)
        else:
            allowed, required = CHAT_KEYS, ("messages",)
        for key in required:
            if key not in example:
                raise _fmt(f"Example {n} is missing key '{key}'.")
        if allowed:
            for key in example:
                if key not in allowed:
                    raise _fmt(f'Example {n} contains an extra "{key}".')
        if method == "dpo":
            inp = example["input"]
            if not isinstance(inp, dict) or "messages" not in inp:
                raise _fmt(f"Example {n} is missing key 'input.messages'.")
            _check_messages(n, inp["messages"], need_assistant=False)
            for key in ("preferred_output", "non_preferred_output"):
                _check_messages(n, example[key], need_assistant=True)
        elif prompt_completion and method == "supervised":
            for key in COMPLETION_KEYS:
                if not isinstance(example[key], str):
                    raise _bad(f"Example {n} has an invalid '{key}': expected a string.")
        else:
            _check_messages(n, example["messages"], need_assistant=method == "supervised")
        _check_tokens(n, example)
        examples.append(example)
    if len(examples) < min_examples:
        raise TrainingFileError(
            "invalid_n_examples",
            f"{label} file has {len(examples)} example(s), but must have at least {min_examples} examples",
        )
    return TrainingStats(len(examples), tuple(_count(tokenizer, ex) for ex in examples))
