"""Where a result came from: the code that computed it, the machine it ran on, its memory.

The code's identity is what a result is keyed by, so that a change to the code is never
shown with an old number: the package version plus a hash of every Python source file of
sessionbench's three import packages (``sessionbench``, ``baselines``, ``narm``) as they are
on disk when the process starts. A commit that touches only results or documentation keeps
the hash, so a long training resumes across such commits; any edit to the code, committed or
not, changes it. The git commit and whether the tree had uncommitted changes to tracked code
are recorded beside it, for the page to say, when the code runs from a checkout of
sessionbench itself (not from whatever repository a virtual environment happens to sit in).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import platform
import resource
import subprocess
import threading
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "PeakRSS",
    "code_identity",
    "code_version",
    "class_source_digest",
    "device_description",
    "process_peak_rss",
    "versions",
]

#: The import packages of the sessionbench distribution whose sources make up the code version.
_PACKAGES = ("sessionbench", "baselines", "narm", "stamp", "srgnn", "gcegnn")


def _root() -> Path:
    """The folder holding the three packages (the checkout, or site-packages)."""
    return Path(__file__).resolve().parent.parent


@functools.cache
def code_version() -> dict[str, Any]:
    """The code this process runs, read once (a training of hours must not pick up edits
    made to the tree while it runs).

    Returns:
        ``{"sessionbench": version, "source": sha256 of the package sources, "commit": short
        commit or None, "dirty": True/False or None}``; commit and dirty are None when the
        code does not run from a git checkout of sessionbench.
    """
    import importlib.metadata

    try:
        version = importlib.metadata.version("sessionbench")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit, dirty = _git_state(_root())
    return {"sessionbench": version, "source": _source_digest(_root()), "commit": commit, "dirty": dirty}


def code_identity() -> str:
    """The part of a result's identity that names the code: ``<version>+<source hash>``."""
    code = code_version()
    return f"{code['sessionbench']}+{code['source'][:16]}"


def _source_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def class_source_digest(cls: type) -> str | None:
    """sha256 of the source of a recommender class defined outside sessionbench's own packages
    (a plugin): every ``.py`` file of its top-level package (helper modules included), or its
    module's file when it is a lone module. None for ours (their code is in
    :func:`code_version`) or when no source file can be found."""
    import sys

    top = (cls.__module__ or "").split(".")[0]
    if top in _PACKAGES:
        return None
    module = sys.modules.get(top)
    folders = [Path(p) for p in getattr(module, "__path__", [])]
    if folders:
        files = sorted({f for folder in folders for f in folder.rglob("*.py")})
        root = folders[0]
    else:
        try:
            path = inspect.getsourcefile(cls)
        except TypeError:
            return None
        if not path or not os.path.isfile(path):
            return None
        files, root = [Path(path)], Path(path).parent
    digest = hashlib.sha256()
    for file in files:
        digest.update(os.path.relpath(file, root).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _git_state(root: Path) -> tuple[str | None, bool | None]:
    """(short commit, dirty) of the checkout at ``root`` if it is sessionbench's own."""
    pyproject = root / "pyproject.toml"
    try:
        if 'name = "sessionbench"' not in pyproject.read_text(encoding="utf-8"):
            return None, None
        top = _git(root, "rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != root:
            return None, None  # the packages sit in some other repository (a venv inside one)
        sha = _git(root, "rev-parse", "--short=12", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", "*.py", "pyproject.toml")
    except OSError:
        return None, None
    if sha is None or status is None:
        return None, None
    return sha, bool(status)


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def versions() -> dict[str, Any]:
    """Versions of Python and of the libraries that compute results, and the code's version
    (``commit``: the short commit, with ``+changes`` when the tree was dirty)."""
    import importlib.metadata

    out: dict[str, Any] = {"python": platform.python_version()}
    for lib in ("sessionbench", "numpy", "scipy", "pandas", "torch", "implicit"):
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    code = code_version()
    out["commit"] = "unknown" if code["commit"] is None else code["commit"] + ("+changes" if code["dirty"] else "")
    out["source"] = code["source"][:16]
    return out


def device_description(device: str) -> str:
    """Where a run's costs were measured, e.g. "cpu (AMD EPYC, AVX512, 2 torch threads, 2 cores)".

    The CPU's instruction set is named because the page groups costs by this text, and two
    machines that both report "AMD EPYC" with 2 cores trained a NARM epoch on DIGINETICA in
    about 290 s (AVX2) and 105 s (AVX-512).
    """
    import torch

    if str(device).startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name()})"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu ({_cpu_model()}, {capability}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"


def _cpu_model() -> str:
    """The CPU's model name (Linux reports it in /proc/cpuinfo; ``platform.processor()`` is
    often empty there), else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms,
    ``peak``), and the process's lifetime peak at its end (``process_peak``, see
    :func:`process_peak_rss`); both in bytes.

    Example::

        with PeakRSS() as memory:
            model.fit(split, seed=0)
        print(memory.peak / 2**30, "GiB")
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.process_peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.process_peak = process_peak_rss()


def process_peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    Linux's ``VmHWM`` belongs to the process's own address space, whereas ``ru_maxrss`` keeps
    the peak of the address space before ``exec`` — the forked copy of a large parent — and
    would charge a worker with its parent's memory.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
