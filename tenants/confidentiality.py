"""Statistical confidentiality for everything that leaves a tenant: Open Data and benchmarks.

The method (docs/confidentiality.md explains it in German and English) follows
official statistics practice (Destatis, Bundesagentur für Arbeit):

* **Primary suppression.** A published figure must rest on at least
  ``min_cases`` cases (default 3): a figure of 1 or 2 is withheld; 0 is
  published, because "nobody" discloses nobody. A figure that sums several
  contributors (tenants) additionally needs at least ``min_contributors``
  contributors with a non-zero value (default 3), so that no contributor can
  subtract its own value from the figure and learn another one's.
* **Secondary suppression.** Figures are sums of *atoms* (a tenant's count
  for one service and month, say). After primary suppression the module
  withholds further figures until

  1. no protected atom can be computed from the published figures by any
     linear combination (totals minus parts, differences of overlapping
     groups, chains of those): an exact linear-algebra test, not a rule of
     thumb, and
  2. whenever one published figure contains another, the part of the larger
     one that is not itself published (the hidden remainder, e.g. a month's
     total minus the published services, or the Landkreis minus a peer group
     one tenant smaller) is 0 or again rests on ``min_cases`` cases and, for
     multi-contributor figures, ``min_contributors`` contributors.

  Additional figures are chosen cheapest first (the smallest value), so totals
  survive wherever small cells can carry the protection.

  With ``insiders=True`` test 1 is repeated for every contributor, who knows
  its own atoms (a tenant looking at a benchmark sees its own value): no
  contributor can compute another one's atom either.

How to use it: describe the atoms and the figures you would like to publish
and call :func:`protect`; publish exactly ``result.published``. Anything
derived from several figures (a rate, a share) is published only when all its
inputs are (:meth:`Protection.all_published`).

Limits (documented in docs/confidentiality.md): the test is for exact
recovery and for small remainders; it does not compute protection intervals
under non-negativity. Figures that are not sums (medians, quantiles) are not
covered by the linear test; give them their own rule (a minimum group size).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

#: Numerical tolerance for the rank tests; the matrices hold only 0 and 1.
_TOL = 1e-9

REASON_CASES = "cases"  # fewer than min_cases cases
REASON_CONTRIBUTORS = "contributors"  # fewer than min_contributors contributors
REASON_SECONDARY = "secondary"  # withheld so that another figure cannot be recovered


@dataclass(frozen=True)
class Rules:
    """The thresholds; both configurable (``EGOV_CONFIDENTIALITY_MIN_CASES`` / ``..._MIN_CONTRIBUTORS``)."""

    min_cases: int = 3
    min_contributors: int = 3

    def __post_init__(self):
        if self.min_cases < 1 or self.min_contributors < 1:
            raise ValueError("confidentiality thresholds must be at least 1")

    def too_few_cases(self, value: int) -> bool:
        return 0 < value < self.min_cases

    def too_few_contributors(self, contributors: int) -> bool:
        return 0 < contributors < self.min_contributors


@dataclass(frozen=True)
class Atom:
    """The smallest unit of data: a non-negative count, owned by one contributor.

    ``protected`` atoms must never be recoverable. By default an atom is
    protected when its value is below ``min_cases`` (and not 0); set it to
    True for atoms that must stay secret whatever their size (another tenant's
    own value in a benchmark).
    """

    value: int
    owner: Hashable = None
    protected: bool | None = None


@dataclass(frozen=True)
class Figure:
    """A figure one would like to publish: the sum of the atoms named in ``members``.

    ``group=True`` marks a figure over several contributors; it then also
    needs ``min_contributors`` contributors with a non-zero value.
    ``cost`` orders the choice of secondary suppressions (default: the value).
    """

    key: Hashable
    members: frozenset
    group: bool = False
    cost: float | None = None


@dataclass
class Protection:
    """The outcome: the values to publish and why the others are withheld."""

    published: dict = field(default_factory=dict)
    suppressed: dict = field(default_factory=dict)

    def is_published(self, key) -> bool:
        return key in self.published

    def all_published(self, *keys) -> bool:
        """True when every input of a derived figure (a rate, a share) is published."""
        return all(k in self.published for k in keys)

    def value(self, key):
        """The published value, or None when it is withheld."""
        return self.published.get(key)


def cells(values: Mapping[Hashable, int]) -> dict[Hashable, Atom]:
    """Atoms for a single contributor's table (Open Data): one atom per cell."""
    return {key: Atom(int(value)) for key, value in values.items()}


def protect(atoms: Mapping[Hashable, Atom], figures: Iterable[Figure], rules: Rules | None = None, *,
            insiders: bool = False) -> Protection:
    """Decide which figures may be published. See the module docstring for the method.

    :param atoms: every atom any figure refers to, by key.
    :param figures: the candidate figures; keys must be unique.
    :param insiders: also protect against each contributor, who knows its own
        atoms and can subtract them (benchmarks: every tenant sees its own value
        next to the group figures). Costs one extra reduction per contributor.
    :raise KeyError: a figure refers to an unknown atom.
    :raise ValueError: duplicate figure keys or a negative atom.
    """
    rules = rules or Rules()
    figures = list(figures)
    if len({f.key for f in figures}) != len(figures):
        raise ValueError("figure keys must be unique")
    for key, atom in atoms.items():
        if atom.value < 0:
            raise ValueError(f"atom {key!r} is negative")
    result = Protection()
    for component in _components(figures):
        _protect_component(atoms, component, rules, result, insiders)
    return result


# --- the method ----------------------------------------------------------------------


def _components(figures: list[Figure]) -> list[list[Figure]]:
    """Split the figures into groups that share no atom; each is protected on its own."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for fig in figures:
        anchor = ("figure", fig.key)
        for member in fig.members:
            parent[find(("atom", member))] = find(anchor)
        find(anchor)
    groups: dict = defaultdict(list)
    for fig in figures:
        groups[find(("figure", fig.key))].append(fig)
    return list(groups.values())


def _value(atoms, fig: Figure) -> int:
    return sum(atoms[m].value for m in fig.members)


def _contributors(atoms, members) -> int:
    return len({atoms[m].owner for m in members if atoms[m].value > 0})


def _primary_reason(atoms, fig: Figure, rules: Rules) -> str | None:
    if rules.too_few_cases(_value(atoms, fig)):
        return REASON_CASES
    if fig.group and rules.too_few_contributors(_contributors(atoms, fig.members)):
        return REASON_CONTRIBUTORS
    return None


def _is_protected(atom: Atom, rules: Rules) -> bool:
    return atom.protected if atom.protected is not None else rules.too_few_cases(atom.value)


def _protect_component(atoms, figures: list[Figure], rules: Rules, result: Protection, insiders: bool) -> None:
    open_figs: dict = {}
    for fig in figures:
        reason = _primary_reason(atoms, fig, rules)
        if reason:
            result.suppressed[fig.key] = reason
        else:
            open_figs[fig.key] = fig
    members = sorted({m for f in figures for m in f.members}, key=repr)
    column = {m: i for i, m in enumerate(members)}
    protected = [column[m] for m in members if _is_protected(atoms[m], rules)]
    views = [frozenset()]
    if insiders:
        owned = defaultdict(set)
        for m in members:
            owned[atoms[m].owner].add(column[m])
        views += [frozenset(cols) for _, cols in sorted(owned.items(), key=lambda item: repr(item[0]))]
    nested = _nested(figures)
    while open_figs:
        victim = _remainder_victim(atoms, open_figs, rules, nested)
        if victim is None:  # keys may be falsy (0, ""), so no `or` here
            victim = _recovery_victim(atoms, open_figs, column, protected, views)
        if victim is None:
            break
        del open_figs[victim]
        result.suppressed[victim] = REASON_SECONDARY
    for key, fig in open_figs.items():
        result.published[key] = _value(atoms, fig)


def _cost(atoms, fig: Figure) -> tuple:
    # Prefer withholding small non-zero figures: a zero protects nothing.
    value = _value(atoms, fig)
    cost = fig.cost if fig.cost is not None else value
    return (value == 0, cost, len(fig.members), repr(fig.key))


def _nested(figures: list[Figure]) -> dict:
    """For each figure, the keys of the figures strictly inside it (computed once per component)."""
    containing = defaultdict(set)
    for fig in figures:
        for member in fig.members:
            containing[member].add(fig.key)
    inside = defaultdict(list)
    for small in figures:
        if not small.members:
            continue
        bigs = set.intersection(*(containing[m] for m in small.members))
        for big in bigs - {small.key}:
            inside[big].append(small.key)
    by_key = {f.key: f for f in figures}
    return {big: [s for s in smalls if by_key[s].members < by_key[big].members] for big, smalls in inside.items()}


def _remainder_victim(atoms, open_figs: dict, rules: Rules, nested: dict):
    """A figure to withhold because a published figure minus a published sub-figure is too small.

    Only the hidden part of a difference matters (what published single cells
    do not show), and for nested figures it is hidden(big) - hidden(small).
    """
    published_atoms = {next(iter(f.members)) for f in open_figs.values() if len(f.members) == 1}
    hidden = {key: fig.members - published_atoms for key, fig in open_figs.items()}
    for key in sorted(open_figs, key=lambda k: (-len(open_figs[k].members), repr(k))):
        big = open_figs[key]
        differences = [(None, hidden[key])] + [(s, hidden[key] - hidden[s]) for s in nested.get(key, ())
                                               if s in open_figs and hidden[s]]
        for small, rest_hidden in differences:
            value = sum(atoms[m].value for m in rest_hidden)
            too_small = rules.too_few_cases(value) or (
                big.group and rules.too_few_contributors(_contributors(atoms, rest_hidden)))
            if not too_small:
                continue
            # Widen the hidden part with the cheapest published part of it, else withhold the larger figure.
            rest = big.members - (open_figs[small].members if small is not None else frozenset())
            parts = [f for k, f in open_figs.items() if k != key and f.members and f.members <= rest]
            return min(parts, key=lambda f: _cost(atoms, f)).key if parts else key
    return None


def _row_reduce(matrix: np.ndarray, pivot_columns: int) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over the first ``pivot_columns`` columns (partial pivoting).

    Plain element-wise numpy: no LAPACK call, whose thread pool costs more
    than the work on matrices this small.
    """
    m = matrix.copy()
    pivots, row = [], 0
    for col in range(pivot_columns):
        if row == m.shape[0]:
            break
        best = row + int(np.argmax(np.abs(m[row:, col])))
        if abs(m[best, col]) < _TOL:
            continue
        m[[row, best]] = m[[best, row]]
        m[row] /= m[row, col]
        factors = m[:, col].copy()
        factors[row] = 0.0
        m -= np.outer(factors, m[row])
        pivots.append(col)
        row += 1
    return m, pivots


def _recovery_victim(atoms, open_figs: dict, column: dict, protected: list[int], views: list[frozenset]):
    """A figure to withhold because a protected atom is a linear combination of published figures.

    ``views`` lists what an observer already knows besides the published
    figures: nothing (the public) and, with ``insiders``, each contributor's
    own atoms. In the reduced row echelon form, an atom is recoverable exactly
    when its pivot row has no other non-zero entry in the atom block; the
    identity block carried along names the published figures that combine to it.
    """
    if not protected:
        return None
    keys = list(open_figs)
    n_atoms, n_figs = len(column), len(keys)
    base = np.zeros((n_figs, n_atoms + n_figs))
    for row, key in enumerate(keys):
        for member in open_figs[key].members:
            base[row, column[member]] = 1.0
        base[row, n_atoms + row] = 1.0
    for known in views:
        wanted = set(protected) - known
        if not wanted:
            continue
        own = np.zeros((len(known), n_atoms + n_figs))
        for row, col in enumerate(sorted(known)):
            own[row, col] = 1.0
        reduced, pivots = _row_reduce(np.vstack([base, own]) if known else base, n_atoms)
        for row, col in enumerate(pivots):
            if col in wanted and np.count_nonzero(np.abs(reduced[row, :n_atoms]) > 1e-7) == 1:
                involved = [keys[i] for i in np.flatnonzero(np.abs(reduced[row, n_atoms:]) > 1e-7)]
                return min(involved, key=lambda k: _cost(atoms, open_figs[k]))
    return None
