"""Command line: ``sessionbench [options]``, also ``python -m sessionbench`` and the checkout's
``python run_benchmark.py`` (the only place that parses arguments)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sessionbench.cluster import ClusterError, connect, disconnect
from sessionbench.data import DataError, dataset_names, load_dataset
from sessionbench.data.datasets import cached_fingerprint, split_name
from sessionbench.evaluation import TIE_MODES
from sessionbench.experiment import ExperimentError, arguments
from sessionbench.harness import plan, run_jobs
from sessionbench.registry import UnknownRecommender, builtin_names, registered, resolve
from sessionbench.runs import Group
from sessionbench.store import split_folders
from sessionbench.tables import SUITES, write_tables
from sessionbench.tuned import TuningRequest, run_settings
from sessionbench.tuning import METRICS

__all__ = ["main", "parser", "run"]

log = logging.getLogger("sessionbench")

#: The built-in model whose attention heatmap --attention-figure copies.
_ATTENTION_METHOD = "narm"


class UsageError(Exception):
    """A bad command line: one line that says what is known."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sessionbench",
        description="Run session-based recommenders on a dataset and write the NARM paper's tables "
        "to RESULTS_DIR/<dataset>.md.",
        allow_abbrev=False,
    )
    p.add_argument("--dataset", default="synthetic", help=f"dataset to run on (default: synthetic); one of {', '.join(dataset_names())}")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset's files, raw or preprocessed (default: $SESSIONBENCH_DATA/<dataset>)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, repeatable: order=timeframe|file (DIGINETICA), size=small|diginetica|yoochoose and seed=N (synthetic), test_days=N (csv) (default: none)")
    p.add_argument("--methods", default=None,
                   help="comma-separated registered methods (default: every built-in method of the main suite; see --list)")
    p.add_argument("--recommender", action="append", default=[], metavar="MODULE:CLASS",
                   help="also run a plugin recommender class, repeatable (default: none)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each method runs once per seed (default: 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD.PARAM=VALUE",
                   help="override a hyperparameter, repeatable; VALUE is read as JSON when it parses, else as a string (default: the paper's settings)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where torch models train and score; auto picks cuda when available (default: auto)")
    p.add_argument("--suite", default="main", choices=tuple(SUITES),
                   help="what to run and render: main = Tables 1, 3, 5; ablations = Tables 2, 4 (NARM variants at hidden size 50 and 100); paper = everything plus Figures 5 and 6 (default: main)")
    p.add_argument("--jobs", type=int, default=1, help="jobs run in parallel, each in a fresh process (or a cluster task with --backend dask/ray); torch threads are split between local processes (default: 1)")
    p.add_argument("--backend", default="local", choices=("local", "loky", "dask", "ray"),
                   help="where parallel jobs run: local (or its old name loky) = local processes, a fresh one per job; dask or ray = the cluster at --cluster (else a local one started for the run), one task per job through its own API (default: local)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="address of the dask scheduler (tcp://host:port) or ray head (host:port) for --backend dask/ray; every worker must be able to write to the results directory, which is checked first (default: a local cluster)")
    p.add_argument("--ties", default="conservative", choices=TIE_MODES,
                   help="tie mode of the tables: conservative counts items scoring the same as the target ahead of it (default: conservative)")
    p.add_argument("--results-dir", default=None, type=Path,
                   help="where raw results and tables go (default: results, or results-quick with --quick, so that smoke runs never sit beside full ones)")
    p.add_argument("--force", action="store_true", help="rerun jobs whose result exists, and train from the start rather than resume an interrupted training from its checkpoint (default: reuse, resume)")
    p.add_argument("--tune", type=int, default=None, metavar="N",
                   help="first tune each method that declares a search space: N trials of optuna's TPE sampler on the most recent 10%% of the training sessions, written to RESULTS_DIR/params/<dataset>/<method>.json (reused when made the same way; --force tunes again), then run the chosen settings (default: no tuning)")
    p.add_argument("--tune-metric", default="mrr@20", choices=METRICS, help="what --tune maximises on the validation sessions, conservative ties (default: mrr@20)")
    p.add_argument("--tune-cases", type=int, default=10_000, metavar="N",
                   help="score each trial on a fixed seeded sample of whole validation sessions holding about N cases, the same for every method; 0 scores all of them (default: 10000)")
    p.add_argument("--tune-seed", type=int, default=0, metavar="N", help="seed of the TPE sampler, of every trial's fit and of the validation sample (default: 0)")
    p.add_argument("--params", default=None, choices=("default", "tuned"),
                   help="hyperparameters to run: default = each method's defaults; tuned = the settings in RESULTS_DIR/params/<dataset>/ written by --tune, defaults where a method has none, and --set must agree with a file (with --tune, --set holds a value fixed) (default: default, or tuned with --tune)")
    p.add_argument("--tables-only", action="store_true", help="only regenerate the markdown from saved raw results, no training")
    p.add_argument("--quick", action="store_true", help="smoke run: each method's quick settings (e.g. one epoch), stored as smoke runs and listed apart from full runs on the page (default: off)")
    p.add_argument("--attention-figure", type=Path, default=None, metavar="PNG",
                   help="also copy NARM's attention heatmap (the paper's Figure 6) of this run to PNG; runs narm if it is not among the methods (default: none)")
    p.add_argument("--config", type=Path, default=None, metavar="TOML",
                   help="an experiment file naming datasets, methods, seeds, --set overrides and any other option (see sessionbench.experiment); flags given here override it (default: none)")
    p.add_argument("--list", action="store_true", help="list datasets and registered methods, then exit")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (they are hidden anyway when stderr is not a terminal)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, eq, value = item.partition("=")
        method, dot, param = target.rpartition(".")
        if not eq or not dot or not method or not param:
            raise UsageError(f"--set {item!r}: expected METHOD.PARAM=VALUE, e.g. narm.epochs=5")
        out.setdefault(method, {})[param] = _value(value)
    return out


def _parse_options(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--data-option {item!r}: expected KEY=VALUE, e.g. order=file")
        out[key] = _value(value)
    return out


def _methods(args: argparse.Namespace) -> list[str]:
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    else:
        wanted = ("main", "ablations") if args.suite == "paper" else (args.suite,)
        methods = [m for m in builtin_names() if any(_in_suite(m, w) for w in wanted)]
    if args.attention_figure is not None and _ATTENTION_METHOD not in methods:
        methods.append(_ATTENTION_METHOD)
    methods += args.recommender
    known = registered()
    for m in methods:
        if m not in known and ":" not in m:
            raise UsageError(f"unknown method {m!r}; known: {', '.join(known)} (or a plugin as module:Class)")
    return list(dict.fromkeys(methods))


def _in_suite(method: str, suite: str) -> bool:
    """Whether a built-in runs in ``suite``. A built-in that cannot be imported is an error
    (naming the module that shadowed ours, if one did), never a silent skip."""
    return suite in resolve(method).suites


def _by_method(overrides: dict[str, dict[str, Any]], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Overrides keyed as the methods run are: ``--set recent-pop.boost=2`` addresses a plugin
    given as ``--recommender recentpop:RecentPop`` by its class's ``name`` too."""
    out: dict[str, dict[str, Any]] = {}
    for key, params in overrides.items():
        target = key if key in methods else next((m for m in methods if ":" in m and resolve(m).name == key), key)
        out.setdefault(target, {}).update(params)
    return out


def _check_params(methods: Sequence[str], overrides: dict[str, dict[str, Any]]) -> None:
    for method in overrides:
        if method not in methods:
            raise UsageError(f"--set names {method!r}, which is not among the methods run: {', '.join(methods)}")
    for method in methods:
        cls = resolve(method)
        try:
            cls(**overrides.get(method, {}))
        except TypeError as e:
            raise UsageError(f"--set for {method}: {e}") from e
        except ValueError as e:
            raise UsageError(f"--set for {method}: {e}") from e


def _check_writable(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results_dir, prefix=".write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"--results-dir {results_dir}: cannot write there ({e.strerror}); choose another directory") from e


def _device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device here; use --device cpu or auto")
    return choice


def _list() -> None:
    print("datasets:", ", ".join(dataset_names()))
    for name, reg in registered().items():
        origin = "built-in" if reg.builtin else f"plugin from {reg.distribution}"
        print(f"  {name:20s} {reg.target}  ({origin})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0 ok, 1 a job failed, 2 bad usage or data)."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    # --verbose is for our epochs and timings; matplotlib and PIL would add every font lookup and PNG chunk.
    for chatty in ("matplotlib", "PIL"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if args.list:
        _list()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line()
            if args.config is None:
                return _run(args)
            # the file's options first, the command line's after them: flags override the file
            runs = [parser().parse_args([*prefix, *(argv if argv is not None else sys.argv[1:])]) for prefix in arguments(args.config)]
            return max(_run(one) for one in runs)
    except (UsageError, UnknownRecommender, DataError, TypeError, ValueError, ClusterError, ExperimentError) as e:
        print(f"sessionbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished results are kept; rerun to continue where it stopped", file=sys.stderr)
        return 130


def _warning_line() -> Any:
    """A ``warnings.showwarning`` that logs each distinct warning once, as one line without the
    source line Python would print (the data are loaded more than once in a run)."""
    said: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = f"{category.__name__}: {message}"
        if text not in said:
            said.add(text)
            log.warning("%s", text)

    return show


def _run(args: argparse.Namespace) -> int:
    options = _parse_options(args.data_option)
    name = split_name(args.dataset, **options)  # validates the options, even with no data at hand
    results_dir = args.results_dir or Path("results-quick" if args.quick else "results")
    _check_writable(results_dir)
    if args.attention_figure is not None and args.attention_figure.is_dir():
        raise UsageError(f"--attention-figure {args.attention_figure}: is a directory; give the path of a .png file to write")
    _check_tuning(args)
    if args.tables_only:
        fingerprint = _fingerprint_if_at_hand(args, options)
        stored = split_folders(results_dir, name)
        if fingerprint is not None and stored and not any(fingerprint.startswith(f.name) for f in stored):
            raise UsageError(
                f"--tables-only: no results of the {name} split at hand (fingerprint {fingerprint[:12]}) in {results_dir}; "
                f"results of other {name} splits are stored ({', '.join(f.name for f in stored)}): is it the data they were made on?"
            )
        path = write_tables(results_dir, name, args.ties, args.suite, fingerprint)
        log.info("wrote %s", path)
        return 0
    methods = _methods(args)
    overrides = _by_method(_parse_overrides(args.overrides), methods)
    _check_params(methods, overrides)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as e:
        raise UsageError(f"--seeds {args.seeds!r}: expected comma-separated integers") from e
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    device = _device(args.device)
    split = load_dataset(args.dataset, args.data_dir, **options)  # bad data stops here, before any training
    progress = not args.no_progress and sys.stderr.isatty()  # no bar's escape codes in a log file
    tuned = _tuned(args, split, methods, overrides, results_dir, device, progress)
    split_name_, fingerprint = split.name, split.fingerprint
    del split  # the jobs load it again from the cache; the parent need not hold it for hours
    suite = None if args.suite == "main" else args.suite
    jobs = plan([args.dataset], methods, seeds, overrides, args.data_dir, options, suite=suite, tuned=tuned)
    if "4" not in SUITES[args.suite]:
        for method in sorted({j.method for j in jobs if j.variant}):
            log.warning("%s: these settings are a cell of Tables 2 and 4, not of Table 3; "
                        "--suite ablations or paper renders them", method)
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), _cluster(args.backend, args.cluster, args.jobs):
        outcomes = run_jobs(
            jobs,
            results_dir=results_dir,
            device=device,
            ties=args.ties,
            force=args.force,
            n_jobs=args.jobs,
            backend=args.backend,
            progress=progress,
            quick=args.quick,
        )
    path = write_tables(results_dir, split_name_, args.ties, args.suite, fingerprint)
    if args.attention_figure is not None:
        _copy_attention_figure(outcomes, args.attention_figure)
    _summary(outcomes, path)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _check_tuning(args: argparse.Namespace) -> None:
    if args.tune is not None and args.tune < 1:
        raise UsageError(f"--tune must be >= 1 trials, got {args.tune}")
    if args.tune is not None and args.params == "default":
        raise UsageError("--tune runs the settings it tunes; drop --params default (or --tune)")
    if args.tune_cases < 0:
        raise UsageError(f"--tune-cases must be >= 0 (0: every validation case), got {args.tune_cases}")
    if args.tables_only and (args.tune is not None or args.params is not None):
        raise UsageError("--tables-only renders saved results; --tune and --params choose what to run")


def _tuned(args: argparse.Namespace, split: Any, methods: list[str], overrides: dict[str, dict[str, Any]],
           results_dir: Path, device: str, progress: bool) -> dict[str, Any]:
    """The tuned setting per method (tuned now or read from RESULTS_DIR/params), when asked."""
    if args.tune is None and args.params != "tuned":
        return {}
    from tqdm.contrib.logging import logging_redirect_tqdm

    request = TuningRequest(args.tune, args.tune_metric, args.tune_seed, args.tune_cases or None, args.force)
    with logging_redirect_tqdm():
        return run_settings(split, methods, overrides, request, results_dir=results_dir, quick=args.quick, device=device, progress=progress)


def _fingerprint_if_at_hand(args: argparse.Namespace, options: dict[str, Any]) -> str | None:
    """The fingerprint of the split the page is for, when its data is at hand and in the split
    cache (nothing is preprocessed just to render a page); else None, and the page is rendered
    from the only stored split of that name."""
    try:
        fingerprint = cached_fingerprint(args.dataset, args.data_dir, **options)
    except DataError as e:
        log.info("the data is not at hand (%s); rendering the stored split of that name", str(e).split(". ")[0])
        return None
    if fingerprint is None:
        log.info("the split is not in the cache; rendering the stored split of that name")
    return fingerprint


def _summary(outcomes: Sequence[Any], path: Path) -> None:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "reused", "failed")}
    log.info("summary: %d ran, %d reused, %d failed; tables in %s", counts["ran"], counts["reused"], counts["failed"], path)
    for o in outcomes:  # each job had its line as it ended; the failures again, so they are not missed
        if o.status == "failed":
            log.info("  %s", o.summary())


def _copy_attention_figure(outcomes: Sequence[Any], target: Path) -> None:
    import shutil

    # NARM at its default settings (Table 3's) first, then any other setting, saying which
    candidates = [o for o in outcomes if o.job.method == _ATTENTION_METHOD and o.result is not None and o.path is not None]
    for o in sorted(candidates, key=lambda o: o.job.variant is not None):
        figure = Group(o.result["method"], "", None, [o.result], o.path.parent).attention_figure  # checked to be a PNG there
        if figure:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(o.path.parent / figure, target)
            settings = ", ".join(f"{k}={v}" for k, v in sorted((o.result.get("settings") or {}).items())) or "default settings"
            log.info("attention figure of %s (%s, seed %d): %s", _ATTENTION_METHOD, settings, o.job.seed, target)
            return
    raise UsageError(f"--attention-figure: no {_ATTENTION_METHOD} run of this invocation drew one")


class _cluster:  # noqa: N801 - used as a context manager, like contextlib's
    """Connects to a dask or ray cluster for the duration of the run."""

    def __init__(self, backend: str, address: str | None, n_jobs: int) -> None:
        self.backend, self.address, self.n_jobs = backend, address, n_jobs
        self.client: Any = None

    def __enter__(self) -> _cluster:
        if self.backend in ("local", "loky"):
            return self
        if self.n_jobs < 2:
            raise UsageError(f"--backend {self.backend} needs --jobs 2 or more")
        try:
            self.client = connect(self.backend, self.address)
        except ClusterError as e:
            raise UsageError(str(e)) from e
        return self

    def __exit__(self, *exc: object) -> None:
        disconnect(self.backend, self.client)


def run() -> None:
    """The ``sessionbench`` console script: :func:`main` with the process's arguments."""
    sys.exit(main())


if __name__ == "__main__":
    run()
