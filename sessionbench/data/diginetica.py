"""Reader of the raw DIGINETICA file (CIKM Cup 2016, track 2): ``train-item-views.csv``.

``;``-separated with a header ``sessionId;userId;itemId;timeframe;eventdate`` (SR-GNN's copy
spells it ``session_id;user_id;item_id;timeframe;eventdate``); ``eventdate`` is a day
(YYYY-MM-DD), ``timeframe`` an integer ordering the clicks of a session. The file itself or
the distributed zip is accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from sessionbench.data.protocol import DAY, Clicks
from sessionbench.data.rawcsv import Column, first_line, read_columns
from sessionbench.errors import DataError

__all__ = ["find_raw", "read_clicks"]

MEMBER = "train-item-views.csv"
_COLUMNS = (
    Column("session", "int", pa.int64()),
    Column("user", "any"),
    Column("item", "int", pa.int64()),
    Column("timeframe", "int", pa.int64()),
    Column("eventdate", "date", pa.date32()),
)
_DESCRIBE = "5 ';'-separated fields (sessionId;userId;itemId;timeframe;eventdate)"


def find_raw(directory: Path) -> Path | None:
    """The raw file (or its zip) in ``directory``, if any."""
    for pattern in (f"*{MEMBER}", "*diginetica*.zip"):
        found = sorted(p for p in directory.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


def _hint(line: str) -> str:
    if line.count(",") >= 3 and ";" not in line:
        return "It looks comma-separated: is this the YOOCHOOSE file? See --dataset."
    return ""


def read_clicks(path: Path) -> Clicks:
    """Read the clicks in file order; ``time`` is the eventdate at midnight UTC.

    Raises:
        DataError: a header or row that is not in the DIGINETICA format (file, line, field).
    """
    header = first_line(path, MEMBER)
    normalised = header.lower().replace("_", "")
    if normalised != "sessionid;userid;itemid;timeframe;eventdate":
        raise DataError(
            f"{path.name} line 1: expected the header 'sessionId;userId;itemId;timeframe;eventdate', "
            f"found {header[:120]!r}. {_hint(header)}".rstrip()
        )
    table = read_columns(path, _COLUMNS, delimiter=";", header=True, describe=_DESCRIBE, member_suffix=MEMBER, hint=_hint)
    days = table.column("eventdate").to_numpy().astype("datetime64[D]").astype(np.int64)
    return Clicks(
        session=table.column("session").to_numpy(),
        item=table.column("item").to_numpy(),
        time=days.astype(np.float64) * DAY,
        order_key=table.column("timeframe").to_numpy(),
        source=path.name,
    )
