"""Reader of a generic click file, for ``csv:PATH`` datasets.

A header names the columns ``session_id``, ``item_id`` and ``timestamp`` (other columns are
ignored; session-rec's ``SessionId``/``ItemId``/``Time`` are accepted too). The separator is
taken from the header line (``,``, ``;`` or tab). Timestamps are unix seconds or ISO 8601.
Clicks inside a session are ordered by timestamp (stable, so equal times keep file order).

Ids are read as text. A column whose every value is a clean integer (``0``, ``-12``, ``1000``:
no sign ``+``, no leading zero, no exponent, fits int64) becomes int64; any other column keeps
its strings, so ``1e3`` and ``007`` stay themselves and never merge with ``1000`` or ``7``.
An empty id or timestamp is an error naming the line.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sessionbench.data.protocol import Clicks
from sessionbench.data.rawcsv import Column, describe_value, first_line, line_of_row, read_columns
from sessionbench.errors import DataError

__all__ = ["read_clicks"]

_ALIASES = {
    "session_id": ("session_id", "sessionid", "session"),
    "item_id": ("item_id", "itemid", "item"),
    "timestamp": ("timestamp", "time", "ts"),
}
_CLEAN_INT = r"^(0|-?[1-9][0-9]*)$"
_NUMBER = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"


def read_clicks(path: Path) -> Clicks:
    """Read ``path`` in file order.

    Raises:
        DataError: a missing column, a row with the wrong number of fields, an empty id, or a
            value that is not a time (naming the line and the field).
    """
    if not path.is_file():
        raise DataError(f"csv:{path}: no such file; expected a click file with columns session_id,item_id,timestamp")
    delimiter, fields, names = _header(path)
    wanted = set(names.values())
    table = read_columns(
        path,
        [Column(f, "any", pa.string() if f in wanted else None) for f in fields],
        delimiter=delimiter,
        header=True,
        describe=f"{len(fields)} {delimiter!r}-separated fields ({', '.join(fields)})",
    )
    where = _Where(path, delimiter)
    time = _seconds(table.column(names["timestamp"]).combine_chunks(), names["timestamp"], where)
    return Clicks(
        session=_ids(table.column(names["session_id"]).combine_chunks(), names["session_id"], where),
        item=_ids(table.column(names["item_id"]).combine_chunks(), names["item_id"], where),
        time=time,
        order_key=time,
        source=path.name,
    )


def _header(path: Path) -> tuple[str, list[str], dict[str, str]]:
    """(delimiter, every header field, the file's name of each canonical column)."""
    header = first_line(path)
    delimiter = max((",", ";", "\t"), key=header.count)
    fields = next(csv.reader([header], delimiter=delimiter), [])
    lowered = [f.strip().lower() for f in fields]
    names = {}
    for canonical, aliases in _ALIASES.items():
        match = next((fields[i] for i, f in enumerate(lowered) if f in aliases), None)
        if match is None:
            raise DataError(
                f"{path.name} line 1: expected a header with the columns session_id, item_id, timestamp "
                f"(separated by ',', ';' or tab), found {header[:120]!r}"
            )
        names[canonical] = match
    return delimiter, fields, names


class _Where:
    """Turns a row index into the message for a bad value (scanning the file: errors only)."""

    def __init__(self, path: Path, delimiter: str) -> None:
        self.path, self.delimiter = path, delimiter

    def error(self, values: pa.Array, bad: pa.Array, field: str, expected: str) -> DataError:
        row = pc.index(bad, True).as_py()
        line = line_of_row(self.path, row, self.delimiter, header=True)
        found = describe_value(values[row].as_py())
        return DataError(f"{self.path.name} line {line}: field {field!r} should be {expected}, found {found}")


def _ids(values: pa.Array, field: str, where: _Where) -> np.ndarray:
    """int64[n] when every id is a clean integer, else the strings (object[n])."""
    empty = pc.equal(pc.utf8_trim_whitespace(values), "")
    if pc.any(empty).as_py():
        raise where.error(values, empty, field, "an id (text or an integer)")
    if pc.all(pc.match_substring_regex(values, _CLEAN_INT)).as_py():
        try:
            return pc.cast(values, pa.int64()).to_numpy()
        except pa.ArrowInvalid:
            pass  # an integer past int64: the ids stay strings
    return values.to_numpy(zero_copy_only=False)


def _seconds(values: pa.Array, field: str, where: _Where) -> np.ndarray:
    """float64[n] unix seconds: numbers when the first value is one, else ISO 8601 times."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.float64)
    expected = "unix seconds or ISO 8601"
    stripped = pc.utf8_trim_whitespace(values)
    numeric = pc.match_substring_regex(stripped, _NUMBER)
    if numeric[0].as_py():
        bad = pc.invert(numeric)
        if pc.any(bad).as_py():
            raise where.error(values, bad, field, expected)
        return pc.cast(stripped, pa.float64()).to_numpy()
    parsed = pd.to_datetime(pd.Series(stripped.to_numpy(zero_copy_only=False)), utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise where.error(values, pa.array(bad), field, expected)
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
