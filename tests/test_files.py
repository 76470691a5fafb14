"""Atomic writes: the old content or the new one, never half, and no temporary file left."""

import pytest

from sessionbench.files import atomic_write


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "result.json"
    atomic_write(path, lambda f: f.write(b"old"))

    def half_then_interrupted(f):
        f.write(b"ne")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_interrupted)
    assert path.read_bytes() == b"old" and [p.name for p in path.parent.iterdir()] == ["result.json"]
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
