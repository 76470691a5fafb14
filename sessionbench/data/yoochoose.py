"""Reader of the raw YOOCHOOSE clicks (RecSys Challenge 2015): ``yoochoose-clicks.dat``.

``,``-separated, no header, ``SessionId,Timestamp,ItemId,Category`` with ISO timestamps
(``2014-04-07T10:51:09.277Z``). 33M rows: only the three needed columns are read, with
explicit types, by pyarrow's threaded reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from sessionbench.data.protocol import Clicks
from sessionbench.data.rawcsv import Column, read_columns

__all__ = ["find_raw", "read_clicks"]

FILE = "yoochoose-clicks.dat"
_COLUMNS = (
    Column("session", "int", pa.int64()),
    Column("timestamp", "iso", pa.timestamp("ms", tz="UTC")),
    Column("item", "int", pa.int64()),
    Column("category", "any"),
)
_DESCRIBE = "4 comma-separated fields (session, time, item, category)"


def find_raw(directory: Path) -> Path | None:
    """The raw clicks file in ``directory``, if any (also ``*.zip`` holding it)."""
    for pattern in (FILE, "*yoochoose-clicks*.dat", "*yoochoose*.zip"):
        found = sorted(p for p in directory.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


def _hint(line: str) -> str:
    if line.count(";") >= 3:
        return "It looks ';'-separated: is this the DIGINETICA file? See --dataset."
    return ""


def read_clicks(path: Path) -> Clicks:
    """Read the clicks in file order; ``time`` is the click's timestamp in whole seconds UTC
    (the reference parses ``timestamp[:19]``, dropping the milliseconds).

    Raises:
        DataError: a row that is not in the YOOCHOOSE format (file, line, field).
    """
    table = read_columns(path, _COLUMNS, delimiter=",", header=False, describe=_DESCRIBE, member_suffix=FILE, hint=_hint)
    ms = table.column("timestamp").cast(pa.int64()).to_numpy()
    return Clicks(
        session=table.column("session").to_numpy(),
        item=table.column("item").to_numpy(),
        time=(ms // 1000).astype(np.float64),
        order_key=None,
        source=path.name,
    )
