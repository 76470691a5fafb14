"""Name -> recommender class: entry points, and ``module:Class`` for anything importable.

Every recommender, built-in or not, is published through the entry-point group
``sessionbench.recommenders``: ours in sessionbench's own ``pyproject.toml``, a plugin's in
its package's. The core therefore names no model; adding one is a class plus one line of
packaging metadata (or nothing at all with ``module:Class`` on the command line).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass

from sessionbench.recommender import Recommender

__all__ = ["GROUP", "Registered", "UnknownRecommender", "builtin_names", "registered", "resolve"]

GROUP = "sessionbench.recommenders"
_OWN_DISTRIBUTION = "sessionbench"


class UnknownRecommender(LookupError):
    """A name that is neither registered nor an importable ``module:Class``."""


@dataclass(frozen=True)
class Registered:
    """A registered recommender: its name, where it lives, and which package published it."""

    name: str
    target: str  # "module:Class"
    distribution: str

    @property
    def builtin(self) -> bool:
        return self.distribution == _OWN_DISTRIBUTION


def registered() -> dict[str, Registered]:
    """Every recommender published in the entry-point group, by name."""
    found: dict[str, Registered] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        # our own names win over a plugin that reuses one
        if ep.name not in found or dist == _OWN_DISTRIBUTION:
            found[ep.name] = Registered(ep.name, ep.value, dist)
    return dict(sorted(found.items()))


def builtin_names() -> list[str]:
    """Names of the recommenders that ship with sessionbench."""
    return [name for name, reg in registered().items() if reg.builtin]


def resolve(name: str) -> type[Recommender]:
    """The recommender class for a registered name or a ``module:Class`` path.

    Raises:
        UnknownRecommender: the name is unknown (the message lists the known ones) or the
            path does not lead to a Recommender subclass.
    """
    known = registered()
    target = known[name].target if name in known else name
    if ":" not in target:
        raise UnknownRecommender(
            f"unknown recommender {name!r}; known: {', '.join(known) or 'none'} "
            "(or give a plugin as module:Class)"
        )
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        shadow = _shadowing(module_name) if name in known and known[name].builtin else None
        raise UnknownRecommender(f"cannot load recommender {name!r} from {target!r}: {e}{shadow or ''}") from e
    if not (isinstance(obj, type) and issubclass(obj, Recommender)):
        raise UnknownRecommender(f"{target!r} is {obj!r}, not a subclass of sessionbench.Recommender")
    return obj


def _shadowing(module_name: str) -> str | None:
    """A sentence naming the package that hides one of ours, if the import of a built-in found
    its top-level package somewhere other than beside ``sessionbench`` (e.g. a folder named
    ``baselines`` in the working directory)."""
    import importlib.util
    from pathlib import Path

    top = module_name.split(".")[0]
    ours = Path(__file__).resolve().parent.parent / top
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    where = spec.origin if spec and spec.origin else next(iter(spec.submodule_search_locations or []), None) if spec else None
    if where is None or Path(where).resolve().is_relative_to(ours):
        return None
    return (f"; the module {top!r} was imported from {where}, which shadows sessionbench's own ({ours}): "
            "rename that folder or run from another directory")
