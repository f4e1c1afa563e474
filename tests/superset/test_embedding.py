"""The dashboards page embeds the tenant's Superset dashboard in real Chromium, with only the tenant's figures."""

from __future__ import annotations

import dataclasses
import json

from sqlalchemy import text

from tests.superset.conftest import ARTIFACTS, add_user


def session_cookie(app, identity: str) -> dict:
    """A signed portal session for ``identity`` (stands in for sign-in until SSO lands)."""
    value = app.session_interface.get_signing_serializer(app).dumps({"_user_id": identity, "_fresh": True})
    return {"name": app.config["SESSION_COOKIE_NAME"], "value": value, "domain": "127.0.0.1", "path": "/"}


def started_sum(owner_engine, tenant_id: int) -> int:
    with owner_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        return conn.execute(text("SELECT sum(started) FROM analytics.rollup_service_daily")).scalar_one()


def test_embedded_overview_renders_only_the_tenants_figures(ss_app, ss_live_server, tenants_ab, browser,
                                                          owner_engine):
    a, b = tenants_ab.a, tenants_ab.b
    context = browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 1400})
    context.add_cookies([{**session_cookie(ss_app, add_user(ss_app, a, "viewer")), "domain": "127.0.0.1"}])
    page = context.new_page()
    chart_data = []

    def record(response):
        if "/api/v1/chart/data" in response.url and response.request.method == "POST":
            failed = {"status": response.status, "body": response.text()[:300]}
            chart_data.append(response.json() if response.ok else failed)

    page.on("response", record)
    try:
        page.goto(f"{ss_live_server.url}/t/{a.ags}/dashboards/overview")
        assert page.get_by_role("heading", name="Übersicht").is_visible()
        frame = page.frame_locator("#superset-dashboard iframe")
        frame.locator(".dashboard-component-chart-holder").first.wait_for(timeout=60_000)
        # Six charts and the options of the service filter.
        frame.locator(".big_number_total, .superset-legacy-chart-big-number, .header-line").first.wait_for(
            timeout=60_000)
        deadline = 60
        while len(chart_data) < 6 and deadline:
            page.wait_for_timeout(1000)
            deadline -= 1
        page.wait_for_timeout(2000)  # let the charts finish their animation before the screenshot
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "embedded_overview_tenant_a.png"), full_page=True)
    finally:
        context.close()

    assert all("result" in body for body in chart_data), chart_data
    rows = [row for body in chart_data for result in body["result"] for row in result["data"]]
    started = [row["Begonnen"] for row in rows if set(row) == {"Begonnen"}]
    expected_a, expected_b = started_sum(owner_engine, a.id), started_sum(owner_engine, b.id)
    assert expected_b > 50 * expected_a  # the tenants' figures cannot be confused
    assert started == [expected_a]
    services = {row["service"] for row in rows if "service" in row}
    assert services and all(row.get("Begonnen", 0) <= expected_a for row in rows if "service" in row)
    assert "tenant_id" not in json.dumps(rows) or all(row.get("tenant_id") in (None, a.id) for row in rows)


def test_dashboards_page_says_so_when_superset_is_down(ss_app, tenants_ab, superset_settings, database):
    from portal import create_app

    down = dataclasses.replace(superset_settings, superset_url="http://127.0.0.1:5059")
    app = create_app({"TESTING": True}, settings=down)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = add_user(ss_app, tenants_ab.a, "viewer", subject="viewer-down")
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
    assert client.get(f"/t/{a.ags}/dashboards/overview/guest-token").status_code == 401
    with client.session_transaction() as session:
        session["_user_id"] = add_user(ss_app, a, "viewer", subject="viewer-tokens")
    response = client.get(f"/t/{a.ags}/dashboards/overview/guest-token")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert client.get(f"/t/{a.ags}/dashboards/nonexistent/guest-token").status_code == 404
    assert client.get(f"/t/{b.ags}/dashboards/overview/guest-token").status_code == 404
    # The page frames Superset and nothing else.
    page = client.get(f"/t/{a.ags}/dashboards/overview")
    assert "frame-src 'self' http://127.0.0.1:8098" in page.headers["Content-Security-Policy"]
    assert "frame-src 'self';" in client.get("/").headers["Content-Security-Policy"]
