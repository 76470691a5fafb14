"""Readers and bad input: every error names the file, the line or position, what was expected
and what was found."""

import gzip
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sessionbench.data import DataError, DataWarning, load_dataset
from sessionbench.data.cache import cache_dir

HEADER = "sessionId;userId;itemId;timeframe;eventdate\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_missing_data_names_the_files_where_they_are_published_and_where_it_looked(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("diginetica", tmp_path / "nowhere")
    message = str(e.value)
    assert "train-item-views.csv" in message and "all_train_seq.txt + test.txt" in message
    assert "codalab" in message and str(tmp_path / "nowhere") in message and "--data-dir" in message


def test_empty_directory_says_neither_form_is_there(tmp_path):
    with pytest.raises(DataError, match="neither the raw file nor a preprocessed form"):
        load_dataset("yoochoose-1-64", tmp_path)


def test_malformed_diginetica_row_names_file_and_line(tmp_path):
    write(tmp_path / "train-item-views.csv", HEADER + "1;NA;10;0;2016-05-01\n1;NA;20;2016-05-01\n")
    with pytest.raises(DataError, match=r"train-item-views.csv line 3: expected 5 ';'-separated fields.*found 4"):
        load_dataset("diginetica", tmp_path)


def test_non_integer_item_names_the_field(tmp_path):
    write(tmp_path / "train-item-views.csv", HEADER + "1;NA;10;0;2016-05-01\n1;NA;abc;1;2016-05-01\n")
    with pytest.raises(DataError, match=r"line 3: field 'item' should be an integer \(int64\), found 'abc'"):
        load_dataset("diginetica", tmp_path)


def test_wrong_header_is_refused(tmp_path):
    write(tmp_path / "train-item-views.csv", "a;b;c\n1;2;3\n")
    with pytest.raises(DataError, match="line 1: expected the header 'sessionId;userId;itemId;timeframe;eventdate'"):
        load_dataset("diginetica", tmp_path)


def test_semicolon_file_given_as_yoochoose_suggests_diginetica(tmp_path):
    write(tmp_path / "yoochoose-clicks.dat", "1;NA;10;0;2016-05-01\n")
    with pytest.raises(DataError, match=r"yoochoose-clicks.dat line 1: expected 4 comma-separated fields.*DIGINETICA"):
        load_dataset("yoochoose-1-64", tmp_path)


def test_bad_yoochoose_timestamp_names_line_and_field(tmp_path):
    rows = "1,2014-04-01T10:00:00.000Z,100,0\n1,yesterday,200,0\n"
    write(tmp_path / "yoochoose-clicks.dat", rows)
    with pytest.raises(DataError, match=r"line 2: field 'timestamp' should be an ISO 8601 time, found 'yesterday'"):
        load_dataset("yoochoose-1-4", tmp_path)


def test_diginetica_zip_is_read_like_the_csv(tmp_path):
    from test_protocol import DIGINETICA_ROWS

    csv_dir, zip_dir = tmp_path / "csv", tmp_path / "zip"
    write(csv_dir / "train-item-views.csv", DIGINETICA_ROWS)
    zip_dir.mkdir()
    with zipfile.ZipFile(zip_dir / "dataset-train-diginetica.zip", "w") as z:
        z.writestr("train-item-views.csv", DIGINETICA_ROWS)
    a, b = load_dataset("diginetica", csv_dir), load_dataset("diginetica", zip_dir)
    assert a.train.to_lists() == b.train.to_lists() and a.test.to_lists() == b.test.to_lists()


def dump(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=3))
    return path


SESSIONS = [[1, 2, 3], [2, 4], [3, 1, 4, 2]]
TEST_SESSIONS = [[1, 4, 2], [3, 2]]


def pairs(sessions):
    """NARM/SR-GNN augmentation: longest prefix first."""
    prefixes, targets = [], []
    for s in sessions:
        for k in range(1, len(s)):
            prefixes.append(s[:-k])
            targets.append(s[-k])
    return prefixes, targets


def test_the_three_preprocessed_forms_give_the_same_split(tmp_path):
    dump(tmp_path / "a" / "all_train_seq.txt", SESSIONS)
    dump(tmp_path / "a" / "test.txt", pairs(TEST_SESSIONS))
    dump(tmp_path / "b" / "train.txt", pairs(SESSIONS))
    dump(tmp_path / "b" / "test.txt", pairs(TEST_SESSIONS))
    (tmp_path / "c").mkdir()
    for name, sessions in (("train_sessions.txt.gz", SESSIONS), ("test_sessions.txt.gz", TEST_SESSIONS)):
        with gzip.open(tmp_path / "c" / name, "wt") as f:
            f.write("".join(" ".join(map(str, s)) + "\n" for s in sessions))
    splits = [load_dataset("tmall", tmp_path / d) for d in "abc"]
    forms = {s.info["form"] for s in splits}
    assert len(forms) == 3
    for split in splits:
        assert split.train.to_lists() == [[i - 1 for i in s] for s in SESSIONS]
        assert split.test.to_lists() == [[i - 1 for i in s] for s in TEST_SESSIONS]
        assert split.n_items == 4 and split.item_ids.tolist() == [1, 2, 3, 4]


def test_restricted_unpickler_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    dump(tmp_path / "d" / "all_train_seq.txt", [Exploit()])
    dump(tmp_path / "d" / "test.txt", pairs(TEST_SESSIONS))
    with pytest.raises(DataError, match=r"all_train_seq.txt: the pickle asks for builtins.getattr; a data file may hold only lists, tuples and ints"):
        load_dataset("tmall", tmp_path / "d")
    assert not marker.exists()


def test_pickle_with_a_string_item_names_its_position(tmp_path):
    dump(tmp_path / "all_train_seq.txt", [[1, 2], [3, "4"]])
    dump(tmp_path / "test.txt", pairs(TEST_SESSIONS))
    with pytest.raises(DataError, match=r"all_train_seq.txt: the list of sessions\[1\] holds '4' \(str\)"):
        load_dataset("tmall", tmp_path)


def test_inconsistent_prefix_pairs_are_refused(tmp_path):
    prefixes, targets = pairs(TEST_SESSIONS)
    targets[1] = 3  # [1] -> 3 although the session is 1 4 2
    dump(tmp_path / "all_train_seq.txt", SESSIONS)
    dump(tmp_path / "test.txt", (prefixes, targets))
    with pytest.raises(DataError, match="test.txt: case 1 is not a prefix of the session that starts at case 0"):
        load_dataset("tmall", tmp_path)


def test_text_form_bad_token_names_the_line(tmp_path):
    write(tmp_path / "train_sessions.txt", "1 2 3\n2 x 4\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match=r"train_sessions.txt line 2: expected space-separated integer item ids, found 'x'"):
        load_dataset("nowplaying", tmp_path)


def test_text_form_one_click_session_names_the_line(tmp_path):
    write(tmp_path / "train_sessions.txt", "1 2 3\n4\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match="train_sessions.txt line 2: a session needs at least 2 item ids, found 1"):
        load_dataset("nowplaying", tmp_path)


def test_zero_based_ids_are_refused(tmp_path):
    write(tmp_path / "train_sessions.txt", "0 2 3\n")
    write(tmp_path / "test_sessions.txt", "1 2\n")
    with pytest.raises(DataError, match="item ids must start at 1"):
        load_dataset("nowplaying", tmp_path)


def test_test_items_missing_from_train_warn_unless_the_dataset_is_a_fraction(tmp_path):
    write(tmp_path / "train_sessions.txt", "1 2 3\n2 3\n")
    write(tmp_path / "test_sessions.txt", "1 4\n")
    with pytest.warns(DataWarning, match="1 test clicks are on items absent from the training data"):
        load_dataset("tmall", tmp_path, cache=False)
    split = load_dataset("yoochoose-1-64", tmp_path, cache=False)
    assert "1 test clicks are on items that do not occur in this training fraction" in split.info["notes"][0]


def test_csv_reader_accepts_session_rec_format_and_names_bad_timestamps(tmp_path):
    rows = ["SessionId\tItemId\tTime"] + [f"{s}\t{i}\t{1000.0 * s + i}" for s in range(1, 40) for i in (1, 2, 3)]
    split_ok = load_dataset(f"csv:{write(tmp_path / 'ok.tsv', chr(10).join(rows) + chr(10))}", test_days=0.1)
    assert split_ok.name == "csv-ok-test_days0.1" and split_ok.n_items == 3
    write(tmp_path / "bad.csv", "session_id,item_id,timestamp\n1,1,2014-04-01T10:00:00Z\n1,2,noon\n")
    with pytest.raises(DataError, match="bad.csv line 3: field 'timestamp' should be unix seconds or ISO 8601, found 'noon'"):
        load_dataset(f"csv:{tmp_path / 'bad.csv'}")
    write(tmp_path / "cols.csv", "session,product,when\n1,1,2\n")
    with pytest.raises(DataError, match="cols.csv line 1: expected a header with the columns session_id, item_id, timestamp"):
        load_dataset(f"csv:{tmp_path / 'cols.csv'}")


def test_unknown_dataset_and_option_list_what_is_known(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'digi'; known: diginetica, yoochoose-1-64"):
        load_dataset("digi")
    with pytest.raises(TypeError, match="takes no option sort; it takes: order"):
        load_dataset("diginetica", tmp_path, sort=True)
    with pytest.raises(DataError, match="order must be one of timeframe, file"):
        load_dataset("diginetica", tmp_path, order="random")


def test_second_load_comes_from_the_cache_and_failures_write_nothing(tmp_path, monkeypatch):
    from test_protocol import DIGINETICA_ROWS

    write(tmp_path / "ok" / "train-item-views.csv", DIGINETICA_ROWS)
    first = load_dataset("diginetica", tmp_path / "ok", cache_dir=tmp_path / "cache")
    with monkeypatch.context() as m:
        m.setattr("sessionbench.data.datasets.apply_protocol", lambda *a: pytest.fail("not from the cache"))
        second = load_dataset("diginetica", tmp_path / "ok", cache_dir=tmp_path / "cache")
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".npz"]
    assert second.train.to_lists() == first.train.to_lists() and second.stats() == first.stats()
    np.testing.assert_array_equal(second.item_ids, first.item_ids)
    write(tmp_path / "bad" / "train-item-views.csv", HEADER + "1;NA;x;0;2016-05-01\n")
    with pytest.raises(DataError):
        load_dataset("diginetica", tmp_path / "bad", cache_dir=tmp_path / "cache2")
    assert not (tmp_path / "cache2").exists() or not list((tmp_path / "cache2").iterdir())


def test_a_changed_file_is_preprocessed_again(tmp_path):
    from test_protocol import DIGINETICA_ROWS

    path = write(tmp_path / "train-item-views.csv", DIGINETICA_ROWS)
    before = load_dataset("diginetica", tmp_path, cache_dir=tmp_path / "cache")
    path.write_text(DIGINETICA_ROWS.replace("12;NA;20;3;2016-05-11\n", ""))
    after = load_dataset("diginetica", tmp_path, cache_dir=tmp_path / "cache")
    assert after.train.n_clicks == before.train.n_clicks - 1


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SESSIONBENCH_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
