"""The embedded synthetic dataset: seeded raw clicks with the structure of real e-commerce
sessions, passed through the same protocol as DIGINETICA and YOOCHOOSE.

Each session follows a latent intent (a cluster of related items). Its first click is an item
of the intent, drawn by popularity; every later click is, with fixed probabilities,

- a *transition*: one of the few successors of the last on-intent click (sequential structure
  that Markov and RNN models can learn),
- an *intent* click: another item of the same cluster, by popularity (what attention over the
  whole session can find, and the last click alone cannot),
- a *repeat* of an earlier click of the session (what S-POP exploits),
- an *off-intent* click drawn from global popularity (noise that misleads last-click methods).

Item popularity is Zipf-like, session lengths follow a discretised log-normal (mean ~5 clicks
after the protocol, long tail), and sessions spread over weeks, so the 7-day (or 1-day) split
applies. Presets: ``small`` (the default run: seconds to generate and train on),
``diginetica`` (~1M clicks, ~43k items after the protocol) and ``yoochoose`` (~33M clicks, for
YOOCHOOSE 1/4-scale speed and memory benchmarks). Generation is vectorised over sessions, one
click position at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sessionbench.data.protocol import DAY, Clicks
from sessionbench.data.sessions import ragged_ranges

__all__ = ["PRESETS", "SyntheticConfig", "generate_clicks", "write_diginetica_csv", "write_yoochoose_dat"]

#: Bump when the generator changes what it draws (invalidates cached splits).
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and structure of a synthetic click log.

    Attributes:
        n_sessions: Raw sessions (length-1 sessions included, as in real logs).
        n_items: Raw items; the rarest fall below the 5-occurrence filter.
        n_days: Days the sessions spread over.
        items_per_intent: Mean number of items in an intent cluster.
        successors: Successors per item for transition clicks.
        p_transition, p_intent, p_repeat: Probabilities of each kind of later click; the rest
            (1 - their sum) are off-intent clicks.
        zipf: Exponent of item popularity, weight ~ 1 / rank**zipf.
        length_mu, length_sigma: Session length ~ ceil(exp(N(mu, sigma))), capped at max_length.
        timestamps: "day" gives DIGINETICA-style eventdate + timeframe; "second" gives
            YOOCHOOSE-style click timestamps.
        test_days: The protocol's test period for this preset.
    """

    n_sessions: int
    n_items: int
    n_days: int
    items_per_intent: int = 25
    successors: int = 3
    p_transition: float = 0.45
    p_intent: float = 0.3
    p_repeat: float = 0.1
    zipf: float = 0.9
    length_mu: float = 0.95
    length_sigma: float = 0.85
    max_length: int = 200
    timestamps: str = "day"
    test_days: float = 7.0


PRESETS: dict[str, SyntheticConfig] = {
    "small": SyntheticConfig(n_sessions=15_000, n_items=2_500, n_days=35, zipf=0.6),
    "diginetica": SyntheticConfig(n_sessions=262_000, n_items=63_000, n_days=90, zipf=0.78),
    "yoochoose": SyntheticConfig(
        n_sessions=7_600_000, n_items=37_500, n_days=183, timestamps="second", test_days=1.0
    ),
}


def generate_clicks(config: SyntheticConfig, seed: int = 0) -> Clicks:
    """Draw a click log in file order (rows grouped by session id, not sorted by time).

    Returns:
        Clicks with ``order_key`` the within-session timeframe in ms (file order within a
        session is shuffled for a third of the sessions, as DIGINETICA's raw file is unsorted).
    """
    rng = np.random.default_rng(seed)
    n, c = config.n_items, max(1, config.n_items // config.items_per_intent)
    weight = 1.0 / np.arange(1, n + 1) ** config.zipf
    weight = weight[rng.permutation(n)]  # popularity rank independent of the item index
    cluster = rng.integers(0, c, size=n)
    sampler = _ClusterSampler(cluster, weight, c)
    successors = sampler.draw(np.repeat(cluster, config.successors), rng).reshape(n, config.successors)
    global_cum = np.cumsum(weight) / weight.sum()
    cluster_weight = np.bincount(cluster, weights=weight, minlength=c)
    cluster_cum = np.cumsum(cluster_weight) / cluster_weight.sum()

    lengths = np.minimum(
        np.ceil(np.exp(rng.normal(config.length_mu, config.length_sigma, config.n_sessions))), config.max_length
    ).astype(np.int64)
    by_length = np.argsort(-lengths, kind="stable")  # active sessions at position t: a prefix
    lengths_sorted = lengths[by_length]
    offsets = np.concatenate([[0], np.cumsum(lengths_sorted)])
    out = np.empty(int(offsets[-1]), dtype=np.int32)

    intent = np.searchsorted(cluster_cum, rng.random(config.n_sessions), side="right").clip(0, c - 1)
    anchor = sampler.draw(intent, rng)
    out[offsets[:-1]] = anchor
    p = np.cumsum([config.p_transition, config.p_intent, config.p_repeat])
    for t in range(1, int(lengths_sorted[0]) if len(lengths_sorted) else 0):
        active = int(np.searchsorted(-lengths_sorted, -t, side="left"))  # sessions with length > t
        u = rng.random(active)
        kind = np.searchsorted(p, u, side="right")  # 0 transition, 1 intent, 2 repeat, 3 noise
        a = anchor[:active]
        nxt = np.empty(active, dtype=np.int64)
        m = kind == 0
        nxt[m] = successors[a[m], rng.integers(0, config.successors, int(m.sum()))]
        m = kind == 1
        nxt[m] = sampler.draw(intent[:active][m], rng)
        m = kind == 2
        earlier = offsets[:active][m] + rng.integers(0, t, int(m.sum()))
        nxt[m] = out[earlier]
        m = kind == 3
        nxt[m] = np.searchsorted(global_cum, rng.random(int(m.sum())), side="right").clip(0, n - 1)
        on_intent = kind <= 1
        anchor[:active][on_intent] = nxt[on_intent]
        out[offsets[:active] + t] = nxt
    return _as_clicks(config, seed, rng, out, offsets, lengths_sorted)


class _ClusterSampler:
    """Draws an item of a given cluster with probability proportional to its weight."""

    def __init__(self, cluster: np.ndarray, weight: np.ndarray, n_clusters: int) -> None:
        self.order = np.argsort(cluster, kind="stable")
        self.cum = np.cumsum(weight[self.order])
        sizes = np.bincount(cluster, minlength=n_clusters)
        self.end = np.cumsum(sizes)
        self.start = self.end - sizes
        self.base = np.where(self.start > 0, self.cum[np.maximum(self.start - 1, 0)], 0.0)
        self.total = self.cum[np.maximum(self.end - 1, 0)] - self.base

    def draw(self, clusters: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.base[clusters] + rng.random(len(clusters)) * self.total[clusters]
        pos = np.searchsorted(self.cum, target, side="right")
        # an empty cluster has no item; fall back to the first item of the next one
        pos = np.clip(pos, self.start[clusters], np.maximum(self.end[clusters] - 1, self.start[clusters]))
        return self.order[np.minimum(pos, len(self.order) - 1)]


def _as_clicks(
    config: SyntheticConfig,
    seed: int,
    rng: np.random.Generator,
    items: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
) -> Clicks:
    n_sessions = len(lengths)
    daily = config.timestamps == "day"
    start = rng.random(n_sessions) * config.n_days * DAY
    gaps = rng.exponential(45.0, size=len(items))  # seconds between clicks
    gaps[offsets[:-1]] = 0.0
    within = np.cumsum(gaps)
    within -= np.repeat(within[offsets[:-1]], lengths)
    session_of = np.repeat(np.arange(n_sessions), lengths)
    session_id = rng.permutation(n_sessions) + 1
    if daily:  # DIGINETICA's raw file is not sorted by timeframe: shuffle a third of the sessions
        shuffled = rng.random(n_sessions) < 1 / 3
        row_key = np.where(shuffled[session_of], rng.random(len(items)), within)
        rows = np.lexsort((row_key, session_id[session_of]))  # file rows grouped by session id
    else:
        by_id = np.argsort(session_id)
        rows = ragged_ranges(offsets[:-1][by_id], lengths[by_id])
    if daily:  # one eventdate per session, as in DIGINETICA
        time = (np.floor(start / DAY) * DAY)[session_of]
        epoch = pd.Timestamp("2016-01-01", tz="UTC").timestamp()
    else:
        time = np.floor(start[session_of] + within)
        epoch = pd.Timestamp("2014-04-01", tz="UTC").timestamp()
    item_ids = rng.permutation(config.n_items).astype(np.int64) * 7 + 1001  # opaque original ids
    return Clicks(
        session=session_id[session_of][rows],
        item=item_ids[items[rows]],
        time=(time + epoch)[rows],
        order_key=np.round(within * 1000).astype(np.int64)[rows] if daily else None,
        source=f"synthetic({_describe(config, seed)})",
    )


def _describe(config: SyntheticConfig, seed: int) -> str:
    preset = next((k for k, v in PRESETS.items() if v == config), "custom")
    return f"preset={preset}, seed={seed}"


def config_dict(config: SyntheticConfig) -> dict:
    return asdict(config) | {"generator_version": GENERATOR_VERSION}


def write_diginetica_csv(clicks: Clicks, path: Path) -> None:
    """Write clicks in the raw DIGINETICA format (``;``-separated, with header)."""
    frame = pd.DataFrame(
        {
            "sessionId": clicks.session,
            "userId": "NA",
            "itemId": clicks.item,
            "timeframe": clicks.order_key if clicks.order_key is not None else 0,
            "eventdate": pd.to_datetime(clicks.time, unit="s").strftime("%Y-%m-%d"),
        }
    )
    frame.to_csv(path, sep=";", index=False)


def write_yoochoose_dat(clicks: Clicks, path: Path, chunk: int = 2_000_000) -> None:
    """Write clicks in the raw YOOCHOOSE format (``SessionId,Timestamp,ItemId,Category``, no
    header, ISO timestamps with milliseconds), a chunk at a time to bound memory."""
    with open(path, "w", newline="") as f:
        for lo in range(0, len(clicks), chunk):
            sl = slice(lo, lo + chunk)
            stamps = np.datetime_as_string((clicks.time[sl] * 1000).astype("datetime64[ms]"), unit="ms")
            frame = pd.DataFrame(
                {"s": clicks.session[sl], "t": np.char.add(stamps, "Z"), "i": clicks.item[sl], "c": 0}
            )
            frame.to_csv(f, header=False, index=False)
