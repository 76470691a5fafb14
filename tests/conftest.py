"""Shared fixtures: an isolated split cache per test session, and the staged real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("SESSIONBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Splits are cached in a temporary directory, never in the user's cache."""
    os.environ["SESSIONBENCH_CACHE"] = str(tmp_path_factory.mktemp("split-cache"))


def shared_data(folder: str) -> Path:
    """A folder of ../shared/data; the test is skipped when it is absent."""
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"real data not available: {path}")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module of tiny models: they run fastest so, and two threads
    spin against each other on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
