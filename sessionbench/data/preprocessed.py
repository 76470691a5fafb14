"""Reader of data already preprocessed by the NARM/SR-GNN scripts (how most researchers hold
DIGINETICA and YOOCHOOSE today).

Three forms, looked for in this order:

- ``all_train_seq.txt`` + ``test.txt``: pickled list of training sessions (date order) and a
  pickled ``(prefixes, targets)`` tuple of test cases;
- ``train.txt`` + ``test.txt``: both pickled ``(prefixes, targets)`` tuples;
- ``train_sessions.txt[.gz]`` + ``test_sessions.txt[.gz]``: one session per line, item ids
  separated by spaces.

Item ids start at 1; index = id - 1. A ``(prefixes, targets)`` list is turned back into
sessions: the reference emits a session's cases longest prefix first (``s[:-1] -> s[-1]``,
``s[:-2] -> s[-2]``, ...), so a new session starts wherever a prefix is not one click
shorter than the one before, and the longest prefix plus its target is the session.
Pickles go through :mod:`sessionbench.data.safe_pickle` only.
"""

from __future__ import annotations

import gzip
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sessionbench.data.safe_pickle import load_restricted
from sessionbench.data.sessions import Sessions, Split, ragged_ranges
from sessionbench.errors import DataError

__all__ = ["PREPROCESSED_FORMS", "find_preprocessed", "read_preprocessed"]


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

    Raises:
        DataError: a file of the wrong shape (naming the file and the position or line).
    """
    train = _read_sessions(train_path)
    test = _read_sessions(test_path)
    max_id = int(max(train.items.max(initial=0), test.items.max(initial=0)))
    for path, sessions in ((train_path, train), (test_path, test)):
        if sessions.n_clicks and sessions.items.min() < 1:
            raise DataError(f"{path}: item ids must start at 1 (NARM/SR-GNN format), found {sessions.items.min()}")
    train = _shift(train)
    test = _shift(test)
    info: dict[str, Any] = {
        "source": f"{train_path.name} + {test_path.name} in {train_path.parent}",
        "form": form,
        "protocol": "preprocessed upstream (NARM/SR-GNN); sessions have no times, file order kept",
        "test_clicks_on_items_not_in_train": int((~np.isin(test.items, np.unique(train.items))).sum()),
    }
    return Split(
        name=name,
        train=train,
        test=test,
        n_items=max_id,
        item_ids=np.arange(1, max_id + 1, dtype=np.int64),
        info=info,
    )


def _shift(sessions: Sessions) -> Sessions:
    return Sessions(items=sessions.items - 1, offsets=sessions.offsets, times=sessions.times, ids=sessions.ids)


def _read_sessions(path: Path) -> Sessions:
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
    return np.array(flat, dtype=np.int64), lengths


def _sessions_from_lists(lists: list[Any], path: Path, what: str) -> Sessions:
    items, lengths = _flatten(lists, path, what)
    short = np.flatnonzero(lengths < 2)
    if len(short):
        raise DataError(f"{path}: {what}[{short[0]}] has {lengths[short[0]]} click(s); every session needs at least 2")
    return _sessions(items, lengths)


def _sessions(items: np.ndarray, lengths: np.ndarray) -> Sessions:
    n = len(lengths)
    return Sessions(
        items=items.astype(np.int32),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        times=np.arange(n, dtype=np.float64),
        ids=np.arange(n, dtype=np.int64),
    )


def _sessions_from_pairs(prefixes: list[Any], targets: list[Any], path: Path) -> Sessions:
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
    return _sessions(session_items, s_lengths)


def _read_text(path: Path) -> Sessions:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="ascii") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e}); expected one session per line of space-separated item ids") from e
    while lines and not lines[-1].strip():
        lines.pop()
    tokens = [line.split() for line in lines]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    short = np.flatnonzero(lengths < 2)
    if len(short):
        raise DataError(f"{path} line {short[0] + 1}: a session needs at least 2 item ids, found {lengths[short[0]]}")
    try:
        items = np.array(list(itertools.chain.from_iterable(tokens)), dtype=np.int64)
    except ValueError:
        for number, toks in enumerate(tokens, start=1):
            bad = next((t for t in toks if not t.isdigit()), None)
            if bad is not None:
                raise DataError(f"{path} line {number}: expected space-separated integer item ids, found {bad!r}") from None
        raise
    return _sessions(items, lengths)
