"""Train/test splits that never cut a feed: by feed group, k-fold over groups, leave one study out.

A *group* is a feed (``feed_key``, the default) or the value of a column that is constant
within every feed (``by="study"``, or an ``x_*`` column such as a salt series). All flux
points and quantities of a feed always land on the same side.
"""

from __future__ import annotations

import math

import numpy as np

from ._load import Measurements


def feed_groups(meas: Measurements, by: str = "feed_key") -> dict[str, list[str]]:
    """Group value → sorted feed keys; raises ``ValueError`` if a feed spans two groups."""
    if by not in meas.table.columns:
        raise ValueError(f"cannot group by {by!r}: no such column; columns: {list(meas.table.columns)}")
    pairs = meas.table[["feed_key", by]].astype(str).drop_duplicates()
    spread = pairs[pairs["feed_key"].duplicated(keep=False)]
    if len(spread):
        key = spread["feed_key"].iloc[0]
        values = sorted(spread.loc[spread["feed_key"] == key, by])
        raise ValueError(f"feed {key!r} has several values of {by!r} ({values}); a group must hold whole feeds")
    groups: dict[str, list[str]] = {}
    for key, value in sorted(pairs.itertuples(index=False, name=None), key=lambda kv: (kv[1], kv[0])):
        groups.setdefault(value, []).append(key)
    return groups


def split_by_feed(
    meas: Measurements, test_fraction: float = 0.25, *, seed: int = 0, by: str = "feed_key"
) -> tuple[Measurements, Measurements]:
    """Random (train, test) split of whole groups, reproducible for ``seed``.

    ``test_fraction`` is a fraction of *groups* (feeds by default), not of rows: the test set
    gets round(test_fraction · n_groups) groups, at least 1 and at most n_groups − 1. With the
    three FdL 2021 feeds (one per dominant salt) any fraction below 0.5 holds out one salt series.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    groups = feed_groups(meas, by)
    names = sorted(groups)
    if len(names) < 2:
        raise ValueError(f"need at least 2 groups of {by!r} to split, found {names}")
    n_test = min(max(math.floor(test_fraction * len(names) + 0.5), 1), len(names) - 1)
    order = np.random.default_rng(seed).permutation(len(names))
    test = {k for i in order[:n_test] for k in groups[names[i]]}
    return meas.subset(set(meas.feed_keys) - test), meas.subset(test)


def group_folds(
    meas: Measurements, k: int | None = None, *, seed: int = 0, by: str = "feed_key"
) -> list[tuple[str, Measurements, Measurements]]:
    """K-fold over whole groups: a list of (test groups joined by '+', train, test).

    ``k=None`` leaves one group out per fold, in sorted group order (no shuffling); otherwise
    the groups are shuffled with ``seed`` and dealt into ``k`` folds (2 ≤ k ≤ n_groups).
    """
    groups = feed_groups(meas, by)
    names = sorted(groups)
    if len(names) < 2:
        raise ValueError(f"need at least 2 groups of {by!r} for folds, found {names}")
    if k is None:
        folds = [[name] for name in names]
    elif 2 <= k <= len(names):
        order = np.random.default_rng(seed).permutation(len(names))
        folds = [sorted(names[i] for i in part) for part in np.array_split(order, k)]
    else:
        raise ValueError(f"k must be between 2 and the number of groups ({len(names)}), got {k!r}")
    out = []
    for fold in folds:
        test = {key for name in fold for key in groups[name]}
        out.append(("+".join(fold), meas.subset(set(meas.feed_keys) - test), meas.subset(test)))
    return out


def leave_one_study_out(meas: Measurements) -> list[tuple[str, Measurements, Measurements]]:
    """One fold per study: (study, train = all other studies, test = that study)."""
    return group_folds(meas, None, by="study")
