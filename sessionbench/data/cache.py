"""On-disk cache of preprocessed splits, so a second load takes milliseconds.

A split is stored as one uncompressed ``.npz`` (loaded with ``allow_pickle=False``) under the
user's cache directory (``SESSIONBENCH_CACHE`` overrides it), named by a hash of the source
files' identity (name, size, sha256 of the content) and the protocol parameters, which the
entry also records and a load checks. A file is written under a
temporary name and renamed when complete, so an interrupted run leaves no half-written entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from sessionbench.data.sessions import Sessions, Split
from sessionbench.files import atomic_write, set_aside

__all__ = ["CACHE_VERSION", "cache_dir", "cache_key", "cached_entry_fingerprint", "file_identity", "load_cached", "save_cached"]

#: Bump whenever the protocol or the readers change what they produce.
CACHE_VERSION = 4

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$SESSIONBENCH_CACHE`` if set, else the platform's user cache directory."""
    override = os.environ.get("SESSIONBENCH_CACHE")
    return Path(override) if override else platformdirs.user_cache_path("sessionbench") / "splits"


def file_identity(path: Path) -> dict[str, Any]:
    """What identifies a source file: its name, size and the sha256 of its content (not its
    folder: the same file elsewhere is the same data).

    The content is hashed, so a file edited in place that keeps its size and modification
    time is still another file. Within one process the digest is remembered per inode, size,
    modification and change time (the change time moves on every write and cannot be set back).
    """
    st = Path(path).stat()
    digest = _sha256(str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return {"name": Path(path).name, "bytes": st.st_size, "sha256": digest}


@functools.lru_cache(maxsize=64)
def _sha256(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of ``parts`` (JSON-serialisable) and the cache version."""
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _path(name: str, key: str, directory: Path | None) -> Path:
    return (directory or cache_dir()) / f"{name}-{key}.npz"


def load_cached(name: str, key: str, directory: Path | None = None) -> Split | None:
    """The cached split, or None if absent.

    An entry that cannot be read (truncated, flipped bytes, foreign) is reported by path, set
    aside beside itself as ``<name>.damaged`` (kept for inspection, never deleted) and None is
    returned, so the split is rebuilt. Every entry carries the fingerprint of its split, and a
    loaded split whose content does not hash to it counts as damaged too.
    """
    path = _path(name, key, directory)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        parts = {part: _sessions(arrays, part) for part in ("train", "test", "full_train") if f"{part}.items" in arrays}
        split = Split(
            name=meta["name"],
            train=parts["train"],
            test=parts["test"],
            n_items=meta["n_items"],
            item_ids=arrays["item_ids"],
            info=meta["info"],
            full_train=parts.get("full_train"),
        )
        if meta.get("key") != key:
            raise ValueError(f"it records the key {meta.get('key')!r}: it is another split's entry")
        if split.fingerprint != meta.get("fingerprint"):
            raise ValueError(f"its content hashes to {split.fingerprint[:12]}, not to the recorded {str(meta.get('fingerprint'))[:12]}")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, TypeError) as e:  # the file's content is wrong
        moved = set_aside(path)
        where = f"moved it to {moved.name}" if moved is not None else "another process set it aside"
        log.warning("split cache %s is damaged (%s: %s); %s and rebuilding the split", path, type(e).__name__, e, where)
        return None
    except OSError as e:  # the file could not be read (permissions, I/O): leave it where it is
        log.warning("cannot read the split cache %s (%s); rebuilding the split without it", path, e)
        return None
    return split


def cached_entry_fingerprint(name: str, key: str, directory: Path | None = None) -> str | None:
    """The fingerprint an entry records, read without loading its arrays; None when there is
    no readable entry."""
    path = _path(name, key, directory)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError):
        return None
    return meta.get("fingerprint") if meta.get("key") == key else None


def save_cached(split: Split, key: str, directory: Path | None = None) -> Path | None:
    """Write the split atomically; a cache that cannot be written only costs a warning."""
    path = _path(split.name, key, directory)
    arrays: dict[str, np.ndarray] = {"item_ids": split.item_ids}
    for part in ("train", "test", "full_train"):
        sessions = getattr(split, part)
        if sessions is not None:
            for field in ("items", "offsets", "times", "ids"):
                arrays[f"{part}.{field}"] = getattr(sessions, field)
    meta = {"name": split.name, "n_items": split.n_items, "info": split.info, "fingerprint": split.fingerprint, "key": key}
    arrays["meta"] = np.array(json.dumps(meta, default=str))
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as e:
        warnings.warn(f"could not write the split cache {path} ({e}); set SESSIONBENCH_CACHE to a writable directory", stacklevel=2)
        return None
    return path


def _sessions(arrays: dict[str, np.ndarray], part: str) -> Sessions:
    return Sessions(*(arrays[f"{part}.{field}"] for field in ("items", "offsets", "times", "ids")))
