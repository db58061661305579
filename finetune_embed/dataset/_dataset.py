"""The :class:`Dataset`: fine-tuning examples in memory, their sources, and every operation on them."""

from __future__ import annotations

import codecs
import copy
import csv
import io
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from .._exceptions import DatasetFormatError, DatasetValidationError, InvalidArgumentError, MissingDependencyError
from .._lines import MAX_LINE_BYTES, bounded_text_lines, csv_field_limit, open_input
from ._checks import detect_format, too_deep_message
from ._fix import FixResult, fix_file
from ._io import atomic_write_lines, dump_line, read_jsonl
from ._memory import ExampleTokens, canonical_digest, near_digest, token_counts, validate_rows
from ._report import ValidationReport
from ._stats import DatasetStats
from ._stream import validate_path

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

    from ..embeddings import Embedder
    from ..evaluate import DatasetAnalysis
    from ._models import ChatExample, CompletionExample, Example, PreferenceExample

__all__ = ["Dataset", "DatasetSplits", "Format"]

Format = Literal["chat", "preference", "completion"]


def _example_model(fmt: str) -> type[ChatExample] | type[PreferenceExample] | type[CompletionExample]:
    """The pydantic model of a format (imported on first use: validating a file never needs pydantic)."""
    from ._models import ChatExample, CompletionExample, PreferenceExample

    if fmt == "chat":
        return ChatExample
    return PreferenceExample if fmt == "preference" else CompletionExample


class DatasetSplits(NamedTuple):
    """The two parts of :meth:`Dataset.train_test_split`."""

    train: Dataset
    test: Dataset


def _as_row(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    from pydantic import BaseModel

    if isinstance(item, BaseModel):
        to_dict = getattr(item, "to_dict", None)
        return to_dict() if callable(to_dict) else item.model_dump(mode="json", exclude_none=True)
    raise DatasetFormatError(
        f'row {index} is {type(item).__name__}, not an example: pass dicts such as {{"messages": [...]}} or '
        "ChatExample / PreferenceExample / CompletionExample objects"
    )


class Dataset:
    """Fine-tuning examples (chat, preference or prompt/completion), each remembering its source line.

    Build one with :meth:`from_json`, :meth:`from_list`, :meth:`from_pairs`, :meth:`from_pandas`,
    :meth:`from_csv`, :meth:`from_parquet` or :meth:`from_hf`; check it with :meth:`validate` and describe it
    with :meth:`stats`; write it with :meth:`to_json` or :meth:`to_parquet`. Files too large for memory are
    checked with :meth:`validate_file` (streaming).

    >>> ds = Dataset.from_pairs(["2+2?"] * 10, ["4"] * 10, system="You add numbers.")
    >>> len(ds), ds.format
    (10, 'chat')
    """

    def __init__(
        self,
        rows: Iterable[dict[str, Any]] = (),
        *,
        lines: Sequence[int | None] | None = None,
        source: str | None = None,
    ) -> None:
        if not isinstance(rows, Iterable) or isinstance(rows, str | bytes):
            raise InvalidArgumentError(
                f"rows must be an iterable of examples (dicts or typed models), not {type(rows).__name__}",
                argument="rows",
            )
        self._rows: list[dict[str, Any]] = [_as_row(r, i) for i, r in enumerate(rows)]
        if lines is not None and len(lines) != len(self._rows):
            raise InvalidArgumentError(
                f"lines has {len(lines)} items for {len(self._rows)} rows; pass one line number (or None) per row",
                argument="lines",
            )
        self._lines: list[int | None] = list(lines) if lines is not None else [None] * len(self._rows)
        self.source = source

    # --- building ---------------------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, path: str | os.PathLike[str], *, max_line_bytes: int = MAX_LINE_BYTES) -> Dataset:
        """Load a JSONL file (one example per line; empty lines skipped). Each row keeps its source line.

        Raises :class:`~finetune_embed.DatasetFormatError` (with ``.path`` and ``.line``) at the first line that
        is not a JSON object, :class:`~finetune_embed.LineTooLongError` at a line over ``max_line_bytes`` (512 MB
        by default; never read whole) and :class:`~finetune_embed.FileAccessError` when the file cannot be read or
        is not a regular file (a device, a FIFO); :meth:`validate_file` lists every problem instead, and
        :meth:`fix_file` sets bad lines aside.
        """
        rows: list[dict[str, Any]] = []
        lines: list[int | None] = []
        for line, obj in read_jsonl(path, max_line_bytes=max_line_bytes):
            rows.append(obj)
            lines.append(line)
        return cls(rows, lines=lines, source=os.fspath(path))

    @classmethod
    def from_list(cls, rows: Iterable[dict[str, Any] | BaseModel]) -> Dataset:
        """Examples from dicts or typed models (:class:`ChatExample`, ...)."""
        return cls(rows)  # type: ignore[arg-type]

    @classmethod
    def from_pairs(cls, prompts: Sequence[str], completions: Sequence[str], *, system: str | None = None) -> Dataset:
        """Chat examples from parallel lists of user prompts and assistant replies, with an optional system
        prompt on every example."""
        if len(prompts) != len(completions):
            raise InvalidArgumentError(
                f"{len(prompts)} prompts but {len(completions)} completions; pass lists of equal length",
                argument="completions",
            )
        rows = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            if not isinstance(prompt, str) or not isinstance(completion, str):
                raise DatasetFormatError(
                    f"pair {i}: prompts and completions must be strings, got {type(prompt).__name__} and "
                    f"{type(completion).__name__}"
                )
            rows.append(_chat_row(prompt, completion, system))
        return cls(rows)

    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        *,
        prompt: str = "prompt",
        completion: str = "completion",
        system: str | None = None,
        system_column: str | None = None,
        messages: str = "messages",
    ) -> Dataset:
        """Examples from a DataFrame.

        A ``messages`` column (lists of messages) is taken as chat data, other columns named like chat keys
        (``tools``, ``parallel_tool_calls``, ``functions``) with it. Otherwise ``prompt`` / ``completion``
        columns (names mappable) become chat examples, with an optional fixed ``system`` prompt or a
        per-row ``system_column``. Missing values raise :class:`DatasetFormatError` naming the rows.
        """
        if not (hasattr(df, "to_dict") and hasattr(df, "columns")):
            raise InvalidArgumentError(f"df must be a pandas DataFrame, not {type(df).__name__}", argument="df")
        records: list[dict[str, Any]] = [{str(k): v for k, v in rec.items()} for rec in df.to_dict(orient="records")]
        rows: list[dict[str, Any]] = []
        if messages in df.columns:
            keep = [c for c in df.columns if c in (messages, "tools", "functions", "parallel_tool_calls")]
            for rec in records:
                row = {("messages" if k == messages else str(k)): rec[k] for k in keep if not _is_missing(rec[k])}
                rows.append(row)
            return cls(rows)
        for col in (prompt, completion):
            if col not in df.columns:
                raise DatasetFormatError(
                    f"the DataFrame has no column {col!r} (columns: {', '.join(map(str, df.columns))}); pass "
                    "prompt= and completion= to name the columns"
                )
        bad = [
            i
            for i, rec in enumerate(records)
            if not isinstance(rec[prompt], str) or not isinstance(rec[completion], str)
        ]
        if bad:
            raise DatasetFormatError(
                f"rows {', '.join(map(str, bad[:10]))}{' ...' if len(bad) > 10 else ''} have a missing or non-text "
                f"{prompt!r}/{completion!r}; drop or fill them (df.dropna()) first"
            )
        for rec in records:
            sys_prompt = system
            if system_column is not None and not _is_missing(rec.get(system_column)):
                sys_prompt = str(rec[system_column])
            rows.append(_chat_row(rec[prompt], rec[completion], sys_prompt))
        return cls(rows)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        prompt: str = "prompt",
        completion: str = "completion",
        system: str | None = None,
        system_column: str | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",
    ) -> Dataset:
        """Chat examples from a CSV file's ``prompt`` / ``completion`` columns (names mappable), with an optional
        system prompt. Reads with the standard library (no pandas needed); rows keep their CSV line numbers."""
        name = os.fspath(path)
        rows: list[dict[str, Any]] = []
        lines: list[int | None] = []
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise DatasetFormatError(f"unknown encoding {encoding!r}; pass a Python codec name", path=name) from exc
        try:
            with (
                open_input(name) as raw,
                csv_field_limit(MAX_LINE_BYTES),  # a long prompt is one field; restored on the way out
            ):
                fh = io.TextIOWrapper(raw, encoding=encoding, newline="")
                reader = csv.DictReader(bounded_text_lines(fh, path=name), delimiter=delimiter)
                fields = reader.fieldnames or []
                for col in (prompt, completion):
                    if col not in fields:
                        raise DatasetFormatError(
                            f"no column {col!r} (columns: {', '.join(fields) or 'none'}); pass prompt= and completion=",
                            path=name,
                        )
                for rec in reader:
                    line = reader.line_num
                    p, c = rec.get(prompt), rec.get(completion)
                    if p is None or c is None:
                        raise DatasetFormatError("the row has fewer columns than the header", path=name, line=line)
                    sys_prompt = rec.get(system_column) or system if system_column else system
                    rows.append(_chat_row(p, c, sys_prompt))
                    lines.append(line)
        except UnicodeDecodeError as exc:
            raise DatasetFormatError(f"not {encoding} text ({exc.reason}); pass encoding=", path=name) from exc
        except csv.Error as exc:
            raise DatasetFormatError(f"not valid CSV: {exc}", path=name) from exc
        return cls(rows, lines=lines, source=name)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], *, columns: Sequence[str] | None = None) -> Dataset:
        """Load a Parquet file: one example per row, one top-level key per column (``columns`` picks some).

        Reads files written by :meth:`to_parquet` back to the same examples, and files from pandas, DuckDB or
        Hugging Face ``datasets`` (``messages`` as a list of structs): a null cell is an absent key, and a null
        field inside an object is dropped (``content`` excepted). Rows keep their 1-based row numbers as lines.
        Needs pyarrow (the ``parquet`` extra); raises :class:`~finetune_embed.MissingDependencyError` without it,
        :class:`~finetune_embed.DatasetFormatError` for a file that is not Parquet or lacks a column, and
        :class:`~finetune_embed.FileAccessError` for one that cannot be read.
        """
        from ._parquet import read_parquet

        rows, lines = read_parquet(path, columns)
        return cls(rows, lines=lines, source=os.fspath(path))

    @classmethod
    def from_hf(
        cls,
        source: Any,
        *,
        split: str | None = None,
        revision: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> Dataset:
        """Examples from Hugging Face ``datasets`` (the ``hf`` extra; imported only here).

        ``source`` is a ``datasets.Dataset``, ``DatasetDict`` or ``IterableDataset``, a folder written by
        ``save_to_disk``, or a name for ``datasets.load_dataset`` (a hub id such as ``"org/name"`` at
        ``revision``, or a local folder of data files). ``split`` picks the split of a dataset that has several
        (``"train"``, or ``"train[:100]"`` for ``load_dataset``); ``columns`` keeps only those columns. Each row
        is one example, taken as it is: a ``messages`` column makes chat examples; a null field that Arrow added
        to a message is dropped (``content`` excepted).

        Raises :class:`~finetune_embed.MissingDependencyError` without ``datasets``,
        :class:`~finetune_embed.InvalidArgumentError` for a missing or unknown ``split``, and
        :class:`~finetune_embed.DatasetFormatError` when loading fails (a name that is not found, no network).
        """
        from ._hf import rows_from_hf

        rows, name = rows_from_hf(source, split=split, revision=revision, columns=columns)
        return cls(rows, source=name)

    # --- output -----------------------------------------------------------------------------------------------

    def to_json(self, path: str | os.PathLike[str]) -> int:
        """Write the examples as JSONL (UTF-8, LF, one object per line), atomically: a temporary file renamed over
        ``path`` once complete. Returns the number of examples written."""
        current = [0]

        def lines() -> Iterator[str]:
            for i, row in enumerate(self._rows):
                current[0] = i
                try:
                    yield dump_line(row)
                except (TypeError, ValueError, RecursionError) as exc:
                    raise DatasetFormatError(_unwritable(i, self._lines[i], exc), path=self.source) from None

        try:
            return atomic_write_lines(path, lines())
        except UnicodeEncodeError as exc:  # a lone surrogate: not encodable as UTF-8
            i = current[0]
            raise DatasetFormatError(_unwritable(i, self._lines[i], exc), path=self.source) from None

    def to_parquet(self, path: str | os.PathLike[str]) -> int:
        """Write the examples as a Parquet file, atomically (needs pyarrow: the ``parquet`` extra). Each top-level
        key is a column, stored as Arrow types where they hold the values exactly and as JSON text otherwise,
        so :meth:`from_parquet` reads back the same examples. Returns the number of examples written."""
        from ._parquet import write_parquet

        return write_parquet(self._rows, self._lines, path, self.source)

    def to_list(self) -> list[dict[str, Any]]:
        """The examples as a list of dicts (deep copies: changing them leaves the dataset alone)."""
        return [self._copy(i) for i in range(len(self._rows))]

    def _copy(self, index: int) -> dict[str, Any]:
        try:
            return copy.deepcopy(self._rows[index])
        except RecursionError:
            raise DatasetFormatError(too_deep_message(f"example {index}"), path=self.source) from None

    def to_pandas(self) -> pd.DataFrame:
        """The examples as a DataFrame, one column per top-level key (needs pandas: the ``pandas`` extra)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is in the dev extra
            raise MissingDependencyError(
                "to_pandas needs pandas: pip install 'finetune-embed[pandas]'", package="pandas", extra="pandas"
            ) from exc
        return pd.DataFrame(self.to_list())

    # --- access -----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Dataset: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Dataset:
        """``ds[i]`` is the i-th example as a dict; ``ds[a:b]`` a new Dataset."""
        if isinstance(index, slice):
            return Dataset(self._rows[index], lines=self._lines[index], source=self.source)
        return self._rows[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def __repr__(self) -> str:
        fmt = self._detected_format() or "unknown"
        src = f", source={self.source!r}" if self.source else ""
        return f"Dataset(n={len(self)}, format={fmt!r}{src})"

    @property
    def lines(self) -> list[int | None]:
        """The source line of each example (``None`` for examples built in memory)."""
        return list(self._lines)

    def _detected_format(self) -> str | None:
        for row in self._rows:
            fmt = detect_format(row)
            if fmt is not None:
                return fmt
        return None

    @property
    def format(self) -> Format:
        """``"chat"``, ``"preference"`` or ``"completion"``: the format of the first recognisable example
        (:meth:`validate` reports examples of another format). An empty dataset is ``"chat"``."""
        fmt = self._detected_format()
        if fmt is None:
            if not self._rows:
                return "chat"
            raise DatasetFormatError(
                "no example has the keys of a known format (messages; input/preferred_output/non_preferred_output; "
                "prompt/completion)",
                path=self.source,
            )
        return fmt  # type: ignore[return-value]

    def example(self, index: int) -> Example:
        """The ``index``-th example as a typed model (:class:`ChatExample`, ...).

        Raises :class:`~finetune_embed.DatasetValidationError` (with the report of that example) when the row
        does not fit its format's schema.
        """
        row = self._rows[index]
        fmt = detect_format(row) or self.format
        model = _example_model(fmt)
        from pydantic import ValidationError

        try:
            return model.model_validate(row)
        except RecursionError:
            raise DatasetFormatError(too_deep_message(f"example {index}"), path=self.source) from None
        except ValidationError as exc:
            report = self[index : index + 1 if index != -1 else None].validate(min_examples=0)
            line = self._lines[index] or (index % len(self)) + 1
            raise DatasetValidationError(
                f"example {index} (line {line}) is not a valid {fmt} example: {exc.error_count()} problem(s); "
                f"{report.issues[0].message if report.issues else exc.errors()[0]['msg']}",
                report=report,
            ) from exc

    def examples(self) -> Iterator[Example]:
        """Every example as a typed model (see :meth:`example`)."""
        for i in range(len(self)):
            yield self.example(i)

    # --- validation and description ---------------------------------------------------------------------------

    def validate(
        self,
        *,
        model: str | None = None,
        method: str | None = None,
        max_issues: int = 1000,
        on: date | None = None,
        provider: str = "openai",
        max_example_tokens: int | None = None,
        min_examples: int = 10,
    ) -> ValidationReport:
        """Check every example (the same checks as :meth:`validate_file`, minus the byte-level ones) and return
        a :class:`ValidationReport`. Lines are the examples' source lines (or positions when built in memory)."""
        return validate_rows(
            self._rows,
            self._lines,
            name=self.source,
            model=model,
            method=method,
            max_issues=max_issues,
            on=on,
            provider=provider,
            max_example_tokens=max_example_tokens,
            min_examples=min_examples,
        )

    def stats(
        self,
        *,
        model: str | None = None,
        method: str | None = None,
        counting: Literal["model", "cookbook"] = "model",
        n_epochs: int | None = None,
        max_example_tokens: int | None = None,
        validation: Dataset | None = None,
    ) -> DatasetStats:
        """Token distributions, epochs, billed tokens, cost and balance signals (see :class:`DatasetStats`).

        ``model`` picks the encoding, the per-example limit and the price; ``counting="cookbook"`` reproduces the
        cookbook notebook's figures instead. ``validation`` counts examples shared with a validation set.
        """
        report = validate_rows(
            self._rows,
            self._lines,
            name=self.source,
            model=model,
            method=method,
            stats=True,
            counting=counting,
            n_epochs=n_epochs,
            max_example_tokens=max_example_tokens,
            min_examples=0,
            validation_rows=validation._rows if validation is not None else None,
        )
        assert report.stats is not None
        return report.stats

    def token_counts(
        self, *, model: str | None = None, counting: Literal["model", "cookbook"] = "model"
    ) -> list[ExampleTokens]:
        """``(total, assistant)`` tokens of each example, counted as :meth:`stats` counts them."""
        return token_counts(self._rows, model=model, counting=counting)

    @staticmethod
    def validate_file(
        path: str | os.PathLike[str],
        *,
        model: str | None = None,
        method: str | None = None,
        max_issues: int = 1000,
        stats: bool = False,
        counting: Literal["model", "cookbook"] = "model",
        n_epochs: int | None = None,
        on: date | None = None,
        provider: str = "openai",
        max_example_tokens: int | None = None,
        min_examples: int = 10,
        workers: int | Literal["auto"] | None = None,
        progress: bool | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        start_method: Literal["forkserver", "spawn", "fork"] | None = None,
    ) -> ValidationReport:
        """Validate a JSONL file of any size in constant memory and return a :class:`ValidationReport`.

        Every line is checked (encoding, JSON, keys, roles, content, tools, weights, images, reserved tokens,
        duplicates); with ``model`` also the per-example token limit (tool definitions counted), the method and
        format the model accepts and its availability on day ``on`` (default today); with ``stats=True`` the
        report carries :class:`DatasetStats` computed in the same pass. Up to ``max_issues`` issues are kept
        (``report.counts`` counts all). ``max_example_tokens`` overrides the model's per-example limit and
        ``min_examples`` the service's minimum of 10.

        Parallelism is explicit: by default (``workers=None`` or ``1``) everything runs in this process and no
        process is started. ``workers=N`` splits the file at line boundaries over N processes (this one and N - 1
        workers); ``workers="auto"`` picks one per usable CPU, at most 8, for files of 48 MB or more (the choice
        depends only on the file's size and the CPU count). The report is the same either way. Workers start by
        ``start_method``: default ``forkserver`` (``spawn`` where the platform has no forkserver), safe whatever
        threads run; both import your ``__main__`` module again, so a script needs ``if __name__ == "__main__":``
        (a notebook or the REPL does not). ``start_method="fork"`` starts faster but is unsafe when other threads
        run in this process.

        Only regular files are read: a device or a FIFO (``/dev/zero``) is reported as ``file_unreadable`` before
        anything is read. A line longer than ``max_line_bytes`` (default 512 MB, the Files API's limit on a whole
        file) is reported as ``line_too_long`` and skipped without being held in memory.
        """
        return validate_path(
            path,
            model=model,
            method=method,
            max_issues=max_issues,
            stats=stats,
            counting=counting,
            n_epochs=n_epochs,
            on=on,
            provider=provider,
            max_example_tokens=max_example_tokens,
            min_examples=min_examples,
            workers=workers,
            progress=progress,
            max_line_bytes=max_line_bytes,
            start_method=start_method,
        )

    @staticmethod
    def stats_file(
        path: str | os.PathLike[str],
        *,
        model: str | None = None,
        method: str | None = None,
        counting: Literal["model", "cookbook"] = "model",
        n_epochs: int | None = None,
        validation: str | os.PathLike[str] | None = None,
        workers: int | Literal["auto"] | None = None,
        progress: bool | None = None,
        start_method: Literal["forkserver", "spawn", "fork"] | None = None,
    ) -> DatasetStats:
        """:class:`DatasetStats` of a file, streamed (the stats half of ``validate_file(..., stats=True)``);
        with ``validation`` (another JSONL file), ``n_leaked`` counts its examples that are also in this one.
        ``workers`` and ``start_method`` as in :meth:`validate_file`."""
        report = validate_path(
            path,
            model=model,
            method=method,
            stats=True,
            counting=counting,
            n_epochs=n_epochs,
            workers=workers,
            progress=progress,
            min_examples=0,
            validation=validation,
            start_method=start_method,
        )
        if report.stats is None:  # the file could not be read at all (missing, a folder, no permission)
            from .._exceptions import FileAccessError

            reason = report.errors[0].message if report.errors else "it could not be read"
            raise FileAccessError(f"No statistics for {path}: {reason}", path=str(path))
        return report.stats

    @staticmethod
    def fix_file(
        path: str | os.PathLike[str],
        *,
        output: str | os.PathLike[str] | None = None,
        rejected: str | os.PathLike[str] | None = None,
        model: str | None = None,
        method: str | None = None,
        dedupe: bool = True,
    ) -> FixResult:
        """Apply the mechanical fixes to a file and write ``<name>.fixed.jsonl`` and ``<name>.rejected.jsonl``
        (each rejected line with its reasons). See :func:`finetune_embed.dataset.fix_file`."""
        return fix_file(path, output=output, rejected=rejected, model=model, method=method, dedupe=dedupe)

    fix = fix_file

    def analyze(
        self,
        embedder: Embedder | None = None,
        *,
        validation: Dataset | str | os.PathLike[str] | None = None,
        clusters: int | None = None,
        similarity: float = 0.95,
        answer_similarity: float = 0.95,
        outlier_z: float = 3.5,
        seed: int = 0,
    ) -> DatasetAnalysis:
        """Data-quality analysis with embeddings (``embedder``: any :class:`~finetune_embed.Embedder`; default
        ``Embedder()`` from the environment): conflicting examples (near-identical prompts, different answers),
        topic clusters with sizes, examples and refusal shares, semantic near-duplicates, leakage into
        ``validation``, and outliers, each at its line numbers. ``similarity`` is the prompt cosine from which two
        prompts count as near-identical. See :func:`finetune_embed.evaluate.analyze_dataset`."""
        from ..evaluate import analyze_dataset

        return analyze_dataset(
            self,
            embedder,
            validation=validation,
            clusters=clusters,
            similarity=similarity,
            answer_similarity=answer_similarity,
            outlier_z=outlier_z,
            seed=seed,
        )

    # --- transformations --------------------------------------------------------------------------------------

    def _new(self, rows: list[dict[str, Any]], lines: list[int | None]) -> Dataset:
        return Dataset(rows, lines=lines, source=self.source)

    def map(self, fn: Callable[[dict[str, Any]], dict[str, Any] | BaseModel]) -> Dataset:
        """A new dataset of ``fn(example)`` for each example (``fn`` gets a copy; lines are kept)."""
        return self._new([_as_row(fn(self._copy(i)), i) for i in range(len(self._rows))], list(self._lines))

    def filter(self, fn: Callable[[dict[str, Any]], bool]) -> Dataset:
        """A new dataset of the examples for which ``fn(example)`` is true (lines are kept)."""
        keep = [i for i, r in enumerate(self._rows) if fn(r)]
        return self._new([self._rows[i] for i in keep], [self._lines[i] for i in keep])

    def dedupe(self, *, near: bool = False) -> Dataset:
        """A new dataset without exact duplicates (the first copy is kept); with ``near=True`` also without
        near duplicates (the same conversation after folding case and whitespace, system prompts ignored)."""
        seen: set[int] = set()
        keep: list[int] = []
        for i, row in enumerate(self._rows):
            key = near_digest(row) if near else canonical_digest(row)
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return self._new([self._rows[i] for i in keep], [self._lines[i] for i in keep])

    def train_test_split(
        self, test_size: float | int = 0.1, *, seed: int | None = None, shuffle: bool = True
    ) -> DatasetSplits:
        """Split into train and test sets. Near-duplicate examples stay together (all in train or all in test),
        so the test set never leaks training data. ``test_size`` is a fraction (0 < f < 1) or a count below the
        number of examples (all of them would leave no training data);
        ``seed`` makes the shuffle reproducible; ``shuffle=False`` takes the test set from the end."""
        n = len(self)
        if isinstance(test_size, bool) or not isinstance(test_size, int | float):
            raise InvalidArgumentError(
                f"test_size must be a fraction (0 < f < 1) or a number of examples, not {type(test_size).__name__}",
                argument="test_size",
            )
        if isinstance(test_size, float):
            if not 0.0 < test_size < 1.0:
                raise InvalidArgumentError(
                    f"test_size as a fraction must be between 0 and 1, not {test_size}", argument="test_size"
                )
            target = max(1, math.floor(n * test_size + 0.5)) if n > 1 else 0
        else:
            if test_size < 0 or test_size > n:
                raise InvalidArgumentError(
                    f"test_size must be between 0 and {n} examples, not {test_size}", argument="test_size"
                )
            if n and test_size == n:
                raise InvalidArgumentError(
                    f"test_size={n} would put all {n} examples in the test set and none in training; "
                    f"give at most {n - 1}",
                    argument="test_size",
                )
            target = int(test_size)
        groups: dict[int, list[int]] = {}
        for i, row in enumerate(self._rows):
            groups.setdefault(near_digest(row), []).append(i)
        order = list(groups.values())
        if shuffle:
            random.Random(seed).shuffle(order)
        else:
            order.reverse()
        test_idx: list[int] = []
        for members in order:
            room = target - len(test_idx)
            if room <= 0:
                break
            if len(members) <= room:
                test_idx.extend(members)
        if not test_idx and target > 0:  # every group is larger than the target: take the smallest one
            smallest = min(order, key=len)
            if len(smallest) < n:
                test_idx.extend(smallest)
        test_set = set(test_idx)
        train_idx = [i for i in range(n) if i not in test_set]
        test_idx.sort()
        if shuffle:
            rng = random.Random(None if seed is None else seed + 1)
            rng.shuffle(train_idx)
            rng.shuffle(test_idx)
        return DatasetSplits(
            self._new([self._rows[i] for i in train_idx], [self._lines[i] for i in train_idx]),
            self._new([self._rows[i] for i in test_idx], [self._lines[i] for i in test_idx]),
        )

    def convert(self, to: Literal["chat"] = "chat", *, system: str | None = None) -> Dataset:
        """Convert to chat examples: prompt/completion pairs become user/assistant turns (stripped of
        surrounding whitespace, with an optional ``system`` prompt); preference pairs keep their input and
        preferred reply (for supervised training on the preferred answers). Chat examples are unchanged."""
        if to != "chat":
            raise InvalidArgumentError(f"only conversion to 'chat' is supported, not {to!r}", argument="to")
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(self._rows):
            fmt = detect_format(row)
            if fmt == "completion":
                prompt, completion = row.get("prompt"), row.get("completion")
                if not isinstance(prompt, str) or not isinstance(completion, str):
                    raise DatasetFormatError(
                        "prompt and completion must be strings to convert",
                        path=self.source,
                        line=self._lines[i] or i + 1,
                    )
                rows.append(_chat_row(prompt.strip(), completion.strip(), system))
            elif fmt == "preference":
                inp = row.get("input") if isinstance(row.get("input"), dict) else {}
                out = row.get("preferred_output")
                if not isinstance(out, list) or not out:
                    raise DatasetFormatError(
                        "a preference example without preferred_output cannot be converted",
                        path=self.source,
                        line=self._lines[i] or i + 1,
                    )
                chat: dict[str, Any] = {"messages": [*list(inp.get("messages") or []), *out]}  # type: ignore[union-attr]
                for key in ("tools", "parallel_tool_calls"):
                    if key in inp:  # type: ignore[operator]
                        chat[key] = inp[key]  # type: ignore[index]
                rows.append(chat)
            elif fmt == "chat":
                rows.append(row)
            else:
                raise DatasetFormatError(
                    "the example has no known format to convert from", path=self.source, line=self._lines[i] or i + 1
                )
        return self._new(rows, list(self._lines))


def _unwritable(index: int, line: int | None, exc: BaseException) -> str:
    where = f"example {index}" + (f" (line {line})" if line is not None else "")
    if isinstance(exc, UnicodeEncodeError):
        return (
            f"{where} holds text that is not valid Unicode (an unpaired surrogate such as {exc.object[exc.start]!r}), "
            "which UTF-8 cannot encode; fix or drop the string (Dataset.validate reports it as lone_surrogate)"
        )
    if isinstance(exc, RecursionError):
        return too_deep_message(where)
    if isinstance(exc, ValueError):
        return f"{where} holds NaN or Infinity, which JSON cannot represent; replace it with a number or null"
    return f"{where} holds a value JSON cannot represent ({exc}); convert it to a string, number, list or dict"


def _chat_row(prompt: str, completion: str, system: str | None) -> dict[str, Any]:
    from ._models import AssistantMessage, ChatExample, SystemMessage, UserMessage

    messages: list[Any] = []
    if system:
        messages.append(SystemMessage(content=system))
    messages.append(UserMessage(content=prompt))
    messages.append(AssistantMessage(content=completion))
    return ChatExample(messages=messages).to_dict()


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:  # pragma: no cover
        return False
