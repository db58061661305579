"""The per-example checks, on plain dicts (no pydantic on the hot path), with token counting as they go.

:class:`RowChecker` checks one parsed example at a time and records :class:`DatasetIssue` objects in an
:class:`IssueCollector`, token counts and balance signals in a :class:`StatsBuilder`, and exact-duplicate
digests. Both the streaming file validator and ``Dataset.validate`` use it.
"""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._codes import CODE_INFO, IssueCode, Severity
from ._images import MAX_IMAGES_PER_EXAMPLE, image_tokens, inspect_image_url
from ._report import DatasetIssue, IssueCollector, format_path
from ._stats import StatsBuilder
from ._tokens import TokenCounter, cookbook_example_tokens

__all__ = [
    "MAX_NESTING",
    "DuplicateTracker",
    "Profile",
    "RowChecker",
    "detect_format",
    "digest",
    "iter_strings",
    "may_nest_too_deeply",
    "near_key",
    "nesting_exceeds",
    "too_deep_message",
]

C = IssueCode
_MISSING: Any = object()
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}\Z")
_MESSAGE_NAME = re.compile(r"[a-zA-Z0-9_-]+\Z")  # what the Chat Completions API has accepted as a message name
_NAME_JUNK = re.compile(r"[^a-zA-Z0-9_-]+")
_RECENT_TOOLS = 8
_RESERVED_DEFAULT = (
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|endofprompt|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_sep|>",
)
_REFUSAL = re.compile(
    r"\bI(?:'m| am) (?:sorry|afraid),? but I (?:can(?:no|')t|cannot|am unable|'m unable|won't|will not)"
    r"|\bI (?:can(?:no|')t|cannot|won't|will not|am unable to|'m unable to|am not able to|'m not able to) "
    r"(?:help|assist|provide|answer|comply|do that|fulfil|share|discuss|support)"
    r"|\bas an ai\b",
    re.IGNORECASE,
)

CHAT_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
PREFERENCE_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
PREFERENCE_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
COMPLETION_KEYS = frozenset({"prompt", "completion"})
_ROLE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "tool_calls", "function_call", "weight", "refusal"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
_BUCKET = {"system": 0, "developer": 0, "user": 1, "assistant": 2, "tool": 3, "function": 3}
_TOOLS_BUCKET = 4
_OTHER_BUCKET = 5
FORMAT_KEYS = {"chat": CHAT_KEYS, "preference": PREFERENCE_KEYS, "completion": COMPLETION_KEYS}


def detect_format(obj: dict[str, Any]) -> str | None:
    """``"chat"``, ``"preference"``, ``"completion"`` or ``None`` from an example's keys."""
    if "messages" in obj:
        return "chat"
    if "input" in obj or "preferred_output" in obj or "non_preferred_output" in obj:
        return "preference"
    if "prompt" in obj or "completion" in obj:
        return "completion"
    return None


def digest(data: bytes) -> int:
    """A stable 64-bit digest (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha1(data, usedforsecurity=False).digest()[:8], "little", signed=True)


_WHITESPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def near_key(text: str) -> int:
    """Digest of ``text`` folded to lower case with every ASCII whitespace removed: near-duplicates (texts that
    differ only in case or spacing) get the same key."""
    return digest(text.casefold().encode("utf-8", "replace").translate(None, _WHITESPACE))


# every match of _REFUSAL (lower-cased) contains one of these: a cheap test before the regex
_REFUSAL_HINTS = ("i'm ", "i am ", "i can", "i won", "i will", "i 'm", "as an ai")


def _call_path(segs: tuple[str | int, ...]) -> str:
    """``tool_calls[k].function`` (or ``function_call``): where a function call sits, for messages."""
    return format_path(segs[segs.index("tool_calls") :] if "tool_calls" in segs else segs[-1:])


def _looks_like_refusal(text: str) -> bool:
    """A heuristic: does an assistant reply open like a refusal ("I'm sorry, but I can't ...")?"""
    head = text[:200].lower()
    for hint in _REFUSAL_HINTS:
        if hint in head:
            return _REFUSAL.search(head) is not None
    return False


def iter_strings(obj: Any, segs: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string value (and object key) inside ``obj`` with its path."""
    if isinstance(obj, str):
        yield segs, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str):
                yield (*segs, k), k
            yield from iter_strings(v, (*segs, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from iter_strings(v, (*segs, i))


MAX_NESTING = 100  # no fine-tuning example nests this deep; much deeper exhausts recursive code (copy, pydantic)


def nesting_exceeds(obj: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``obj`` nests lists / objects more than ``limit`` levels deep (an iterative walk: never recurses)."""
    if not isinstance(obj, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, dict | list))
    return False


def may_nest_too_deeply(body: bytes, limit: int = MAX_NESTING) -> bool:
    """A cheap byte-level prefilter: a JSON text with at most ``limit`` opening brackets cannot nest deeper."""
    return body.count(b"[") + body.count(b"{") > limit


def too_deep_message(where: str) -> str:
    return (
        f"{where} nests lists or objects more than {MAX_NESTING} levels deep; no fine-tuning example needs that, and "
        "such nesting exhausts the recursion of JSON tools: flatten it"
    )


def _is_lone_surrogate_text(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FORMAT_KEY_NAMES = ("messages", "input", "preferred_output", "non_preferred_output", "prompt", "completion")


def _did_you_mean(obj: dict[Any, Any]) -> str:
    import difflib

    for key in obj:
        if isinstance(key, str):
            close = difflib.get_close_matches(key.lower(), _FORMAT_KEY_NAMES, n=1, cutoff=0.75)
            if close:
                return f" (did you mean {close[0]!r} instead of {key!r}?)"
    return ""


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass
class Profile:
    """What a validation checks against (resolved once per run)."""

    method: str | None = None
    model: str | None = None
    vision: bool | None = None
    max_example_tokens: int | None = None
    encoding: str | None = None  # None: do not count tokens
    counting: str = "model"
    want_stats: bool = False
    reserved_tokens: tuple[str, ...] = _RESERVED_DEFAULT
    parallel_file: bool = False


class DuplicateTracker:
    """Exact-duplicate detection: 12 bytes per example (an 8-byte digest and the line)."""

    def __init__(self) -> None:
        self.hashes = array("q")
        self.lines = array("i")

    def add(self, h: int, line: int) -> None:
        self.hashes.append(h)
        self.lines.append(line)

    def merge(self, other: DuplicateTracker) -> None:
        self.hashes.extend(other.hashes)
        self.lines.extend(other.lines)

    def duplicates(self) -> list[tuple[int, int]]:
        """``(line, first_line)`` for every example that repeats an earlier one, in line order."""
        if len(self.hashes) < 2:
            return []
        import numpy as np

        hashes = np.frombuffer(self.hashes, dtype=np.int64)
        lines = np.frombuffer(self.lines, dtype=np.int32).astype(np.int64)
        order = np.lexsort((lines, hashes))  # by hash, then line: each group starts with its first copy
        h = hashes[order]
        repeat = np.flatnonzero(h[1:] == h[:-1]) + 1
        if not len(repeat):
            return []
        starts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
        group_first = lines[order][starts]
        group_of = np.searchsorted(starts, repeat, side="right") - 1
        out = sorted(zip(lines[order][repeat].tolist(), group_first[group_of].tolist(), strict=True))
        return out


class RowChecker:
    """Checks examples one by one (see the module docstring)."""

    def __init__(self, profile: Profile, collector: IssueCollector, file_format: str | None) -> None:
        self.p = profile
        self.out = collector
        self.file_format = file_format
        self.counter: TokenCounter | None = None
        if profile.encoding is not None:
            self.counter = TokenCounter(profile.encoding)
        self.stats: StatsBuilder | None = StatsBuilder() if profile.want_stats else None
        # per-role token sums: the stats' own list (summed in place), or a scratch list without stats
        self._roles = self.stats.role_tokens if self.stats is not None else [0] * 6
        self.dups = DuplicateTracker()
        self.n_examples = 0
        self._line = 0
        self._reserved = re.compile("|".join(re.escape(t) for t in profile.reserved_tokens))
        self._role_tokens: dict[str, int] = (
            {r: self.counter.count(r) for r in _ROLE_KEYS} if self.counter is not None else dict.fromkeys(_ROLE_KEYS, 0)
        )
        self._recent_tools: list[tuple[Any, int]] = []  # the last few distinct definition lists and their tokens
        self._valid_names: set[str] = set()  # function names already matched against _FUNCTION_NAME
        # per example
        self._images = 0
        self._images_flagged = False

    # --- issues -------------------------------------------------------------------------------------------------

    def emit(
        self,
        code: IssueCode,
        segs: tuple[str | int, ...],
        message: str,
        *,
        severity: Severity | None = None,
        hint: str | None = None,
        line: int | None = -1,
    ) -> None:
        ln = self._line if line == -1 else line
        self.out.add(
            DatasetIssue(
                ln,
                format_path(segs),
                code,
                severity or CODE_INFO[code].severity,
                message,
                hint,
                ln,
            )
        )

    def _ex(self) -> str:
        return f"Example {self._line}"

    def _msg(self, i: int) -> str:
        return f"Example {self._line}, message {i + 1}"

    # --- strings: NUL, lone surrogates, reserved tokens ----------------------------------------------------------

    def scan_strings(self, obj: Any, *, nul: bool = True, surrogates: bool = True, reserved: bool = True) -> None:
        """Walk every string of ``obj`` for NUL characters, lone surrogates and reserved special tokens."""
        for segs, s in iter_strings(obj):
            if nul and "\x00" in s:
                self.emit(
                    C.NUL_CHARACTER,
                    segs,
                    f"{self._ex()}: {format_path(segs) or 'the line'} contains a NUL character (\\u0000); remove it",
                )
            if surrogates and _is_lone_surrogate_text(s):
                self.emit(
                    C.LONE_SURROGATE,
                    segs,
                    f"{self._ex()}: {format_path(segs)} contains an unpaired surrogate escape (\\ud800-\\udfff), "
                    "which is not valid text; write the character itself or both halves of the pair",
                )
            if reserved and "<|" in s:
                found = sorted(set(self._reserved.findall(s)))
                if found:
                    self.emit(
                        C.RESERVED_TOKEN,
                        segs,
                        f"{self._ex()}: {format_path(segs)} contains the reserved token(s) {', '.join(found)}; the "
                        "service rejects text holding special tokens: remove them or break them up "
                        "(e.g. '<| endoftext |>')",
                    )

    # --- one example --------------------------------------------------------------------------------------------

    def check(self, obj: Any, line: int, exact_hash: int | None) -> None:
        """Check one parsed line (any JSON value)."""
        self._line = line
        self.n_examples += 1
        if not isinstance(obj, dict):
            self.emit(
                C.NOT_AN_OBJECT,
                (),
                f"Line {line} is not a JSON object but {_type_name(obj)}: each line must be one object such as "
                '{"messages": [...]}',
            )
            return
        fmt = detect_format(obj)
        if fmt is None:
            keys = ", ".join(repr(k) for k in list(obj)[:5]) or "no keys"
            self.emit(
                C.UNKNOWN_FORMAT,
                (),
                f"{self._ex()} has none of the keys of a fine-tuning format (it has {keys}){_did_you_mean(obj)}; "
                'use "messages" (chat), "input"/"preferred_output"/"non_preferred_output" (preference) or '
                '"prompt"/"completion"',
            )
            return
        if self.file_format is None:
            self.file_format = fmt
        elif fmt != self.file_format:
            self.emit(
                C.MIXED_FORMATS,
                (),
                f"{self._ex()} is a {fmt} example but the file is {self.file_format} (from its first example); "
                "use one format per file",
            )
            return
        if exact_hash is not None:
            self.dups.add(exact_hash, line)
        if self.stats is None:
            self._roles = [0, 0, 0, 0, 0, 0]  # scratch; with stats, tokens add up in stats.role_tokens directly
        self._images = 0
        self._images_flagged = False
        if fmt == "chat":
            result = self._chat(obj)
        elif fmt == "preference":
            result = self._preference(obj)
        else:
            result = self._completion(obj)
        if result is None:
            return
        total, assistant, n_messages, has_system, has_user, near_text = result
        if self.counter is not None and self.p.counting == "cookbook":
            total, assistant, n_messages = cookbook_example_tokens(obj, self.counter.count)
        limit = self.p.max_example_tokens
        if self.counter is not None and limit is not None and total > limit:
            self.emit(
                C.EXAMPLE_TOO_LONG,
                (),
                f"{self._ex()} has {total:,} tokens ({self.counter.encoding_name}, tool definitions included), over "
                f"{self.p.model or 'the model'}'s {limit:,}-token training context; it will be truncated: shorten it "
                "or split it",
            )
            if self.stats is not None:
                self.stats.over_limit(line)
        st = self.stats
        if st is not None:
            st.n_images += self._images
            st.add_example(
                total,
                assistant,
                n_messages,
                has_system,
                has_user,
                near_key(near_text) if near_text is not None else None,
            )

    # --- chat -----------------------------------------------------------------------------------------------------

    def _unknown_keys(self, obj: dict[str, Any], allowed: frozenset[str], where: str, fmt_name: str) -> None:
        for key in obj:
            if key not in allowed:
                extra = " (weight goes on assistant messages)" if key == "weight" else ""
                self.emit(
                    C.UNKNOWN_KEY,
                    (key,) if where == "" else (where, key),
                    f'{self._ex()} contains an extra "{key}" key{extra}; the {fmt_name} format allows only '
                    f"{', '.join(sorted(allowed))}: remove it",
                )

    def _chat(self, ex: dict[str, Any]) -> tuple[int, int, int, bool, bool, str | None] | None:
        method = self.p.method
        if method != "reinforcement":
            self._unknown_keys(ex, CHAT_KEYS, "", "chat")
        messages = ex["messages"]
        if not isinstance(messages, list):
            self.emit(
                C.INVALID_TYPE, ("messages",), f"{self._ex()}: messages must be a list, not {_type_name(messages)}"
            )
            return None
        if not messages:
            self.emit(C.EMPTY_MESSAGES, ("messages",), f"{self._ex()}: messages is empty; add the conversation")
            return None
        declared, tools_tokens = self._tools(ex, ())
        ptc = ex.get("parallel_tool_calls")
        if ptc is not None and not isinstance(ptc, bool):
            self.emit(
                C.INVALID_TYPE,
                ("parallel_tool_calls",),
                f"{self._ex()}: parallel_tool_calls must be true or false, not {_short(ptc)}",
            )
        kind = "reinforcement" if method == "reinforcement" else "supervised"
        return self._messages(messages, ("messages",), kind, declared, ptc is False, tools_tokens)

    def _tools(self, holder: dict[str, Any], base: tuple[str | int, ...]) -> tuple[set[str] | None, int]:
        """Check ``tools`` / ``functions``; return the declared function names (None: nothing declared) and the
        tokens of the definitions."""
        declared: set[str] | None = None
        tokens = 0
        for key in ("tools", "functions"):
            defs = holder.get(key, _MISSING)
            if defs is _MISSING or defs is None:
                continue
            declared = declared if declared is not None else set()
            if not isinstance(defs, list):
                self.emit(C.INVALID_TOOLS, (*base, key), f"{self._ex()}: {key} must be a list, not {_type_name(defs)}")
                continue
            for j, item in enumerate(defs):
                segs = (*base, key, j)
                if not isinstance(item, dict):
                    self.emit(C.INVALID_TOOLS, segs, f"{self._ex()}: {key}[{j}] must be an object")
                    continue
                if key == "tools":
                    if item.get("type") != "function":
                        self.emit(
                            C.INVALID_TOOLS,
                            (*segs, "type"),
                            f'{self._ex()}: tools[{j}].type must be "function", not {_short(item.get("type"))}',
                        )
                    fn = item.get("function")
                    fsegs: tuple[str | int, ...] = (*segs, "function")
                    if not isinstance(fn, dict):
                        self.emit(
                            C.INVALID_TOOLS,
                            fsegs,
                            f'{self._ex()}: tools[{j}].function must be an object with "name", "description" and '
                            '"parameters"',
                        )
                        continue
                else:
                    fn, fsegs = item, segs
                name = fn.get("name")
                if not isinstance(name, str):
                    self.emit(
                        C.INVALID_TOOLS,
                        (*fsegs, "name"),
                        f"{self._ex()}: {format_path(fsegs[len(base) :])}.name must be a string",
                    )
                else:
                    if not self._valid_name(name):
                        self.emit(
                            C.INVALID_FUNCTION_NAME,
                            (*fsegs, "name"),
                            f"{self._ex()}: function name {name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$",
                        )
                    if name in declared:
                        self.emit(
                            C.INVALID_TOOLS,
                            (*fsegs, "name"),
                            f"{self._ex()}: the function {name!r} is declared twice; keep one definition",
                        )
                    declared.add(name)
                params = fn.get("parameters")
                if params is not None and not isinstance(params, dict):
                    self.emit(
                        C.INVALID_TOOLS,
                        (*fsegs, "parameters"),
                        f"{self._ex()}: parameters must be a JSON Schema object, not {_type_name(params)}",
                    )
                desc = fn.get("description")
                if desc is not None and not isinstance(desc, str):
                    self.emit(C.INVALID_TOOLS, (*fsegs, "description"), f"{self._ex()}: description must be a string")
            if self.counter is not None:
                tokens += self._tools_tokens(defs)
        if tokens and self.stats is not None:
            self.stats.approximate = True
        return declared, tokens

    def _bad_message_name(self, name: str, segs: tuple[str | int, ...], i: int) -> None:
        """Warn about a message ``name`` the Chat Completions API's pattern refuses."""
        if not name:
            suggestion = "drop the empty name"
        else:
            cleaned = _NAME_JUNK.sub("_", name).strip("_")
            suggestion = f"write it as {cleaned!r}" if cleaned else "use letters, digits, _ and - only"
        self.emit(
            C.INVALID_MESSAGE_NAME,
            segs,
            f"{self._msg(i)}: name {_short(name)} has characters other than letters, digits, _ and -, which the Chat "
            f"Completions API has refused with a pattern error; {suggestion}",
        )

    def _valid_name(self, name: str) -> bool:
        """Does ``name`` match ``_FUNCTION_NAME``? Valid names are remembered, so the few names a file repeats skip
        the regex (bounded: a file with endless distinct names pays the regex again)."""
        if name in self._valid_names:
            return True
        if _FUNCTION_NAME.match(name) is None:
            return False
        if len(self._valid_names) >= 4096:
            self._valid_names.clear()
        self._valid_names.add(name)
        return True

    def _tools_tokens(self, defs: list[Any]) -> int:
        """Tokens of a tool definition list, counted as compact JSON; the few distinct lists a file uses are
        remembered (compared by value, which is cheaper than serialising them again)."""
        recent = self._recent_tools
        for k, (seen, n) in enumerate(recent):
            if seen == defs:
                if k:
                    recent.insert(0, recent.pop(k))
                return n
        assert self.counter is not None
        n = self.counter.count(json.dumps(defs, ensure_ascii=False, separators=(",", ":")))
        recent.insert(0, (defs, n))
        del recent[_RECENT_TOOLS:]
        return n

    def _messages(
        self,
        messages: list[Any],
        base: tuple[str | int, ...],
        kind: str,
        declared: set[str] | None,
        no_parallel: bool,
        tools_tokens: int,
    ) -> tuple[int, int, int, bool, bool, str | None]:
        """Check a message list. ``kind``: supervised, reinforcement, dpo_input or dpo_output."""
        counter = self.counter
        count = counter.count if counter is not None else None
        stats = self.stats
        roles = self._roles
        total = tools_tokens + (3 if kind in ("supervised", "reinforcement", "dpo_input") else 0)
        roles[_TOOLS_BUCKET] += tools_tokens
        roles[_OTHER_BUCKET] += total - tools_tokens
        assistant_tokens = 0
        has_system = has_user = has_assistant = False
        seen_user = False
        seen_non_system = False
        order_flagged = False
        pending: dict[str, str] = {}
        pending_at = -1
        call_ids: set[str] = set()
        prev_role: str | None = None
        prev_called = False
        weights_seen = False
        trainable = 0
        near: list[str] | None = [] if stats is not None else None
        last_role: str | None = None
        role_tokens = self._role_tokens
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                self.emit(C.INVALID_TYPE, (*base, i), f"{self._msg(i)} must be an object, not {_type_name(m)}")
                continue
            role = m.get("role", _MISSING)
            segs = (*base, i)
            if role is _MISSING:
                self.emit(
                    C.MISSING_KEY,
                    (*segs, "role"),
                    f'{self._msg(i)}: "role" is missing (the service says "Discriminator \'role\' is missing in '
                    'value"); add "role": "user", "assistant", "system" or "tool"',
                )
                continue
            allowed = _ROLE_KEYS.get(role) if isinstance(role, str) else None
            if allowed is None:
                self.emit(
                    C.INVALID_ROLE,
                    (*segs, "role"),
                    f"{self._msg(i)}: role {_short(role)} is not one of system, user, assistant, tool, function",
                )
                continue
            last_role = role
            if role == "developer":
                self.emit(
                    C.DEVELOPER_ROLE,
                    (*segs, "role"),
                    f'{self._msg(i)}: the "developer" role is not among the fine-tuning message types; use "system"',
                )
            if not allowed.issuperset(m):
                for key in m:
                    if key not in allowed and key != "weight":  # a misplaced weight is an invalid_weight
                        self.emit(
                            C.UNKNOWN_MESSAGE_KEY,
                            (*segs, key),
                            f'{self._msg(i)}: {_a(role)} message has no "{key}" field; remove it',
                        )
            # role order and tool-call bookkeeping
            if pending and role != "tool":
                missing = ", ".join(sorted(pending))
                self.emit(
                    C.MISSING_TOOL_RESPONSE,
                    (*base, pending_at, "tool_calls"),
                    f"{self._msg(pending_at)}: the tool call(s) {missing} get no tool message before message {i + 1}; "
                    "add a tool message answering each call right after the assistant message",
                )
                pending = {}
            if role in ("system", "developer"):
                has_system = True
                if seen_non_system and not order_flagged and kind != "dpo_output":
                    order_flagged = True
                    self.emit(
                        C.ROLE_ORDER,
                        segs,
                        f"{self._msg(i)}: {_a(role)} message after the conversation started; put system messages first",
                    )
                if kind == "reinforcement" and not order_flagged:
                    order_flagged = True
                    self.emit(
                        C.ROLE_ORDER,
                        segs,
                        f"{self._msg(i)}: reinforcement examples should not have system messages (Azure OpenAI "
                        "rejects them); move the instructions into the user message",
                    )
            else:
                seen_non_system = True
            if role == "user":
                has_user = seen_user = True
            elif role == "assistant":
                has_assistant = True
                if not seen_user and not order_flagged and kind in ("supervised", "dpo_input"):
                    order_flagged = True
                    self.emit(
                        C.ROLE_ORDER,
                        segs,
                        f"{self._msg(i)}: an assistant message before any user message; start the conversation with "
                        "a user message (after the system message)",
                    )
                elif prev_role == "assistant" and not prev_called and not order_flagged:
                    order_flagged = True
                    self.emit(
                        C.ROLE_ORDER,
                        segs,
                        f"{self._msg(i)}: two assistant messages in a row (Azure OpenAI refuses this); merge them or "
                        "put a user message between them",
                    )
            # content
            content = m.get("content", _MISSING)
            mtok = 3
            if count is not None:
                mtok += role_tokens[role]
            called = False
            if role == "assistant":
                tool_calls = m.get("tool_calls")
                function_call = m.get("function_call")
                called = tool_calls is not None or function_call is not None
                if tool_calls is not None:
                    n = self._tool_calls(tool_calls, segs, i, declared, no_parallel, call_ids, pending)
                    mtok += n
                    assistant_tokens += n
                    if pending:
                        pending_at = i
                if function_call is not None:
                    n = self._function_call(function_call, (*segs, "function_call"), i, declared)
                    mtok += n
                    assistant_tokens += n
                if content is _MISSING or content is None:
                    if not called and "refusal" not in m:
                        self.emit(
                            C.MISSING_CONTENT,
                            (*segs, "content"),
                            f"{self._msg(i)}: an assistant message needs content (or tool_calls); add the reply",
                        )
                else:
                    if type(content) is str and content and not content.isspace():
                        n = count(content) if count is not None else 0
                    else:
                        n = self._content(content, (*segs, "content"), i, role, allow_empty=called)
                    mtok += n
                    assistant_tokens += n
                    if type(content) is str:
                        if near is not None:
                            near.append(content)
                        if stats is not None:
                            stats.n_replies += 1
                            if _looks_like_refusal(content):
                                stats.n_refusals += 1
                refusal = m.get("refusal")
                if refusal is not None:
                    if not isinstance(refusal, str):
                        self.emit(C.INVALID_TYPE, (*segs, "refusal"), f"{self._msg(i)}: refusal must be a string")
                    elif count is not None:
                        n = count(refusal)
                        mtok += n
                        assistant_tokens += n
                if "weight" in m:
                    weights_seen = True
                    w = m["weight"]
                    if type(w) is not int or w not in (0, 1):
                        trainable += 1  # reported as invalid, not as untrainable
                        self.emit(
                            C.INVALID_WEIGHT,
                            (*segs, "weight"),
                            f"{self._msg(i)}: weight must be the integer 0 or 1, not {_short(w)}",
                        )
                    elif w == 1:
                        trainable += 1
                else:
                    trainable += 1
            else:
                if "weight" in m:
                    self.emit(
                        C.INVALID_WEIGHT,
                        (*segs, "weight"),
                        f"{self._msg(i)}: weight is only allowed on assistant messages, not on {_a(role)} message; "
                        "remove it",
                    )
                if content is _MISSING or (content is None and role != "function"):
                    self.emit(
                        C.MISSING_CONTENT,
                        (*segs, "content"),
                        f'{self._msg(i)}: {_a(role)} message needs "content"; add the text',
                    )
                elif content is not None:
                    if type(content) is str and content and not content.isspace():
                        if count is not None:
                            mtok += count(content)
                    else:
                        mtok += self._content(content, (*segs, "content"), i, role, allow_empty=False)
                    if near is not None and role != "system" and role != "developer" and type(content) is str:
                        near.append(content)
                if role == "tool":
                    tcid = m.get("tool_call_id", _MISSING)
                    if tcid is _MISSING:
                        self.emit(
                            C.MISSING_KEY,
                            (*segs, "tool_call_id"),
                            f'{self._msg(i)}: a tool message needs "tool_call_id", the id of the call it answers',
                        )
                    elif not isinstance(tcid, str):
                        self.emit(
                            C.INVALID_TYPE, (*segs, "tool_call_id"), f"{self._msg(i)}: tool_call_id must be a string"
                        )
                    else:
                        if count is not None:
                            mtok += count(tcid)
                        if tcid in pending:
                            del pending[tcid]
                        else:
                            why = (
                                "it was already answered"
                                if tcid in call_ids
                                else "no earlier assistant message makes a call with this id"
                            )
                            self.emit(
                                C.TOOL_CALL_ID_MISMATCH,
                                (*segs, "tool_call_id"),
                                f"{self._msg(i)}: tool_call_id {tcid!r} answers no pending tool call ({why}); use the "
                                "id of the assistant tool call this message answers",
                            )
            name = m.get("name")
            if name is not None:
                if not isinstance(name, str):
                    self.emit(C.INVALID_TYPE, (*segs, "name"), f"{self._msg(i)}: name must be a string")
                else:
                    if _MESSAGE_NAME.match(name) is None:
                        self._bad_message_name(name, (*segs, "name"), i)
                    if count is not None:
                        mtok += count(name) + 1
            elif role == "function" and "name" not in m:
                self.emit(C.MISSING_KEY, (*segs, "name"), f'{self._msg(i)}: a function message needs "name"')
            prev_role = role
            prev_called = called
            total += mtok
            roles[_BUCKET[role]] += mtok
        # the example as a whole
        if self._images > MAX_IMAGES_PER_EXAMPLE:
            self.emit(
                C.TOO_MANY_IMAGES,
                base,
                f"{self._ex()} has {self._images} images; at most {MAX_IMAGES_PER_EXAMPLE} are allowed per example",
            )
        if kind == "supervised":
            if not has_assistant:
                self.emit(
                    C.MISSING_ASSISTANT,
                    base,
                    f"{self._ex()} has no assistant message, so there is nothing to train on; add the reply the model "
                    "should learn",
                )
            elif last_role is not None and last_role != "assistant":
                self.emit(
                    C.LAST_MESSAGE_ROLE,
                    (*base, len(messages) - 1),
                    f"{self._ex()} ends on {_a(last_role)} message; messages after the last assistant reply train "
                    "nothing: drop them or add the assistant's answer",
                )
            elif weights_seen and trainable == 0:
                self.emit(
                    C.NO_TRAINABLE_MESSAGES,
                    base,
                    f"{self._ex()}: every assistant message has weight 0, so the example trains nothing but is still "
                    "billed; set weight 1 on the reply to learn or drop the example",
                )
        elif kind == "reinforcement":
            if last_role is not None and last_role != "user":
                self.emit(
                    C.LAST_MESSAGE_ROLE,
                    (*base, len(messages) - 1),
                    f"{self._ex()} ends on {_a(last_role)} message; a reinforcement example must end on the user "
                    "message the model answers",
                    severity="error",
                )
        elif kind == "dpo_input" and last_role == "assistant":
            self.emit(
                C.INVALID_PREFERENCE,
                (*base, len(messages) - 1),
                f"{self._ex()}: input.messages ends on an assistant message; the outputs are the assistant's reply, "
                "so end the input on the user message",
            )
        return (
            total,
            assistant_tokens,
            len(messages),
            has_system,
            has_user,
            "\x1f".join(near) if near is not None else None,
        )

    def _content(self, content: Any, segs: tuple[str | int, ...], i: int, role: str, *, allow_empty: bool) -> int:
        count = self.counter.count if self.counter is not None else None
        if isinstance(content, str):
            if (not content or content.isspace()) and not allow_empty:
                self.emit(
                    C.EMPTY_CONTENT,
                    segs,
                    f"{self._msg(i)}: the {role} message's content is empty; write the text or drop the message",
                )
            return count(content) if count is not None else 0
        if not isinstance(content, list):
            self.emit(
                C.INVALID_CONTENT,
                segs,
                f"{self._msg(i)}: content must be a string or a list of content parts, not {_type_name(content)}",
            )
            return 0
        if not content:
            self.emit(C.INVALID_CONTENT, segs, f"{self._msg(i)}: content is an empty list; add a text part")
            return 0
        tokens = 0
        for k, part in enumerate(content):
            psegs = (*segs, k)
            if not isinstance(part, dict):
                self.emit(
                    C.INVALID_CONTENT_PART,
                    psegs,
                    f'{self._msg(i)}: content[{k}] must be an object such as {{"type": "text", "text": ...}}',
                )
                continue
            typ = part.get("type")
            if typ == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    self.emit(
                        C.INVALID_CONTENT_PART,
                        (*psegs, "text"),
                        f'{self._msg(i)}: a text part needs "text" as a string',
                    )
                elif count is not None:
                    tokens += count(text)
            elif typ == "image_url":
                tokens += self._image(part, psegs, i, role)
            elif typ == "refusal" and role == "assistant":
                refusal = part.get("refusal")
                if not isinstance(refusal, str):
                    self.emit(
                        C.INVALID_CONTENT_PART, (*psegs, "refusal"), f"{self._msg(i)}: a refusal part needs a string"
                    )
                elif count is not None:
                    tokens += count(refusal)
            else:
                self.emit(
                    C.INVALID_CONTENT_PART,
                    (*psegs, "type"),
                    f"{self._msg(i)}: content part type {_short(typ)} is not accepted; fine-tuning takes text and "
                    "image_url parts only (no audio or files)",
                )
        return tokens

    def _image(self, part: dict[str, Any], segs: tuple[str | int, ...], i: int, role: str) -> int:
        self._images += 1
        if role != "user":
            self.emit(
                C.IMAGE_NOT_ALLOWED,
                segs,
                f"{self._msg(i)}: images are allowed in user messages only, not in {_a(role)} message; move it",
            )
        if self.p.vision is False and not self._images_flagged:
            self._images_flagged = True
            self.emit(
                C.IMAGES_NOT_SUPPORTED,
                segs,
                f"{self._msg(i)}: {self.p.model} cannot be fine-tuned on images; use gpt-4o-2024-08-06 or "
                "gpt-4.1-2025-04-14, or remove the images",
            )
        iu = part.get("image_url")
        if isinstance(iu, str):  # a common slip: the URL given directly
            self.emit(
                C.INVALID_IMAGE,
                (*segs, "image_url"),
                f'{self._msg(i)}: image_url must be an object {{"url": ...}}, not a string',
            )
            return 0
        if not isinstance(iu, dict) or not isinstance(iu.get("url"), str):
            self.emit(
                C.INVALID_IMAGE,
                (*segs, "image_url"),
                f'{self._msg(i)}: an image part needs "image_url": {{"url": "https://..." or '
                '"data:image/...;base64,..."}',
            )
            return 0
        detail = iu.get("detail")
        if detail is not None and detail not in ("auto", "low", "high"):
            self.emit(
                C.INVALID_IMAGE,
                (*segs, "image_url", "detail"),
                f'{self._msg(i)}: detail must be "auto", "low" or "high", not {_short(detail)}',
            )
        info, problems = inspect_image_url(iu["url"])
        for code, text in problems:
            self.emit(IssueCode(code), (*segs, "image_url", "url"), f"{self._msg(i)}: {text}")
        if self.stats is not None:
            self.stats.approximate = True
        if self.counter is None:
            return 0
        return image_tokens(self.p.model, info.width, info.height, detail if isinstance(detail, str) else None)

    def _tool_calls(
        self,
        tool_calls: Any,
        segs: tuple[str | int, ...],
        i: int,
        declared: set[str] | None,
        no_parallel: bool,
        call_ids: set[str],
        pending: dict[str, str],
    ) -> int:
        tsegs = (*segs, "tool_calls")
        if not isinstance(tool_calls, list) or not tool_calls:
            self.emit(
                C.INVALID_TOOL_CALLS,
                tsegs,
                f"{self._msg(i)}: tool_calls must be a non-empty list of calls, not {_short(tool_calls)}",
            )
            return 0
        if no_parallel and len(tool_calls) > 1:
            self.emit(
                C.PARALLEL_TOOL_CALLS_DISABLED,
                tsegs,
                f"{self._msg(i)} makes {len(tool_calls)} tool calls but the example sets parallel_tool_calls to false; "
                "set it to true or make one call per assistant message",
            )
        tokens = 0
        for k, call in enumerate(tool_calls):
            csegs = (*tsegs, k)
            if not isinstance(call, dict):
                self.emit(C.INVALID_TOOL_CALLS, csegs, f"{self._msg(i)}: tool_calls[{k}] must be an object")
                continue
            cid = call.get("id")
            if not isinstance(cid, str) or not cid:
                self.emit(
                    C.INVALID_TOOL_CALLS,
                    (*csegs, "id"),
                    f"{self._msg(i)}: tool_calls[{k}].id must be a non-empty string (tool messages refer to it)",
                )
            elif cid in call_ids:
                self.emit(
                    C.DUPLICATE_TOOL_CALL_ID,
                    (*csegs, "id"),
                    f"{self._msg(i)}: the tool call id {cid!r} is used twice in this example; give each call its "
                    "own id",
                )
            else:
                call_ids.add(cid)
                pending[cid] = ""
            if call.get("type") != "function":
                self.emit(
                    C.INVALID_TOOL_CALLS,
                    (*csegs, "type"),
                    f'{self._msg(i)}: tool_calls[{k}].type must be "function", not {_short(call.get("type"))}',
                )
            fn = call.get("function")
            if not isinstance(fn, dict):
                self.emit(
                    C.INVALID_TOOL_CALLS,
                    (*csegs, "function"),
                    f'{self._msg(i)}: tool_calls[{k}].function must be an object {{"name": ..., "arguments": ...}}',
                )
                continue
            tokens += self._function_call(fn, (*csegs, "function"), i, declared, kind=C.INVALID_TOOL_CALLS)
        return tokens

    def _function_call(
        self,
        fn: Any,
        segs: tuple[str | int, ...],
        i: int,
        declared: set[str] | None,
        *,
        kind: IssueCode = C.INVALID_TOOL_CALLS,
    ) -> int:
        if not isinstance(fn, dict):
            self.emit(
                kind, segs, f'{self._msg(i)}: {_call_path(segs)} must be an object {{"name": ..., "arguments": ...}}'
            )
            return 0
        tokens = 0
        count = self.counter.count if self.counter is not None else None
        name = fn.get("name")
        if not isinstance(name, str):
            self.emit(kind, (*segs, "name"), f"{self._msg(i)}: {_call_path(segs)}.name must be a string")
        else:
            if not self._valid_name(name):
                self.emit(
                    C.INVALID_FUNCTION_NAME,
                    (*segs, "name"),
                    f"{self._msg(i)}: function name {name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$",
                )
            if declared is None:
                self.emit(
                    C.UNDECLARED_FUNCTION,
                    (*segs, "name"),
                    f"{self._msg(i)} calls {name!r} but the example declares no tools; add its definition to the "
                    'example\'s "tools" so the model learns when to call it',
                )
            elif name not in declared:
                self.emit(
                    C.UNDECLARED_FUNCTION,
                    (*segs, "name"),
                    f"{self._msg(i)} calls {name!r}, which the example's tools do not declare (declared: "
                    f"{', '.join(sorted(declared)) or 'none'}); fix the name or declare it",
                )
            if count is not None:
                tokens += count(name)
        args = fn.get("arguments", _MISSING)
        asegs = (*segs, "arguments")
        if args is _MISSING:
            self.emit(kind, asegs, f'{self._msg(i)}: {_call_path(segs)} needs "arguments", the JSON text of an object')
        elif not isinstance(args, str):
            self.emit(
                kind,
                asegs,
                f"{self._msg(i)}: arguments must be a string holding JSON, not {_type_name(args)}; JSON-encode the "
                f"object (e.g. {_short(json.dumps(args, ensure_ascii=False), 50)})",
            )
        else:
            self._arguments(args, asegs, i)
            if count is not None:
                tokens += count(args)
        for key in fn:
            if key not in ("name", "arguments"):
                self.emit(
                    C.UNKNOWN_MESSAGE_KEY,
                    (*segs, key),
                    f'{self._msg(i)}: a function call has no "{key}" field; remove it',
                )
        return tokens

    def _arguments(self, args: str, segs: tuple[str | int, ...], i: int) -> None:
        try:
            value = json.loads(args)
        except RecursionError:
            self.emit(C.INVALID_ARGUMENTS, segs, too_deep_message(f"{self._msg(i)}: arguments"))
            return
        except ValueError as exc:
            self.emit(
                C.INVALID_ARGUMENTS,
                segs,
                f"{self._msg(i)}: arguments is not valid JSON ({exc}); it must be the JSON text of an object",
                hint=f"arguments starts with {_short(args, 40)}",
            )
            return
        if isinstance(value, dict):
            return
        if isinstance(value, str):
            try:
                inner = json.loads(value)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, dict):
                self.emit(
                    C.DOUBLE_ENCODED_ARGUMENTS,
                    segs,
                    f"{self._msg(i)}: arguments is JSON-encoded twice (it decodes to the string {_short(value, 50)}); "
                    "decode it once so that it holds the object itself (`finetune-embed dataset fix` does)",
                )
                return
        self.emit(
            C.ARGUMENTS_NOT_OBJECT,
            segs,
            f"{self._msg(i)}: arguments decodes to {_type_name(value)} ({_short(value, 40)}), not an object; wrap "
            "the values in an object matching the function's parameters",
        )

    # --- preference (DPO) ---------------------------------------------------------------------------------------

    def _preference(self, ex: dict[str, Any]) -> tuple[int, int, int, bool, bool, str | None] | None:
        self._unknown_keys(ex, PREFERENCE_KEYS, "", "preference")
        inp = ex.get("input", _MISSING)
        total = assistant = n_messages = 0
        has_system = has_user = False
        near: list[str] = []
        if inp is _MISSING:
            self.emit(C.MISSING_KEY, ("input",), f"Invalid file format. {self._ex()} is missing key 'input'.")
        elif not isinstance(inp, dict):
            self.emit(C.INVALID_PREFERENCE, ("input",), f'{self._ex()}: input must be an object {{"messages": [...]}}')
        else:
            for key in inp:
                if key not in PREFERENCE_INPUT_KEYS:
                    self.emit(
                        C.UNKNOWN_KEY,
                        ("input", key),
                        f'{self._ex()}: input contains an extra "{key}" key; it allows only messages, tools, '
                        "parallel_tool_calls: remove it",
                    )
            messages = inp.get("messages", _MISSING)
            if messages is _MISSING:
                self.emit(C.MISSING_KEY, ("input", "messages"), f"{self._ex()}: input is missing key 'messages'")
            elif not isinstance(messages, list):
                self.emit(C.INVALID_TYPE, ("input", "messages"), f"{self._ex()}: input.messages must be a list")
            elif not messages:
                self.emit(C.EMPTY_MESSAGES, ("input", "messages"), f"{self._ex()}: input.messages is empty")
            else:
                declared, tools_tokens = self._tools(inp, ("input",))
                ptc = inp.get("parallel_tool_calls")
                r = self._messages(messages, ("input", "messages"), "dpo_input", declared, ptc is False, tools_tokens)
                total += r[0]
                n_messages += r[2]
                has_system, has_user = r[3], r[4]
                if r[5]:
                    near.append(r[5])
        outputs = []
        for side in ("preferred_output", "non_preferred_output"):
            out = ex.get(side, _MISSING)
            if out is _MISSING:
                self.emit(C.MISSING_KEY, (side,), f"Invalid file format. {self._ex()} is missing key '{side}'.")
                continue
            if not isinstance(out, list) or len(out) != 1:
                got = f"{len(out)} messages" if isinstance(out, list) else _type_name(out)
                self.emit(
                    C.INVALID_PREFERENCE,
                    (side,),
                    f"{self._ex()}: {side} must be a list of exactly one assistant message, not {got}",
                )
                continue
            msg = out[0]
            if not isinstance(msg, dict) or msg.get("role") != "assistant":
                role = _short(msg.get("role")) if isinstance(msg, dict) else _type_name(msg)
                self.emit(
                    C.INVALID_PREFERENCE,
                    (side, 0, "role") if isinstance(msg, dict) else (side, 0),
                    f'{self._ex()}: {side}[0] must be an assistant message ({{"role": "assistant", "content": ...}}), '
                    f"not {role}",
                )
                continue
            r = self._messages(out, (side,), "dpo_output", None, False, 0)
            total += r[0]
            assistant += r[1]
            n_messages += 1
            outputs.append(msg)
            if r[5]:
                near.append(r[5])
        if len(outputs) == 2 and outputs[0] == outputs[1]:
            self.emit(
                C.IDENTICAL_PREFERENCE,
                ("non_preferred_output",),
                f"{self._ex()}: preferred_output and non_preferred_output are identical, so the pair teaches nothing; "
                "make the non-preferred output the worse answer",
            )
        return total, assistant, n_messages, has_system, has_user, "\x1e".join(near) if self.stats else None

    # --- prompt / completion ------------------------------------------------------------------------------------

    def _completion(self, ex: dict[str, Any]) -> tuple[int, int, int, bool, bool, str | None] | None:
        self._unknown_keys(ex, COMPLETION_KEYS, "", "prompt/completion")
        total = assistant = 0
        texts = []
        for key in ("prompt", "completion"):
            value = ex.get(key, _MISSING)
            if value is _MISSING:
                self.emit(C.MISSING_KEY, (key,), f"{self._ex()} is missing key '{key}'")
                continue
            if not isinstance(value, str):
                self.emit(C.INVALID_TYPE, (key,), f"{self._ex()}: {key} must be a string, not {_type_name(value)}")
                continue
            texts.append(value)
            if key == "completion" and (not value or value.isspace()):
                self.emit(
                    C.EMPTY_CONTENT,
                    (key,),
                    f"{self._ex()}: the completion is empty; every example needs the text to learn",
                    severity="error",
                )
            if self.counter is not None:
                n = self.counter.count(value)
                total += n
                self._roles[1 if key == "prompt" else 2] += n
                if key == "completion":
                    assistant = n
        return total, assistant, 1, False, "prompt" in ex, "\x1f".join(texts) if self.stats else None
