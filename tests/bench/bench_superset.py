"""Embedded dashboards on one year of demo figures for the largest demo tenant (Frankfurt am Main, scaled so a
day holds a few thousand cases per service), with a second tenant beside it. "guest token" is the portal's
`/t/<ags>/dashboards/<key>/guest-token` endpoint (state lookup and signing; Superset is not asked). For each
ready-made dashboard, the chart-data requests its page makes were recorded once in headless Chromium and are
replayed as the guest: "cold" forces Superset past its Redis cache (every query reaches PostgreSQL through the
tenant's login role), "cached" is the same request answered from Redis. Times per request.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from pathlib import Path

import requests

from tests.bench.common import fresh_database, timed
from tests.conftest import sign_in

TITLE = "Embedded Superset dashboards"
LARGEST, OTHER = "06412000", "06534014"
SUPERSET_PORT, PORTAL_PORT = 5058, 5057


def _tenant(app, ags: str, scale: int):
    from demo.superset import seed_rollups
    from tenants.context import platform_transaction, tenant_transaction
    from tenants.registry import create_tenant

    with app.app_context():
        with platform_transaction():
            tenant_id = create_tenant(ags, status="active").id
        with tenant_transaction(tenant_id) as session:
            seed_rollups(session, tenant_id, days=365, scale=scale, seed=tenant_id)
    return tenant_id


def _viewer(app, tenant_id: int) -> tuple[str, str]:
    """A viewer of the tenant: the session identity and a signed session cookie for the browser."""
    from tenants.context import tenant_transaction
    from tenants.models import User

    with app.app_context(), tenant_transaction(tenant_id) as session:
        user = User(tenant_id=tenant_id, subject="bench", email="bench@bench.example", role="viewer")
        session.add(user)
        session.flush()
        identity = f"u:{tenant_id}:{user.id}"
    client = app.test_client()
    sign_in(client, identity)
    return identity, client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


def _record_requests(portal_url: str, cookie: str, ags: str, keys: list[str]) -> dict[str, list[dict]]:
    """The chart-data request bodies each dashboard page sends, recorded in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_FLAGS

    recorded: dict[str, list[dict]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/lib/chromium/chromium", headless=True,
                                     args=CHROMIUM_FLAGS)
        for key in keys:
            context = browser.new_context()
            context.add_cookies([{"name": "egov_session", "value": cookie, "domain": "127.0.0.1", "path": "/"}])
            page = context.new_page()
            bodies: list[dict] = []
            page.on("request", lambda r, b=bodies: b.append(r.post_data_json)
                    if "/api/v1/chart/data" in r.url and r.method == "POST" else None)
            page.goto(f"{portal_url}/t/{ags}/dashboards/{key}")
            page.frame_locator("#superset-dashboard iframe").locator(".dashboard-component-chart-holder").first \
                .wait_for(timeout=60_000)
            page.wait_for_timeout(4000)
            recorded[key] = bodies
            context.close()
        browser.close()
    return recorded


def run(settings) -> list[dict]:
    import os

    from werkzeug.serving import make_server

    from portal import create_app
    from tenants.provisioning import provision_tenant
    from tenants.settings import load_settings
    from tenants.superset import server

    # A database of its own: the other benchmarks drop and recreate theirs.
    settings = load_settings({**os.environ, "EGOV_DATABASE_NAME": settings.database_name + "_ss"})
    owner, app_engine = fresh_database(settings)
    settings = dataclasses.replace(settings, portal_url=f"http://127.0.0.1:{PORTAL_PORT}",
                                   superset_url=f"http://127.0.0.1:{SUPERSET_PORT}",
                                   superset_redis_url=settings.redis_url.rsplit("/", 1)[0] + "/9",
                                   superset_limits_url=settings.redis_url.rsplit("/", 1)[0] + "/10")
    log = Path(settings.var_dir) / "log" / "superset-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        server.install(log=out)
        server.initialise(settings, log=out)
    superset = server.start(settings, SUPERSET_PORT, log, portal_url=settings.portal_url)
    # The token endpoint's rate limit (60/min) would answer most of the 200 timed calls with 429.
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False}, settings=settings)
    portal = make_server("127.0.0.1", PORTAL_PORT, app, threaded=True)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    rows = []
    try:
        largest = _tenant(app, LARGEST, scale=200)
        other = _tenant(app, OTHER, scale=1)
        with app.app_context():
            for tenant_id in (largest, other):
                provision_tenant(tenant_id)
            from tenants.superset import guest, templates
            from tenants.superset.provision import load_state

            keys = list(templates.dashboards())
            state = load_state(largest)
        identity, cookie = _viewer(app, largest)
        client = app.test_client()
        sign_in(client, identity)
        def mint_one():
            assert client.get(f"/t/{LARGEST}/dashboards/overview/guest-token").status_code == 200

        mint = timed(mint_one, runs=200, warmup=5)
        rows.append({"what": "guest token (portal endpoint)", "requests": 1, "cold median ms": mint["median_ms"],
                     "cold p95 ms": mint["p95_ms"], "cached median ms": "", "cached p95 ms": ""})
        recorded = _record_requests(settings.portal_url, cookie, LARGEST, keys)
        for key in keys:
            token = guest.mint(settings, largest, LARGEST, state["dashboards"][key]["embedded_uuid"], "bench")
            rows.append(_replay(settings.superset_url, token, key, state["dashboards"][key]["title"],
                                recorded[key]))
    finally:
        portal.shutdown()
        server.stop(superset)
        owner.dispose()
        app_engine.dispose()
    return rows


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return (round(statistics.median(samples), 1),
            round(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], 1))


def _replay(superset_url: str, token: str, key: str, title: str, bodies: list[dict]) -> dict:
    """Median and p95 over every chart-data request of the dashboard, cold (forced) and from the cache."""
    http = requests.Session()
    http.headers["X-GuestToken"] = token

    def rounds(force: bool, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            for body in bodies:
                started = time.perf_counter()
                http.post(superset_url + "/api/v1/chart/data", json={**body, "force": force},
                          timeout=120).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    rounds(False, 1)  # fill the cache
    cold, cached = _stats(rounds(True, 5)), _stats(rounds(False, 5))
    return {"what": f"{title} ({key}), per chart-data request", "requests": len(bodies),
            "cold median ms": cold[0], "cold p95 ms": cold[1], "cached median ms": cached[0],
            "cached p95 ms": cached[1]}
