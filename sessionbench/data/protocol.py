"""The paper's preprocessing protocol, one implementation for every raw dataset.

It reproduces the preprocessing the NARM authors used and SR-GNN republished
(SR-GNN ``datasets/preprocess.py``, CRIPAC-DIG/SR-GNN@e21cfa4), vectorised with numpy so that
33M YOOCHOOSE clicks take seconds, not a Python dict per session:

1. Group clicks by session. Within a session keep file order or sort by a key (DIGINETICA:
   timeframe) with a stable sort, so ties keep file order. A session's time is the time of
   its last row in file order (the reference assigns the date when the session id changes).
2. Drop sessions of length 1; count item occurrences once over what remains; remove items seen
   fewer than 5 times; drop sessions left with fewer than 2 clicks.
3. Split by time: test sessions have time > maxdate - test_days, train sessions time <
   maxdate - test_days (a session exactly at the split time is in neither). Both are sorted
   by time; equal times keep the order of the session's first appearance in the file (the
   reference sorts dict items stably, and dicts keep insertion order).
4. Number items 0.. in order of first appearance in the time-sorted train sessions; remove
   test clicks on items not in train, then test sessions left shorter than 2.
5. (Prefix expansion is implicit: every prefix of a session is a case, see `Sessions`.)
6. For YOOCHOOSE 1/64 and 1/4, keep the most recent int(N/k) of the N expanded training
   sequences. The reference emits a session's sequences longest prefix first, so a session
   cut in two keeps its shortest prefixes: it is stored truncated. The item index stays the
   one built on all training data.

Deviations from the reference: times are taken in UTC (the reference used the machine's local
time through ``time.mktime``); none else.

Checks the reference does not make (:func:`tiny_test_problem`, :func:`time_problems`): an empty
train or test set is a :class:`DataError` (with the counts after every step); a tiny test set
(fewer than ``MIN_TEST_CASES`` cases *and* under ``MIN_TEST_SHARE`` of the training cases),
times that look like the wrong unit (the bulk of the sessions spans more than 50 years, or is
dated after 2200: milliseconds given as seconds; or everything lies within an hour) and a few
sessions far later than the bulk (one click dated 2099 moves the test window onto it) are
:class:`DataWarning` s, recorded in ``split.info["warnings"]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sessionbench.data.sessions import Sessions, Split, ragged_ranges
from sessionbench.errors import DataError, DataWarning
from sessionbench.params import Rule, is_integer, is_real

__all__ = [
    "MIN_TEST_CASES",
    "MIN_TEST_SHARE",
    "RULES",
    "Clicks",
    "Protocol",
    "apply_protocol",
    "rule_problem",
    "time_problems",
    "tiny_test_problem",
]

DAY = 86400.0
YEAR = 365.25 * DAY

#: A test set is tiny when it has fewer cases than this *and* under MIN_TEST_SHARE of the
#: training cases. Either alone would flag real splits: the 12k-click DIGINETICA sample has 99
#: test cases (8% of its training cases), YOOCHOOSE 1/4 has 55,898 (0.94%). 1,000 cases put the
#: standard error of a Recall@20 near 0.5 at 1.6 points.
MIN_TEST_CASES = 1000
MIN_TEST_SHARE = 0.01
#: Session times whose bulk (all but the latest 1%) spans more than this, or lies after 2200,
#: are in the wrong unit (YOOCHOOSE's 6 months in milliseconds read as seconds span 500 years).
MAX_SPAN = 50 * YEAR
_YEAR_2200 = 7_258_118_400.0
#: ... and a whole data set within an hour is no session log in seconds either.
MIN_SPAN = 3600.0
#: The latest sessions are far beyond the bulk when they are later than the 99th percentile of
#: the session times by more than the bulk spans, and by more than 30 days.
_LATE_SLACK = 30 * DAY


def _finite(value: Any) -> bool:
    return is_real(value) and math.isfinite(value)


#: What each protocol parameter must be.
RULES: dict[str, Rule] = {
    "order": Rule("a string", lambda v: isinstance(v, str)),
    "test_days": Rule("a number > 0", lambda v: _finite(v) and v > 0),
    "min_session_length": Rule("an integer >= 2", lambda v: is_integer(v) and v >= 2),
    "min_item_support": Rule("an integer >= 1", lambda v: is_integer(v) and v >= 1),
    "fraction": Rule("a number >= 1, or null for all", lambda v: v is None or (_finite(v) and v >= 1)),
}


def rule_problem(rule: Rule, value: Any) -> str | None:
    """``"must be <rule>, got <value>"`` when ``value`` breaks ``rule``, else None."""
    return None if rule.ok(value) else f"must be {rule.expected}, got {value!r}"


@dataclass(frozen=True)
class Clicks:
    """Raw clicks in file order, as a reader returns them.

    Attributes:
        session: [n] session id of each click (int or str).
        item: [n] item id of each click (int or str).
        time: float64[n] time of each click in unix seconds, UTC (DIGINETICA: its eventdate at
            midnight).
        order_key: int64[n] or float64[n] key that orders clicks inside a session (DIGINETICA:
            timeframe; generic CSV: the timestamp), or None where only file order exists.
        source: The name of the file the clicks came from (no directory: it becomes the
            split's ``info["source"]``), for messages.
    """

    session: np.ndarray
    item: np.ndarray
    time: np.ndarray
    order_key: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.session)


@dataclass(frozen=True)
class Protocol:
    """Parameters of the protocol; every table names them.

    Attributes:
        order: "file" keeps file order inside a session; any other value ("timeframe",
            "time") sorts by the reader's order key, stably.
        test_days: Sessions later than maxdate - test_days are test (DIGINETICA 7, YOOCHOOSE 1).
        min_session_length: Shorter sessions are dropped, before and after item filtering.
        min_item_support: Items with fewer occurrences are removed.
        fraction: Keep the most recent 1/fraction of the expanded training sequences
            (YOOCHOOSE 1/64: 64), or None for all.
    """

    order: str = "timeframe"
    test_days: float = 7.0
    min_session_length: int = 2
    min_item_support: int = 5
    fraction: float | None = None

    def __post_init__(self) -> None:
        """Raises: DataError (a ValueError) naming the parameter, its rule and its value."""
        for name, rule in RULES.items():
            problem = rule_problem(rule, getattr(self, name))
            if problem:
                raise DataError(f"Protocol.{name} {problem}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_protocol(clicks: Clicks, protocol: Protocol, name: str) -> Split:
    """Run the protocol on raw clicks and return the split.

    Warns:
        DataWarning: a tiny test set, times in the wrong unit, sessions far beyond the bulk
            (each also listed in ``split.info["warnings"]``).

    Raises:
        DataError: the protocol leaves no training or no test session; the message gives the
            counts after every step. A click without an id or a finite time.
    """
    steps: dict[str, dict[str, int]] = {}
    session_code, session_ids = pd.factorize(clicks.session, sort=False)
    item_code, item_ids = pd.factorize(clicks.item, sort=False)
    _check_clicks(clicks, session_code, item_code)
    n_sessions = len(session_ids)
    steps["read"] = {"clicks": len(clicks), "sessions": n_sessions, "items": len(item_ids)}

    # 1. group by session (codes follow first appearance, so sorting by them keeps file order)
    if protocol.order == "file" or clicks.order_key is None:
        perm = np.argsort(session_code, kind="stable")
    else:
        perm = np.lexsort((clicks.order_key, session_code))  # lexsort is stable
    last_row = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(last_row, session_code, np.arange(len(clicks), dtype=np.int64))
    session_time = np.asarray(clicks.time, dtype=np.float64)[last_row]
    click_session = session_code[perm]
    click_item = item_code[perm]
    del perm

    # 2. drop short sessions, rare items, then sessions that became short
    min_len = protocol.min_session_length
    keep = np.bincount(click_session, minlength=n_sessions)[click_session] >= min_len
    steps["drop_short_sessions"] = _count(click_session[keep], click_item[keep])
    support = np.bincount(click_item[keep], minlength=len(item_ids))
    keep &= support[click_item] >= protocol.min_item_support
    steps["drop_rare_items"] = _count(click_session[keep], click_item[keep])
    lengths = np.bincount(click_session[keep], minlength=n_sessions)
    keep &= lengths[click_session] >= min_len
    click_session, click_item = click_session[keep], click_item[keep]
    del keep
    lengths = np.bincount(click_session, minlength=n_sessions)
    starts = np.cumsum(lengths) - lengths
    valid = lengths >= min_len
    steps["drop_shortened_sessions"] = _count(click_session, click_item)
    if not valid.any():
        _empty("no session survives the filters", clicks, protocol, steps)

    # 3. split by time; ties keep first appearance (the codes are ascending in flatnonzero)
    problems = time_problems(session_time[valid], protocol.test_days, clicks.source)
    split_time = session_time[valid].max() - protocol.test_days * DAY
    train_s = np.flatnonzero(valid & (session_time < split_time))
    test_s = np.flatnonzero(valid & (session_time > split_time))
    train_s = train_s[np.argsort(session_time[train_s], kind="stable")]
    test_s = test_s[np.argsort(session_time[test_s], kind="stable")]

    # 4. item index by first appearance in the time-sorted training clicks
    train_codes = click_item[ragged_ranges(starts[train_s], lengths[train_s])]
    train_items, train_item_codes = pd.factorize(train_codes, sort=False)
    index_of_code = np.full(len(item_ids), -1, dtype=np.int64)
    index_of_code[train_item_codes] = np.arange(len(train_item_codes))
    train = Sessions(
        items=train_items.astype(np.int32),
        offsets=_offsets(lengths[train_s]),
        times=session_time[train_s],
        ids=_session_ids(session_ids, train_s),
    )
    steps["train"] = {"clicks": train.n_clicks, "sessions": len(train), "items": len(train_item_codes)}

    test_clicks = index_of_code[click_item[ragged_ranges(starts[test_s], lengths[test_s])]]
    test_session = np.repeat(np.arange(len(test_s)), lengths[test_s])
    seen = test_clicks >= 0
    test_lengths = np.bincount(test_session[seen], minlength=len(test_s))
    kept = test_lengths >= 2
    seen &= kept[test_session]
    test = Sessions(
        items=test_clicks[seen].astype(np.int32),
        offsets=_offsets(test_lengths[kept]),
        times=session_time[test_s[kept]],
        ids=_session_ids(session_ids, test_s[kept]),
    )
    steps["test"] = {"clicks": test.n_clicks, "sessions": len(test)}
    if len(train) == 0 or len(test) == 0:
        _empty("the time split leaves an empty train or test set", clicks, protocol, steps, problems)
    tiny = tiny_test_problem(clicks.source, train.n_prefixes, test)  # against all training data
    problems += [tiny] if tiny else []

    # 6. most recent fraction of the expanded training sequences
    full_train = None
    if protocol.fraction is not None and protocol.fraction > 1:
        full_train, train = train, _recent_fraction(train, protocol.fraction)
        steps["fraction"] = {"clicks": train.n_clicks, "sessions": len(train), "sequences": train.n_prefixes}
        if len(train) == 0:
            _empty(f"1/{protocol.fraction} of the training sequences is empty", clicks, protocol, steps)

    for problem in problems:
        warnings.warn(problem, DataWarning, stacklevel=2)
    info = {
        "source": clicks.source,
        "form": "raw",
        "protocol": protocol.as_dict(),
        "split_time": float(split_time),
        "steps": steps,
        "warnings": problems,
    }
    kept_ids = np.asarray(item_ids[train_item_codes])
    return Split(
        name=name,
        train=train,
        test=test,
        n_items=len(train_item_codes),
        item_ids=kept_ids.astype(str) if kept_ids.dtype == object else kept_ids,  # str ids: no pickle in the cache
        info=info,
        full_train=full_train,
    )


def _check_clicks(clicks: Clicks, session_code: np.ndarray, item_code: np.ndarray) -> None:
    """Refuse what a reader should have refused: a click without an id (factorize codes it -1)
    or without a finite time."""
    for field, codes in (("session", session_code), ("item", item_code)):
        if len(codes) and codes.min() < 0:
            row = int(np.argmax(codes < 0))
            raise DataError(f"{clicks.source}: click {row:,} (0-based, file order) has no {field} id; every click needs one")
    bad = ~np.isfinite(np.asarray(clicks.time, dtype=np.float64))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{clicks.source}: click {row:,} (0-based, file order) has time {clicks.time[row]}; expected unix seconds")


def tiny_test_problem(source: str, train_cases: int, test: Sessions) -> str | None:
    """The warning for a test set under ``MIN_TEST_CASES`` cases and under ``MIN_TEST_SHARE``
    of ``train_cases``, or None."""
    cases = test.n_prefixes
    if cases >= MIN_TEST_CASES or cases >= MIN_TEST_SHARE * train_cases:
        return None
    return (
        f"{source}: the test set has {_plural(cases, 'case')} in {_plural(len(test), 'session')} against {train_cases:,} training "
        f"cases ({cases / max(train_cases, 1):.2%}); with fewer than {MIN_TEST_CASES:,} cases and under "
        f"{MIN_TEST_SHARE:.0%} of the training cases its metrics say little. Check the test period and the times."
    )


def time_problems(times: np.ndarray, test_days: float, source: str) -> list[str]:
    """Warnings about session times (float64[n], unix seconds) that look wrong: a few sessions
    far beyond the bulk, a bulk spanning centuries (milliseconds), a log within an hour."""
    if len(times) < 2:
        return []
    first, last = float(times.min()), float(times.max())
    bulk_end = float(np.quantile(times, 0.99, method="lower"))  # all but the latest 1%
    slack = max(bulk_end - first, _LATE_SLACK)
    problems = []
    if last - bulk_end > slack:
        problems.append(
            f"{source}: {_plural(int((times > bulk_end + slack).sum()), 'session')} dated after {_date(bulk_end + slack)}, "
            f"far beyond the bulk (99% of the sessions are dated {_date(first)} .. {_date(bulk_end)}); the latest, "
            f"{_date(last)}, sets the split, so the test period is the {test_days:g} day(s) before it. "
            "Clicks far in the future? Fix or drop those rows."
        )
    if bulk_end - first > MAX_SPAN or bulk_end > _YEAR_2200:
        problems.append(
            f"{source}: 99% of the sessions span {(bulk_end - first) / YEAR:,.0f} years ({_date(first)} .. "
            f"{_date(bulk_end)}) if the times are unix seconds, and the test period of {test_days:g} day(s) is "
            f"{test_days * DAY:,.0f} time units. Are the timestamps in milliseconds? Divide them by 1,000."
        )
    if last - first < MIN_SPAN:
        problems.append(
            f"{source}: session times span only {last - first:,.0f} s ({_date(first)} .. {_date(last)}); a click log "
            "in unix seconds spans days. Are the timestamps in another unit (minutes, hours, days)?"
        )
    return problems


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _date(t: float) -> str:
    """A time for messages: ``2016-05-01 10:00`` (UTC), or the bare number when out of range."""
    return str(np.datetime64(int(t), "s").astype("datetime64[m]")).replace("T", " ") if abs(t) < 1e13 else f"{t:.4g}"


def _recent_fraction(train: Sessions, fraction: int) -> Sessions:
    """The last int(N/fraction) expanded sequences, as sessions (the first one may be cut)."""
    pairs = train.lengths - 1
    keep_pairs = int(pairs.sum() / fraction)
    if keep_pairs == 0:
        return train.select(np.zeros(0, dtype=np.int64))
    from_end = np.cumsum(pairs[::-1])
    n_tail = int(np.searchsorted(from_end, keep_pairs)) + 1  # sessions taken from the end
    first = len(train) - n_tail
    in_first = keep_pairs - (int(from_end[n_tail - 2]) if n_tail > 1 else 0)
    tail = train.select(np.arange(first, len(train)))
    lengths = tail.lengths.copy()
    lengths[0] = in_first + 1  # the first session keeps its shortest prefixes
    return Sessions(
        items=np.concatenate([tail[0][: in_first + 1], tail.items[tail.offsets[1] :]]),
        offsets=_offsets(lengths),
        times=tail.times,
        ids=tail.ids,
    )


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _session_ids(session_ids: Any, index: np.ndarray) -> np.ndarray:
    values = np.asarray(session_ids[index]) if len(index) else np.zeros(0, dtype=np.int64)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    return index.astype(np.int64)  # string ids: keep the session's position in the file


def _count(click_session: np.ndarray, click_item: np.ndarray) -> dict[str, int]:
    return {
        "clicks": len(click_session),
        "sessions": int(np.count_nonzero(np.bincount(click_session))),
        "items": int(np.count_nonzero(np.bincount(click_item))),
    }


def _empty(
    what: str, clicks: Clicks, protocol: Protocol, steps: dict[str, dict[str, int]], problems: Sequence[str] = ()
) -> None:
    lines = "; ".join(f"{step}: " + ", ".join(f"{k} {v:,}" for k, v in c.items()) for step, c in steps.items())
    also = "".join(f" Also: {p}" for p in problems)
    raise DataError(
        f"{clicks.source}: {what} (protocol {protocol.as_dict()}). Counts after each step: {lines}. "
        f"Is the file complete, and does it span more than the test period?{also}"
    )
