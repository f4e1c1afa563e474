"""Edges of the suppression rules of tenants/confidentiality.py, worked out by hand.

From docs/confidentiality.md and the module's documented interface: a figure of 1 or 2 cases is
withheld, 3 is published and so is 0 ("nobody" discloses nobody); a group figure needs 3
contributors with a non-zero value; negative counts are refused; secondary suppressions are
chosen cheapest first (the smallest non-zero value: withholding a zero protects nothing), and a
figure's own ``cost`` replaces its value in that choice. Added for surviving mutants of
``make mutation`` (docs/mutation.md).
"""

from __future__ import annotations

import pytest

from tenants.confidentiality import Atom, Figure, Rules, cells, protect


def _single_cells(**values: int):
    return protect(cells(values), [Figure(k, frozenset([k])) for k in values])


def test_three_cases_are_published_two_are_not_zero_is():
    result = _single_cells(three=3, two=2, one=1, zero=0, many=40)
    assert result.published == {"three": 3, "zero": 0, "many": 40}
    assert result.suppressed == {"two": "cases", "one": "cases"}


def test_a_group_figure_needs_three_contributors_with_a_value():
    atoms = {"a": Atom(10, owner="A"), "b": Atom(10, owner="B"), "c": Atom(10, owner="C"), "d": Atom(0, owner="D")}
    three = protect(atoms, [Figure("g", frozenset("abc"), group=True)])
    assert three.published == {"g": 30}
    two_and_a_zero = protect(atoms, [Figure("g", frozenset("abd"), group=True)])
    assert two_and_a_zero.suppressed == {"g": "contributors"}


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        protect({"a": Atom(-1)}, [Figure("a", frozenset("a"))])


def _one_small_cell_and_a_total(**costs):
    """Cells small=2, zero=0, mid=7 and their total 9: the total minus the others gives the small cell,
    so one of total, zero and mid must be withheld besides it."""
    atoms = cells({"small": 2, "zero": 0, "mid": 7})
    figures = [Figure(k, frozenset([k]), cost=costs.get(k)) for k in ("small", "zero", "mid")]
    figures.append(Figure("total", frozenset(["small", "zero", "mid"]), cost=costs.get("total")))
    return protect(atoms, figures, Rules())


def test_the_cheapest_non_zero_figure_is_withheld_second():
    result = _one_small_cell_and_a_total()
    assert result.suppressed == {"small": "cases", "mid": "secondary"}
    assert result.published == {"zero": 0, "total": 9}


def test_a_figures_own_cost_replaces_its_value_in_that_choice():
    """Cells small=2, five=5, seven=7 and their total: by value the 5 is withheld, by cost the 7."""
    def run(**costs):
        atoms = cells({"small": 2, "five": 5, "seven": 7})
        figures = [Figure(k, frozenset([k]), cost=costs.get(k)) for k in ("small", "five", "seven")]
        figures.append(Figure("total", frozenset(["small", "five", "seven"])))
        return protect(atoms, figures, Rules())

    assert run().suppressed == {"small": "cases", "five": "secondary"}
    assert run(seven=1).suppressed == {"small": "cases", "seven": "secondary"}
    assert run(seven=1).published == {"five": 5, "total": 14}


def test_a_total_minus_the_published_cells_leaves_nothing_small():
    """Two services with 1 case each, two with 10, and the total 22: the two small cells are withheld, but
    total - 10 - 10 would give their sum 2, below 3: one of the tens is withheld too (hidden remainder)."""
    atoms = cells({"a": 1, "b": 1, "c": 10, "d": 10})
    figures = [Figure(k, frozenset([k])) for k in "abcd"] + [Figure("total", frozenset("abcd"))]
    result = protect(atoms, figures, Rules())
    assert result.suppressed == {"a": "cases", "b": "cases", "c": "secondary"}
    assert result.published == {"d": 10, "total": 22}
