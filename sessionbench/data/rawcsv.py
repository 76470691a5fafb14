"""Fast reading of delimited click files, with errors that name the file and line.

The fast path is pyarrow's multi-threaded CSV reader with explicit column types and only the
needed columns (33M YOOCHOOSE rows in seconds). No value is read as null: an empty field (or
``NA``) in a typed column fails the read like any other bad value. pyarrow's own errors do not
say which line is wrong, so when it fails the file is scanned again line by line, in Python, to
find the first row that does not match what was expected, and that row is reported.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv

from sessionbench.errors import DataError

__all__ = ["Column", "describe_value", "first_line", "line_of_row", "open_binary", "read_columns"]

_PATTERNS = {
    "int": re.compile(r"-?\d+"),
    "number": re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?"),
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "iso": re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"),
    "any": re.compile(r".*"),
}
_EXPECTED = {
    "int": "an integer (int64)",
    "number": "a number",
    "date": "a date (YYYY-MM-DD)",
    "iso": "an ISO 8601 time",
    "any": "any text",
}


def _int64(value: str) -> int:
    if not -(2**63) <= int(value) < 2**63:
        raise ValueError(f"{value} does not fit int64")
    return int(value)


# what a pattern cannot say: the integer fits int64, the date exists
_CHECKS: dict[str, Callable[[str], object]] = {
    "int": _int64,
    "date": dt.date.fromisoformat,
    "iso": dt.datetime.fromisoformat,
}


def _valid(pattern: str, value: str) -> bool:
    if not _PATTERNS[pattern].fullmatch(value):
        return False
    try:
        _CHECKS.get(pattern, str)(value)
    except ValueError:
        return False
    return True


def describe_value(value: str) -> str:
    """A found value for messages: ``'abc'``, or ``an empty field``."""
    return "an empty field" if not value.strip() else repr(value[:60])


@dataclass(frozen=True)
class Column:
    """One field of a row: its name, the pattern it must match, the arrow type it is read as
    (None: not read)."""

    name: str
    pattern: str
    arrow_type: pa.DataType | None = None


def open_binary(path: Path, member_suffix: str | None = None) -> IO[bytes]:
    """Open ``path`` for reading; a ``.zip`` is opened at its member ending in ``member_suffix``."""
    if path.suffix.lower() != ".zip":
        return open(path, "rb")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: not a readable zip archive ({e})") from e
    names = [n for n in archive.namelist() if member_suffix and n.endswith(member_suffix)]
    if not names:
        raise DataError(f"{path}: the archive holds no file named *{member_suffix}; it holds {archive.namelist()[:10]}")
    return archive.open(names[0])


def read_columns(
    path: Path,
    columns: Sequence[Column],
    *,
    delimiter: str,
    header: bool,
    describe: str,
    member_suffix: str | None = None,
    hint: Callable[[str], str] = lambda line: "",
) -> pa.Table:
    """Read the typed columns of a delimited file.

    Args:
        path: The file (or zip archive).
        columns: Every field of a row, in order; those with an arrow type are returned.
        delimiter: Field separator.
        header: The first line is a header (skipped).
        describe: What a row should look like, for messages, e.g. "4 comma-separated fields
            (session, time, item, category)".
        hint: Given a bad line, a sentence suggesting the cause (e.g. the wrong dataset).

    Raises:
        DataError: naming the file, the first bad line, what was expected and what was found.
    """
    names = [c.name for c in columns]
    convert = pacsv.ConvertOptions(
        include_columns=[c.name for c in columns if c.arrow_type is not None],
        column_types={c.name: c.arrow_type for c in columns if c.arrow_type is not None},
        null_values=[],  # an empty field is an error, never a null that becomes NaN
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    read = pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0, block_size=1 << 24)
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        with open_binary(path, member_suffix) as f:
            return pacsv.read_csv(f, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        located = _find_bad_line(path, columns, delimiter, header, describe, member_suffix, hint)
        raise DataError(located or f"{path}: could not be read as {describe}: {e}") from e


def _find_bad_line(
    path: Path,
    columns: Sequence[Column],
    delimiter: str,
    header: bool,
    describe: str,
    member_suffix: str | None,
    hint: Callable[[str], str],
) -> str | None:
    with open_binary(path, member_suffix) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        for number, row in enumerate(csv.reader(text, delimiter=delimiter), start=1):
            if number == 1 and header:
                continue
            line = delimiter.join(row)
            if len(row) != len(columns):
                found = f"{len(row)} field(s)"
                return f"{path.name} line {number}: expected {describe}, found {found}: {line[:120]!r}. {hint(line)}".rstrip()
            for column, value in zip(columns, row):
                if not _valid(column.pattern, value):
                    return (
                        f"{path.name} line {number}: field {column.name!r} should be {_EXPECTED[column.pattern]}, "
                        f"found {describe_value(value)}; rows are {describe}. {hint(line)}"
                    ).rstrip()
    return None


def line_of_row(path: Path, row: int, delimiter: str, header: bool) -> int:
    """The 1-based number of the line that data row ``row`` (0-based, counted as pyarrow counts
    rows: blank lines skipped) ends on, found by scanning the file: for messages only."""
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        seen = -1 if header else 0
        for fields in reader:
            if not fields:
                continue
            if seen == row:
                return reader.line_num
            seen += 1
    return row + (2 if header else 1)


def first_line(path: Path, member_suffix: str | None = None) -> str:
    """The first line of the file, decoded leniently (to check headers and delimiters)."""
    with open_binary(path, member_suffix) as f:
        raw = f.readline(4096)
    return codecs.decode(raw, "utf-8", errors="replace").rstrip("\r\n").lstrip("\ufeff")
