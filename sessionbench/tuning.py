"""Equal-budget hyperparameter tuning: the same number of TPE trials for every method tuned, each
trial scored on the same time-based validation split, never on the test sessions.

A benchmark that tunes some methods and not others measures the tuning. A method is tuned over
the ``search_space`` its class declares (:mod:`sessionbench.search_space`): ``n_trials`` trials of
optuna's TPE sampler, seeded. One trial constructs the class with its defaults (and any ``fixed``
values) plus the sampled ones, fits it with ``seed`` on the training view of
:func:`validation_split` (the older training sessions) and scores MRR@20 or Recall@20,
conservative ties, on its most recent sessions, or on a fixed seeded sample of them
(:func:`validation_sample`: the same sessions for every method and every trial). Both live in
:mod:`sessionbench.validation` and are re-exported here. The best trial's setting (the earliest
of equal values) is what :mod:`sessionbench.tuned` writes to a params file and a run uses.
On small grids TPE proposes a setting it has tried before; such a trial counts against the
budget and takes the first one's value without fitting again (a fit is deterministic for its
seed), so a repeat costs nothing.

Resuming: with ``journal``, every finished trial is appended to a JSON-lines file whose first
line names the setup. Tuning again with the same setup replays the logged trials through a
fresh sampler (each sampled setting is checked against the log and the logged value is told
instead of fitting again), then continues. An interrupted tuning therefore ends as an
uninterrupted one would, trial for trial, as long as optuna's version is the same (the setup
names it); a larger budget continues a smaller one, a smaller one uses its first trials.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from sessionbench.data import Sessions, Split
from sessionbench.evaluation import evaluate
from sessionbench.files import atomic_write
from sessionbench.provenance import code_identity, code_version
from sessionbench.recommender import Recommender
from sessionbench.registry import resolve
from sessionbench.store import difference
from sessionbench.validation import VALIDATION_FRACTION, validation_sample, validation_split

__all__ = [
    "METRICS",
    "VALIDATION_FRACTION",
    "TuningError",
    "TuningResult",
    "searched_space",
    "tune",
    "validation_sample",
    "validation_split",
]

log = logging.getLogger(__name__)

#: What a tuning may maximise: on the validation sessions, conservative ties.
METRICS = ("mrr@20", "recall@20")
_JOURNAL_FORMAT = 1
#: What a failed trial raises: a combination the class refuses (ValueError), scores it cannot
#: rank (ScoreError, a ValueError) or a training that diverged (FloatingPointError).
_TRIAL_ERRORS = (ValueError, ArithmeticError)


class TuningError(ValueError):
    """Tuning cannot be done as asked: nothing to search, no optuna, or every trial failed."""


@dataclass
class TuningResult:
    """What a tuning chose and how: what a params file holds (:mod:`sessionbench.tuned`).

    Attributes:
        method: The name the tables show (the class's ``name``).
        cls: The class, as ``module:Class``.
        params: Every hyperparameter of the chosen setting, defaults included.
        space: The searched hyperparameters, each with its range as text (``Float(low=0.0, ...)``).
        fixed: Hyperparameters the caller held fixed (``--set``, ``--quick``): never searched.
        metric: What was maximised, one of :data:`METRICS`.
        best_value: The chosen setting's metric on the validation sessions scored.
        n_trials: Trials run, failed ones included (they spent budget).
        n_trials_asked: The budget.
        n_failed: Trials whose setting the class refused or whose training failed.
        seed: The sampler's seed, also every trial's fit seed and the sample's.
        split: ``name`` and ``fingerprint`` of the split tuned for (its training sessions).
        validation: ``fraction``, ``name``, ``fingerprint``, ``max_cases`` (None: all),
            ``cases`` and ``sessions`` scored, ``cases_in_all``.
        device: Where the trials ran.
        sampler: The sampler and optuna's version.
        code: The code version (:func:`sessionbench.provenance.code_version`) and its identity.
        date: When the tuning finished (UTC, ISO 8601).
        trials: Every trial (number, params, value, state, error, seconds); not written to files.
        resumed: How many trials were taken from the journal rather than run; not written.
    """

    method: str
    cls: str
    params: dict[str, Any]
    space: dict[str, str]
    fixed: dict[str, Any]
    metric: str
    best_value: float
    n_trials: int
    n_trials_asked: int
    n_failed: int
    seed: int
    split: dict[str, Any]
    validation: dict[str, Any]
    device: str
    sampler: str
    code: dict[str, Any]
    date: str
    trials: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)
    resumed: int = field(default=0, compare=False)


def searched_space(cls: type[Recommender], fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of ``cls.search_space`` a tuning searches: all of it but the ``fixed`` names.

    Raises:
        TuningError: the space names a hyperparameter the class's constructor does not take.
    """
    accepted = set(_constructor_names(cls))
    unknown = sorted(set(cls.search_space) - accepted)
    if unknown:
        raise TuningError(f"{cls.__module__}:{cls.__qualname__}.search_space names {', '.join(unknown)}, "
                          f"which its constructor does not take; it takes {', '.join(sorted(accepted))}")
    return {name: space for name, space in cls.search_space.items() if name not in (fixed or {})}


def _constructor_names(cls: type[Recommender]) -> list[str]:
    import inspect

    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def tune(
    split: Split,
    method: str | type[Recommender],
    n_trials: int,
    *,
    metric: str = "mrr@20",
    seed: int = 0,
    max_cases: int | None = None,
    fixed: dict[str, Any] | None = None,
    fraction: float = VALIDATION_FRACTION,
    device: str = "cpu",
    progress: bool = True,
    journal: Path | None = None,
) -> TuningResult:
    """Tune ``method`` for ``split`` with ``n_trials`` TPE trials on its validation split.

    Args:
        split: The benchmark's split; only its training sessions are used.
        method: A registered name, ``module:Class`` or a Recommender class.
        n_trials: The budget: trials run, failed ones included.
        metric: "mrr@20" or "recall@20" on the validation sessions (conservative ties).
        seed: Seeds the TPE sampler, every trial's fit and the validation sample.
        max_cases: Score a fixed sample of whole validation sessions holding about this many
            prefix cases (:func:`validation_sample`); None scores all of them.
        fixed: Hyperparameters held at these values and not searched.
        fraction: Share of the training cases that validation holds.
        device: Where trials fit and score.
        progress: Show a progress bar over the trials.
        journal: A JSON-lines file logging each finished trial, from which a tuning with the
            same setup resumes (see the module docstring). None: no log.

    Raises:
        TuningError: nothing to search, optuna missing, or every trial failed.
        ValueError: a bad ``metric``, ``n_trials``, ``max_cases`` or ``fraction``.
    """
    cls = resolve(method) if isinstance(method, str) else method
    name = cls.name or str(method)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    fixed = _json(dict(fixed or {}))
    space = searched_space(cls, fixed)
    if not space:
        why = "its class declares no search_space" if not cls.search_space else "every hyperparameter of its search_space is fixed"
        raise TuningError(f"{name}: nothing to tune: {why}")
    optuna = _optuna()
    validation = validation_split(split, fraction)
    view = validation.training_view()
    sample = validation_sample(validation.test, max_cases, seed=seed, key=validation.fingerprint)
    setup = _json({
        "method": name, "class": f"{cls.__module__}:{cls.__qualname__}", "validation": validation.fingerprint,
        "metric": metric, "seed": seed, "max_cases": max_cases, "cases": sample.n_prefixes,
        "space": space_text(space), "fixed": fixed, "device": device, "code": code_identity(), "optuna": optuna.__version__,
    })
    log_ = _Journal(Path(journal), setup) if journal is not None else None
    trials: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}  # setting -> its first trial: TPE proposes a setting again on small grids
    with _quiet(optuna), tqdm(total=n_trials, desc=f"tune {name}", unit="trial", disable=not progress, leave=False) as bar:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        for number in range(n_trials):
            trial = study.ask()
            params = _json({**fixed, **{key: dimension.suggest(trial, key) for key, dimension in space.items()}})
            entry = log_.replay(number, params) if log_ is not None else None
            if entry is None:
                earlier = seen.get(json.dumps(params, sort_keys=True))
                if earlier is not None:  # a fit is deterministic for its seed: the same setting scores the same
                    entry = {**earlier, "number": number, "seconds": 0.0, "repeat_of": earlier["number"]}
                    log.debug("%s trial %d repeats trial %d: %s", name, number, earlier["number"], params)
                else:
                    entry = _run_trial(cls, name, params, view, sample, seed, device, metric, number)
                if log_ is not None:
                    log_.append(entry)
            seen.setdefault(json.dumps(params, sort_keys=True), entry)
            if entry["state"] == "complete":
                study.tell(trial, entry["value"])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trials.append(entry)
            bar.update(1)
    return _result(cls, name, trials, n_trials, space, fixed, metric, seed, split, validation, sample, max_cases, fraction,
                   device, optuna.__version__, log_.replayed if log_ is not None else 0)


def _run_trial(
    cls: type[Recommender], name: str, params: dict[str, Any], view: Split, sample: Sessions,
    seed: int, device: str, metric: str, number: int,
) -> dict[str, Any]:
    """Fit and score one setting: its journal entry (``state`` "complete" or "failed")."""
    started = time.perf_counter()
    entry: dict[str, Any] = {"number": number, "params": params}
    try:
        recommender = cls(**params)
        recommender.fit(view, seed=seed, device=device, progress=False)
        value = evaluate(recommender, sample, n_items=view.n_items, ks=(20,), progress=False).metrics[metric]
    except _TRIAL_ERRORS as e:
        log.info("%s trial %d failed, counted against the budget: %s: %s", name, number, type(e).__name__, e)
        return {**entry, "value": None, "state": "failed", "error": f"{type(e).__name__}: {e}",
                "seconds": round(time.perf_counter() - started, 3)}
    seconds = round(time.perf_counter() - started, 3)
    log.debug("%s trial %d: %s -> %s %.4f (%.1f s)", name, number, params, metric, value, seconds)
    return {**entry, "value": float(value), "state": "complete", "error": None, "seconds": seconds}


def _result(
    cls: type[Recommender], name: str, trials: list[dict[str, Any]], n_trials: int, space: dict[str, Any],
    fixed: dict[str, Any], metric: str, seed: int, split: Split, validation: Split, sample: Sessions,
    max_cases: int | None, fraction: float, device: str, optuna_version: str, resumed: int,
) -> TuningResult:
    complete = [t for t in trials if t["state"] == "complete"]
    if not complete:
        raise TuningError(f"{name}: all {len(trials)} trials failed; the first: {trials[0]['error']}")
    best = max(complete, key=lambda t: (t["value"], -t["number"]))  # the earliest of equal values
    code = code_version()
    return TuningResult(
        method=name,
        cls=f"{cls.__module__}:{cls.__qualname__}",
        params=_json(cls(**best["params"]).get_params()),
        space=space_text(space),
        fixed=fixed,
        metric=metric,
        best_value=float(best["value"]),
        n_trials=len(trials),
        n_trials_asked=n_trials,
        n_failed=len(trials) - len(complete),
        seed=seed,
        split={"name": split.name, "fingerprint": split.fingerprint},
        validation={
            "fraction": fraction, "name": validation.name, "fingerprint": validation.fingerprint, "max_cases": max_cases,
            "cases": sample.n_prefixes, "sessions": len(sample), "cases_in_all": validation.test.n_prefixes,
        },
        device=device,
        sampler=f"optuna {optuna_version} TPESampler(seed={seed})",
        code={"identity": code_identity(), "sessionbench": code["sessionbench"], "commit": code["commit"], "dirty": code["dirty"]},
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        trials=trials,
        resumed=resumed,
    )


def space_text(space: dict[str, Any]) -> dict[str, str]:
    """Each searched hyperparameter's range as text, e.g. ``Int(low=20, high=2000, log=True, step=1)``."""
    return {name: repr(dimension) for name, dimension in sorted(space.items())}


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (so that a logged setting compares equal to itself)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise TuningError("tuning needs optuna, an optional extra: pip install -e '.[tune]' (or pip install 'optuna>=3.4')") from e
    return optuna


@contextlib.contextmanager
def _quiet(optuna: Any) -> Iterator[None]:
    """optuna's own per-trial log lines off while tuning (ours say the same), restored after."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


class _Journal:
    """The trial log of one tuning: a header line naming the setup, then one line per trial.

    Opening it keeps the logged trials when the header matches ``setup`` (up to the first line
    that cannot be read, e.g. one cut short by an interruption) and rewrites the file with them;
    another setup's trials are dropped, and the log says why.
    """

    def __init__(self, path: Path, setup: dict[str, Any]) -> None:
        self.path, self.setup = path, setup
        self.entries = self._read()
        self.replayed = 0
        self._rewrite(len(self.entries))

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        try:
            first = json.loads(lines[0])
            if first["journal"] != _JOURNAL_FORMAT:
                raise ValueError(f"journal format {first['journal']!r}")
            header = first["setup"]
        except (IndexError, ValueError, KeyError, TypeError):
            log.warning("%s: its first line is not a tuning journal's header; starting the tuning afresh", self.path)
            return []
        if header != self.setup:
            log.info("%s: its trials were run with another setup (%s); starting afresh", self.path, difference(header, self.setup))
            return []
        entries: list[dict[str, Any]] = []
        for number, line in enumerate(lines[1:]):
            try:
                entry = json.loads(line)
                if entry["number"] != number or entry["state"] not in ("complete", "failed"):
                    raise ValueError(f"expected trial {number}")
            except (ValueError, KeyError, TypeError) as e:
                log.warning("%s line %d: unreadable (%s); keeping the %d trials before it", self.path, number + 2, e, number)
                break
            entries.append(entry)
        if entries:
            log.info("%s: resuming after the %d trials it logged", self.path, len(entries))
        return entries

    def replay(self, number: int, params: dict[str, Any]) -> dict[str, Any] | None:
        """The logged trial ``number`` if the sampler drew the same setting for it; else None
        (and the log is cut there: what follows was drawn from another history)."""
        if number >= len(self.entries):
            return None
        entry = self.entries[number]
        if entry["params"] == params:
            self.replayed += 1
            return entry
        log.warning("%s: trial %d drew %s now but %s then; running the trials from there again", self.path, number, params, entry["params"])
        self._rewrite(number)
        return None

    def append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
        self.entries.append(entry)

    def _rewrite(self, keep: int) -> None:
        self.entries = self.entries[:keep]
        lines = [json.dumps({"journal": _JOURNAL_FORMAT, "setup": self.setup}, sort_keys=True)]
        lines += [json.dumps(e, sort_keys=True) for e in self.entries]
        atomic_write(self.path, lambda f: f.write(("\n".join(lines) + "\n").encode()))
