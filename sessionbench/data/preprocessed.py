"""Reader of data already preprocessed by the NARM/SR-GNN scripts (how most researchers hold
DIGINETICA and YOOCHOOSE today).

Three forms, looked for in this order:

- ``all_train_seq.txt`` + ``test.txt``: pickled list of training sessions (date order) and a
  pickled ``(prefixes, targets)`` tuple of test cases;
- ``train.txt`` + ``test.txt``: both pickled ``(prefixes, targets)`` tuples;
- ``train_sessions.txt[.gz]`` + ``test_sessions.txt[.gz]``: one session per line, item ids
  separated by spaces.

Item ids start at 1; index = id - 1, so the ids must be dense: a file whose largest id exceeds
both ``MAX_ID_FACTOR`` times its distinct ids and ``MIN_ID_LIMIT`` is refused, since one id of
300,000,000 among 50,000 would make a 300-million-column score matrix (the staged YOOCHOOSE
1/64 files, whose index was built on all training data, use 17,745 of 37,483 ids: 2.1x). Ids
must also be >= 1 and fit int32; an empty train or test set is refused and a tiny test set
warns (see :mod:`sessionbench.data.protocol`). A ``(prefixes, targets)`` list is turned back into
sessions: the reference emits a session's cases longest prefix first (``s[:-1] -> s[-1]``,
``s[:-2] -> s[-2]``, ...), so a new session starts wherever a prefix is not one click
shorter than the one before, and the longest prefix plus its target is the session.
Pickles go through :mod:`sessionbench.data.safe_pickle` only.
"""

from __future__ import annotations

import gzip
import itertools
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sessionbench.data.protocol import tiny_test_problem
from sessionbench.data.safe_pickle import load_restricted
from sessionbench.data.sessions import Sessions, Split, ragged_ranges
from sessionbench.errors import DataError, DataWarning

__all__ = ["MAX_ID_FACTOR", "MIN_ID_LIMIT", "PREPROCESSED_FORMS", "find_preprocessed", "read_preprocessed"]

#: The largest id may be up to this many times the number of distinct ids ...
MAX_ID_FACTOR = 5
#: ... or up to this, whichever is larger (small hand-made files).
MIN_ID_LIMIT = 1000
_INT32_MAX = 2**31 - 1
_INT64 = (-(2**63), 2**63)
_NOT_DIGITS = re.compile(r"[^0-9\s-]")
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class _Read:
    """One file's sessions before they become ``Sessions``: int64 item ids (1-based) of every
    click, int64 session lengths, and where session s is in the file, for messages."""

    items: np.ndarray
    lengths: np.ndarray
    where: Callable[[int], str]

    def where_click(self, click: int) -> str:
        return self.where(int(np.searchsorted(np.cumsum(self.lengths), click, side="right")))


@dataclass(frozen=True)
class _Form:
    name: str
    train: tuple[str, ...]  # alternatives, first found wins
    test: tuple[str, ...]


PREPROCESSED_FORMS = (
    _Form("pickled sessions (all_train_seq.txt + test.txt)", ("all_train_seq.txt",), ("test.txt",)),
    _Form("pickled pairs (train.txt + test.txt)", ("train.txt",), ("test.txt",)),
    _Form(
        "session-per-line text (train_sessions.txt + test_sessions.txt)",
        ("train_sessions.txt.gz", "train_sessions.txt"),
        ("test_sessions.txt.gz", "test_sessions.txt"),
    ),
)


def find_preprocessed(directory: Path) -> tuple[str, Path, Path] | None:
    """The first preprocessed form present in ``directory``: (form name, train file, test file)."""
    for form in PREPROCESSED_FORMS:
        train = next((directory / f for f in form.train if (directory / f).is_file()), None)
        test = next((directory / f for f in form.test if (directory / f).is_file()), None)
        if train is not None and test is not None:
            return form.name, train, test
    return None


def read_preprocessed(name: str, train_path: Path, test_path: Path, form: str) -> Split:
    """Read a preprocessed split. Ids are 1-based; the item index is ``id - 1``.

    Warns:
        DataWarning: a tiny test set (also listed in ``info["warnings"]``).

    Raises:
        DataError: a file of the wrong shape (naming the file and the position or line), ids
            that are not 1..n (below 1, past int32, or too sparse), an empty train or test set.
    """
    source = f"{train_path.name} + {test_path.name}"
    read = {train_path: _read_sessions(train_path), test_path: _read_sessions(test_path)}
    for path, part in read.items():
        _check_ids(path, part)
    max_id = _check_dense(read)
    train, test = (_sessions(part.items - 1, part.lengths) for part in read.values())
    for what, sessions, path in (("train", train, train_path), ("test", test, test_path)):
        if len(sessions) == 0:
            raise DataError(f"{source}: empty {what} set ({path.name} holds no session); a split needs both")
    problems = [p for p in [tiny_test_problem(source, train.n_prefixes, test)] if p]
    for problem in problems:
        warnings.warn(problem, DataWarning, stacklevel=2)
    info: dict[str, Any] = {
        "source": source,
        "form": form,
        "protocol": "preprocessed upstream (NARM/SR-GNN); sessions have no times, file order kept",
        "test_clicks_on_items_not_in_train": int((~np.isin(test.items, np.unique(train.items))).sum()),
        "warnings": problems,
    }
    return Split(
        name=name,
        train=train,
        test=test,
        n_items=max_id,
        item_ids=np.arange(1, max_id + 1, dtype=np.int64),
        info=info,
    )


def _check_ids(path: Path, part: _Read) -> None:
    """Ids are 1..int32 max: the index id - 1 is stored as int32."""
    for bad, rule in ((part.items < 1, "must start at 1"), (part.items > _INT32_MAX, f"must fit int32 (at most {_INT32_MAX:,})")):
        if bad.any():
            click = int(np.argmax(bad))
            raise DataError(
                f"{path.name}: item ids {rule} (NARM/SR-GNN format: items numbered 1..n), "
                f"found {part.items[click]} {part.where_click(click)}"
            )


def _check_dense(read: dict[Path, _Read]) -> int:
    """The largest id (= n_items), once it is known to be dense enough."""
    ids = np.unique(np.concatenate([part.items for part in read.values()]))
    max_id = int(ids[-1]) if len(ids) else 0
    limit = max(MAX_ID_FACTOR * len(ids), MIN_ID_LIMIT)
    if max_id > limit:
        path, part = next((p, r) for p, r in read.items() if len(r.items) and r.items.max() == max_id)
        raise DataError(
            f"{path.name}: item id {max_id:,} {part.where_click(int(np.argmax(part.items)))} is far beyond the "
            f"{len(ids):,} distinct ids of {' + '.join(p.name for p in read)}: item ids are the index + 1, so it would "
            f"make {max_id:,} item columns. Expected the largest id to be at most {limit:,} ({MAX_ID_FACTOR} x the "
            f"distinct ids, or {MIN_ID_LIMIT:,}). Renumber the items 1..n, or give the raw clicks."
        )
    return max_id


def _read_sessions(path: Path) -> _Read:
    if "_sessions.txt" in path.name:
        return _read_text(path)
    data = load_restricted(path)
    if isinstance(data, list):  # all_train_seq.txt
        return _sessions_from_lists(data, path, "the list of sessions")
    if isinstance(data, tuple) and len(data) == 2:
        prefixes, targets = data
        if not isinstance(prefixes, list) or not isinstance(targets, list):
            raise DataError(f"{path}: expected a (prefixes, targets) tuple of lists, found ({_kind(prefixes)}, {_kind(targets)})")
        return _sessions_from_pairs(prefixes, targets, path)
    raise DataError(
        f"{path}: expected a pickled list of sessions or a (prefixes, targets) tuple, found {_kind(data)}"
    )


def _kind(x: Any) -> str:
    return f"{type(x).__name__} of length {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__


def _flatten(lists: list[Any], path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(int64 items, int64 lengths) of a list of int lists, refusing anything else."""
    for pos, seq in enumerate(lists):
        if type(seq) is not list:
            raise DataError(f"{path}: {what}[{pos}] should be a list of item ids, found {_kind(seq)}")
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = list(itertools.chain.from_iterable(lists))
    if not all(type(x) is int for x in flat):
        bad = next(i for i, x in enumerate(flat) if type(x) is not int)
        pos = int(np.searchsorted(np.cumsum(lengths), bad, side="right"))
        raise DataError(f"{path}: {what}[{pos}] holds {flat[bad]!r} ({type(flat[bad]).__name__}); item ids must be ints")
    try:
        return np.array(flat, dtype=np.int64), lengths
    except OverflowError:  # a Python int past int64
        bad = next(i for i, x in enumerate(flat) if not _INT64[0] <= x < _INT64[1])
        pos = int(np.searchsorted(np.cumsum(lengths), bad, side="right"))
        raise DataError(
            f"{path.name}: item ids must fit int32 (at most {_INT32_MAX:,}) (NARM/SR-GNN format: items numbered 1..n), "
            f"found {flat[bad]} in {what}[{pos}]"
        ) from None


def _sessions_from_lists(lists: list[Any], path: Path, what: str) -> _Read:
    items, lengths = _flatten(lists, path, what)
    short = np.flatnonzero(lengths < 2)
    if len(short):
        raise DataError(f"{path}: {what}[{short[0]}] has {lengths[short[0]]} click(s); every session needs at least 2")
    return _Read(items, lengths, lambda s: f"in {what}[{s}]")


def _sessions(items: np.ndarray, lengths: np.ndarray) -> Sessions:
    """Sessions of 0-based item indices (int64 items, checked to fit int32)."""
    n = len(lengths)
    return Sessions(
        items=items.astype(np.int32),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        times=np.arange(n, dtype=np.float64),
        ids=np.arange(n, dtype=np.int64),
    )


def _sessions_from_pairs(prefixes: list[Any], targets: list[Any], path: Path) -> _Read:
    if len(prefixes) != len(targets):
        raise DataError(f"{path}: {len(prefixes):,} prefixes but {len(targets):,} targets")
    flat, lengths = _flatten(prefixes, path, "prefixes")
    target, _ = _flatten([targets], path, "targets")
    if len(lengths) and lengths.min() < 1:
        raise DataError(f"{path}: prefixes[{int(np.argmin(lengths))}] is empty")
    starts = np.cumsum(lengths) - lengths
    first = np.ones(len(lengths), dtype=bool)
    first[1:] = lengths[1:] != lengths[:-1] - 1
    heads = np.flatnonzero(first)
    # a session is its longest prefix followed by that prefix's target
    session_items = np.empty(int((lengths[heads] + 1).sum()), dtype=np.int64)
    s_lengths = lengths[heads] + 1
    s_starts = np.cumsum(s_lengths) - s_lengths
    session_items[ragged_ranges(s_starts, lengths[heads])] = flat[ragged_ranges(starts[heads], lengths[heads])]
    session_items[s_starts + lengths[heads]] = target[heads]
    # every other case must be a shorter prefix of its session, with the next click as target
    owner = np.cumsum(first) - 1
    expected_prefix = session_items[ragged_ranges(s_starts[owner], lengths)]
    expected_target = session_items[s_starts[owner] + lengths]
    wrong_prefix = np.add.reduceat((expected_prefix != flat).astype(np.int64), starts) > 0 if len(flat) else first[:0]
    bad = np.flatnonzero(wrong_prefix | (expected_target != target))
    if len(bad):
        raise DataError(
            f"{path}: case {bad[0]} is not a prefix of the session that starts at case {heads[owner[bad[0]]]} "
            "(expected each session's cases longest prefix first, as NARM/SR-GNN write them)"
        )
    return _Read(session_items, s_lengths, lambda s: f"in the session of case {heads[s]} (prefixes[{heads[s]}] + targets[{heads[s]}])")


def _read_text(path: Path) -> _Read:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="ascii") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e}); expected one session per line of space-separated item ids") from e
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    tokens = [line.split() for line in lines]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    short = np.flatnonzero(lengths < 2)
    if len(short):
        raise DataError(f"{path} line {short[0] + 1}: a session needs at least 2 item ids, found {lengths[short[0]]}")
    if _NOT_DIGITS.search(text):  # numpy would read "1_000" or "+5" as numbers
        raise DataError(_bad_token(path, tokens))
    try:
        items = np.array(list(itertools.chain.from_iterable(tokens)), dtype=np.int64)
    except (ValueError, OverflowError):
        raise DataError(_bad_token(path, tokens)) from None
    return _Read(items, lengths, lambda s: f"at line {s + 1}")


def _bad_token(path: Path, tokens: list[list[str]]) -> str:
    """The message for the first token that is not an int64 (slow: errors only)."""
    for number, toks in enumerate(tokens, start=1):
        for t in toks:
            if not _INTEGER.fullmatch(t):
                return f"{path} line {number}: expected space-separated integer item ids, found {t!r}"
            if not _INT64[0] <= int(t) < _INT64[1]:
                return (
                    f"{path.name}: item ids must fit int32 (at most {_INT32_MAX:,}) (NARM/SR-GNN format: items "
                    f"numbered 1..n), found {t} at line {number}"
                )
    return f"{path}: expected space-separated integer item ids"
