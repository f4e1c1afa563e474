"""The contributor rules of the comparison, in both kinds of figure it publishes, at their edges.

From docs/benchmark.md ("Confidentiality", rules 1, 2, 3, 5 and 6), with the default thresholds
(3 cases, 3 contributors, groups of 5):

* a tenant's value enters only when it rests on at least 3 cases;
* window quartiles: a group shows a median only with at least 5 such contributors, the median being
  the mean of the 3 middle values; lower and upper quartile only from 9 contributors on;
* the step where most abandon (a label, the "mode"): shown with at least 5 contributors when at
  least 3 of them share it and no other step is as frequent;
* contributor counts are published rounded down to multiples of 5.

The expected values are worked out by hand from these rules, not by the code under test.
"""

from __future__ import annotations

import pytest

from tenants.benchmark.aggregate import (
    REASON_GROUP,
    REASON_MODE,
    REASON_QUARTILES,
    BenchmarkRules,
    Value,
    mode_figures,
    quartile_figures,
)

RULES = BenchmarkRules()  # 3 cases, 3 contributors, groups of 5


def _group(values: dict) -> dict:
    return {"hessen": frozenset(values)}


# -- window quartiles ------------------------------------------------------------------------------

def test_four_contributors_publish_no_median_five_do():
    four = {t: Value(float(t), 10) for t in range(1, 5)}
    figure = quartile_figures(four, _group(four), RULES)["hessen"]
    assert (figure.median, figure.suppressed["median"]) == (None, REASON_GROUP)
    five = {t: Value(float(t), 10) for t in range(1, 6)}
    figure = quartile_figures(five, _group(five), RULES)["hessen"]
    assert figure.median == pytest.approx((2 + 3 + 4) / 3)  # the mean of the three middle values
    assert (figure.q1, figure.q3, figure.suppressed) == (None, None, {"q1": REASON_QUARTILES,
                                                                     "q3": REASON_QUARTILES})
    assert figure.contributors_band == 5


def test_a_value_on_fewer_than_three_cases_does_not_count_as_a_contributor():
    values = {t: Value(float(t), 10) for t in range(1, 5)} | {5: Value(5.0, 2)}
    figure = quartile_figures(values, _group(values), RULES)["hessen"]
    assert figure.median is None and figure.suppressed["median"] == REASON_GROUP
    values[5] = Value(5.0, 3)  # exactly three cases count
    assert quartile_figures(values, _group(values), RULES)["hessen"].median == pytest.approx(3.0)


def test_quartiles_need_nine_contributors():
    eight = {t: Value(float(t), 10) for t in range(1, 9)}
    figure = quartile_figures(eight, _group(eight), RULES)["hessen"]
    assert figure.median is not None and figure.q1 is None and figure.q3 is None
    nine = {t: Value(float(t), 10) for t in range(1, 10)}
    figure = quartile_figures(nine, _group(nine), RULES)["hessen"]
    assert (figure.q1, figure.median, figure.q3) == (pytest.approx(2.0), pytest.approx(5.0), pytest.approx(8.0))
    assert figure.contributors_band == 5


# -- the step where most abandon -----------------------------------------------------------------

def _steps(*labels: str, base: int = 10) -> dict:
    return {t: (label, base) for t, label in enumerate(labels, start=1)}


def _mode(labels: dict) -> tuple:
    return mode_figures(labels, _group(labels), RULES)["hessen"]


def test_the_step_shared_by_three_of_five_is_shown():
    assert _mode(_steps("Zahlung", "Zahlung", "Zahlung", "Upload", "Identifizierung")) == ("Zahlung", 5, "")


def test_four_contributors_show_no_step_even_when_all_agree():
    assert _mode(_steps("Zahlung", "Zahlung", "Zahlung", "Zahlung")) == (None, 0, REASON_GROUP)


def test_a_step_shared_by_only_two_is_not_shown():
    assert _mode(_steps("Zahlung", "Zahlung", "Upload", "Upload", "Identifizierung")) == (None, 5, REASON_MODE)
    assert _mode(_steps("Zahlung", "Zahlung", "Upload", "Antrag", "Identifizierung")) == (None, 5, REASON_MODE)


def test_a_tie_shows_no_step():
    assert _mode(_steps("Zahlung", "Zahlung", "Zahlung", "Upload", "Upload", "Upload")) == (None, 5, REASON_MODE)


def test_a_worst_step_on_fewer_than_three_abandonments_does_not_count():
    labels = _steps("Zahlung", "Zahlung", "Zahlung", "Upload", "Identifizierung")
    labels[1] = ("Zahlung", 2)  # one of the three rests on two abandonments: four contributors left
    assert _mode(labels) == (None, 0, REASON_GROUP)
    labels = _steps("Zahlung", "Zahlung", "Zahlung", "Upload", "Identifizierung", "Antrag")
    labels[1] = ("Zahlung", 2)  # five contributors left, only two of them share a step
    assert _mode(labels) == (None, 5, REASON_MODE)
    labels[1] = ("Zahlung", 3)
    assert _mode(labels) == ("Zahlung", 5, "")


def test_contributor_counts_are_rounded_down_to_fives():
    assert _mode(_steps(*["Zahlung"] * 9))[1] == 5
    assert _mode(_steps(*["Zahlung"] * 10))[1] == 10
    nine = {t: Value(float(t), 10) for t in range(1, 10)}
    assert quartile_figures(nine, _group(nine), RULES)["hessen"].contributors_band == 5
