"""Embedded dashboards on one year of demo figures for the largest demo tenant (Frankfurt am Main, scaled so a
day holds a few thousand cases per service), with two more tenants beside it; Superset with one gunicorn worker per
core. Chromium opens each dashboard page once and then five times more with a warm browser cache (see VISITS); the
chart-data requests the page made are then replayed as the guest: "cold" forces Superset past its Redis cache
(every query reaches PostgreSQL through the tenant's login role), "cached" is the same request answered from Redis
(and, with the stored answers for guests, from their copy); "PostgreSQL alone" is the SQL Superset generated for
those requests run directly (application role, the tenant's row-level security), so "cold" minus it is Superset's
own share of a cold chart.
Concurrent viewers are threads, each asking for the dashboard's charts one after another (a browser asks up to six
at once, so a page is faster than the "whole dashboard" column): back to back (a load generator, the worst case), and
as readers who open the dashboard again after a pause (an office with the dashboard open); the readers' first request
of a view is shown apart from the others, next to what a pause costs this machine without Superset (a stdlib HTTP
server asked after the same pause). "guest token" is the portal's
`/t/<ags>/dashboards/<key>/guest-token` endpoint (state lookup and signing; Superset is not asked).
"""

from __future__ import annotations

import dataclasses
import os
import random
import statistics
import threading
import time
from pathlib import Path

import requests

from tests.bench.common import fresh_database, timed
from tests.conftest import sign_in

TITLE = "Embedded Superset dashboards"
LARGEST, OTHER, SMALL = "06412000", "06534014", "06531005"
# EGOV_BENCH_SUPERSET_PORT / _PORTAL_PORT: two checkouts benchmark side by side.
SUPERSET_PORT = int(os.environ.get("EGOV_BENCH_SUPERSET_PORT", "5058"))
PORTAL_PORT = int(os.environ.get("EGOV_BENCH_PORTAL_PORT", "5057"))
VIEWER_COUNTS = (1, 10, 20)
#: The dashboard the concurrent viewers open (the first one the portal shows).
CONCURRENT_KEY = "overview"
VIEWERS = "Concurrent viewers of the largest tenant's Übersicht (7 chart-data requests one after another)"
#: Viewers who read: each opens the Übersicht, reads for a while (exponentially distributed, this mean), opens it
#: again, for READING_SECONDS; 20 of them are a town hall's office with the dashboard open, not a load generator.
READING_MEAN_SECONDS = 10.0
READING_SECONDS = 45.0
VIEWERS_READING = (f"Concurrent viewers who read: each opens the Übersicht again after {READING_MEAN_SECONDS:.0f} s "
                   f"on average (exponentially distributed), for {READING_SECONDS:.0f} s; cached")
VIEWERS_OWN_PATH = ("The same, cached, on Superset's own path (stored answers for guests off: "
                    "EGOV_SUPERSET_STORED_ANSWERS=0)")
BROWSER = "One viewer in Chromium, from navigation to the first and to the last chart's data"
PER_DASHBOARD = "Per dashboard, one viewer, per chart-data request"
PROVISIONING = "Provisioning a tenant's Superset objects (database role, connection, 9 datasets, roles, 8 dashboards)"
#: Each dashboard's visits: (what, how many). One first visit; then the median of five with a warm browser cache
#: (one visit is a single sample and varied by ±400 ms between runs). Chromium keeps a script's compiled code from
#: its second run on (V8's code cache), so only the first dashboard's first warm visit compiles again.
VISITS = (("first visit", 1), ("again, warm browser cache, median of 5", 5))
IDLE = (f"This machine after a pause, without Superset: a request to Python's own http.server, "
        f"{READING_MEAN_SECONDS:.0f} s after the last one and right after")


def _tenant(app, ags: str, scale: int, days: int = 365):
    from demo.superset import seed_rollups
    from tenants.context import platform_transaction, tenant_transaction
    from tenants.registry import create_tenant

    with app.app_context():
        with platform_transaction():
            tenant_id = create_tenant(ags, status="active").id
        with tenant_transaction(tenant_id) as session:
            seed_rollups(session, tenant_id, days=days, scale=scale, seed=tenant_id)
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


def _browser_visits(portal_url: str, cookie: str, ags: str, keys: list[str]) -> tuple[dict, list[dict]]:
    """Each dashboard page opened in one headless Chromium profile (see VISITS): the chart-data request bodies the
    page sends, and the times from navigation to the first and to the last chart-data answer (the chart is drawn
    right after its answer)."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_FLAGS

    recorded: dict[str, list[dict]] = {}
    rows = []
    superset_static = f"127.0.0.1:{SUPERSET_PORT}/static/"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/lib/chromium/chromium", headless=True,
                                     args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_cookies([{"name": "egov_session", "value": cookie, "domain": "127.0.0.1", "path": "/"}])
        page = context.new_page()
        for key in keys:
            for visit, times in VISITS:
                samples = [_visit(page, portal_url, ags, key, superset_static, recorded) for _ in range(times)]
                firsts = [s["first"] for s in samples if s["first"] is not None]
                lasts = [s["last"] for s in samples if s["last"] is not None]
                rows.append({"what": f"Chromium, {key}, {visit}",
                             "first chart ms": round(statistics.median(firsts)) if firsts else "",
                             "last chart ms": round(statistics.median(lasts)) if lasts else "",
                             "slowest first / last chart ms": f"{round(max(firsts))} / {round(max(lasts))}"
                             if times > 1 and firsts else "",
                             "charts": " / ".join(sorted({s["charts"] for s in samples})),
                             "Superset static kB over the wire": round(max(s["kb"] for s in samples))})
        browser.close()
    return recorded, rows


def _visit(page, portal_url: str, ags: str, key: str, superset_static: str, recorded: dict) -> dict:
    """One visit of a dashboard page: ms from navigation to the first and the last chart-data answer, the
    charts answered, kB of Superset's static files over the wire; the request bodies go to ``recorded``."""
    from tests.superset.test_embedding import expected_requests

    bodies: list[dict] = []
    answered: list[float] = []
    downloaded: list[int] = []

    def on_request(r):
        if "/api/v1/chart/data" in r.url and r.method == "POST":
            bodies.append(r.post_data_json)

    def on_response(r):
        if "/api/v1/chart/data" in r.url and r.request.method == "POST":
            answered.append(time.perf_counter())

    def on_finished(r):
        if superset_static in r.url:  # from the browser's cache: no body over the wire (-1 or 0)
            downloaded.append(max(0, r.sizes()["responseBodySize"]))

    handlers = {"request": on_request, "response": on_response, "requestfinished": on_finished}
    for event, handler in handlers.items():
        page.on(event, handler)
    started = time.perf_counter()
    page.goto(f"{portal_url}/t/{ags}/dashboards/{key}")
    wanted = expected_requests(key)
    deadline = time.perf_counter() + 60
    while len(answered) < wanted and time.perf_counter() < deadline:
        page.wait_for_timeout(50)
    page.wait_for_timeout(500)
    for event, handler in handlers.items():
        page.remove_listener(event, handler)
    recorded[key] = bodies[:wanted]
    page.goto("about:blank")
    return {"first": (answered[0] - started) * 1000 if answered else None,
            "last": (answered[-1] - started) * 1000 if answered else None,
            "charts": f"{len(answered)} of {wanted}", "kb": sum(downloaded) / 1024}


def run(settings, part: str = "all") -> dict[str, list[dict]]:
    """Every table; ``part="concurrency"``: only the concurrent viewers (one tenant, the overview, stored
    answers on and off), for ``python -m tests.bench.bench_superset`` while working on them."""
    from werkzeug.serving import make_server

    from portal import create_app
    from tenants.provisioning import provision_tenant
    from tenants.settings import load_settings
    from tenants.superset import server

    everything = part == "all"
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
    superset = _start_superset(settings, log, stored_answers=True)
    # The token endpoint's rate limit (60/min) would answer most of the 200 timed calls with 429.
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False}, settings=settings)
    portal = make_server("127.0.0.1", PORTAL_PORT, app, threaded=True)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    tables: dict[str, list[dict]] = {}
    try:
        largest = _tenant(app, LARGEST, scale=200)
        beside = [(_tenant(app, OTHER, scale=1), "one tenant"),
                  (_tenant(app, SMALL, scale=1, days=90), "one tenant")] if everything else []
        provisioning = []
        with app.app_context():
            for tenant_id, what in ((largest, "first tenant of a process (shared base roles too)"), *beside):
                started = time.perf_counter()
                provision_tenant(tenant_id)
                provisioning.append({"what": what, "seconds": round(time.perf_counter() - started, 1)})
            if beside:
                started = time.perf_counter()
                provision_tenant(beside[-1][0])
                provisioning.append({"what": "one tenant again (nothing to change)",
                                     "seconds": round(time.perf_counter() - started, 1)})
            from tenants.context import tenant_transaction
            from tenants.superset import embedding, guest, templates
            from tenants.superset.provision import load_state

            keys = list(templates.dashboards()) if everything else [CONCURRENT_KEY]
            state = load_state(largest)
            with tenant_transaction(largest) as session:  # the rule the portal's tokens carry (the comparison)
                rules = embedding.benchmark_rules(session, largest)
        identity, cookie = _viewer(app, largest)
        client = app.test_client()
        sign_in(client, identity)

        def mint_one():
            assert client.get(f"/t/{LARGEST}/dashboards/overview/guest-token").status_code == 200

        if everything:
            mint = timed(mint_one, runs=200, warmup=5)
            per_dashboard = [{"what": "guest token (portal endpoint)", "requests": 1,
                              "cold median ms": mint["median_ms"], "cold p95 ms": mint["p95_ms"],
                              "cached median ms": "", "cached p95 ms": "", "PostgreSQL alone median ms": ""}]
        recorded, browser_rows = _browser_visits(settings.portal_url, cookie, LARGEST, keys)

        def token_for(key: str):
            """Guest tokens live five minutes; the benchmark takes longer, so each round mints its own, as the
            portal's endpoint does (tenants.superset.embedding.guest_token: with the comparison's row rule)."""
            return lambda: guest.mint(settings, largest, LARGEST, state["dashboards"][key]["embedded_uuid"], "bench",
                                      rules)

        tables[VIEWERS] = _concurrency(settings.superset_url, token_for(CONCURRENT_KEY), recorded[CONCURRENT_KEY])
        tables[VIEWERS_READING] = _reading(settings.superset_url, token_for(CONCURRENT_KEY), recorded[CONCURRENT_KEY])
        tables[IDLE] = _after_a_pause()
        if everything:
            with app.app_context():  # _postgres_alone runs the charts' SQL in a tenant transaction
                for key in keys:
                    per_dashboard.append(_replay(settings.superset_url, token_for(key), key,
                                                 state["dashboards"][key]["title"], recorded[key], largest))
            tables[BROWSER] = browser_rows
            tables[PER_DASHBOARD] = per_dashboard
            tables[PROVISIONING] = provisioning
        # The same viewers on Superset's own path: the stored answers off (superset_config/answers.py).
        server.stop(superset)
        superset = _start_superset(settings, log, stored_answers=False)
        tables[VIEWERS_OWN_PATH] = _concurrency(settings.superset_url, token_for(CONCURRENT_KEY),
                                                recorded[CONCURRENT_KEY], modes=((False, "cached", 4),))
    finally:
        portal.shutdown()
        server.stop(superset)
        owner.dispose()
        app_engine.dispose()
    return tables


def _start_superset(settings, log: Path, stored_answers: bool):
    """Superset on SUPERSET_PORT, with or without the stored answers for guests (EGOV_SUPERSET_STORED_ANSWERS)."""
    from tenants.superset import server

    earlier = os.environ.get("EGOV_SUPERSET_STORED_ANSWERS")
    os.environ["EGOV_SUPERSET_STORED_ANSWERS"] = "1" if stored_answers else "0"
    try:
        return server.start(settings, SUPERSET_PORT, log, portal_url=settings.portal_url)
    finally:
        if earlier is None:
            os.environ.pop("EGOV_SUPERSET_STORED_ANSWERS")
        else:
            os.environ["EGOV_SUPERSET_STORED_ANSWERS"] = earlier



def _viewer_loop(superset_url: str, token, bodies: list[dict], force: bool, rounds: int,
                 requests_ms: list[float], dashboards_ms: list[float],
                 first_and_rest: tuple[list[float], list[float]] | None = None) -> None:
    """One viewer: the dashboard's chart requests one after another, ``rounds`` times (list.append is atomic).
    ``first_and_rest`` also gets each round's first request and the others apart."""
    http = requests.Session()
    for _ in range(rounds):
        http.headers["X-GuestToken"] = token()
        began = time.perf_counter()
        for number, body in enumerate(bodies):
            started = time.perf_counter()
            http.post(superset_url + "/api/v1/chart/data", json={**body, "force": force},
                      timeout=300).raise_for_status()
            took = (time.perf_counter() - started) * 1000
            requests_ms.append(took)
            if first_and_rest is not None:
                first_and_rest[1 if number else 0].append(took)
        dashboards_ms.append((time.perf_counter() - began) * 1000)


def _concurrency(superset_url: str, token, bodies: list[dict],
                 modes=((False, "cached", 4), (True, "cold (force)", 1))) -> list[dict]:
    """1, 10 and 20 viewers at once, each asking for the dashboard's charts one after another."""
    rows = []
    for force, label, rounds in modes:
        if not force:  # each request once untimed, so "cached" is cached on every path (Redis, stored answers)
            _viewer_loop(superset_url, token, bodies, False, 1, [], [])
        for viewers in VIEWER_COUNTS:
            requests_ms: list[float] = []
            dashboards_ms: list[float] = []
            threads = [threading.Thread(target=_viewer_loop, args=(superset_url, token, bodies, force, rounds,
                                                                   requests_ms, dashboards_ms))
                       for _ in range(viewers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            p50, p95 = _stats(requests_ms)
            rows.append({"chart-data requests": label, "viewers at once": viewers, "p50 ms": p50, "p95 ms": p95,
                         "whole dashboard p50 ms": _stats(dashboards_ms)[0], "requests": len(requests_ms)})
    return rows


def _reading(superset_url: str, token, bodies: list[dict]) -> list[dict]:
    """1, 10 and 20 viewers at once who read between two views (see READING_MEAN_SECONDS): the load an office
    with the dashboard open puts on Superset, where :func:`_concurrency` asks back to back."""
    rows = []
    for viewers in VIEWER_COUNTS:
        requests_ms: list[float] = []
        dashboards_ms: list[float] = []
        # A view's first request comes after the reader's pause, the others right after an answer: what an idle
        # machine or connection costs shows in the first only.
        first_and_rest: tuple[list[float], list[float]] = ([], [])
        deadline = time.perf_counter() + READING_SECONDS

        def reader(seed: int, requests_ms=requests_ms, dashboards_ms=dashboards_ms, deadline=deadline,
                   first_and_rest=first_and_rest) -> None:
            chance = random.Random(seed)
            time.sleep(chance.uniform(0, READING_MEAN_SECONDS))  # they did not all sit down at the same second
            while time.perf_counter() < deadline:
                _viewer_loop(superset_url, token, bodies, False, 1, requests_ms, dashboards_ms, first_and_rest)
                time.sleep(chance.expovariate(1 / READING_MEAN_SECONDS))

        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(viewers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        p50, p95 = _stats(requests_ms)
        dash_p50, dash_p95 = _stats(dashboards_ms)
        rows.append({"viewers at once": viewers, "p50 ms": p50, "p95 ms": p95,
                     "first request of a view p50 / p95 ms": "{} / {}".format(*_stats(first_and_rest[0])),
                     "other requests p50 / p95 ms": "{} / {}".format(*_stats(first_and_rest[1])),
                     "whole dashboard p50 ms": dash_p50, "whole dashboard p95 ms": dash_p95,
                     "dashboards opened": len(dashboards_ms), "requests": len(requests_ms)})
    return rows


def _after_a_pause(pauses: int = 6) -> list[dict]:
    """What a pause costs on this machine itself: the readers' first request of a view comes after one. A
    stdlib HTTP server in its own process, asked once after READING_MEAN_SECONDS of quiet and twice right after
    (each request a new connection, as http.server speaks HTTP/1.0)."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "x.txt").write_text("x")
        server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                                   folder], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = int(server.stdout.readline().split(" port ")[1].split()[0])
            after, right_after = [], []
            for _ in range(pauses):
                time.sleep(READING_MEAN_SECONDS)
                for number in range(3):
                    started = time.perf_counter()
                    requests.get(f"http://127.0.0.1:{port}/x.txt", timeout=10).raise_for_status()
                    (right_after if number else after).append((time.perf_counter() - started) * 1000)
        finally:
            server.terminate()
            server.wait()
    return [{"request": what, "p50 ms": _stats(samples)[0], "max ms": round(max(samples), 1),
             "requests": len(samples)}
            for what, samples in (("after the pause", after), ("right after", right_after))]


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return (round(statistics.median(samples), 1),
            round(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], 1))


def _replay(superset_url: str, token, key: str, title: str, bodies: list[dict], tenant_id: int) -> dict:
    """Median and p95 over every chart-data request of the dashboard, cold (forced) and from the cache."""
    http = requests.Session()

    def rounds(force: bool, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            http.headers["X-GuestToken"] = token()
            for body in bodies:
                started = time.perf_counter()
                http.post(superset_url + "/api/v1/chart/data", json={**body, "force": force},
                          timeout=120).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    rounds(False, 1)  # fill the cache
    cold, cached = _stats(rounds(True, 3)), _stats(rounds(False, 3))
    return {"what": f"{title} ({key}), per chart-data request", "requests": len(bodies),
            "cold median ms": cold[0], "cold p95 ms": cold[1], "cached median ms": cached[0],
            "cached p95 ms": cached[1],
            "PostgreSQL alone median ms": _postgres_alone(bodies, tenant_id)}


def _postgres_alone(bodies: list[dict], tenant_id: int) -> float:
    """The cold path's database share: the SQL Superset generates for each chart (``result_type: query``), run
    in PostgreSQL as the application role for the largest tenant (row-level security on), median per request.
    What "cold" costs beyond it is Superset's own work on the request. Superset shows a guest no SQL, so the
    administrator asks for it; the tenant boundary gives her a "1 = 0" where the guest's row rules would be,
    taken out here. PostgreSQL's row-level security for the tenant applies, the guest's own further rules do
    not: an upper bound where one narrows further (the comparison's peer groups)."""
    from sqlalchemy import text

    from tenants.context import tenant_transaction
    from tenants.superset.provision import client

    admin = client()
    statements = []
    for body in bodies:
        answer = admin.post("/api/v1/chart/data", {**body, "result_type": "query"})
        statements.append([r["query"].replace("(1 = 0)", "(1 = 1)") for r in answer["result"]])
    samples = []
    with tenant_transaction(tenant_id) as session:
        session.execute(text("SET LOCAL search_path TO analytics, benchmark, public"))
        for queries in statements * 3:
            started = time.perf_counter()
            for query in queries:
                # psycopg itself, without parameters: the SQL holds literal "%" (LIKE patterns).
                session.connection().connection.driver_connection.execute(query).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return _stats(samples)[0]


if __name__ == "__main__":
    # Only the concurrent viewers, printed (docs/benchmarks.md is written by `python -m tests.bench`).
    from tenants.settings import load_settings
    from tests.bench.__main__ import _table

    os.environ.setdefault("EGOV_ENV", "test")
    found = run(load_settings({**os.environ, "EGOV_DATABASE_NAME": os.environ.get("EGOV_BENCH_DATABASE_NAME",
                                                                                   "egovsad_bench")}),
                part="concurrency")
    for heading, table in found.items():
        print(f"### {heading}\n\n" + "\n".join(_table(table)) + "\n")
