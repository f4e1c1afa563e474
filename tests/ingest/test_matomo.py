"""Matomo connector against a local stub serving recorded responses in Matomo's documented JSON shape."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ingest_workers import matomo
from ingest_workers.worker import run_worker
from tests.ingest.conftest import rows, sign_in

RECORDED = Path(__file__).parent / "matomo"
TOKEN = "a3f9c2e1b7d84f6e9a0c5b2d1e8f7a6b"


@pytest.fixture
def matomo_stub():
    requests_seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the name http.server wants
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            requests_seen.append({"path": self.path, **form})
            name = form["method"] if form.get("token_auth") == TOKEN else "error"
            recorded = json.loads((RECORDED / f"{name}.json").read_text())
            if name != "error":  # like Matomo: the days of the requested range only
                first, last = form["date"].split(",")
                recorded = {day: report for day, report in recorded.items() if first <= day <= last}
            body = json.dumps(recorded).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield type("Stub", (), {"url": f"http://127.0.0.1:{server.server_port}", "requests": requests_seen})
    server.shutdown()


def _matomo_source(app, two_tenants, stub, token=TOKEN) -> str:
    admin = sign_in(app, two_tenants.a.id, "admin")
    response = admin.post(f"/t/{two_tenants.a.ags}/data/sources", data={
        "name": "Matomo Stadtportal", "kind": "matomo", "url": stub.url, "site_id": "3", "token": token,
        "pages": "https://www.marburg.de/buergerservice/hundesteuer 99102013104000\n"
                 "https://www.marburg.de/buergerservice/anwohnerparken 99108001001000"})
    assert response.status_code == 302
    return response.headers["Location"], admin


def test_backfill_stores_visits_and_service_pages(app, two_tenants, matomo_stub):
    source_url, admin = _matomo_source(app, two_tenants, matomo_stub)
    assert admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-03"}).status_code == 302
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    a = two_tenants.a.id
    assert rows(app, a, "SELECT day::text, visits, unique_visitors, actions, bounce_rate, avg_time_on_site "
                        "FROM analytics.web_visits_daily ORDER BY day") == [
        ("2026-03-01", 1034, 812, 3120, Decimal("45.00"), 146),
        ("2026-03-02", 1577, 1290, 5012, Decimal("37.00"), 165)]
    # Matomo answered [] for 3 March (not archived yet): no figures, so nothing is stored for it.
    # Only the configured service pages, query strings (here with an e-mail address) cut off.
    assert rows(app, a, "SELECT day::text, page_url, service_key, hits, visits FROM analytics.web_pages_daily "
                        "ORDER BY day, page_url") == [
        ("2026-03-01", "https://www.marburg.de/buergerservice/hundesteuer", "99102013104000", 153, 123),
        ("2026-03-02", "https://www.marburg.de/buergerservice/anwohnerparken", "99108001001000", 61, 55),
        ("2026-03-02", "https://www.marburg.de/buergerservice/hundesteuer", "99102013104000", 130, 98)]
    methods = {r["method"]: r for r in matomo_stub.requests}
    assert methods["Actions.getPageUrls"]["flat"] == "1" and methods["VisitsSummary.get"]["period"] == "day"
    assert methods["VisitsSummary.get"]["date"] == "2026-03-01,2026-03-03"
    assert all(TOKEN not in r["path"] for r in matomo_stub.requests)  # the token is in the body only
    stored = rows(app, a, "SELECT secret_encrypted FROM portal.data_sources WHERE kind = 'matomo'")[0][0]
    assert TOKEN not in stored
    # Pulling the same days again replaces them rather than adding up.
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-03"})
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    assert rows(app, a, "SELECT sum(visits) FROM analytics.web_visits_daily") == [(2611,)]


def test_a_matomo_error_shows_on_the_health_page(app, two_tenants, matomo_stub, monkeypatch):
    monkeypatch.setattr(matomo, "RETRIES", 0)
    source_url, admin = _matomo_source(app, two_tenants, matomo_stub, token="abc123wrong")
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-01"})
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    page = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    assert "requires &#39;view&#39; access" in page


def test_the_daily_schedule_pulls_yesterday_for_every_active_source(app, two_tenants, matomo_stub):
    from rq import cron

    import ingest_workers.cron  # noqa: F401 - registering is what is tested

    scheduled = {entry["func"]: entry["cron"] for entry in cron._job_data_registry}
    assert scheduled[matomo.pull_all_daily] == "30 2 * * *"
    _matomo_source(app, two_tenants, matomo_stub)
    with app.app_context():
        assert matomo.pull_all_daily(today=date(2026, 3, 3)) == 1
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    assert rows(app, two_tenants.a.id, "SELECT day::text, visits FROM analytics.web_visits_daily") == [
        ("2026-03-02", 1577)]
    assert matomo_stub.requests[0]["date"] == "2026-03-02,2026-03-02"


def test_bounce_rates_in_matomo_formats():
    assert matomo._rate("45%") == Decimal("45") and matomo._rate("45,5 %") == Decimal("45.5")
    assert matomo._rate(None) is None
    json.dumps(matomo.visits_rows({"2026-03-03": []}), default=str)
