"""The dataset catalogue and :func:`load_dataset`, the data layer's one entry point.

Each named dataset knows where it is published, which files to look for (raw first, then the
NARM/SR-GNN preprocessed forms), and the protocol parameters the paper used for it. Every
load says which form it read, and caches the result (see :mod:`sessionbench.data.cache`).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sessionbench.data import clicks_csv, diginetica, yoochoose
from sessionbench.data.cache import cache_key, file_identity, load_cached, save_cached
from sessionbench.data.preprocessed import PREPROCESSED_FORMS, find_preprocessed, read_preprocessed
from sessionbench.data.protocol import Clicks, Protocol, apply_protocol
from sessionbench.data.sessions import Split
from sessionbench.data.synthetic import PRESETS, config_dict, generate_clicks
from sessionbench.errors import DataError, DataWarning

__all__ = ["DATASETS", "DatasetSpec", "dataset_names", "load_dataset", "split_name"]

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
    ``synthetic-diginetica-1-4``, ``csv-<file stem>``...

    Raises:
        DataError: an unknown dataset.
    """
    if name == "synthetic":
        size, fraction = options.get("size", "small"), options.get("fraction")
        return ("synthetic" if size == "small" else f"synthetic-{size}") + (f"-1-{fraction}" if fraction else "")
    if name.startswith("csv:"):
        return f"csv-{Path(name[4:]).stem}"
    if name in DATASETS:
        order = options.get("order", DATASETS[name].orders[0])
        return name if order == DATASETS[name].orders[0] else f"{name}-{order}-order"
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")


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
            ``seed``, ``fraction``; for ``csv:``: ``test_days``, ``min_item_support``,
            ``fraction``.

    Raises:
        DataError: the files are missing (naming them, where they are published and the
            directory searched) or malformed.
        TypeError: an option this dataset does not take.
    """
    started = time.perf_counter()
    cache_path = Path(cache_dir) if cache_dir is not None else None
    if name == "synthetic":
        loader = _synthetic(**options)
    elif name.startswith("csv:"):
        loader = _csv(Path(name[4:]).expanduser(), **options)
    elif name in DATASETS:
        loader = _named(name, DATASETS[name], _resolve_dir(name, data_dir), **options)
    else:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    key_parts, build = loader
    key = cache_key(key_parts)
    split = load_cached(key_parts["name"], key, cache_path) if cache else None
    if split is None:
        split = build()
        if cache:
            save_cached(split, key, cache_path)
    log.info("%s: %s (%s) in %.2f s", split.name, split.info.get("form"), split.info.get("source"), time.perf_counter() - started)
    return split


_Loader = tuple[dict[str, Any], Callable[[], Split]]


def _check_options(dataset: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"dataset {dataset!r} takes no option {', '.join(unknown)}; it takes: {', '.join(allowed) or 'none'}")


def _resolve_dir(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = os.environ.get("SESSIONBENCH_DATA")
    if root:
        candidate = Path(root).expanduser() / name
        return candidate if candidate.is_dir() else Path(root).expanduser()
    return Path.cwd() / "data" / name


def _named(name: str, spec: DatasetSpec, directory: Path, **options: Any) -> _Loader:
    _check_options(name, options, ("order",) if len(spec.orders) > 1 else ())
    order = options.get("order", spec.orders[0])
    if order not in spec.orders:
        raise DataError(f"{name}: order must be one of {', '.join(spec.orders)}, got {order!r}")
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
            split.info.update(dataset=dataset, order=order)
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
        split.info.update(dataset=dataset, order=order, order_declared=True)
        unseen = split.info["test_clicks_on_items_not_in_train"]
        if spec.fraction:
            split.info["notes"] = [
                f"{unseen:,} test clicks are on items that do not occur in this training fraction: "
                "they are ranked but had no training signal (the paper did not filter them)"
            ]
        elif unseen:
            warnings.warn(f"{name}: {unseen:,} test clicks are on items absent from the training data", DataWarning, stacklevel=3)
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
    if size not in PRESETS:
        raise DataError(f"synthetic: unknown size {size!r}; known: {', '.join(PRESETS)}")
    config = PRESETS[size]
    protocol = Protocol(
        order=order or ("timeframe" if config.timestamps == "day" else "file"),
        test_days=config.test_days,
        fraction=fraction,
    )
    name = split_name("synthetic", size=size, fraction=fraction)
    key = {"name": name, "config": config_dict(config), "seed": seed, "protocol": protocol.as_dict()}

    def build() -> Split:
        split = apply_protocol(generate_clicks(config, seed), protocol, name)
        split.info.update(dataset="synthetic", form="synthetic", order=protocol.order, size=size, seed=seed)
        return split

    return key, build


def _csv(path: Path, **options: Any) -> _Loader:
    _check_options(f"csv:{path}", options, ("order", "test_days", "min_item_support", "fraction"))
    order = options.pop("order", "time")
    if order not in ("time", "file"):
        raise DataError(f"csv:{path}: order must be 'time' or 'file', got {order!r}")
    protocol = Protocol(order=order, test_days=options.pop("test_days", 1.0), **options)
    if not path.is_file():
        raise DataError(f"csv:{path}: no such file; expected a click file with a header session_id,item_id,timestamp")
    name = split_name(f"csv:{path}")
    key = {"name": name, "source": file_identity(path), "protocol": protocol.as_dict()}

    def build() -> Split:
        split = apply_protocol(clicks_csv.read_clicks(path), protocol, name)
        split.info.update(dataset=name, order=order)
        return split

    return key, build
