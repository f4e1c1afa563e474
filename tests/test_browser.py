"""The landing page in a real headless Chromium: styled by KERN, readable, in German."""

from pathlib import Path

from playwright.sync_api import expect

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def test_landing_page_renders_with_kern_styles(page, live_server, two_tenants):
    failed_requests = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))
    page.on("response", lambda r: failed_requests.append(r.url) if r.status >= 400 else None)
    page.goto(live_server.url + "/")
    expect(page.locator("h1")).to_have_text("eGovernment Service- und Analyse-Dashboard")
    expect(page.get_by_role("cell", name="Marburg, Universitätsstadt")).to_be_visible()
    # KERN's stylesheet really applied: its font family reaches the body.
    assert "Fira Sans" in page.evaluate("getComputedStyle(document.body).fontFamily")
    assert failed_requests == []
    # Keyboard users reach the content first.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "landing-page.png"), full_page=True)
