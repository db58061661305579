"""Say library messages in the CLI's words: ``--empty-inputs skip`` rather than ``empty_inputs='skip'``.

The library's errors name Python arguments (they are raised for Python callers too); the CLI rewrites the
argument spellings it has an option for, and the client-construction hints, before printing a message.
"""

from __future__ import annotations

import re

import click

__all__ = ["cli_words"]

# pass X= (or Y=) to Client.azure() / Client(), or set VAR  ->  set VAR   (the CLI reads the environment)
_PASS_TO_CLIENT = re.compile(
    r"pass (?:[\w=<>'./:-]+(?:,? or | or |, ))*[\w=<>'./:-]+ to Client(?:\.azure)?\(\),? or set "
)
_FIXED: tuple[tuple[re.Pattern[str], str], ...] = (
    (_PASS_TO_CLIENT, "set "),
    (re.compile(r" or pass api_key= to Client\(\)"), ""),
    (re.compile(r"Client\.azure\((?:\.\.\.)?\)"), "--azure"),
    (re.compile(r"\bClient\(\)"), "the client"),
    (re.compile(r"\bpass base_url=;?"), "set OPENAI_BASE_URL;"),
    (re.compile(r"\bPass cache=<path>"), "Pass --cache PATH"),
)
# name='value', name="value", name=value or a bare name=
_ASSIGN = re.compile(r"\b([a-z][a-z0-9_]*)=(?:'([^'\s]*)'|\"([^\"\s]*)\"|(\w[\w+-]*(?:\.\w+)*))?")


def _options() -> dict[str, click.Option]:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    return {p.name: p for p in ctx.command.params if isinstance(p, click.Option) and p.name}


def _spell(option: click.Option, value: str | None) -> str:
    longest = max(option.opts, key=len)
    if option.is_flag and value in ("True", "False"):
        if value == "True":
            return longest
        return max(option.secondary_opts, key=len) if option.secondary_opts else f"no {longest}"
    return longest if not value else f"{longest} {value}"


def cli_words(message: str) -> str:
    """``message`` with Python spellings replaced by the current command's options where it has them."""
    for pattern, replacement in _FIXED:
        message = pattern.sub(replacement, message)
    options = _options()
    if not options:
        return message

    def swap(match: re.Match[str]) -> str:
        option = options.get(match.group(1))
        if option is None:
            return match.group(0)
        value = next((g for g in match.groups()[1:] if g is not None), None)
        return _spell(option, value)

    return _ASSIGN.sub(swap, message)
