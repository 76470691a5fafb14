"""The protocol on hand-made raw files whose outputs were worked out by hand.

The DIGINETICA file below exercises every step: a length-1 session, an item that falls under
5 occurrences only once length-1 sessions are dropped (99), a session that shrinks to one click
after item filtering (4), ties in timeframe (5), clicks out of timeframe order (1, 11), a session
exactly on the split day (6), test clicks on an item unseen in training (88), and a session whose
rows are not contiguous in the file (9, dated by its last row).
"""

from pathlib import Path

import numpy as np
import pytest

from sessionbench.data import DataError, Protocol, apply_protocol, load_dataset
from sessionbench.data.diginetica import read_clicks as read_diginetica
from sessionbench.data.yoochoose import read_clicks as read_yoochoose

DIGINETICA_ROWS = """\
sessionId;userId;itemId;timeframe;eventdate
1;NA;10;300;2016-05-01
1;NA;20;100;2016-05-01
1;NA;30;200;2016-05-01
9;NA;50;0;2016-05-05
2;NA;20;0;2016-05-02
2;NA;30;5;2016-05-02
2;NA;99;10;2016-05-02
2;NA;40;20;2016-05-02
2;NA;50;30;2016-05-02
3;NA;99;0;2016-05-03
4;NA;10;0;2016-05-03
4;NA;77;1;2016-05-03
5;NA;30;7;2016-05-04
5;NA;40;7;2016-05-04
5;NA;50;3;2016-05-04
6;NA;10;0;2016-05-25
6;NA;88;1;2016-05-25
6;NA;88;2;2016-05-25
6;NA;20;3;2016-05-25
7;NA;10;0;2016-05-30
7;NA;88;1;2016-05-30
7;NA;20;2;2016-05-30
8;NA;40;0;2016-06-01
8;NA;88;1;2016-06-01
9;NA;40;1;2016-05-26
9;NA;88;2;2016-05-26
10;NA;99;0;2016-05-06
10;NA;99;1;2016-05-06
10;NA;99;2;2016-05-06
11;NA;40;3;2016-05-10
11;NA;10;0;2016-05-10
11;NA;50;4;2016-05-10
11;NA;20;1;2016-05-10
11;NA;30;2;2016-05-10
12;NA;10;0;2016-05-11
12;NA;30;1;2016-05-11
12;NA;50;2;2016-05-11
12;NA;20;3;2016-05-11
"""


@pytest.fixture
def diginetica_file(tmp_path: Path) -> Path:
    path = tmp_path / "train-item-views.csv"
    path.write_text(DIGINETICA_ROWS)
    return path


def test_diginetica_protocol_by_timeframe(diginetica_file):
    split = apply_protocol(read_diginetica(diginetica_file), Protocol(order="timeframe", test_days=7), "d")
    # maxdate 2016-06-01 (session 8) -> split day 2016-05-25: session 6 is in neither set.
    # Train by date: 1 (05-01), 2 (05-02), 5 (05-04), 11 (05-10), 12 (05-11); 3, 4 and 10 are gone.
    # Sorted by timeframe, items 99 and 77 removed: 1 = 20 30 10, 2 = 20 30 40 50,
    # 5 = 50 30 40 (30 and 40 tie at 7: file order), 11 = 10 20 30 40 50, 12 = 10 30 50 20.
    # Index by first appearance: 20->0, 30->1, 10->2, 40->3, 50->4.
    assert split.train.to_lists() == [[0, 1, 2], [0, 1, 3, 4], [4, 1, 3], [2, 0, 1, 3, 4], [2, 1, 4, 0]]
    assert split.train.ids.tolist() == [1, 2, 5, 11, 12]
    assert split.item_ids.tolist() == [20, 30, 10, 40, 50]
    # Test by date: 9 (dated by its last row, 05-26) = 50 40 [88], 7 (05-30) = 10 [88] 20;
    # 8 (06-01) = 40 [88] shrinks to one click and is dropped.
    assert split.test.to_lists() == [[4, 3], [2, 0]]
    assert split.test.ids.tolist() == [9, 7]
    assert split.n_items == 5
    # lengths 3 4 3 5 4 | 2 2: 14 + 2 sequences, sum of (prefix length + 1) = 46 -> 2.875
    assert split.stats() == {"clicks": 23, "train_sessions": 14, "test_sessions": 2, "items": 5, "avg_length": 2.87}


def test_diginetica_protocol_in_file_order(diginetica_file):
    split = apply_protocol(read_diginetica(diginetica_file), Protocol(order="file", test_days=7), "d")
    # file order: 1 = 10 20 30, 2 = 20 30 40 50, 5 = 30 40 50, 11 = 40 10 50 20 30, 12 = 10 30 50 20
    assert split.item_ids.tolist() == [10, 20, 30, 40, 50]
    assert split.train.to_lists() == [[0, 1, 2], [1, 2, 3, 4], [2, 3, 4], [3, 0, 4, 1, 2], [0, 2, 4, 1]]
    assert split.test.to_lists() == [[4, 3], [0, 1]]


def test_protocol_counts_every_step(diginetica_file):
    split = apply_protocol(read_diginetica(diginetica_file), Protocol(test_days=7), "d")
    steps = split.info["steps"]
    assert steps["read"] == {"clicks": 38, "sessions": 12, "items": 8}
    assert steps["drop_short_sessions"]["sessions"] == 11  # session 3
    # 99 (4 left after session 3 went) and 77 (1) fall under 5; 88 has exactly 5 and stays
    assert steps["drop_rare_items"]["items"] == 6
    assert steps["drop_shortened_sessions"]["sessions"] == 9  # 4 and 10 are gone


def test_empty_test_set_is_an_error_with_the_counts(tmp_path):
    path = tmp_path / "train-item-views.csv"
    rows = ["sessionId;userId;itemId;timeframe;eventdate"]
    rows += [f"{s};NA;{i};{t};2016-05-01" for s in range(1, 6) for t, i in enumerate((1, 2, 3))]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"empty train or test set.*drop_rare_items: clicks 15"):
        apply_protocol(read_diginetica(path), Protocol(test_days=7), "d")


YOOCHOOSE_ROWS = """\
1,2014-04-01T10:00:00.000Z,100,0
1,2014-04-01T10:01:00.000Z,200,0
1,2014-04-01T10:02:00.000Z,300,0
2,2014-04-02T09:00:00.000Z,200,S
2,2014-04-02T09:05:00.000Z,300,S
3,2014-04-03T08:00:00.000Z,100,1234
3,2014-04-03T08:01:00.000Z,200,1234
3,2014-04-03T08:02:00.000Z,100,1234
3,2014-04-03T08:03:00.000Z,300,1234
4,2014-04-04T12:00:00.000Z,300,0
4,2014-04-04T12:00:00.500Z,100,0
5,2014-04-05T12:00:00.100Z,100,0
5,2014-04-05T12:00:00.200Z,200,0
6,2014-04-04T20:00:00.000Z,200,0
6,2014-04-04T21:00:00.000Z,300,0
"""


def test_yoochoose_protocol_truncates_milliseconds_like_the_reference(tmp_path):
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text(YOOCHOOSE_ROWS)
    split = apply_protocol(read_yoochoose(path), Protocol(order="file", test_days=1), "y")
    # maxdate = session 5 at 2014-04-05 12:00:00 (ms dropped); split = 04-04 12:00:00.
    # Session 4 ends at 12:00:00.500 -> 12:00:00 exactly: in neither set. Session 6 is test.
    # Train by time: 1, 2, 3; items by first appearance 100->0, 200->1, 300->2.
    assert split.train.to_lists() == [[0, 1, 2], [1, 2], [0, 1, 0, 2]]
    assert split.test.ids.tolist() == [6, 5]
    assert split.test.to_lists() == [[1, 2], [0, 1]]


def test_recent_fraction_keeps_the_last_sequences_and_cuts_the_first_session(tmp_path):
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text(YOOCHOOSE_ROWS)
    split = apply_protocol(read_yoochoose(path), Protocol(order="file", test_days=1, fraction=2), "y")
    # 2 + 1 + 3 = 6 training sequences -> keep int(6 / 2) = 3: all of session 3 (its 3 cases).
    assert split.train.to_lists() == [[0, 1, 0, 2]]
    split = apply_protocol(read_yoochoose(path), Protocol(order="file", test_days=1, fraction=1.5), "y")
    # keep int(6 / 1.5) = 4: session 3 (3) plus the shortest prefix of session 2, i.e. 200 -> 300
    assert split.train.to_lists() == [[1, 2], [0, 1, 0, 2]]
    assert split.full_train.to_lists() == [[0, 1, 2], [1, 2], [0, 1, 0, 2]]
    assert split.n_items == 3  # the index stays the one of the whole training data
    assert split.train.n_prefixes == 4


def _reference_preprocess(path: Path, sort_by_timeframe: bool):
    """SR-GNN's datasets/preprocess.py (DIGINETICA branch), ported line by line with dicts and
    lists, as the independent check of the vectorised protocol."""
    import csv
    import datetime as dt

    sess_clicks, sess_date = {}, {}
    curid, curdate = None, None
    with open(path) as f:
        for row in csv.DictReader(f, delimiter=";"):
            sessid = row["sessionId"] if "sessionId" in row else row["session_id"]
            if curdate and curid != sessid:
                sess_date[curid] = dt.datetime.strptime(curdate, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
            curid = sessid
            item = (row["itemId"] if "itemId" in row else row["item_id"], int(row["timeframe"]))
            curdate = row["eventdate"]
            sess_clicks.setdefault(sessid, []).append(item)
    sess_date[curid] = dt.datetime.strptime(curdate, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
    for s in list(sess_clicks):
        clicks = sorted(sess_clicks[s], key=lambda c: c[1]) if sort_by_timeframe else sess_clicks[s]
        sess_clicks[s] = [c[0] for c in clicks]
    for s in list(sess_clicks):
        if len(sess_clicks[s]) == 1:
            del sess_clicks[s], sess_date[s]
    counts = {}
    for seq in sess_clicks.values():
        for i in seq:
            counts[i] = counts.get(i, 0) + 1
    for s in list(sess_clicks):
        filtered = [i for i in sess_clicks[s] if counts[i] >= 5]
        if len(filtered) < 2:
            del sess_clicks[s], sess_date[s]
        else:
            sess_clicks[s] = filtered
    dates = list(sess_date.items())
    splitdate = max(d for _, d in dates) - 86400 * 7
    train = sorted([x for x in dates if x[1] < splitdate], key=lambda x: x[1])
    test = sorted([x for x in dates if x[1] > splitdate], key=lambda x: x[1])
    item_dict, train_seqs, test_seqs = {}, [], []
    for s, _ in train:
        out = []
        for i in sess_clicks[s]:
            if i not in item_dict:
                item_dict[i] = len(item_dict) + 1
            out.append(item_dict[i])
        train_seqs.append(out)
    for s, _ in test:
        out = [item_dict[i] for i in sess_clicks[s] if i in item_dict]
        if len(out) >= 2:
            test_seqs.append(out)
    return train_seqs, test_seqs


@pytest.mark.parametrize("order", ["timeframe", "file"])
def test_real_diginetica_sample_matches_the_reference_script(order):
    from conftest import shared_data

    path = shared_data("diginetica-sample") / "sample_train-item-views.csv"
    train, test = _reference_preprocess(path, sort_by_timeframe=order == "timeframe")
    split = apply_protocol(read_diginetica(path), Protocol(order=order, test_days=7), "d")
    assert split.train.to_lists() == [[i - 1 for i in s] for s in train]
    assert split.test.to_lists() == [[i - 1 for i in s] for s in test]


def test_real_diginetica_sample_loads_by_name_with_hand_checked_counts():
    from conftest import shared_data

    split = load_dataset("diginetica", shared_data("diginetica-sample"))
    # checked by hand on the file: 12,391 data rows after the header (the last line has no
    # newline, so `wc -l` and its PROVENANCE.md say one fewer), 2,986 sessions, 7,139 items;
    # the dates end on 2016-06-01, so test sessions are those dated 2016-05-26 .. 2016-06-01
    assert split.info["steps"]["read"] == {"clicks": 12_391, "sessions": 2_986, "items": 7_139}
    assert split.info["form"] == "raw"
    assert split.stats() == {"clicks": 1_812, "train_sessions": 1_205, "test_sessions": 99, "items": 309, "avg_length": 3.77}
    assert (np.diff(split.train.times) >= 0).all() and (np.diff(split.test.times) >= 0).all()
    assert split.test.times.min() > split.info["split_time"] > split.train.times.max()
