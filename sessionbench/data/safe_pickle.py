"""Loading the NARM/SR-GNN pickles without letting a data file run code.

A pickle can only call code through a global it looks up (``find_class``) or a persistent id.
The unpickler below refuses both, so what it can build is limited to plain containers and
scalars; the caller then checks that the result is exactly lists/tuples of ints.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from sessionbench.errors import DataError

__all__ = ["load_restricted"]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        raise DataError(
            f"{self._source}: the pickle asks for {module}.{name}; a data file may hold only "
            "lists, tuples and ints, so it was not loaded (a pickle that names a class or "
            "function can run code). Re-export the data as plain lists, or use the "
            "one-session-per-line text form."
        )

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._source}: the pickle uses persistent ids; only lists, tuples and ints are allowed")


def load_restricted(path: Path) -> Any:
    """Unpickle ``path`` admitting no globals; the caller checks the shape of the result.

    Raises:
        DataError: the pickle references a class or function, or is not a pickle at all.
    """
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, str(path)).load()
        except DataError:
            raise
        except Exception as e:  # any unpickling failure is a bad data file
            raise DataError(f"{path}: not a readable pickle of lists and ints ({type(e).__name__}: {e})") from e
