"""From every participant's own values to the group figures that may be published.

Pure functions, no database: the refresh job feeds them, the property tests
attack them. The method (docs/benchmark.md, in German and English):

* A tenant's value (a rate, a share, a figure per 1,000 inhabitants) enters a
  comparison only when it rests on at least ``min_cases`` cases (its *base*).
* A group shows figures only with at least ``min_group`` such contributors.
* Quartiles are **window quartiles**: each is the mean of ``w`` values near
  the quartile's position in the sorted group (``w`` = ``min_contributors``,
  at least 3), never a single value. The median's window is in the middle; the
  lower and upper quartile get windows of their own only when the group has at
  least ``3 w`` contributors, and a group's windows never overlap.
* Across all groups of one service, month and metric (Hessen, Landkreise, size
  classes, peer groups), two published windows are either the same tenants or
  disjoint. So every figure is a sum of a block of ``w`` values that no other
  figure splits: no linear combination of published figures isolates one value,
  not even for a participant who subtracts its own. Differences of overlapping
  groups (the Landkreis with and without one member, a peer group one tenant
  larger) reveal nothing. A window that cannot be placed so is withheld
  ("secondary"). The thresholds are those of :mod:`tenants.confidentiality`,
  and the tests check every published window with its ``protect(...,
  insiders=True)`` and with an independent rank oracle.
* The step where most abandon is a label, not a number: a group shows the
  step that is the worst step of most of its contributors, only when at least
  ``min_contributors`` of them share it.
* The number of contributors is published rounded down to a multiple of 5,
  so that comparing two refreshes or two groups does not tell whether one
  tenant had fewer than ``min_cases`` cases in a month.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from tenants.confidentiality import REASON_CONTRIBUTORS, REASON_SECONDARY, Rules

QUARTILES = ("q1", "median", "q3")

REASON_GROUP = "group"  # fewer than min_group contributors
REASON_QUARTILES = "quartiles"  # too few contributors for separate quartile windows
REASON_MODE = "mode"  # no step shared by min_contributors contributors

CONTRIBUTORS_ROUNDING = 5


class Value(NamedTuple):
    """One tenant's value of one metric in one month and the number of cases it rests on.

    A named tuple, not a dataclass: a Hessen-wide refresh creates millions of them.
    """

    value: float
    base: int


@dataclass(frozen=True)
class BenchmarkRules:
    rules: Rules = field(default_factory=Rules)
    min_group: int = 5

    @property
    def window(self) -> int:
        # Never below 3: a member of a window of 2 would learn the other value by subtracting its own.
        return max(self.rules.min_contributors, 3)

    def counts(self, value: Value) -> bool:
        return value.base >= self.rules.min_cases


@dataclass
class GroupFigure:
    """What one group publishes for one metric: window quartiles (None when withheld) and why not."""

    contributors_band: int
    q1: float | None = None
    median: float | None = None
    q3: float | None = None
    suppressed: dict[str, str] = field(default_factory=dict)
    #: The tenants behind each published window: kept in memory for the tests, never written out.
    windows: dict[str, frozenset] = field(default_factory=dict, repr=False)

    def get(self, quartile: str) -> float | None:
        return getattr(self, quartile)


def windows(n: int, w: int) -> dict[str, range]:
    """Positions (0-based, in the sorted group) of each quartile's window; disjoint by construction."""
    if n < w:
        return {}
    mid_start = (n - w) // 2
    found = {"median": range(mid_start, mid_start + w)}
    if n >= 3 * w:
        low = min(max(round(0.25 * (n - 1) - (w - 1) / 2), 0), mid_start - w)
        high = max(min(round(0.75 * (n - 1) - (w - 1) / 2), n - w), mid_start + w)
        found["q1"] = range(low, low + w)
        found["q3"] = range(high, high + w)
    return found


def _band(n: int) -> int:
    return n // CONTRIBUTORS_ROUNDING * CONTRIBUTORS_ROUNDING


class Grouping:
    """Group key -> member tenants, with the inverse computed once (the refresh calls this per metric)."""

    def __init__(self, groups: Mapping[Hashable, frozenset]):
        self.groups = dict(groups)
        self.of_tenant: dict[Hashable, list] = {}
        for key, members in self.groups.items():
            for tenant in members:
                self.of_tenant.setdefault(tenant, []).append(key)

    def sorted_members(self, counted: Mapping[Hashable, Value]) -> dict[Hashable, list]:
        """Each group's members that have a value, sorted by value (ties by tenant)."""
        present: dict[Hashable, list] = {}
        for tenant in sorted(counted, key=lambda t: (counted[t].value, str(t))):
            for key in self.of_tenant.get(tenant, ()):
                present.setdefault(key, []).append(tenant)
        return present


def _window_for(present: list, span: range, taken: dict, lo: int, hi: int) -> frozenset | None:
    """The ``len(span)`` members nearest the window ``span`` (within [lo, hi) and at most
    ``len(span) - 1 + len(present) // 8`` places from its centre) that are in no window published
    so far for this metric (``taken``). None when there are not enough of them.

    Taking only free members keeps every two published windows disjoint; the nearest ones keep the
    figure a mean of neighbouring values. A window identical to a published one (two groups with the
    same members in the middle) is the same figure and is reused.
    """
    w = len(span)
    natural = frozenset(present[span.start:span.stop])
    if all(taken.get(t) == natural for t in natural):
        return natural
    chosen = []
    base = span.start + (w - 1) // 2
    for offset in _outward_offsets(w % 2 == 0, (w - 1) / 2 + (w - 1) + len(present) // 8):
        i = base + offset
        if lo <= i < hi and present[i] not in taken:
            chosen.append(present[i])
            if len(chosen) == w:
                return frozenset(chosen)
    return None


@lru_cache(maxsize=256)
def _outward_offsets(half: bool, reach: float) -> tuple[int, ...]:
    """Positions around a window's centre by distance, ties lower first, at most ``reach`` away, as offsets
    from ``floor(centre)``: 0, -1, 1, -2, 2 … for a whole centre, 0, 1, -1, 2, -2 … for a centre between two
    positions (an even window). Cached: the refresh asks for the same few hundred thousand times."""
    centre = 0.5 if half else 0.0
    offsets = sorted(range(-math.ceil(reach) - 1, math.ceil(reach) + 2), key=lambda o: (abs(o - centre), o))
    return tuple(o for o in offsets if abs(o - centre) <= reach)


def _bounds(spans: dict, quartile: str, n: int) -> tuple[int, int]:
    """Where a quartile's window may move without touching the group's other windows."""
    if quartile == "median" and "q1" in spans:
        return spans["q1"].stop, spans["q3"].start
    if quartile == "q1":
        return 0, spans["median"].start
    if quartile == "q3":
        return spans["median"].stop, n
    return 0, n


def quartile_figures(values: Mapping[Hashable, Value], grouping: Grouping | Mapping[Hashable, frozenset],
                     brules: BenchmarkRules) -> dict[Hashable, GroupFigure]:
    """The published window quartiles of every group with members for one service, month and metric.

    Windows are chosen group by group (smallest group first: it has the least room) so that any
    two published windows are either the same tenants or have no tenant in common (see
    _window_for). Then no linear combination of published figures isolates one tenant's value,
    even for a tenant who subtracts its own: each figure is a block of ``w`` values that no other
    figure splits. A window that cannot be placed that way is withheld ("secondary"). The primary
    rules (cases, contributors) and this property are checked against
    :func:`tenants.confidentiality.protect` in the tests.

    :param values: each tenant's own value (participants only).
    :param grouping: group key -> member tenants (participants only).
    """
    grouping = grouping if isinstance(grouping, Grouping) else Grouping(grouping)
    counted = {t: v for t, v in values.items() if brules.counts(v)}
    rules = brules.rules
    out: dict[Hashable, GroupFigure] = {}
    taken: dict[Hashable, frozenset] = {}
    # Smaller groups first: their windows have the least room to move; large groups adapt around them.
    for key, present in sorted(grouping.sorted_members(counted).items(), key=lambda item: len(item[1])):
        figure = out[key] = GroupFigure(_band(len(present)))
        if len(present) < max(brules.min_group, rules.min_contributors):
            figure.suppressed = dict.fromkeys(QUARTILES, REASON_GROUP)
            continue
        spans = windows(len(present), brules.window)
        for quartile in ("median", "q1", "q3"):
            if quartile not in spans:
                figure.suppressed[quartile] = REASON_QUARTILES
                continue
            chosen = _window_for(present, spans[quartile], taken, *_bounds(spans, quartile, len(present)))
            contributors = sum(1 for t in chosen or () if counted[t].base > 0)
            if chosen is None or rules.too_few_contributors(contributors):
                figure.suppressed[quartile] = REASON_SECONDARY if chosen is None else REASON_CONTRIBUTORS
                continue
            taken.update(dict.fromkeys(chosen, chosen))
            setattr(figure, quartile, math.fsum(counted[t].value for t in chosen) / len(chosen))
            figure.windows[quartile] = chosen
    return out


def mode_figures(labels: Mapping[Hashable, tuple[str, int]], grouping: Grouping | Mapping[Hashable, frozenset],
                 brules: BenchmarkRules) -> dict[Hashable, tuple[str | None, int, str]]:
    """The step most contributors of a group lose most people at: group -> (label or None, band, reason).

    :param labels: tenant -> (its worst step's label, the number of abandonments it rests on).
    """
    grouping = grouping if isinstance(grouping, Grouping) else Grouping(grouping)
    counted = {t: label for t, (label, base) in labels.items() if base >= brules.rules.min_cases}
    present_by_group: dict = {}
    for tenant, label in counted.items():
        for key in grouping.of_tenant.get(tenant, ()):
            present_by_group.setdefault(key, []).append(label)
    out = {}
    for key, present in present_by_group.items():
        band = _band(len(present))
        if len(present) < brules.min_group:
            out[key] = (None, band, REASON_GROUP)
            continue
        ranked = Counter(present).most_common()
        label, count = ranked[0]
        tie = len(ranked) > 1 and ranked[1][1] == count
        if count < brules.rules.min_contributors or tie:
            out[key] = (None, band, REASON_MODE)
        else:
            out[key] = (label, band, "")
    return out


#: How close to the median counts as "at the median": below what the page shows (a rate to 0.1 percentage
#: points, figures per 1,000 to two decimals), so a value shown equal to the median is never called above it.
AT_MEDIAN = {"rel_tol": 1e-4, "abs_tol": 5e-4}


def rank_band(value: float | None, figure: GroupFigure | None) -> str | None:
    """Where the tenant's own value lies against the group's published quartiles (never an exact rank):
    ``median`` (equal to it, :data:`AT_MEDIAN`), ``top`` / ``bottom`` (at or beyond the upper / lower
    quartile), else ``upper`` / ``lower``; None without a published median."""
    if value is None or figure is None or figure.median is None:
        return None
    if math.isclose(value, figure.median, **AT_MEDIAN):
        return "median"
    if figure.q3 is not None and value >= figure.q3:
        return "top"
    if figure.q1 is not None and value <= figure.q1:
        return "bottom"
    return "upper" if value >= figure.median else "lower"
