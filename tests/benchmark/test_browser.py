"""The Marburg editor opens "Vergleich" in a real browser (the issue's "done when")."""

from pathlib import Path

from playwright.sync_api import expect

from tests.benchmark.conftest import MARBURG, opt_in, run_refresh, staff_identity
from tests.conftest import sign_in_browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_marburg_editor_opens_the_hundesteuer_comparison(app, page, live_server, hessen):
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
    run_refresh(app)
    sign_in_browser(app, page, live_server.url, staff_identity(app, hessen.marburg, "editor"))
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)

    page.goto(f"{live_server.url}/t/{MARBURG}/vergleich/")
    page.get_by_role("link", name="Hundesteuer-Anmeldung").click()
    expect(page.locator("h1")).to_have_text("Vergleich: Hundesteuer-Anmeldung")
    headers = page.locator("table.benchmark-table").first.locator("thead th").all_inner_texts()
    assert headers[2:] == ["Hessen", "Landkreis Marburg-Biedenkopf", "Städte mit 50.000 bis unter 100.000 Einwohnern"]
    table = page.locator("table.benchmark-table").first
    expect(table.get_by_text("Median").first).to_be_visible()
    expect(table.get_by_text("zurückgehalten").first).to_be_visible()  # withheld figures are said in words ...
    assert "Quartile werden ab 9 teilnehmenden Kommunen gezeigt." in table.inner_text()  # ... and explained
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "vergleich-marburg-hundesteuer.png"), full_page=True)
    assert failed == []
