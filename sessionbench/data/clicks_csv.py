"""Reader of a generic click file, for ``csv:PATH`` datasets.

A header names the columns ``session_id``, ``item_id`` and ``timestamp`` (other columns are
ignored; session-rec's ``SessionId``/``ItemId``/``Time`` are accepted too). The separator is
taken from the header line (``,``, ``;`` or tab). Timestamps are unix seconds or ISO 8601.
Clicks inside a session are ordered by timestamp (stable, so equal times keep file order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from sessionbench.data.protocol import Clicks
from sessionbench.data.rawcsv import first_line, open_binary
from sessionbench.errors import DataError

__all__ = ["read_clicks"]

_ALIASES = {
    "session_id": ("session_id", "sessionid", "session"),
    "item_id": ("item_id", "itemid", "item"),
    "timestamp": ("timestamp", "time", "ts"),
}


def read_clicks(path: Path) -> Clicks:
    """Read ``path`` in file order.

    Raises:
        DataError: a missing column, or a value that is not a time (naming the line).
    """
    if not path.is_file():
        raise DataError(f"csv:{path}: no such file; expected a click file with columns session_id,item_id,timestamp")
    header = first_line(path)
    delimiter = max((",", ";", "\t"), key=header.count)
    fields = header.split(delimiter)
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
    try:
        with open_binary(path) as f:
            table = pacsv.read_csv(
                f,
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(include_columns=list(names.values())),
            )
    except pa.ArrowInvalid as e:
        raise DataError(f"{path.name}: not a valid {delimiter!r}-separated file with {len(fields)} columns: {e}") from e
    time = _seconds(table.column(names["timestamp"]), path)
    return Clicks(
        session=_ids(table.column(names["session_id"])),
        item=_ids(table.column(names["item_id"])),
        time=time,
        order_key=time,
        source=str(path),
    )


def _ids(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False)


def _seconds(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.to_numpy().astype(np.float64)
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy() / 1e9
    values = pd.Series(column.to_numpy(zero_copy_only=False))
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{path.name} line {bad[0] + 2}: timestamp should be unix seconds or ISO 8601, found {values[bad[0]]!r}"
        )
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
