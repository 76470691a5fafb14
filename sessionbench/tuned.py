"""Tuned settings on disk: one small JSON file per (split, method), written by ``--tune`` and used
by ``--params tuned``, and what a run takes from them::

    <results>/params/<split name>/<method>.json              committed beside the results
    <results>/params/.journal/<split name>/<method>.jsonl    the trial log a tuning resumes from

A params file holds the chosen setting (every hyperparameter), the searched ranges as text, the
values held fixed, the metric and its best validation value, the trials run and asked, the seed,
the validation split (fraction, fingerprint, cases scored), the fingerprint of the split it was
tuned for, the code version and the date (:class:`sessionbench.tuning.TuningResult`). A file is
used only for the split of its fingerprint and the class it was tuned for; one that cannot be
read whole is refused, naming the file and what is wrong. ``--tune`` reuses a file made with the
same split, class, metric, seed, budget, validation sample and searched space and fixed values,
and tunes again otherwise (``--force`` always), saying why.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sessionbench.data import Split
from sessionbench.data.cache import file_identity
from sessionbench.files import atomic_write, inside, safe_name, set_aside
from sessionbench.plan import Tuned
from sessionbench.recommender import Recommender
from sessionbench.registry import resolve
from sessionbench.store import difference, locked
from sessionbench.tuning import METRICS, VALIDATION_FRACTION, TuningResult, searched_space, space_text, tune

__all__ = [
    "FORMAT",
    "ParamsFileError",
    "TuningRequest",
    "check_params_file",
    "journal_path",
    "params_path",
    "read_params_file",
    "run_settings",
    "tuning_record",
    "write_params_file",
]

log = logging.getLogger(__name__)

#: Version of the params file layout.
FORMAT = 1
#: Each field of a params file and the JSON types it may hold (the dataclass's ``cls`` is "class").
_TYPES: dict[str, tuple[type, ...]] = {
    "method": (str,), "class": (str,), "params": (dict,), "space": (dict,), "fixed": (dict,), "metric": (str,),
    "best_value": (int, float), "n_trials": (int,), "n_trials_asked": (int,), "n_failed": (int,), "seed": (int,),
    "split": (dict,), "validation": (dict,), "device": (str,), "sampler": (str,), "code": (dict,), "date": (str,),
}
_INNER = {"split": ("name", "fingerprint"), "validation": ("fraction", "fingerprint", "max_cases", "cases")}


class ParamsFileError(ValueError):
    """A params file that cannot be read whole, or does not belong to the run (the message
    names the file, what was expected and what was found)."""


def params_path(results_dir: Path, split_name: str, method: str) -> Path:
    """``<results>/params/<split name>/<method>.json``, checked to stay inside ``results_dir``."""
    return inside(Path(results_dir), "params", safe_name(split_name), f"{safe_name(method.replace(':', '.'))}.json")


def journal_path(results_dir: Path, split_name: str, method: str) -> Path:
    """``<results>/params/.journal/<split name>/<method>.jsonl``: the trial log (not committed)."""
    return inside(Path(results_dir), "params", ".journal", safe_name(split_name), f"{safe_name(method.replace(':', '.'))}.jsonl")


def write_params_file(path: Path, result: TuningResult) -> None:
    """Write ``result`` (without its trial list) to ``path`` as indented JSON, atomically."""
    data: dict[str, Any] = {"format": FORMAT}
    for f in fields(TuningResult):
        if f.compare:
            data["class" if f.name == "cls" else f.name] = getattr(result, f.name)
    atomic_write(Path(path), lambda out: out.write((json.dumps(data, indent=1) + "\n").encode()))


def read_params_file(path: Path) -> TuningResult:
    """The tuning written at ``path``.

    Raises:
        ParamsFileError: the file is missing, not JSON, of another format, or lacks a field or
            holds one of the wrong type (the message names the file and the field).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ParamsFileError(f"{path}: cannot read the tuned setting ({e.strerror or e})") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise ParamsFileError(f"{path}: expected a tuned setting in JSON, found text that is not JSON ({e}); "
                              "tune again with --tune N --force") from e
    if not isinstance(data, dict):
        raise ParamsFileError(f"{path}: expected a JSON object, found {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ParamsFileError(f"{path}: expected params file format {FORMAT}, found {data.get('format')!r}")
    unknown = sorted(set(data) - set(_TYPES) - {"format"})
    if unknown:
        raise ParamsFileError(f"{path}: unknown field {', '.join(unknown)}; a params file holds {', '.join(_TYPES)}")
    missing = [k for k in _TYPES if k not in data]
    if missing:
        raise ParamsFileError(f"{path}: expected the fields {', '.join(_TYPES)}; it lacks {', '.join(missing)}")
    for key, types in _TYPES.items():
        if not isinstance(data[key], types) or isinstance(data[key], bool):
            raise ParamsFileError(f"{path}: {key} must be {' or '.join(t.__name__ for t in types)}, found {data[key]!r}")
    for key, inner in _INNER.items():
        lacking = [k for k in inner if k not in data[key]]
        if lacking:
            raise ParamsFileError(f"{path}: {key} lacks {', '.join(lacking)}")
    if data["metric"] not in METRICS:
        raise ParamsFileError(f"{path}: metric must be one of {', '.join(METRICS)}, found {data['metric']!r}")
    if not set(data["space"]) <= set(data["params"]):
        raise ParamsFileError(f"{path}: params lack the tuned {', '.join(sorted(set(data['space']) - set(data['params'])))}")
    values = {("cls" if k == "class" else k): v for k, v in data.items() if k != "format"}
    return TuningResult(**values)


def check_params_file(result: TuningResult, path: Path, *, split: Split, cls: type[Recommender]) -> None:
    """Refuse a tuned setting that is not for this split and class, or that the class refuses.

    Raises:
        ParamsFileError: naming the file and both fingerprints, both classes, or the error.
    """
    fingerprint = result.split.get("fingerprint")
    if fingerprint != split.fingerprint:
        raise ParamsFileError(
            f"{path}: tuned on the {result.split.get('name')} split with fingerprint {str(fingerprint)[:12]}, "
            f"but this run's {split.name} split has fingerprint {split.fingerprint[:12]}: it is another split's setting; "
            f"tune for this one with --tune N (it replaces the file)")
    name = f"{cls.__module__}:{cls.__qualname__}"
    if result.cls != name:
        raise ParamsFileError(f"{path}: tuned for the class {result.cls}, but this run's {result.method} is {name}")
    try:
        cls(**result.params)
    except (TypeError, ValueError) as e:
        raise ParamsFileError(f"{path}: its params are not accepted by {name}: {e}") from e


def tuning_record(path: Path, results_dir: Path, result: TuningResult) -> dict[str, Any]:
    """What a result records as ``"tuning"``: the file (relative to the results directory, so
    that no page names a path of the machine), its sha256, the trials, metric and value."""
    return {
        "file": Path(path).relative_to(Path(results_dir)).as_posix(),
        "sha256": file_identity(Path(path))["sha256"],
        "n_trials": result.n_trials,
        "n_trials_asked": result.n_trials_asked,
        "metric": result.metric,
        "best_value": result.best_value,
        "seed": result.seed,
        "validation_cases": result.validation.get("cases"),
    }


@dataclass(frozen=True)
class TuningRequest:
    """What a run asks of tuning.

    Attributes:
        n_trials: Trials per method; None uses the params files at hand without tuning.
        metric: One of :data:`sessionbench.tuning.METRICS`.
        seed: The tuning seed.
        max_cases: Validation cases scored per trial (a fixed sample); None: all of them.
        force: Tune again even where a matching file exists, and drop the trial log.
    """

    n_trials: int | None
    metric: str = "mrr@20"
    seed: int = 0
    max_cases: int | None = 10_000
    force: bool = False


def run_settings(
    split: Split,
    methods: list[str],
    overrides: dict[str, dict[str, Any]],
    request: TuningRequest,
    *,
    results_dir: Path,
    quick: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Tuned]:
    """The tuned setting of each method that has one, for :func:`sessionbench.plan.plan`: tuned
    now (or reused) when ``request.n_trials`` is set, else read from the params files. Methods
    without one run their defaults, and the log says so.

    A method's ``overrides`` (``--set``) and, with ``quick``, its quick settings are held fixed:
    a tuning does not search them, and a file tuned with other values for them is refused.

    Raises:
        ParamsFileError: a file of another split or class, damaged (``--params tuned``), or
            tuned with other values of what this run fixes.
        TuningError: see :func:`sessionbench.tuning.tune`.
    """
    out = {}
    for method in methods:
        cls = resolve(method)
        name = cls.name or method
        fixed = {**(cls.quick_params if quick else {}), **overrides.get(method, {})}
        path = params_path(results_dir, split.name, name)
        if request.n_trials is None:
            result = _from_file(path, cls, name, split, fixed, overrides.get(method, {}))
        else:
            result = _tuned_or_reused(path, cls, name, split, fixed, request, results_dir, device, progress)
        if result is not None:
            out[method] = Tuned(result.params, tuning_record(path, results_dir, result))
    return out


def _from_file(path: Path, cls: type[Recommender], name: str, split: Split, fixed: dict[str, Any], overrides: dict[str, Any]) -> TuningResult | None:
    if not path.is_file():
        why = "it declares no search space" if not cls.search_space else f"no tuned setting at {path} (tune with --tune N)"
        log.info("%s: %s; running its defaults", name, why)
        return None
    result = read_params_file(path)
    check_params_file(result, path, split=split, cls=cls)
    for key, value in fixed.items():
        if key in result.params and result.params[key] != json.loads(json.dumps(value)):
            source = "--set" if key in overrides else "--quick"
            raise ParamsFileError(
                f"{path}: tuned with {key}={result.params[key]!r}, but this run sets {key}={value!r} ({source}); "
                f"drop {source}, or tune with it held fixed: --tune N")
    log.info("%s: using the tuned setting of %s (%d trials, %s %.4f on validation)", name, path, result.n_trials,
             result.metric, result.best_value)
    return result


def _wanted(cls: type[Recommender], split: Split, fixed: dict[str, Any], request: TuningRequest) -> dict[str, Any]:
    """What an existing file must match to be reused (the fields of :func:`_made_with`)."""
    return json.loads(json.dumps({
        "split": split.fingerprint, "class": f"{cls.__module__}:{cls.__qualname__}", "metric": request.metric,
        "seed": request.seed, "n_trials": request.n_trials, "max_cases": request.max_cases, "fraction": VALIDATION_FRACTION,
        "space": space_text(searched_space(cls, fixed)), "fixed": fixed,
    }))


def _made_with(result: TuningResult) -> dict[str, Any]:
    return {
        "split": result.split.get("fingerprint"), "class": result.cls, "metric": result.metric, "seed": result.seed,
        "n_trials": result.n_trials_asked, "max_cases": result.validation.get("max_cases"),
        "fraction": result.validation.get("fraction"), "space": result.space, "fixed": result.fixed,
    }


def _tuned_or_reused(
    path: Path, cls: type[Recommender], name: str, split: Split, fixed: dict[str, Any], request: TuningRequest,
    results_dir: Path, device: str, progress: bool,
) -> TuningResult | None:
    if not searched_space(cls, fixed):
        why = "it declares no search space" if not cls.search_space else "--set fixes every hyperparameter of its search space"
        log.info("%s: not tuned, %s; running its defaults", name, why)
        return None
    wanted = _wanted(cls, split, fixed, request)
    with locked(Path(results_dir), path.parent, path.stem):  # a second command tuning it waits, then reuses
        existing = None if request.force else _readable(path)
        if existing is not None:
            made = _made_with(existing)
            if made == wanted:
                log.info("%s: reusing the tuned setting of %s (%d trials, %s %.4f on validation); --force tunes again",
                         name, path, existing.n_trials, existing.metric, existing.best_value)
                return existing
            log.info("%s: not reusing %s, because %s", name, path, difference(made, wanted))
        journal = journal_path(results_dir, split.name, name)
        if request.force:
            journal.unlink(missing_ok=True)
        log.info("%s: tuning, %d trials on the most recent %d%% of the training cases (%s)", name, request.n_trials,
                 round(100 * VALIDATION_FRACTION), f"a sample of about {request.max_cases}" if request.max_cases else "all of them")
        result = tune(split, cls, request.n_trials, metric=request.metric, seed=request.seed, max_cases=request.max_cases,
                      fixed=fixed, device=device, progress=progress, journal=journal)
        write_params_file(path, result)
    chosen = ", ".join(f"{k}={result.params[k]!r}" for k in result.space)
    log.info("%s: tuned (%d trials, %d resumed from the log, %d failed): %s %.4f on %d validation cases with %s; wrote %s",
             name, result.n_trials, result.resumed, result.n_failed, result.metric, result.best_value,
             result.validation["cases"], chosen, path)
    return result


def _readable(path: Path) -> TuningResult | None:
    """The file at ``path``; None when absent, or damaged (then set aside and said)."""
    if not path.is_file():
        return None
    try:
        return read_params_file(path)
    except ParamsFileError as e:
        moved = set_aside(path)
        log.warning("%s; set aside as %s, tuning again", e, moved.name if moved else "(already gone)")
        return None
