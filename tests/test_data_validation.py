"""Issue 20: bad data is refused with a clear error, never coerced; suspicious data warns.

Every error names the file, the line and the field (or the option), what was expected and what
was found. Every warning gives the counts.
"""

import gzip
import hashlib
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from sessionbench.data import DataError, DataWarning, Protocol, apply_protocol, load_dataset
from sessionbench.data.clicks_csv import read_clicks as read_csv
from sessionbench.data.datasets import split_name
from sessionbench.data.diginetica import read_clicks as read_diginetica

DAY = 86400
APRIL_2016 = 1_459_468_800  # 2016-04-01 00:00 UTC
DIGINETICA_HEADER = "sessionId;userId;itemId;timeframe;eventdate\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def click_rows(n_sessions=300, days=30.0, start=APRIL_2016, scale=1):
    """Sessions of 3 clicks on 7 well-supported items, evenly spread over ``days``; times in
    seconds times ``scale`` (1000: milliseconds)."""
    rows = []
    for s in range(n_sessions):
        t = start + s * days * DAY / n_sessions
        rows += [f"{s + 1},{(s + k) % 7 + 1},{(t + 60 * k) * scale:.0f}" for k in range(3)]
    return rows


def clicks_file(path: Path, rows) -> Path:
    return write(path, "session_id,item_id,timestamp\n" + "\n".join(rows) + "\n")


# -- raw DIGINETICA / YOOCHOOSE: int64 fields, no nulls --------------------------------------


@pytest.mark.parametrize(
    "row, field, found",
    [
        ("1;NA;20;1;", "eventdate", "an empty field"),
        ("1;NA;20;;2016-05-01", "timeframe", "an empty field"),
        ("1;NA;;1;2016-05-01", "item", "an empty field"),
        (";NA;20;1;2016-05-01", "session", "an empty field"),
        ("1e3;NA;20;1;2016-05-01", "session", "'1e3'"),
        ("1;NA;NA;1;2016-05-01", "item", "'NA'"),
        ("1;NA;99999999999999999999;1;2016-05-01", "item", "'99999999999999999999'"),
        ("1;NA;20;1;2016-13-45", "eventdate", "'2016-13-45'"),
    ],
)
def test_issue_20_bad_diginetica_fields_name_line_and_field(tmp_path, row, field, found):
    write(tmp_path / "train-item-views.csv", DIGINETICA_HEADER + "1;NA;10;0;2016-05-01\n" + row + "\n")
    with pytest.raises(DataError, match=rf"train-item-views.csv line 3: field '{field}' should be .*found {found}"):
        load_dataset("diginetica", tmp_path, cache=False)


@pytest.mark.parametrize(
    "row, field",
    [(",2014-04-01T10:01:00.000Z,200,0", "session"), ("1,2014-04-01T10:01:00.000Z,,0", "item"), ("1,,200,0", "timestamp")],
)
def test_issue_20_empty_yoochoose_fields_name_line_and_field(tmp_path, row, field):
    write(tmp_path / "yoochoose-clicks.dat", "1,2014-04-01T10:00:00.000Z,100,0\n" + row + "\n")
    with pytest.raises(DataError, match=rf"yoochoose-clicks.dat line 2: field '{field}' should be .*found an empty field"):
        load_dataset("yoochoose-1-64", tmp_path, cache=False)


def test_issue_20_raw_item_id_past_int32_keeps_its_own_identity(tmp_path):
    big = 2**32 + 10  # wraps onto item 10 if narrowed to int32
    rows = [f"{s};NA;{item};{k};2016-05-{1 + s % 20:02d}" for s in range(1, 41) for k, item in enumerate((10, big, 30))]
    rows += [f"{100 + s};NA;{item};{k};2016-05-28" for s in range(5) for k, item in enumerate((10, big, 30))]
    write(tmp_path / "train-item-views.csv", DIGINETICA_HEADER + "\n".join(rows) + "\n")
    split = load_dataset("diginetica", tmp_path, cache=False)
    assert split.item_ids.dtype == np.int64 and sorted(split.item_ids.tolist()) == [10, 30, big]
    assert split.n_items == 3


# -- generic csv: ids as strings unless every one is a clean integer --------------------------


def test_issue_20_csv_session_1e3_is_kept_as_a_string_not_merged_with_1000(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", ["1000,1,10", "1000,2,20", "1e3,3,30", "1e3,4,40"])
    clicks = read_csv(path)
    assert clicks.session.tolist() == ["1000", "1000", "1e3", "1e3"]
    assert clicks.item.tolist() == [1, 2, 3, 4] and clicks.item.dtype == np.int64  # clean integers


def test_issue_20_csv_clean_integer_ids_are_int64_and_leading_zeros_stay_strings(tmp_path):
    clicks = read_csv(clicks_file(tmp_path / "a.csv", ["1,4294967306,10", "2,10,20"]))
    assert clicks.session.dtype == np.int64 and clicks.item.dtype == np.int64
    assert clicks.item.tolist() == [4294967306, 10]
    clicks = read_csv(clicks_file(tmp_path / "b.csv", ["1,007,10", "2,7,20"]))
    assert clicks.item.tolist() == ["007", "7"]


@pytest.mark.parametrize(
    "row, field", [(",2,20", "session_id"), ("1,,20", "item_id"), ("1,2,", "timestamp"), ("1,  ,20", "item_id")]
)
def test_issue_20_csv_empty_field_names_file_line_and_field(tmp_path, row, field):
    # a blank line before the bad row: the line number is the file's, not the row's
    path = write(tmp_path / "clicks.csv", "session_id,item_id,timestamp\n1,1,10\n\n" + row + "\n")
    with pytest.raises(DataError, match=rf"clicks.csv line 4: field '{field}' should be .*found an empty field"):
        read_csv(path)


def test_issue_20_csv_bad_numeric_timestamp_names_the_line(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", ["1,1,10", "1,2,20", "1,3,noon"])
    with pytest.raises(DataError, match=r"clicks.csv line 4: field 'timestamp' should be unix seconds or ISO 8601, found 'noon'"):
        read_csv(path)


def test_issue_20_csv_string_ids_survive_the_cache(tmp_path, monkeypatch, caplog):
    rows = [r.replace(",", ",item-", 1) for r in click_rows()]
    path = clicks_file(tmp_path / "clicks.csv", rows)
    first = load_dataset(f"csv:{path}", cache_dir=tmp_path / "cache")
    monkeypatch.setattr("sessionbench.data.clicks_csv.read_clicks", lambda path: pytest.fail("not from the cache"))
    second = load_dataset(f"csv:{path}", cache_dir=tmp_path / "cache")
    assert "damaged" not in caplog.text
    assert second.item_ids.tolist() == first.item_ids.tolist() and first.item_ids[0].startswith("item-")


# -- preprocessed files: ids are the dense index + 1 -----------------------------------------


def test_issue_20_huge_sparse_preprocessed_id_is_refused(tmp_path):
    write(tmp_path / "train_sessions.txt", "1 2 3\n2 3 4\n3 4 300000000\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match=r"train_sessions.txt: item id 300,000,000 at line 3 is far beyond the 5 distinct ids.*at most 1,000"):
        load_dataset("nowplaying", tmp_path, cache=False)


def test_issue_20_preprocessed_ids_may_be_as_sparse_as_the_staged_yoochoose_1_64(tmp_path):
    # YOOCHOOSE 1/64's files use 17,745 of 37,483 ids (2.1x): the index covers all training data
    write(tmp_path / "train_sessions.txt", "1 3\n3 5\n5 1\n" + "".join(f"{i} {i + 2}\n" for i in range(1, 1900, 4)))
    write(tmp_path / "test_sessions.txt", "1 3\n" * 10)
    split = load_dataset("nowplaying", tmp_path, cache=False)
    assert split.n_items == 1899  # 950 distinct ids, all odd


@pytest.mark.parametrize("bad, found", [(2**32 + 1, "4294967297"), (2**63 + 1, "9223372036854775809")])
def test_issue_20_preprocessed_id_past_int32_is_refused_not_wrapped(tmp_path, bad, found):
    with open(tmp_path / "all_train_seq.txt", "wb") as f:
        pickle.dump([[1, 2], [2, bad]], f, protocol=3)
    with open(tmp_path / "test.txt", "wb") as f:
        pickle.dump(([[1]], [2]), f, protocol=3)
    with pytest.raises(DataError, match=rf"all_train_seq.txt: item ids must fit int32 .*found {found} in the list of sessions\[1\]"):
        load_dataset("tmall", tmp_path, cache=False)


def test_issue_20_text_id_past_int64_is_refused_with_its_line(tmp_path):
    write(tmp_path / "train_sessions.txt", "1 2\n2 99999999999999999999\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match=r"train_sessions.txt: item ids must fit int32 .*found 99999999999999999999 at line 2"):
        load_dataset("nowplaying", tmp_path, cache=False)


@pytest.mark.parametrize("token", ["1_000", "+5", "1.0", "1-2"])
def test_issue_20_text_ids_python_would_coerce_are_refused(tmp_path, token):
    write(tmp_path / "train_sessions.txt", f"1 2\n2 {token}\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match=r"train_sessions.txt line 2: expected space-separated integer item ids, found '" + re.escape(token) + "'"):
        load_dataset("nowplaying", tmp_path, cache=False)


def test_issue_20_non_positive_preprocessed_ids_are_refused_with_their_line(tmp_path):
    write(tmp_path / "train_sessions.txt", "1 2\n2 -3\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match=r"train_sessions.txt: item ids must start at 1 .*found -3 at line 2"):
        load_dataset("nowplaying", tmp_path, cache=False)


@pytest.mark.parametrize("which", ["train", "test"])
def test_issue_20_empty_preprocessed_train_or_test_is_refused(tmp_path, which):
    write(tmp_path / "train_sessions.txt", "" if which == "train" else "1 2 3\n")
    write(tmp_path / "test_sessions.txt", "" if which == "test" else "1 2\n")
    with pytest.raises(DataError, match=rf"empty {which} set"):
        load_dataset("nowplaying", tmp_path, cache=False)


# -- protocol and dataset options: name, rule, value -----------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"test_days": 0}, "Protocol.test_days must be a number > 0, got 0"),
        ({"test_days": "7"}, "Protocol.test_days must be a number > 0, got '7'"),
        ({"test_days": float("nan")}, "Protocol.test_days must be a number > 0, got nan"),
        ({"min_item_support": -1}, "Protocol.min_item_support must be an integer >= 1, got -1"),
        ({"min_item_support": 2.5}, "Protocol.min_item_support must be an integer >= 1, got 2.5"),
        ({"min_session_length": 1}, "Protocol.min_session_length must be an integer >= 2, got 1"),
        ({"fraction": "x"}, "Protocol.fraction must be a number >= 1, or null for all, got 'x'"),
        ({"fraction": 0.5}, "Protocol.fraction must be a number >= 1, or null for all, got 0.5"),
        ({"fraction": True}, "Protocol.fraction must be a number >= 1, or null for all, got True"),
        ({"order": 3}, "Protocol.order must be a string, got 3"),
    ],
)
def test_issue_20_protocol_parameters_are_validated(params, message):
    with pytest.raises(DataError, match=message.replace(".", r"\.").replace("(", r"\(")) as e:
        Protocol(**params)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"test_days": 0}, "option test_days must be a number > 0, got 0"),
        ({"fraction": "x"}, "option fraction must be a number >= 1, or null for all, got 'x'"),
        ({"min_item_support": -5}, "option min_item_support must be an integer >= 1, got -5"),
        ({"order": "random"}, "option order must be one of time, file, got 'random'"),
    ],
)
def test_issue_20_csv_options_name_rule_and_value(tmp_path, options, message):
    path = clicks_file(tmp_path / "clicks.csv", click_rows())
    with pytest.raises(DataError, match=f"csv:{path}: {message}"):
        load_dataset(f"csv:{path}", **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"size": "/../../../x"}, "option size must be one of small, diginetica, yoochoose, got '/../../../x'"),
        ({"size": ["small"]}, "option size must be one of small, diginetica, yoochoose, got \\['small'\\]"),
        ({"seed": "a"}, "option seed must be an integer >= 0, got 'a'"),
        ({"seed": 1.5}, "option seed must be an integer >= 0, got 1.5"),
        ({"fraction": 0}, "option fraction must be an integer >= 1, or null for all, got 0"),
        ({"fraction": "../x"}, "option fraction must be an integer >= 1, or null for all, got '../x'"),
        ({"order": "random"}, "option order must be one of timeframe, file, or null for the preset's, got 'random'"),
    ],
)
def test_issue_20_synthetic_options_are_validated_by_split_name_and_load(options, message):
    with pytest.raises(DataError, match=f"synthetic: {message}"):
        split_name("synthetic", **options)
    with pytest.raises(DataError, match=f"synthetic: {message}"):
        load_dataset("synthetic", **options)


def test_issue_20_unknown_options_stay_a_type_error_listing_the_valid_ones():
    with pytest.raises(TypeError, match="dataset 'synthetic' takes no option colour; it takes: size, seed, fraction, order"):
        split_name("synthetic", colour="red")
    with pytest.raises(TypeError, match="takes no option order; it takes: none"):
        split_name("tmall", order="file")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("csv:/data/my clicks (v2).csv", "csv-my-clicks--v2-"),
        ("csv:/data/..", "csv--"),
        ("csv:/data/...csv", "csv--"),
        ("csv:/data/a..b.csv", "csv-a-b"),
        ("csv:/data/ünï.csv", "csv--n-"),
        ("csv:clicks.tsv", "csv-clicks"),
    ],
)
def test_issue_20_split_names_are_safe_file_names(name, expected):
    got = split_name(name)
    assert got == expected
    assert "/" not in got and ".." not in got
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in got)


def test_issue_20_split_names_of_valid_options():
    assert split_name("synthetic", size="diginetica", fraction=4) == "synthetic-diginetica-1-4"
    assert split_name("diginetica", order="file") == "diginetica-file-order"


# -- the split: empty is an error, tiny or oddly timed is a warning ---------------------------


def test_issue_20_tiny_test_set_warns_with_the_counts(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", click_rows(n_sessions=3000, days=300))
    with pytest.warns(DataWarning, match=r"clicks.csv: the test set has 20 cases in 10 sessions against 5,978 training cases"):
        load_dataset(f"csv:{path}", cache=False)


def test_issue_20_milliseconds_given_as_seconds_warn(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", click_rows(scale=1000))
    with pytest.warns(DataWarning) as record:
        load_dataset(f"csv:{path}", cache=False)
    messages = [str(w.message) for w in record]
    assert any("99% of the sessions span 81 years" in m and "milliseconds" in m for m in messages), messages
    assert any("the test set has 2 cases in 1 session against" in m for m in messages), messages


def test_issue_20_one_click_in_2099_warns(tmp_path):
    rows = click_rows() + ["9999,1,4070908800", "9999,2,4070908860"]  # 2099-01-01
    path = clicks_file(tmp_path / "clicks.csv", rows)
    with pytest.warns(DataWarning) as record:
        split = load_dataset(f"csv:{path}", cache=False)
    messages = [str(w.message) for w in record]
    future = [m for m in messages if "far beyond" in m]
    assert future and "1 session dated after" in future[0] and "2099-01-01" in future[0], messages
    assert "milliseconds" not in " ".join(messages)
    assert len(split.test) == 1


def test_issue_20_a_span_shorter_than_an_hour_warns(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", click_rows(days=0.02))
    with pytest.warns(DataWarning, match=r"session times span only 1,7\d\d s"):
        load_dataset(f"csv:{path}", test_days=0.001, cache=False)


def test_issue_20_empty_test_set_is_refused_and_names_the_unit_problem(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", click_rows(days=0.01))
    with pytest.raises(DataError, match=r"empty train or test set.*span only"):
        load_dataset(f"csv:{path}", cache=False)


def test_issue_20_warnings_are_repeated_when_the_split_comes_from_the_cache(tmp_path):
    path = clicks_file(tmp_path / "clicks.csv", click_rows(n_sessions=3000, days=300))
    for _ in range(2):
        with pytest.warns(DataWarning, match="the test set has 20 cases"):
            load_dataset(f"csv:{path}", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir())


def test_issue_20_direct_protocol_on_the_hand_made_files_does_not_warn(tmp_path):
    from test_protocol import DIGINETICA_ROWS

    split = apply_protocol(read_diginetica(write(tmp_path / "train-item-views.csv", DIGINETICA_ROWS)), Protocol(), "d")
    assert split.info["warnings"] == []


# -- provenance: file names and checksums, never a machine path ------------------------------


def _record(path: Path) -> dict:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_issue_20_raw_and_csv_splits_name_their_files_with_checksums(tmp_path):
    from test_protocol import DIGINETICA_ROWS

    raw = write(tmp_path / "d" / "train-item-views.csv", DIGINETICA_ROWS)
    split = load_dataset("diginetica", tmp_path / "d", cache_dir=tmp_path / "cache")
    assert split.info["files"] == [_record(raw)] and split.info["source"] == "train-item-views.csv"
    cached = load_dataset("diginetica", tmp_path / "d", cache_dir=tmp_path / "cache")
    assert cached.info["files"] == [_record(raw)]
    path = clicks_file(tmp_path / "clicks.csv", click_rows())
    split = load_dataset(f"csv:{path}", cache=False)
    assert split.info["files"] == [_record(path)] and split.info["source"] == "clicks.csv"


def test_issue_20_preprocessed_and_synthetic_splits_name_no_directory(tmp_path):
    train = write(tmp_path / "train_sessions.txt", "1 2 3\n2 3\n")
    with gzip.open(tmp_path / "test_sessions.txt.gz", "wt") as f:
        f.write("1 3\n")
    split = load_dataset("tmall", tmp_path, cache=False)
    assert split.info["source"] == "train_sessions.txt + test_sessions.txt.gz"
    assert split.info["files"] == [_record(train), _record(tmp_path / "test_sessions.txt.gz")]
    assert str(tmp_path) not in repr(split.info)
    assert load_dataset("synthetic").info["files"] == []
