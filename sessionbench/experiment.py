"""Experiment files: ``sessionbench --config experiment.toml`` runs what the file names, so a
run can be committed beside a paper and repeated exactly. Flags on the command line override it.

Example::

    datasets = ["diginetica", "yoochoose-1-64"]    # or: dataset = "diginetica"
    data_dir = "~/data"                             # $SESSIONBENCH_DATA-style: a folder per dataset
    methods = ["pop", "narm", "gru4rec-tuned"]
    seeds = [0, 1, 2]
    suite = "main"

    [data_options]
    order = "timeframe"

    [set.narm]
    hidden_size = 100

Every key is a command-line option (``results_dir`` is ``--results-dir``, ``tune = 50`` is
``--tune 50``); a table or list is written out as the repeated or comma-separated flag. With
several datasets the run is repeated for each, one page per dataset.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ExperimentError", "arguments"]

_VALUES = {"data_dir", "device", "suite", "jobs", "backend", "cluster", "ties", "results_dir", "attention_figure", "dataset",
           "tune", "tune_metric", "tune_cases", "tune_seed", "params"}
_LISTS = {"methods", "seeds"}
_FLAGS = {"force", "quick", "no_progress", "verbose"}
_OTHER = {"datasets", "data_options", "set", "recommenders"}


class ExperimentError(ValueError):
    """An experiment file that cannot be read or names an unknown option."""


def arguments(path: Path) -> list[list[str]]:
    """The command-line arguments the file stands for: one list per dataset it names.

    Raises:
        ExperimentError: the file is missing or not TOML, or has an unknown key or a value of
            the wrong kind (the message names the file and the key).
    """
    try:
        spec = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ExperimentError(f"--config {path}: cannot read it ({e.strerror or e})") from e
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"--config {path}: not valid TOML ({e})") from e
    unknown = sorted(set(spec) - _VALUES - _LISTS - _FLAGS - _OTHER)
    if unknown:
        known = ", ".join(sorted(_VALUES | _LISTS | _FLAGS | _OTHER))
        raise ExperimentError(f"--config {path}: unknown key {', '.join(unknown)}; known: {known}")
    if "dataset" in spec and "datasets" in spec:
        raise ExperimentError(f"--config {path}: give dataset or datasets, not both")
    common = []
    for key in sorted(spec):
        value = spec[key]
        flag = "--" + key.replace("_", "-")
        if key in _VALUES - {"dataset"}:
            common += [flag, str(value)]
        elif key in _LISTS:
            common += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
        elif key in _FLAGS:
            if not isinstance(value, bool):
                raise ExperimentError(f"--config {path}: {key} must be true or false, got {value!r}")
            common += [flag] if value else []
        elif key == "recommenders":
            common += [arg for target in _list(path, key, value) for arg in ("--recommender", str(target))]
        elif key == "data_options":
            common += [arg for k, v in _table(path, key, value).items() for arg in ("--data-option", f"{k}={json.dumps(v)}")]
        elif key == "set":
            for method, params in _table(path, key, value).items():
                common += [arg for k, v in _table(path, f"set.{method}", params).items() for arg in ("--set", f"{method}.{k}={json.dumps(v)}")]
    datasets = _list(path, "datasets", spec["datasets"]) if "datasets" in spec else [spec.get("dataset")]
    return [(["--dataset", str(d)] if d is not None else []) + common for d in datasets]


def _table(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExperimentError(f"--config {path}: {key} must be a table, got {value!r}")
    return value


def _list(path: Path, key: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ExperimentError(f"--config {path}: {key} must be a non-empty list, got {value!r}")
    return value
