"""The dashboards page embeds the tenant's Superset dashboard in real Chromium, with only the tenant's figures."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tests.conftest import sign_in
from tests.superset.conftest import ARTIFACTS, SUPERSET_PORT, add_user


def session_cookie(app, identity: str) -> dict:
    """A registered portal session for ``identity``; the sign-in flow itself is tested in tests/auth/."""
    client = app.test_client()
    sign_in(client, identity)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return {"name": cookie.key, "value": cookie.value, "domain": "127.0.0.1", "path": "/"}


def started_sum(owner_engine, tenant_id: int) -> int:
    with owner_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        return conn.execute(text("SELECT sum(started) FROM analytics.rollup_service_daily")).scalar_one()


def expected_requests(key: str) -> int:
    """One chart-data request per chart and one for the options of each select filter."""
    from tenants.superset import templates

    template = templates.dashboards()[key]
    return len(template["charts"]) + sum(f["type"] == "filter_select" for f in template["filters"])


def open_dashboard(browser, app, live_url: str, tenant, identity: str, key: str,
                   answered_by: dict[str, str | None] | None = None, sent: list[str] | None = None) -> list[dict]:
    """Open a dashboard page in Chromium; returns the chart data it loaded; screenshot in test-artifacts/.

    :param answered_by: filled with the path of each chart-data and metadata request (the dashboard, its charts
        and datasets, the guest's roles; a native filter's request with its filter's id) → its ``X-Egov-Answer``
        header ("stored" or None).
    :param sent: filled with the body of each chart-data request, as sent.
    """
    context = browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 1400})
    context.add_cookies([session_cookie(app, identity)])
    page = context.new_page()
    chart_data: list[dict] = []

    def record(response):
        url = urlsplit(response.url)
        if answered_by is not None and (url.path.startswith(("/api/v1/dashboard/", "/api/v1/me/roles/"))
                                        or url.path == "/api/v1/chart/data"):
            name = f"{response.request.method} {url.path}?{url.query}"
            if url.path == "/api/v1/chart/data" and not url.query:  # a native filter's question: one per filter
                form_data = (response.request.post_data_json or {}).get("form_data") or {}
                name += " " + str(form_data.get("native_filter_id"))
            answered_by[name] = response.headers.get("x-egov-answer")
        if sent is not None and url.path == "/api/v1/chart/data" and response.request.method == "POST":
            sent.append(response.request.post_data or "")
        if "/api/v1/chart/data" in response.url and response.request.method == "POST":
            failed = {"status": response.status, "body": response.text()[:300]}
            chart_data.append(response.json() if response.ok else failed)

    page.on("response", record)
    try:
        page.goto(f"{live_url}/t/{tenant.ags}/dashboards/{key}")
        frame = page.frame_locator("#superset-dashboard iframe")
        frame.locator(".dashboard-component-chart-holder").first.wait_for(timeout=60_000)
        for _ in range(60):
            if len(chart_data) >= expected_requests(key):
                break
            page.wait_for_timeout(1000)
        page.wait_for_timeout(2000)  # let the charts finish their animation before the screenshot
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"embedded_{key}_tenant_{tenant.ags}.png"), full_page=True)
        errors = frame.locator(".ant-alert-error, [data-test='error-tooltip'], .error-alert").count()
    finally:
        context.close()
    assert errors == 0, f"{errors} chart(s) of {key} show an error"
    assert len(chart_data) == expected_requests(key)
    assert all("result" in body for body in chart_data), chart_data
    return chart_data


def test_embedded_overview_renders_only_the_tenants_figures(ss_app, ss_live_server, tenants_ab, browser,
                                                          owner_engine):
    a, b = tenants_ab.a, tenants_ab.b
    chart_data = open_dashboard(browser, ss_app, ss_live_server.url, a, add_user(ss_app, a, "viewer"), "overview")
    rows = [row for body in chart_data for result in body["result"] for row in result["data"]]
    started = [row["Begonnen"] for row in rows if set(row) == {"Begonnen"}]
    expected_a, expected_b = started_sum(owner_engine, a.id), started_sum(owner_engine, b.id)
    assert expected_b > 50 * expected_a  # the tenants' figures cannot be confused
    assert started == [expected_a]
    per_service = [row["Begonnen"] for row in rows if "service" in row and "Begonnen" in row]
    assert len(per_service) == 4 and sum(per_service) == expected_a


@pytest.mark.parametrize("key", ["service_detail", "payment", "authentication", "channels", "feedback",
                                 "web_analytics"])
def test_every_ready_made_dashboard_renders(ss_app, ss_live_server, tenants_ab, browser, key):
    from tenants.superset import templates

    assert key in templates.dashboards()
    identity = add_user(ss_app, tenants_ab.a, "viewer", subject=f"viewer-{key}")
    chart_data = open_dashboard(browser, ss_app, ss_live_server.url, tenants_ab.a, identity, key)
    assert any(result["data"] for body in chart_data for result in body["result"])


def test_dashboards_page_says_so_when_superset_is_down(ss_app, tenants_ab, superset_settings, database):
    from portal import create_app

    down = dataclasses.replace(superset_settings, superset_url="http://127.0.0.1:5059")
    app = create_app({"TESTING": True}, settings=down)
    client = app.test_client()
    sign_in(client, add_user(ss_app, tenants_ab.a, "viewer", subject="viewer-down"))
    response = client.get(f"/t/{tenants_ab.a.ags}/dashboards/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "vorübergehend nicht erreichbar" in html
    assert "superset-dashboard" not in html
    health = client.get("/healthz").get_json()
    assert health["checks"]["superset"]["ok"] is False and health["impaired"] == ["superset"]


def test_guest_tokens_only_for_own_dashboards(ss_app, tenants_ab):
    client = ss_app.test_client()
    a, b = tenants_ab.a, tenants_ab.b
    token_url = f"/t/{a.ags}/dashboards/overview/guest-token"
    # The page's script asks for JSON and gets a plain 401 (not the sign-in page) once the session is gone.
    assert client.get(token_url, headers={"Accept": "application/json"}).status_code == 401
    sign_in(client, add_user(ss_app, a, "viewer", subject="viewer-tokens"))
    response = client.get(f"/t/{a.ags}/dashboards/overview/guest-token")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert client.get(f"/t/{a.ags}/dashboards/nonexistent/guest-token").status_code == 404
    assert client.get(f"/t/{b.ags}/dashboards/overview/guest-token").status_code == 404
    # The page frames Superset and nothing else.
    page = client.get(f"/t/{a.ags}/dashboards/overview")
    assert f"frame-src 'self' http://127.0.0.1:{SUPERSET_PORT}" in page.headers["Content-Security-Policy"]
    assert "frame-src 'self';" in client.get("/").headers["Content-Security-Policy"]
