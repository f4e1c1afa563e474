"""A tenant admin publishes in a real browser; the public finds the data without signing in."""

from pathlib import Path

from playwright.sync_api import expect

from tenants.context import tenant_transaction
from tenants.models import User
from tests.conftest import sign_in_browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _sign_in_browser(app, page, live_server, tenant):
    with app.app_context(), tenant_transaction(tenant.id) as session:
        user = User(tenant_id=tenant.id, subject="browser-admin", email="admin@marburg.de", role="admin")
        session.add(user)
        session.flush()
        identity = f"u:{tenant.id}:{user.id}"
    sign_in_browser(app, page, live_server.url, identity)


def test_admin_previews_publishes_and_withdraws(app, page, live_server, marburg_data):
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    _sign_in_browser(app, page, live_server, marburg_data.a)
    page.goto(f"{live_server.url}/t/06534014/opendata/")
    expect(page.locator("h1")).to_have_text("Offene Daten veröffentlichen")

    page.get_by_role("link", name="Vorschau").first.click()
    assert "Genau diese Zeilen werden öffentlich" in page.content()
    expect(page.get_by_role("cell", name="Abgeschickt, Abgebrochen").first).to_be_visible()  # Gewerbe: 2 submissions
    page.go_back()

    page.get_by_label("Nutzung der Online-Dienste").check()
    page.get_by_label("Creative Commons Namensnennung 4.0 International").check()
    page.get_by_label("Kontakt-E-Mail für Fragen zu den Daten").fill("opendata@marburg.de")
    page.get_by_role("button", name="Veröffentlichen").click()
    assert "Die ausgewählten Datensätze sind jetzt öffentlich." in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "opendata-admin.png"), full_page=True)

    public = page.context.browser.new_context(locale="de-DE").new_page()
    public.goto(f"{live_server.url}/opendata/06534014/")
    expect(public.get_by_role("link", name="Nutzung der Online-Dienste", exact=True)).to_be_visible()
    assert "Creative Commons Namensnennung 4.0 International" in public.content()
    public.screenshot(path=str(ARTIFACTS / "opendata-public.png"), full_page=True)
    download = public.request.get(f"{live_server.url}/opendata/06534014/usage.csv")
    assert download.status == 200 and download.text().startswith("month,service_key")

    page.get_by_role("button", name="„Nutzung der Online-Dienste“ zurückziehen").click()
    assert "zurückgezogen" in page.content()
    assert public.request.get(f"{live_server.url}/opendata/06534014/usage.csv").status == 410
    public.context.close()
    assert failed == []
