"""Through the proxy with TLS, as a municipality's staff would: sign in, see a dashboard, enter Superset."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.auth.test_browser_login import _at_provider_choose
from tests.conftest import MARBURG
from tests.superset.test_embedding import expected_requests


def test_staff_sign_in_see_a_dashboard_and_enter_superset_through_the_proxy(proxy, tls_browser, idp_for_marburg,
                                                                              tenants_ab):
    context = tls_browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    chart_data = []
    page.on("response", lambda r: chart_data.append(r) if "/api/v1/chart/data" in r.url else None)
    try:
        first = page.goto(proxy.portal + "/login")
        assert first.header_values("strict-transport-security") == ["max-age=31536000; includeSubDomains"]
        page.get_by_label("E-Mail-Adresse").fill("editor@marburg.de")
        page.get_by_role("button", name="Weiter").click()
        _at_provider_choose(page, "editor@marburg.de")
        # Back on the public name: the callback URL was built from the proxy's forwarded host and scheme.
        expect(page).to_have_url(f"{proxy.portal}/t/{MARBURG}/")
        session = next(c for c in context.cookies() if c["name"] == "egov_session")
        assert session["secure"] and session["httpOnly"] and session["domain"] == "portal.egov.test"

        page.goto(f"{proxy.portal}/t/{MARBURG}/dashboards/overview")
        frame = page.frame_locator("#superset-dashboard iframe")
        frame.locator(".dashboard-component-chart-holder").first.wait_for(timeout=90_000)
        for _ in range(60):
            if len(chart_data) >= expected_requests("overview"):
                break
            page.wait_for_timeout(1000)
        failed = [(r.status, r.url) for r in chart_data if not (r.url.startswith(proxy.dashboards + "/") and r.ok)]
        assert chart_data and failed == []
        assert page.locator("#superset-dashboard iframe").get_attribute("src").startswith(proxy.dashboards + "/")

        # "Eigene Auswertungen erstellen": Superset signs the editor in through the portal, no password.
        page.goto(f"{proxy.portal}/t/{MARBURG}/dashboards/")
        page.get_by_role("link", name=re.compile("Eigene Auswertungen")).click()
        expect(page).to_have_url(re.compile(re.escape(proxy.dashboards) + r"/(chart/add|explore|superset/welcome)"))
        # Asked by the page itself: the browser's resolver rules apply, Playwright's own requests have none.
        me = page.evaluate("fetch('/api/v1/me/').then(r => r.ok ? r.json() : {status: r.status})")
        assert me["result"]["email"] == "editor@marburg.de", me
        superset_session = next(c for c in context.cookies(proxy.dashboards) if c["name"] == "session")
        assert superset_session["secure"]
    finally:
        page.screenshot(path="test-artifacts/prod_proxy_last_page.png", full_page=True)
        context.close()


def test_the_proxy_hides_metrics_and_sends_hsts_for_superset(proxy):
    assert _get(proxy, proxy.portal + "/metrics").status == 404  # scraped on the internal network only
    health = _get(proxy, proxy.dashboards + "/health")
    assert health.status == 200
    # Superset (Talisman) sends its own behind TLS; the proxy adds one only where none came.
    [hsts] = health.headers.get_all("Strict-Transport-Security")
    assert hsts.startswith("max-age=") and "includeSubDomains" in hsts


def _get(proxy, url: str):
    """GET through the proxy on loopback, TLS checked against the local CA and the public name (SNI)."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(proxy.ca))
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", parts.port), timeout=30),
                                          server_hostname=parts.hostname)
    connection.request("GET", parts.path)
    response = connection.getresponse()
    response.read()
    return response
