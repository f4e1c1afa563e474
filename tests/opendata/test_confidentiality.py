"""Properties of the suppression method (tenants/confidentiality.py), checked independently.

The checks recompute everything with exact rational arithmetic, not with the
module's floating-point linear algebra, so a bug there cannot hide itself.
"""

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.confidentiality import Atom, Figure, Rules, cells, protect


def _rank(rows: list[list[Fraction]]) -> int:
    rows = [list(r) for r in rows]
    rank, cols = 0, len(rows[0]) if rows else 0
    for col in range(cols):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][col] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(len(rows)):
            if r != rank and rows[r][col] != 0:
                factor = rows[r][col] / rows[rank][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank], strict=True)]
        rank += 1
    return rank


def recoverable(atom_keys, published_figures, target, known=()) -> bool:
    """Exact test: is the unit vector of ``target`` in the span of the published figures (and ``known`` atoms)?"""
    index = {k: i for i, k in enumerate(atom_keys)}

    def vector(members):
        row = [Fraction(0)] * len(atom_keys)
        for m in members:
            row[index[m]] = Fraction(1)
        return row

    rows = [vector(f.members) for f in published_figures] + [vector([k]) for k in known]
    if not rows:
        return False
    return _rank(rows) == _rank(rows + [vector([target])])


def table_figures(values):
    """Cells of a services x months table, with totals per month and per service and a grand total."""
    figures = [Figure(("cell", k), frozenset([k])) for k in values]
    rows = {k[0] for k in values}
    cols = {k[1] for k in values}
    figures += [Figure(("col", c), frozenset(k for k in values if k[1] == c)) for c in cols]
    figures += [Figure(("row", r), frozenset(k for k in values if k[0] == r)) for r in rows]
    figures.append(Figure(("all",), frozenset(values)))
    return figures


counts = st.integers(min_value=0, max_value=12)
tables = st.integers(1, 4).flatmap(
    lambda n_rows: st.integers(1, 4).flatmap(
        lambda n_cols: st.fixed_dictionaries({(r, c): counts for r in range(n_rows) for c in range(n_cols)})))
rules_st = st.builds(Rules, min_cases=st.integers(1, 5), min_contributors=st.integers(1, 4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=tables, rules=rules_st)
def test_a_table_never_reveals_a_small_cell(values, rules):
    atoms = cells(values)
    figures = table_figures(values)
    result = protect(atoms, figures, rules)
    by_key = {f.key: f for f in figures}
    published = [by_key[k] for k in result.published]

    # Every candidate is decided exactly once, and published values are the true sums.
    assert set(result.published) | set(result.suppressed) == set(by_key)
    assert not set(result.published) & set(result.suppressed)
    for key, value in result.published.items():
        assert value == sum(values[m] for m in by_key[key].members)
        # No published figure is below the threshold.
        assert not (0 < value < rules.min_cases)
    # No small cell can be computed from the published figures, alone or combined.
    for key, value in values.items():
        if 0 < value < rules.min_cases:
            assert not recoverable(list(values), published, key)
    # What a published total does not show through its published cells is 0 or large enough.
    shown = {next(iter(f.members)) for f in published if len(f.members) == 1}
    for fig in published:
        hidden = sum(values[m] for m in fig.members - shown)
        assert not (0 < hidden < rules.min_cases)


def groups_strategy():
    """Tenants with a count each, and overlapping groups (including nested groups one tenant apart)."""
    return st.integers(3, 9).flatmap(lambda n: st.tuples(
        st.lists(counts, min_size=n, max_size=n),
        st.lists(st.sets(st.integers(0, n - 1), min_size=1), min_size=1, max_size=6),
    ))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=groups_strategy(), rules=rules_st)
def test_group_figures_never_reveal_a_tenant(data, rules):
    tenant_values, groups = data
    # Add, for each group, the same group one tenant larger: the classic differencing attack.
    extended = list(groups)
    for g in groups:
        outside = sorted(set(range(len(tenant_values))) - g)
        if outside:
            extended.append(g | {outside[0]})
    atoms = {t: Atom(v, owner=t, protected=True) for t, v in enumerate(tenant_values)}
    figures = [Figure(i, frozenset(g), group=True) for i, g in enumerate(extended)]
    result = protect(atoms, figures, rules)
    published = [f for f in figures if f.key in result.published]

    for fig in published:
        value = result.published[fig.key]
        assert value == sum(tenant_values[t] for t in fig.members)
        assert not (0 < value < rules.min_cases)
        contributors = sum(1 for t in fig.members if tenant_values[t] > 0)
        assert not (0 < contributors < rules.min_contributors)
    # No single tenant's value follows from any combination of published group figures.
    for tenant in range(len(tenant_values)):
        assert not recoverable(list(range(len(tenant_values))), published, tenant)
    # The difference of two nested published groups is itself a safe group figure.
    for big in published:
        for small in published:
            if small.members < big.members:
                rest = big.members - small.members
                value = sum(tenant_values[t] for t in rest)
                contributors = sum(1 for t in rest if tenant_values[t] > 0)
                assert not (0 < value < rules.min_cases)
                assert not (0 < contributors < rules.min_contributors)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=groups_strategy(), rules=rules_st)
def test_no_tenant_learns_another_by_subtracting_its_own_value(data, rules):
    tenant_values, groups = data
    tenants = list(range(len(tenant_values)))
    atoms = {t: Atom(v, owner=t, protected=True) for t, v in enumerate(tenant_values)}
    figures = [Figure(i, frozenset(g), group=True) for i, g in enumerate(groups)]
    result = protect(atoms, figures, rules, insiders=True)
    published = [f for f in figures if f.key in result.published]
    for insider in tenants:
        for other in tenants:
            if other != insider:
                assert not recoverable(tenants, published, other, known=[insider])


def test_insiders_are_what_makes_the_difference():
    atoms = {t: Atom(v, owner=t, protected=True) for t, v in zip("ABCD", [5, 6, 7, 8], strict=True)}
    figures = [Figure("abcd", frozenset("ABCD"), group=True), Figure("abc", frozenset("ABC"), group=True),
               Figure("bcd", frozenset("BCD"), group=True)]
    outsiders = protect(atoms, figures, Rules())
    # abcd - abc = D, so abcd goes; abc and bcd reveal nobody to the public ...
    assert set(outsiders.published) == {"abc", "bcd"}
    # ... but A knows A: bcd - (abc - A) = D. With insiders, one of the two goes as well.
    assert len(protect(atoms, figures, Rules(), insiders=True).published) == 1


def test_a_lone_small_cell_takes_a_partner_with_it():
    values = {("a", 1): 2, ("b", 1): 40, ("c", 1): 7}
    result = protect(cells(values), table_figures(values), Rules())
    assert ("cell", ("a", 1)) in result.suppressed
    # The total alone would give a = total - b - c; the smallest other cell goes too.
    assert result.suppressed[("cell", ("c", 1))] == "secondary"
    assert result.published[("col", 1)] == 49


def test_landkreis_minus_one_member_is_withheld():
    atoms = {t: Atom(v, owner=t, protected=True) for t, v in enumerate([10, 12, 9, 11])}
    kreis = Figure("kreis", frozenset(range(4)), group=True)
    peers = Figure("peers", frozenset(range(3)), group=True)
    result = protect(atoms, [kreis, peers], Rules())
    assert len(result.published) == 1


def test_zero_is_published_and_not_protected():
    result = protect(cells({"x": 0, "y": 5, "z": 4}), [Figure("x", frozenset(["x"])), Figure("t", frozenset("xyz"))])
    assert result.published == {"x": 0, "t": 9}


def test_thresholds_must_be_positive():
    with pytest.raises(ValueError):
        Rules(min_cases=0)
