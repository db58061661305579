"""The stable issue codes a dataset validation reports, with their default severity and the server's code.

Codes are part of the public contract: they never change meaning, and ``docs/errors.md`` has one section per
code (anchor ``#<code>``). ``server_code`` is the code the OpenAI fine-tuning service uses for the same class of
problem (``invalid_file_format``, ``invalid_training_file``, ``invalid_n_examples``), or ``None`` for checks the
service does not make (duplicates, truncation, quality lints).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["CODE_INFO", "CodeInfo", "IssueCode", "Severity"]

Severity = Literal["error", "warning"]


class IssueCode(StrEnum):
    """Every problem a validation can report. The value is the stable string code."""

    # the file
    FILE_UNREADABLE = "file_unreadable"
    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    LARGE_FILE = "large_file"
    LINE_TOO_LONG = "line_too_long"
    TOO_FEW_EXAMPLES = "too_few_examples"
    # bytes and encoding
    INVALID_UTF8 = "invalid_utf8"
    BOM = "bom"
    CRLF_LINE_ENDINGS = "crlf_line_endings"
    NUL_CHARACTER = "nul_character"
    LONE_SURROGATE = "lone_surrogate"
    BLANK_LINE = "blank_line"
    # JSON
    INVALID_JSON = "invalid_json"
    DUPLICATE_KEY = "duplicate_key"
    NOT_AN_OBJECT = "not_an_object"
    # format and keys
    UNKNOWN_FORMAT = "unknown_format"
    MIXED_FORMATS = "mixed_formats"
    FORMAT_NOT_SUPPORTED = "format_not_supported"
    METHOD_NOT_SUPPORTED = "method_not_supported"
    MISSING_KEY = "missing_key"
    UNKNOWN_KEY = "unknown_key"
    UNKNOWN_MESSAGE_KEY = "unknown_message_key"
    INVALID_TYPE = "invalid_type"
    # messages and roles
    EMPTY_MESSAGES = "empty_messages"
    INVALID_ROLE = "invalid_role"
    DEVELOPER_ROLE = "developer_role"
    INVALID_MESSAGE_NAME = "invalid_message_name"
    ROLE_ORDER = "role_order"
    MISSING_ASSISTANT = "missing_assistant"
    LAST_MESSAGE_ROLE = "last_message_role"
    # content
    MISSING_CONTENT = "missing_content"
    INVALID_CONTENT = "invalid_content"
    INVALID_CONTENT_PART = "invalid_content_part"
    EMPTY_CONTENT = "empty_content"
    RESERVED_TOKEN = "reserved_token"
    # tools and function calls
    INVALID_TOOLS = "invalid_tools"
    INVALID_TOOL_CALLS = "invalid_tool_calls"
    INVALID_FUNCTION_NAME = "invalid_function_name"
    INVALID_ARGUMENTS = "invalid_arguments"
    ARGUMENTS_NOT_OBJECT = "arguments_not_object"
    DOUBLE_ENCODED_ARGUMENTS = "double_encoded_arguments"
    UNDECLARED_FUNCTION = "undeclared_function"
    DUPLICATE_TOOL_CALL_ID = "duplicate_tool_call_id"
    TOOL_CALL_ID_MISMATCH = "tool_call_id_mismatch"
    MISSING_TOOL_RESPONSE = "missing_tool_response"
    PARALLEL_TOOL_CALLS_DISABLED = "parallel_tool_calls_disabled"
    # weights
    INVALID_WEIGHT = "invalid_weight"
    NO_TRAINABLE_MESSAGES = "no_trainable_messages"
    # images
    INVALID_IMAGE = "invalid_image"
    UNSUPPORTED_IMAGE_FORMAT = "unsupported_image_format"
    IMAGE_FORMAT_MISMATCH = "image_format_mismatch"
    IMAGE_TOO_LARGE = "image_too_large"
    TOO_MANY_IMAGES = "too_many_images"
    IMAGE_NOT_ALLOWED = "image_not_allowed"
    IMAGES_NOT_SUPPORTED = "images_not_supported"
    # preference (DPO)
    INVALID_PREFERENCE = "invalid_preference"
    IDENTICAL_PREFERENCE = "identical_preference"
    # size, duplicates
    EXAMPLE_TOO_LONG = "example_too_long"
    DUPLICATE_EXAMPLE = "duplicate_example"
    # the model
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_SHUTTING_DOWN = "model_shutting_down"
    UNKNOWN_MODEL = "unknown_model"


@dataclass(frozen=True)
class CodeInfo:
    """What a code means: its default severity, the server's code for it, a one-line title and the usual fix."""

    severity: Severity
    server_code: str | None
    title: str
    fix: str


_FF = "invalid_file_format"
_TF = "invalid_training_file"

CODE_INFO: dict[IssueCode, CodeInfo] = {
    IssueCode.FILE_UNREADABLE: CodeInfo(
        "error", None, "The file does not exist or cannot be read.", "Check the path and the file's permissions."
    ),
    IssueCode.EMPTY_FILE: CodeInfo(
        "error", _FF, "The file is empty.", "Write one JSON object per line (at least 10 examples)."
    ),
    IssueCode.FILE_TOO_LARGE: CodeInfo(
        "error",
        _FF,
        "The file is larger than the service accepts (8 GB through the Uploads API).",
        "Split the file, or sample fewer examples.",
    ),
    IssueCode.LARGE_FILE: CodeInfo(
        "warning",
        None,
        "The file is over 512 MB, the Files API's limit: it must go through the Uploads API.",
        "Nothing to fix: finetune_embed's uploader switches to the Uploads API (64 MB parts) by itself.",
    ),
    IssueCode.LINE_TOO_LONG: CodeInfo(
        "error",
        _FF,
        "A line is longer than 512 MB, the Files API's limit on a whole file: it cannot be an example the service "
        "accepts, and it is skipped without being read into memory.",
        "Look at the line: it is usually binary data or a whole JSON array on one line; write one example per line "
        "(`finetune-embed dataset fix` sets the line aside).",
    ),
    IssueCode.TOO_FEW_EXAMPLES: CodeInfo(
        "error",
        "invalid_n_examples",
        "Fewer than 10 examples: the service refuses the file.",
        "Add examples (50 to 100 well-chosen ones is the usual start).",
    ),
    IssueCode.INVALID_UTF8: CodeInfo(
        "error",
        _FF,
        "Bytes that are not UTF-8 (often a file saved as UTF-16 or Latin-1).",
        "Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`, or PowerShell's `-Encoding utf8`).",
    ),
    IssueCode.BOM: CodeInfo(
        "warning",
        _FF,
        "The file starts with a UTF-8 byte-order mark, which makes the first line fail to parse on some servers.",
        "Remove the BOM (`finetune-embed dataset fix` does).",
    ),
    IssueCode.CRLF_LINE_ENDINGS: CodeInfo(
        "warning",
        None,
        "Lines end with CRLF (Windows) instead of LF.",
        "Convert the line endings to LF (`finetune-embed dataset fix` does).",
    ),
    IssueCode.NUL_CHARACTER: CodeInfo(
        "error",
        _FF,
        "A NUL character (a raw 0x00 byte or the escape \\u0000), usually a sign of UTF-16 or binary data.",
        "Remove the NUL characters; if the whole file is affected, re-save it as UTF-8.",
    ),
    IssueCode.LONE_SURROGATE: CodeInfo(
        "error",
        _FF,
        "A string holds an unpaired UTF-16 surrogate escape (e.g. \\ud83d without its pair), which is not valid text.",
        "Fix the escape: emoji need both halves (\\ud83d\\ude00), or write the character itself.",
    ),
    IssueCode.BLANK_LINE: CodeInfo(
        "warning",
        _FF,
        "An empty line between examples.",
        "Remove the empty line (`finetune-embed dataset fix` does).",
    ),
    IssueCode.INVALID_JSON: CodeInfo(
        "error",
        _FF,
        "The line is not valid JSON.",
        "Each line must be one complete JSON object; look at the column given (unescaped quotes and "
        "pretty-printed, multi-line objects are the usual causes).",
    ),
    IssueCode.DUPLICATE_KEY: CodeInfo(
        "warning",
        None,
        "A JSON object has the same key twice; only the last value is kept.",
        "Keep one of the values.",
    ),
    IssueCode.NOT_AN_OBJECT: CodeInfo(
        "error",
        _FF,
        "The line is JSON but not an object (a list, a string, a number).",
        'Each line must be a JSON object such as {"messages": [...]}; a JSON array file must be split into lines.',
    ),
    IssueCode.UNKNOWN_FORMAT: CodeInfo(
        "error",
        _FF,
        "The object has none of the keys of a known format (messages; input/preferred_output/"
        "non_preferred_output; prompt/completion).",
        "Rename the keys to one of the formats, or convert the data (Dataset.from_pairs, from_pandas).",
    ),
    IssueCode.MIXED_FORMATS: CodeInfo(
        "error",
        _FF,
        "The line's format differs from the file's (e.g. a prompt/completion line in a chat file).",
        "Use one format per file; `finetune-embed dataset convert` turns prompt/completion into chat.",
    ),
    IssueCode.FORMAT_NOT_SUPPORTED: CodeInfo(
        "error",
        _FF,
        "The data's format does not fit the fine-tuning method or model (e.g. chat data for DPO).",
        "Use the format of the method: chat for supervised and reinforcement, preference pairs for dpo, "
        "prompt/completion only for babbage-002 and davinci-002.",
    ),
    IssueCode.METHOD_NOT_SUPPORTED: CodeInfo(
        "error",
        None,
        "The model cannot be fine-tuned with this method (e.g. DPO on gpt-4o-mini).",
        "Pick a model that supports the method (`finetune-embed models list`), or another method.",
    ),
    IssueCode.MISSING_KEY: CodeInfo("error", _TF, "A required key is missing.", "Add the key named in the message."),
    IssueCode.UNKNOWN_KEY: CodeInfo(
        "error",
        _FF,
        "An example has a top-level key the service does not accept (it answers 'Example N contains an extra ...').",
        "Remove the key (`finetune-embed dataset fix` does), or move it where it belongs (weight goes on an "
        "assistant message).",
    ),
    IssueCode.UNKNOWN_MESSAGE_KEY: CodeInfo(
        "warning",
        None,
        "A message has a key its role does not define.",
        "Remove the key (`finetune-embed dataset fix` does).",
    ),
    IssueCode.INVALID_TYPE: CodeInfo(
        "error", _TF, "A value has the wrong JSON type.", "Use the type named in the message."
    ),
    IssueCode.EMPTY_MESSAGES: CodeInfo("error", _TF, "The messages list is empty.", "Add the conversation's messages."),
    IssueCode.INVALID_ROLE: CodeInfo(
        "error",
        _TF,
        "A message's role is not one of system, user, assistant, tool, function (developer is flagged apart).",
        "Use one of the roles the service accepts.",
    ),
    IssueCode.DEVELOPER_ROLE: CodeInfo(
        "warning",
        None,
        "The developer role is defined for chat completions but not among the fine-tuning message types.",
        "Use a system message instead.",
    ),
    IssueCode.INVALID_MESSAGE_NAME: CodeInfo(
        "warning",
        None,
        "A message's name has characters other than letters, digits, underscores and dashes (such as spaces or "
        "punctuation: \"Jane Doe!\"); the Chat Completions API has refused such names with a pattern error.",
        "Write the name with letters, digits, _ and - only (\"Jane_Doe\"), or drop it.",
    ),
    IssueCode.ROLE_ORDER: CodeInfo(
        "warning",
        None,
        "The messages are in an unusual order (an assistant reply before any user message, a system message "
        "after the start, two assistant replies in a row).",
        "Start with system messages, then alternate user and assistant turns.",
    ),
    IssueCode.MISSING_ASSISTANT: CodeInfo(
        "error",
        _TF,
        "The example has no assistant message, so there is nothing to train on.",
        "Add the assistant reply the model should learn.",
    ),
    IssueCode.LAST_MESSAGE_ROLE: CodeInfo(
        "warning",
        None,
        "The last message has an unexpected role: supervised examples should end on the assistant reply "
        "(trailing messages train nothing); reinforcement examples must end on a user message.",
        "Drop the trailing messages, or end on the role named in the message.",
    ),
    IssueCode.MISSING_CONTENT: CodeInfo(
        "error",
        _TF,
        "A message has no content (only an assistant message with tool_calls or function_call may omit it).",
        "Add the content, or null it only on an assistant message that calls a tool.",
    ),
    IssueCode.INVALID_CONTENT: CodeInfo(
        "error",
        _TF,
        "Content is neither a string nor a list of content parts.",
        'Use a string, or a list of {"type": "text", "text": ...} (and image_url parts in user messages).',
    ),
    IssueCode.INVALID_CONTENT_PART: CodeInfo(
        "error",
        _TF,
        "A content part is malformed or of a type fine-tuning does not accept (only text and image_url; "
        "no audio or files).",
        'Use {"type": "text", "text": "..."} or {"type": "image_url", "image_url": {"url": ...}}.',
    ),
    IssueCode.EMPTY_CONTENT: CodeInfo(
        "warning",
        None,
        "Content is empty or whitespace only (an error for a completion).",
        "Write the text, or drop the message.",
    ),
    IssueCode.RESERVED_TOKEN: CodeInfo(
        "error",
        _TF,
        "Text contains a reserved special token such as <|endoftext|> or <|fim_suffix|>; the service answers "
        "'Example N message contains an invalid token'.",
        "Remove the token or break it up (e.g. '<| endoftext |>').",
    ),
    IssueCode.INVALID_TOOLS: CodeInfo(
        "error",
        _TF,
        "The tools (or legacy functions) definitions are malformed: each tool is "
        '{"type": "function", "function": {"name", "description", "parameters"}} with unique names.',
        "Fix the definition named in the message.",
    ),
    IssueCode.INVALID_TOOL_CALLS: CodeInfo(
        "error",
        _TF,
        'tool_calls is malformed: a non-empty list of {"id", "type": "function", "function": '
        '{"name", "arguments": <JSON string>}}.',
        "Fix the field named in the message.",
    ),
    IssueCode.INVALID_FUNCTION_NAME: CodeInfo(
        "error",
        _TF,
        "A function name does not match ^[a-zA-Z0-9_-]{1,64}$.",
        "Use letters, digits, underscores and dashes only, at most 64 characters.",
    ),
    IssueCode.INVALID_ARGUMENTS: CodeInfo(
        "error",
        _TF,
        "A tool call's arguments string is not valid JSON.",
        'arguments must be the JSON text of an object, e.g. "{\\"city\\": \\"Paris\\"}".',
    ),
    IssueCode.ARGUMENTS_NOT_OBJECT: CodeInfo(
        "error",
        _TF,
        "A tool call's arguments decode to JSON that is not an object (a list, a number, a string).",
        "Wrap the values in an object that matches the function's parameters.",
    ),
    IssueCode.DOUBLE_ENCODED_ARGUMENTS: CodeInfo(
        "error",
        _TF,
        "A tool call's arguments are JSON-encoded twice: the string decodes to another string holding the object "
        "(the bug in OpenAI's own drone_training.jsonl).",
        'Decode the arguments once (`finetune-embed dataset fix` does), so that they read {"key": ...}.',
    ),
    IssueCode.UNDECLARED_FUNCTION: CodeInfo(
        "warning",
        None,
        "A call names a function that the example's tools (or functions) do not declare.",
        "Declare the function in the example's tools, or fix the name.",
    ),
    IssueCode.DUPLICATE_TOOL_CALL_ID: CodeInfo(
        "error",
        _TF,
        "Two tool calls in one example share an id, so tool results cannot be matched to them.",
        "Give each tool call a unique id.",
    ),
    IssueCode.TOOL_CALL_ID_MISMATCH: CodeInfo(
        "error",
        _TF,
        "A tool message answers no pending tool call (its tool_call_id matches no earlier, unanswered call).",
        "Set tool_call_id to the id of the assistant tool call it answers, and place it after that message.",
    ),
    IssueCode.MISSING_TOOL_RESPONSE: CodeInfo(
        "error",
        _TF,
        "An assistant tool call is followed by another message before every call got its tool result.",
        "Add a tool message for each tool_call id right after the assistant message (or end the example on "
        "the tool call).",
    ),
    IssueCode.PARALLEL_TOOL_CALLS_DISABLED: CodeInfo(
        "error",
        _TF,
        "parallel_tool_calls is false but an assistant message makes more than one tool call.",
        "Set parallel_tool_calls to true, or split the calls over several turns.",
    ),
    IssueCode.INVALID_WEIGHT: CodeInfo(
        "error",
        _TF,
        "weight must be the integer 0 or 1 and only on assistant messages (JSON true/false are refused).",
        "Use 0 (do not train on this reply) or 1, on assistant messages only.",
    ),
    IssueCode.NO_TRAINABLE_MESSAGES: CodeInfo(
        "warning",
        None,
        "Every assistant message has weight 0: the example trains nothing but is still billed.",
        "Set weight 1 on at least one assistant message, or drop the example.",
    ),
    IssueCode.INVALID_IMAGE: CodeInfo(
        "error",
        _TF,
        "An image part is malformed: image_url.url must be an http(s) URL or a base64 data URL.",
        'Use {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}.',
    ),
    IssueCode.UNSUPPORTED_IMAGE_FORMAT: CodeInfo(
        "error",
        _TF,
        "The image is not JPEG, PNG or WEBP.",
        "Convert the image to JPEG, PNG or WEBP.",
    ),
    IssueCode.IMAGE_FORMAT_MISMATCH: CodeInfo(
        "warning",
        None,
        "The data URL's media type differs from the image's actual bytes (e.g. image/png holding a JPEG).",
        "Correct the media type in the data URL.",
    ),
    IssueCode.IMAGE_TOO_LARGE: CodeInfo(
        "error", _TF, "An image is larger than 10 MB.", "Downscale or recompress the image."
    ),
    IssueCode.TOO_MANY_IMAGES: CodeInfo(
        "error", _TF, "An example has more than 10 images.", "Split the example, or drop images."
    ),
    IssueCode.IMAGE_NOT_ALLOWED: CodeInfo(
        "error",
        _TF,
        "An image appears in a message other than a user message.",
        "Move the image into a user message.",
    ),
    IssueCode.IMAGES_NOT_SUPPORTED: CodeInfo(
        "error",
        None,
        "The model cannot be fine-tuned on images.",
        "Use a vision-capable model (gpt-4o-2024-08-06, gpt-4.1-2025-04-14), or remove the images.",
    ),
    IssueCode.INVALID_PREFERENCE: CodeInfo(
        "error",
        _TF,
        "A preference (DPO) example is malformed: input.messages must not end on an assistant message, and "
        "preferred_output / non_preferred_output must each be a list of exactly one assistant message.",
        "Fix the field named in the message.",
    ),
    IssueCode.IDENTICAL_PREFERENCE: CodeInfo(
        "warning",
        None,
        "The preferred and non-preferred outputs are identical, so the pair teaches nothing.",
        "Make the non-preferred output the worse answer, or drop the example.",
    ),
    IssueCode.EXAMPLE_TOO_LONG: CodeInfo(
        "warning",
        None,
        "The example has more tokens than the model's training context (tool definitions included); it will be "
        "truncated during training.",
        "Shorten the example (trim history or documents), or split it.",
    ),
    IssueCode.DUPLICATE_EXAMPLE: CodeInfo(
        "warning",
        None,
        "The example is an exact copy of an earlier line.",
        "Drop the copy (`finetune-embed dataset fix` or Dataset.dedupe() do).",
    ),
    IssueCode.MODEL_UNAVAILABLE: CodeInfo(
        "error",
        None,
        "The model cannot be fine-tuned on OpenAI any more (shut down, or no new fine-tuning jobs).",
        "Pick a newer base model, or fine-tune on Azure OpenAI.",
    ),
    IssueCode.MODEL_SHUTTING_DOWN: CodeInfo(
        "warning",
        None,
        "The model, or OpenAI's fine-tuning service, shuts down soon.",
        "Plan the job before the date given, or move to Azure OpenAI.",
    ),
    IssueCode.UNKNOWN_MODEL: CodeInfo(
        "warning",
        None,
        "The model is not in finetune_embed's catalog: no token limit, methods or price are known.",
        "Check the name, or add it with catalog.override_fine_tune_model().",
    ),
}
