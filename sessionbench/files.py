"""Writing a file so that a reader, or a run killed halfway, sees its old content or its new
one, never half of it: results, the split cache, training checkpoints."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "inside", "safe_name", "set_aside"]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write(file)``: into a temporary file beside it (a unique name,
    so that two writers never share one), then renamed over it. The temporary file is removed
    when anything fails, KeyboardInterrupt included; its folder is created.

    Raises:
        OSError: the folder or the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_aside(path: Path) -> Path | None:
    """Move a damaged file to ``<name>.damaged`` (``.damaged-2``, ... if taken) beside it and
    return the new path; nothing is ever overwritten or deleted. None when the file is already
    gone (another process set it aside first)."""
    for n in range(1, 1000):
        target = path.with_name(f"{path.name}.damaged" + (f"-{n}" if n > 1 else ""))
        try:
            os.link(path, target)  # fails if the target exists: no earlier copy is overwritten
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        except OSError:  # a file system without hard links
            if target.exists():
                continue
            try:
                os.replace(path, target)
            except FileNotFoundError:
                return None
            return target
        Path(path).unlink(missing_ok=True)
        return target
    raise OSError(f"{path}: 999 damaged copies are already set aside beside it")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """``name`` as a file name: runs of characters other than letters, digits, ``.``, ``_``
    and ``-`` become ``-``, and no leading dot remains (so never ``..`` or a hidden file).

    Raises:
        ValueError: nothing usable is left.
    """
    safe = _UNSAFE.sub("-", str(name)).lstrip(".")
    if not safe.strip("-"):
        raise ValueError(f"{name!r} gives no usable file name")
    return safe


def inside(root: Path, *parts: str) -> Path:
    """``root / parts...``, checked to stay inside ``root`` once resolved.

    Raises:
        ValueError: the path would leave ``root`` (``..``, an absolute part, a symlink out).
    """
    path = Path(root).joinpath(*parts)
    base = Path(root).resolve()
    if not path.resolve().is_relative_to(base):
        raise ValueError(f"{path} is outside {base}; refusing to write there")
    return path
