"""Where results live, what identifies one, and reading them back whole or not at all.

A result belongs to one split, named and fingerprinted (:attr:`Split.fingerprint`), so that
results of different data coexist on disk and a page is rendered from one split's alone::

    <results>/raw/<split name>/<fingerprint[:12]>/<method>-<hash>-seed<k>.json   (and .npz)

The file name is a slot: the method's registry key, its class and hyperparameters, and the
seed. The JSON's ``identity`` holds everything a reuse must match exactly — the split's
fingerprint, the method's key and class (and a plugin's source), the hyperparameters, the
seed, whether it was a ``--quick`` smoke run, and the code version
(:func:`sessionbench.provenance.code_identity`). A slot whose identity differs is run again
and overwritten, and the log says why.

A result file that cannot be read back whole — a truncated JSON, a ranks file whose checksum
or length does not match — is reported by path, set aside as ``<name>.damaged`` (never
deleted) and run again. A lock per slot (``<results>/.locks/``) lets two identical commands
run at once: the second waits for the first and reuses its result.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sessionbench.files import inside, safe_name, set_aside
from sessionbench.provenance import class_source_digest, code_identity

__all__ = [
    "FORMAT",
    "DamagedResult",
    "difference",
    "failure_path",
    "locked",
    "read_result",
    "result_identity",
    "result_stem",
    "split_folder",
    "split_folders",
]

log = logging.getLogger(__name__)

#: Version of the result layout; results of another format are never reused.
FORMAT = 2


class DamagedResult(ValueError):
    """A result file that cannot be read back whole (the message names it and what is wrong)."""


def split_folder(results_dir: Path, split_name: str, fingerprint: str) -> Path:
    """The folder of one split's results, checked to stay inside ``results_dir``."""
    return inside(Path(results_dir), "raw", safe_name(split_name), safe_name(fingerprint[:12]))


def split_folders(results_dir: Path, split_name: str) -> list[Path]:
    """Every split folder under ``raw/<split name>`` that holds results, newest first."""
    base = inside(Path(results_dir), "raw", safe_name(split_name))
    if not base.is_dir():
        return []
    folders = [p for p in base.iterdir() if p.is_dir() and _results_in(p)]
    return sorted(folders, key=lambda p: max(f.stat().st_mtime for f in _results_in(p)), reverse=True)


def _results_in(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*.json") if not p.name.endswith(".failed.json")]


def result_identity(
    split_name: str, fingerprint: str, method: str, key: str, cls: type, params: dict[str, Any], seed: int, quick: bool
) -> dict[str, Any]:
    """What a stored result must match to be reused (JSON-normalised, so that it compares
    equal to itself read back from disk).

    Args:
        method: The name the tables show (the class's ``name``, else ``key``).
        key: How the job named the method: its registry key or ``module:Class``.
    """
    identity = {
        "format": FORMAT,
        "split": {"name": split_name, "fingerprint": fingerprint},
        "method": method,
        "key": key,
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "class_source": class_source_digest(cls),
        "params": params,
        "seed": int(seed),
        "quick": bool(quick),
        "code": code_identity(),
    }
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


def result_stem(identity: dict[str, Any]) -> str:
    """The slot's file name without suffix: ``<method>-<hash of name, key, class, params>-seed<k>``
    (``...-quick-seed<k>`` for a smoke run, so that it never takes a full run's place)."""
    slot = {k: identity[k] for k in ("method", "key", "class", "params")}
    digest = hashlib.sha256(json.dumps(slot, sort_keys=True).encode()).hexdigest()[:10]
    smoke = "-quick" if identity.get("quick") else ""
    return f"{safe_name(identity['method'].replace(':', '.'))}-{digest}{smoke}-seed{identity['seed']}"


def failure_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}.failed.json"


def difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """Why ``old`` is not ``new``, in a few words: the keys that differ and their values."""
    if not old:
        return "it was written before results carried an identity"
    parts = []
    for key in new:
        if old.get(key) != new[key]:
            before, after = old.get(key), new[key]
            if isinstance(before, dict) and isinstance(after, dict):
                inner = [k for k in after.keys() | before.keys() if before.get(k) != after.get(k)]
                parts.append(", ".join(f"{key}.{k} {before.get(k)!r} there, {after.get(k)!r} now" for k in sorted(inner)))
            else:
                parts.append(f"{key} {before!r} there, {after!r} now")
    return "; ".join(parts) or "identical"


def read_result(path: Path, *, set_damaged_aside: bool = True) -> dict[str, Any] | None:
    """The result stored at ``path`` with its ranks file verified; None when absent.

    A damaged result (unreadable JSON, a missing ranks file, a checksum, length or metric that
    does not match) is reported and None is returned, so the caller runs the job again; with
    ``set_damaged_aside`` (only under the slot's lock, see :func:`locked`) it is also set aside
    with its ranks file. A reader outside the lock (a page being rendered) only skips it: it may
    be looking at a result that is being written.
    """
    if not path.is_file():
        return None
    try:
        return check_result(path)
    except DamagedResult as e:
        if not set_damaged_aside:
            log.warning("%s; left out (the next run of this job sets it aside and runs it again)", e)
            return None
        moved = [m.name for m in (set_aside(p) for p in (path, path.with_suffix(".npz")) if p.is_file()) if m is not None]
        log.warning("%s; set aside as %s, so it will be run again", e, ", ".join(moved) or "(already gone)")
        return None


def check_result(path: Path) -> dict[str, Any]:
    """The result at ``path``, read and checked whole.

    Raises:
        DamagedResult: naming the file and what is wrong with it.
    """
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(result, dict):
            raise ValueError(f"expected a JSON object, found {type(result).__name__}")
        n_cases, ranks_file = int(result["n_test_cases"]), result["ranks_file"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise DamagedResult(f"result {path} is damaged ({type(e).__name__}: {e})") from e
    ranks = path.parent / Path(str(ranks_file)).name
    try:
        data = ranks.read_bytes()  # read once: checksummed, then parsed from memory
        expected = result.get("ranks_sha256")
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise ValueError("its sha256 differs from the one its result recorded")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {name: z[name] for name in ("greater", "equal", "prefix_lengths")}
    except Exception as e:  # noqa: BLE001 - a zip, npy or checksum error all mean the same
        raise DamagedResult(f"ranks file {ranks} of result {path.name} is damaged ({type(e).__name__}: {e})") from e
    lengths = {name: len(a) for name, a in arrays.items()}
    if set(lengths.values()) != {n_cases}:
        raise DamagedResult(f"ranks file {ranks} holds {lengths} cases where its result {path.name} says {n_cases}")
    _check_metrics(path, result, arrays["greater"], arrays["equal"])
    return result


_NEEDED = ("method", "params", "seed", "by_ties", "dataset_info", "versions")


def _check_metrics(path: Path, result: dict[str, Any], greater: np.ndarray, equal: np.ndarray) -> None:
    """The metrics the JSON states are those its verified ranks give (a damaged digit in the
    JSON shows here), and the fields a page needs are there."""
    from sessionbench.evaluation import KS, TIE_MODES, metrics, ranks_from_counts

    missing = [k for k in _NEEDED if k not in result]
    if missing:
        raise DamagedResult(f"result {path} is damaged (it lacks {', '.join(missing)})")
    try:
        stated = {mode: {k: float(by["metrics"][k]) for k in by["metrics"]} for mode, by in result["by_ties"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DamagedResult(f"result {path} is damaged (by_ties: {type(e).__name__}: {e})") from e
    if not set(stated) <= set(TIE_MODES):
        raise DamagedResult(f"result {path} is damaged (by_ties names {sorted(set(stated) - set(TIE_MODES))}, not a tie mode)")
    for mode, metric in stated.items():
        actual = metrics(ranks_from_counts(greater, equal, mode), KS)
        if any(not np.isclose(metric.get(k, np.nan), v, rtol=0, atol=1e-12) for k, v in actual.items()):
            raise DamagedResult(f"result {path} is damaged: its {mode} metrics are not those of its ranks file")


@contextlib.contextmanager
def locked(results_dir: Path, folder: Path, stem: str) -> Iterator[None]:
    """Hold the slot's lock (an advisory ``flock``; a no-op where the OS has none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    relative = folder.resolve().relative_to(Path(results_dir).resolve())
    lock = inside(Path(results_dir), ".locks", *relative.parts, f"{stem}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another run of this job holds its lock; waiting for it (its result will be reused)", stem)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
