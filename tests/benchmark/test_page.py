"""The comparison page as the Marburg editor sees it ("Done when" of the issue)."""

from __future__ import annotations

from tests.benchmark.conftest import HUNDESTEUER, MARBURG, opt_in, run_refresh


def test_marburg_editor_sees_hundesteuer_against_hessen_landkreis_and_size_class(app, hessen, signed_in):
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
    summary = run_refresh(app)
    assert summary["participants"] == len(hessen.ids)

    client = signed_in(hessen.marburg, "editor")
    html = client.get(f"/t/{MARBURG}/vergleich/{HUNDESTEUER}").get_data(as_text=True)
    assert "Hundesteuer-Anmeldung" in html
    assert "Hessen" in html
    assert "Landkreis Marburg-Biedenkopf" in html
    assert "Städte mit 50.000 bis unter 100.000 Einwohnern" in html
    assert "Median" in html
    # The size class has 7 members: the median is shown, the quartiles are withheld and explained.
    assert "Quartile werden ab 9 teilnehmenden Kommunen gezeigt." in html
    # Withheld figures are said in words, never as a bare dot.
    assert "•" not in html and "zurückgehalten" in html
    # The shares of single methods fold away.
    assert 'id="share-metrics"' in html or "payment:" not in html


def test_the_overview_has_one_line_per_service_with_own_value_and_hessen_median(app, hessen, signed_in):
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
    run_refresh(app)
    html = signed_in(hessen.marburg, "viewer").get(f"/t/{MARBURG}/vergleich/").get_data(as_text=True)
    line = html.split(f'data-leika="{HUNDESTEUER}"')[1].split("</tr>")[0]
    own = line.split("kern-table__cell--numeric\">")[1].split("<")[0]
    assert "Hundesteuer-Anmeldung" in line and own.endswith(" %")
    # Either the median and where Marburg stands, or why the median is withheld, in words.
    assert any(band in line for band in ("oberes Viertel", "über dem Median", "entspricht dem Median",
                                         "unter dem Median", "unteres Viertel", "Median zurückgehalten: "))


def test_a_tenant_not_taking_part_is_told_why_it_sees_no_comparison(app, hessen, signed_in):
    run_refresh(app)
    html = signed_in(hessen.marburg, "viewer").get(f"/t/{MARBURG}/vergleich/").get_data(as_text=True)
    assert 'id="not-participating"' in html and "nimmt am Vergleich der Nutzung nicht teil" in html
    line = html.split(f'data-leika="{HUNDESTEUER}"')[1].split("</tr>")[0]
    assert "nicht verglichen: keine Teilnahme" in line



def test_an_own_value_on_too_few_cases_is_shown_but_said_to_be_left_out(app, hessen, signed_in, insert_rows):
    """Marburg sees its own value of a month with 2 cases; nobody else has the service. The page said "Keine
    teilnehmende Kommune dieser Gruppe hat Daten" beside Marburg's own value (a walk-through): the value is not
    compared because it rests on too few cases, and the groups lack enough cases, not data."""
    from tests.benchmark.conftest import last_month

    rare = "99102013105000"
    insert_rows(hessen.marburg, "services", [{"service_key": rare, "name": "Seltener Dienst"}])
    insert_rows(hessen.marburg, "rollup_service_daily", [
        {"service_key": rare, "day": last_month(), "started": 2, "submitted": 1, "aborted": 1}])
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
    run_refresh(app)
    html = signed_in(hessen.marburg, "editor").get(f"/t/{MARBURG}/vergleich/{rare}").get_data(as_text=True)
    assert "Beruht auf weniger als 3 Fällen und geht deshalb nicht in den Vergleich ein." in html
    assert "hat genug Fälle für diesen Dienst und Monat" in html and "hat Daten für" not in html
    hundesteuer = signed_in(hessen.marburg, "viewer").get(f"/t/{MARBURG}/vergleich/{HUNDESTEUER}").get_data(
        as_text=True)
    assert "Beruht auf weniger als" not in hundesteuer
