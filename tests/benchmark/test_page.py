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
    assert "•" in html

