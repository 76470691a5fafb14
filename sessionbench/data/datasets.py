"""The dataset catalogue and :func:`load_dataset`, the data layer's one entry point.

Each named dataset knows where it is published, which files to look for (raw first, then the
NARM/SR-GNN preprocessed forms), and the protocol parameters the paper used for it. Every
load says which form it read, and caches the result (see :mod:`sessionbench.data.cache`).
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sessionbench.data import clicks_csv, diginetica, yoochoose
from sessionbench.data.cache import cache_key, cached_entry_fingerprint, file_identity, load_cached, save_cached
from sessionbench.data.preprocessed import PREPROCESSED_FORMS, find_preprocessed, read_preprocessed
from sessionbench.data.protocol import RULES, Clicks, Protocol, apply_protocol, rule_problem
from sessionbench.data.sessions import Split
from sessionbench.data.synthetic import PRESETS, config_dict, generate_clicks
from sessionbench.errors import DataError, DataWarning
from sessionbench.params import Rule, is_integer

__all__ = ["DATASETS", "DatasetSpec", "cached_fingerprint", "dataset_names", "load_dataset", "split_name"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """A named public dataset.

    Attributes:
        title: How the paper names it.
        published: Where users download it.
        raw_files: The raw file names looked for (None: only preprocessed forms).
        find_raw: Finds the raw file in a directory.
        read_raw: Reads the raw file into clicks.
        protocol: The paper's protocol parameters for it.
        orders: The click orders a raw file allows (the first is the default).
        fraction: True when the training data is a most-recent fraction (test items may have
            no training signal; that is the paper's protocol, not a problem with the data).
    """

    title: str
    published: str
    raw_files: str | None = None
    find_raw: Callable[[Path], Path | None] | None = None
    read_raw: Callable[[Path], Clicks] | None = None
    protocol: Protocol = Protocol()
    orders: tuple[str, ...] = ("file",)
    fraction: bool = False


_YOOCHOOSE = dict(
    published="RecSys Challenge 2015, https://recsys.acm.org/recsys15/challenge/ (yoochoose-data.7z)",
    raw_files=yoochoose.FILE,
    find_raw=yoochoose.find_raw,
    read_raw=yoochoose.read_clicks,
    fraction=True,
)

DATASETS: dict[str, DatasetSpec] = {
    "diginetica": DatasetSpec(
        title="DIGINETICA",
        published="CIKM Cup 2016 track 2, https://competitions.codalab.org/competitions/11161 "
        "(dataset-train-diginetica.zip)",
        raw_files=f"{diginetica.MEMBER} (or its zip)",
        find_raw=diginetica.find_raw,
        read_raw=diginetica.read_clicks,
        protocol=Protocol(order="timeframe", test_days=7),
        orders=("timeframe", "file"),
    ),
    "yoochoose-1-64": DatasetSpec(
        title="YOOCHOOSE 1/64", protocol=Protocol(order="file", test_days=1, fraction=64), **_YOOCHOOSE
    ),
    "yoochoose-1-4": DatasetSpec(
        title="YOOCHOOSE 1/4", protocol=Protocol(order="file", test_days=1, fraction=4), **_YOOCHOOSE
    ),
    "tmall": DatasetSpec(
        title="Tmall",
        published="IJCAI-15 repeat buyers data, preprocessed as in GCE-GNN (github.com/CCIIPLab/GCE-GNN)",
    ),
    "nowplaying": DatasetSpec(
        title="Nowplaying",
        published="#nowplaying dataset (Zangerle et al. 2014), preprocessed as in GCE-GNN (github.com/CCIIPLab/GCE-GNN)",
    ),
}


def dataset_names() -> list[str]:
    """Every name :func:`load_dataset` accepts (``csv:PATH`` stands for any click file)."""
    return [*DATASETS, "synthetic", "csv:PATH"]


def split_name(name: str, **options: Any) -> str:
    """The name a load of ``name`` with ``options`` gives its split (and its results folder),
    without reading any data: ``diginetica``, ``diginetica-file-order``, ``synthetic``,
    ``synthetic-diginetica-1-4``, ``synthetic-seed1``, ``csv-<file stem>``,
    ``csv-<file stem>-test_days2``...: an option away from its default is part of the name.
    Only ``[A-Za-z0-9._-]`` and never ``..``: a csv file stem's other characters become ``-``.

    Raises:
        DataError: an unknown dataset, or an option value that breaks its rule.
        TypeError: an option this dataset does not take.
    """
    options = _validated(name, options)
    if name == "synthetic":
        size, fraction = options.get("size", "small"), options.get("fraction")
        base = ("synthetic" if size == "small" else f"synthetic-{size}") + (f"-1-{fraction}" if fraction else "")
        return base + _option_suffix(options, {"size": None, "fraction": None, "seed": 0, "order": None})
    if name.startswith("csv:"):
        defaults = {"order": "time", "test_days": 1.0, "min_item_support": 5, "fraction": None}
        return "csv-" + _safe(Path(name[4:]).stem) + _option_suffix(options, defaults)
    order = options.get("order", DATASETS[name].orders[0])
    return name if order == DATASETS[name].orders[0] else f"{name}-{order}-order"


def _option_suffix(options: dict[str, Any], defaults: dict[str, Any]) -> str:
    """``-<key><value>`` for each option away from its default (keys whose default is None and
    that the base name already says are skipped), so that splits made with other options get
    pages and folders of their own names: ``synthetic-seed1``, ``csv-clicks-test_days2``."""
    parts = [f"{key}{_safe(str(value))}" for key, value in sorted(options.items())
             if key in defaults and defaults[key] is not None and value != defaults[key]]
    parts += [f"{key}{_safe(str(value))}" for key, value in sorted(options.items())
              if key in defaults and defaults[key] is None and key == "order" and value is not None]
    return "".join(f"-{part}" for part in parts)


def _safe(stem: str) -> str:
    """``stem`` with every character outside [A-Za-z0-9._-], and every run of dots, as ``-``."""
    return re.sub(r"\.{2,}", "-", re.sub(r"[^A-Za-z0-9._-]", "-", stem)) or "-"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Split:
    """Load a dataset as a :class:`Split`, preprocessing and caching it on first use.

    Args:
        name: ``diginetica``, ``yoochoose-1-64``, ``yoochoose-1-4``, ``tmall``, ``nowplaying``,
            ``synthetic`` or ``csv:PATH``.
        data_dir: Directory holding the files (raw or preprocessed). Defaults to
            ``$SESSIONBENCH_DATA/<name>`` or ``$SESSIONBENCH_DATA``. Unused for synthetic.
        cache: Read and write the split cache.
        cache_dir: Where the cache lives (default: the user's cache directory).
        **options: ``order`` ("timeframe" or "file" for DIGINETICA: how raw clicks are ordered,
            or, for preprocessed files, how they were ordered when made; "time" or "file" for
            csv); for ``synthetic``: ``size`` (a preset: small, diginetica, yoochoose),
            ``seed`` (an integer >= 0), ``fraction`` (an integer >= 1); for ``csv:``:
            ``test_days``, ``min_item_support``, ``fraction`` (the :class:`Protocol` rules).

    Returns:
        The split; ``info["source"]`` names its files (no directory) and ``info["files"]``
        gives each one's name, size and sha256.

    Warns:
        DataWarning: suspicious data (a tiny test set, times in the wrong unit, ...), again on
            every load of a cached split.

    Raises:
        DataError: the files are missing (naming them, where they are published and the
            directory searched) or malformed, an option value breaks its rule, or the split
            has an empty train or test set.
        TypeError: an option this dataset does not take.
    """
    started = time.perf_counter()
    cache_path = Path(cache_dir) if cache_dir is not None else None
    key_parts, build = _loader(name, data_dir, options)
    key = cache_key(key_parts)
    split = load_cached(key_parts["name"], key, cache_path) if cache else None
    built = split is None
    if split is None:
        split = build()
        if cache:
            save_cached(split, key, cache_path)
    else:
        for message in split.info.get("warnings", []):  # said when it was built; say it again
            warnings.warn(message, DataWarning, stacklevel=2)
    # a run loads its split several times (checks, jobs, workers): only a build is news
    form, source = split.info.get("form"), split.info.get("source")
    what = form if source is None or str(source) in str(form) else f"{form} ({source})"  # the form may name its files
    log.log(logging.INFO if built else logging.DEBUG, "%s: %s %s in %.2f s", split.name, what,
            "built" if built else "from the cache", time.perf_counter() - started)
    return split


_Loader = tuple[dict[str, Any], Callable[[], Split]]


def _loader(name: str, data_dir: str | os.PathLike[str] | None, options: dict[str, Any]) -> _Loader:
    """The cache key's parts and the function that builds the split."""
    options = _validated(name, options)
    if name == "synthetic":
        return _synthetic(**options)
    if name.startswith("csv:"):
        return _csv(name, Path(name[4:]).expanduser(), **options)
    return _named(name, DATASETS[name], _resolve_dir(name, data_dir), **options)


def cached_fingerprint(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, cache_dir: str | os.PathLike[str] | None = None, **options: Any
) -> str | None:
    """The fingerprint of the split :func:`load_dataset` would give, if it is in the cache;
    None otherwise. Reads the source files' checksums and the cache entry, builds nothing.

    Raises:
        DataError: the files are missing, or an option value breaks its rule.
    """
    key_parts, _ = _loader(name, data_dir, options)
    return cached_entry_fingerprint(key_parts["name"], cache_key(key_parts), Path(cache_dir) if cache_dir is not None else None)


def _one_of(*choices: str, null: str = "") -> Rule:
    """One of ``choices``; with ``null`` (what null means), null too."""
    expected = f"one of {', '.join(choices)}" + (f", or null {null}" if null else "")
    return Rule(expected, lambda v: (bool(null) and v is None) or (isinstance(v, str) and v in choices))


def _integer(minimum: int, null: bool = False) -> Rule:
    expected = f"an integer >= {minimum}" + (", or null for all" if null else "")
    return Rule(expected, lambda v: (null and v is None) or (is_integer(v) and v >= minimum))


def _rules(name: str) -> dict[str, Rule]:
    """The options ``name`` takes, each with its rule."""
    if name == "synthetic":
        return {
            "size": _one_of(*PRESETS),
            "seed": _integer(0),
            "fraction": _integer(1, null=True),
            "order": _one_of("timeframe", "file", null="for the preset's"),
        }
    if name.startswith("csv:"):
        return {"order": _one_of("time", "file")} | {k: RULES[k] for k in ("test_days", "min_item_support", "fraction")}
    if name in DATASETS:
        orders = DATASETS[name].orders
        return {"order": _one_of(*orders)} if len(orders) > 1 else {}
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")


def _validated(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options``, once each is known to ``name`` and follows its rule (the name, rule and value
    are in the message otherwise)."""
    rules = _rules(name)
    unknown = sorted(set(options) - set(rules))
    if unknown:
        raise TypeError(f"dataset {name!r} takes no option {', '.join(unknown)}; it takes: {', '.join(rules) or 'none'}")
    for key, value in options.items():
        problem = rule_problem(rules[key], value)
        if problem:
            raise DataError(f"{name}: option {key} {problem}")
    return options


def _resolve_dir(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = os.environ.get("SESSIONBENCH_DATA")
    if root:
        candidate = Path(root).expanduser() / name
        return candidate if candidate.is_dir() else Path(root).expanduser()
    return Path.cwd() / "data" / name


def _named(name: str, spec: DatasetSpec, directory: Path, **options: Any) -> _Loader:
    order = options.get("order", spec.orders[0])
    dataset, name = name, split_name(name, **options)
    if not directory.is_dir():
        _missing(name, spec, directory, "the directory does not exist")
    raw = spec.find_raw(directory) if spec.find_raw else None
    if raw is not None:
        protocol = replace(spec.protocol, order=order)
        key = {"name": name, "source": file_identity(raw), "protocol": protocol.as_dict()}

        def build_raw() -> Split:
            log.info("%s: preprocessing raw %s (first load; cached afterwards)", name, raw)
            split = apply_protocol(spec.read_raw(raw), protocol, name)
            split.info.update(dataset=dataset, order=order, files=[file_identity(raw)])
            return split

        return key, build_raw
    found = find_preprocessed(directory)
    if found is None:
        _missing(name, spec, directory, "neither the raw file nor a preprocessed form is there")
    form, train, test = found
    key = {"name": name, "train": file_identity(train), "test": file_identity(test), "order": order}

    def build_preprocessed() -> Split:
        split = read_preprocessed(name, train, test, form)
        # the files fixed the click order when they were made; `order` declares which it was
        # (the shared SR-GNN/GCE-GNN DIGINETICA files sort by timeframe, NARM's own script did not)
        split.info.update(dataset=dataset, order=order, order_declared=True, files=[file_identity(train), file_identity(test)])
        unseen = split.info["test_clicks_on_items_not_in_train"]
        if spec.fraction:
            split.info["notes"] = [
                f"{unseen:,} test clicks are on items that do not occur in this training fraction: "
                "they are ranked but had no training signal (the paper did not filter them)"
            ]
        elif unseen:
            message = f"{name}: {unseen:,} test clicks are on items absent from the training data"
            split.info["warnings"].append(message)
            warnings.warn(message, DataWarning, stacklevel=3)
        return split

    return key, build_preprocessed


def _missing(name: str, spec: DatasetSpec, directory: Path, why: str) -> None:
    wanted = [spec.raw_files] if spec.raw_files else []
    wanted += [f"{form.train[0]} + {form.test[0]}" for form in PREPROCESSED_FORMS]
    raise DataError(
        f"{name}: no data in {directory} ({why}). Expected one of: {'; or '.join(wanted)}. "
        f"{spec.title} is published at {spec.published}. Download it, put the files in a directory and "
        f"pass it with --data-dir (or set SESSIONBENCH_DATA to a directory holding a '{name}' folder)."
    )


def _synthetic(size: str = "small", seed: int = 0, fraction: int | None = None, order: str | None = None) -> _Loader:
    config = PRESETS[size]
    protocol = Protocol(
        order=order or ("timeframe" if config.timestamps == "day" else "file"),
        test_days=config.test_days,
        fraction=fraction,
    )
    name = split_name("synthetic", size=size, fraction=fraction, seed=seed, **({"order": order} if order else {}))
    key = {"name": name, "config": config_dict(config), "seed": seed, "protocol": protocol.as_dict()}

    def build() -> Split:
        split = apply_protocol(generate_clicks(config, seed), protocol, name)
        split.info.update(dataset="synthetic", form="synthetic", order=protocol.order, size=size, seed=seed, files=[])
        return split

    return key, build


def _csv(dataset: str, path: Path, order: str = "time", test_days: float = 1.0, **options: Any) -> _Loader:
    protocol = Protocol(order=order, test_days=test_days, **options)
    if not path.is_file():
        raise DataError(f"{dataset}: no such file; expected a click file with a header session_id,item_id,timestamp")
    name = split_name(dataset, order=order, test_days=test_days, **options)
    key = {"name": name, "source": file_identity(path), "protocol": protocol.as_dict()}

    def build() -> Split:
        split = apply_protocol(clicks_csv.read_clicks(path), protocol, name)
        split.info.update(dataset=name, order=order, files=[file_identity(path)])
        return split

    return key, build
