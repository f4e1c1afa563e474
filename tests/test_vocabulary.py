"""German labels of the canonical codes (tenants/vocabulary.py) and the dashboard templates' formats."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tenants import canonical, vocabulary
from tenants.benchmark.groups import Member, groups_of
from tenants.benchmark.metrics import FAMILIES
from tenants.superset import templates

#: A municipality of a Landkreis: every kind of comparison group but the own peer group (its key needs the app).
MEMBER = Member(1, "06534014", "gemeinde", "06534", "Marburg-Biedenkopf", 77_000)


@pytest.mark.parametrize(("name", "codes"), [
    ("payment_method", canonical.PAYMENT_METHODS), ("payment_provider", canonical.PAYMENT_PROVIDERS),
    ("auth_method", canonical.AUTH_METHODS), ("trust_level", canonical.TRUST_LEVELS),
    ("channel", canonical.CHANNELS), ("benchmark_family", FAMILIES),
    ("group_kind", ["own", "peer", *{kind for kind, _, _ in groups_of(MEMBER, False)}]),
])
def test_every_canonical_code_has_a_german_label(name, codes):
    labels = vocabulary.VOCABULARIES[name]
    assert set(codes) <= set(labels)
    # Only brands written in lower case keep their code as the label.
    assert [code for code in codes if labels[code] == code] in ([], ["giropay", "paydirekt"]), labels
    assert vocabulary.label(name, "") == vocabulary.label(name, None) == "unbekannt"


def test_the_datasets_show_labels_for_every_coded_column():
    """Each dataset column that holds a code is joined to its vocabulary; the code stays as *_code."""
    for name, spec in templates.datasets().items():
        for column in vocabulary.VOCABULARIES:
            if re.search(rf"\br\.{column}\b", spec["sql"]):
                assert f"AS {column}," in spec["sql"] and f"r.{column} AS {column}_code" in spec["sql"], name
                assert "{vocabulary:" not in spec["sql"]


def test_the_label_join_runs_and_labels_every_stored_code(owner_engine):
    """The rendered VALUES list is valid SQL and maps codes, the empty string and unknown codes."""
    codes = "(VALUES ('credit_card'), (''), ('gibt_es_nicht')) c (code)"
    labels = f"{vocabulary.values_sql('payment_method')} v (code, label)"
    sql = f"SELECT c.code, COALESCE(v.label, c.code) FROM {codes} LEFT JOIN {labels} ON v.code = c.code ORDER BY 1"  # noqa: S608 - constants
    with owner_engine.connect() as conn:
        assert conn.execute(text(sql)).all() == [("", "unbekannt"), ("credit_card", "Kreditkarte"),
                                                 ("gibt_es_nicht", "gibt_es_nicht")]


def test_no_template_uses_english_short_numbers():
    """SMART_NUMBER ignores Superset's German D3_FORMAT (16.2k); every figure names a German-capable format."""
    for key, template in templates.dashboards().items():
        for chart in template["charts"]:
            params = chart["params"]
            assert "SMART_NUMBER" not in str(params), (key, chart["key"])
            if chart["viz_type"] in ("big_number_total", "echarts_timeseries_line", "echarts_timeseries_bar"):
                assert params.get("y_axis_format"), (key, chart["key"])
            if chart["viz_type"] in ("pie", "funnel"):
                assert params.get("number_format"), (key, chart["key"])
            if chart["viz_type"] == "table":
                labels = [m["label"] for m in params.get("metrics", [])]
                assert all(label in params.get("column_config", {}) for label in labels), (key, chart["key"])


def test_time_axes_and_tooltips_name_the_period_in_the_language_of_the_page():
    """Superset's "smart_date" labels a week by its weekday ("Mo 23") and a month's tooltip without its year;
    weekly charts show the locale's date (23.11.2026 / 11/23/2026), monthly tooltips month and year."""
    grains = set()
    for key, template in templates.dashboards().items():
        for chart in template["charts"]:
            params = chart["params"]
            grain = params.get("time_grain_sqla")
            grains.add(grain)
            if grain == "P1M":
                assert params.get("tooltipTimeFormat") == "%B %Y", (key, chart["key"])
            elif grain:
                assert params.get("x_axis_time_format") == params.get("tooltipTimeFormat") == "%x", (key, chart["key"])
    assert {"P1M", "P1W"} <= grains


def test_the_portal_names_the_comparison_areas_as_the_dashboards_do(app):
    """The comparison pages (gettext) and the Superset dataset (tenants/vocabulary.py) use the same German words."""
    from portal.views.benchmark import family_label

    with app.test_request_context("/?lang=de"):
        assert {f: family_label(f) for f in FAMILIES} == {f: vocabulary.BENCHMARK_FAMILIES[f] for f in FAMILIES}
