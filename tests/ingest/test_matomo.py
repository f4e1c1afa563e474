"""Matomo connector against a local stub serving recorded responses in Matomo's documented JSON shape."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ingest_workers.matomo import pull_all_daily, refetch_pending
from ingest_workers.worker import run_worker
from tenants.ingest import matomo
from tests.ingest.conftest import rows, sign_in

RECORDED = Path(__file__).parent / "matomo"
TOKEN = "a3f9c2e1b7d84f6e9a0c5b2d1e8f7a6b"


@pytest.fixture
def matomo_stub():
    """Matomo's Reporting API on loopback. ``stub.answer`` may replace the recorded answers: a
    function of the request's form returning (HTTP status, body, content type) or None."""
    requests_seen = []
    stub = type("Stub", (), {"requests": requests_seen, "answer": None})()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the name http.server wants
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            requests_seen.append({"path": self.path, **form})
            answer = stub.answer(form) if stub.answer else None
            status, body, content_type = answer or (200, json.dumps(_recorded(form)).encode(), "application/json")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_port}"
    yield stub
    server.shutdown()


def _recorded(form: dict) -> dict:
    name = form["method"] if form.get("token_auth") == TOKEN else "error"
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    if name != "error":  # like Matomo: the days of the requested range only
        first, last = form["date"].split(",")
        recorded = {day: report for day, report in recorded.items() if first <= day <= last}
    return recorded


def _days_of(form: dict) -> list[str]:
    first, last = (date.fromisoformat(d) for d in form["date"].split(","))
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _json(body) -> tuple[int, bytes, str]:
    return 200, json.dumps(body).encode(), "application/json"


VISITS = {"nb_uniq_visitors": 50, "nb_visits": 60, "nb_actions": 150, "bounce_rate": "40%", "avg_time_on_site": 90}


def _page(url: str, visits: int, hits: int) -> dict:
    return {"label": url.split("/", 3)[-1], "url": url, "nb_visits": visits, "nb_hits": hits, "bounce_rate": "10%",
            "avg_time_on_page": 30}


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
    # The tenant's list of loads names the pull by its days, not by its internal batch key.
    loads = admin.get(f"/t/{two_tenants.a.ags}/data/").get_data(as_text=True)
    assert "Webanalyse (Matomo) 01.03.2026 – 03.03.2026" in loads and "matomo:" not in loads
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


def test_the_daily_schedule_pulls_yesterday_for_every_active_source(app, two_tenants, matomo_stub, redis_conn):
    from tests.conftest import scheduled_jobs

    assert scheduled_jobs(redis_conn)["ingest_workers.matomo.pull_all_daily"].cron == "30 2 * * *"
    _matomo_source(app, two_tenants, matomo_stub)
    with app.app_context():
        assert pull_all_daily(today=date(2026, 3, 3)) == 1
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    assert rows(app, two_tenants.a.id, "SELECT day::text, visits FROM analytics.web_visits_daily") == [
        ("2026-03-02", 1577)]
    assert matomo_stub.requests[0]["date"] == "2026-03-02,2026-03-02"


def test_bounce_rates_in_matomo_formats():
    assert matomo._rate("45%") == Decimal("45") and matomo._rate("45,5 %") == Decimal("45.5")
    assert matomo._rate(None) is None
    # Matomo answers [] for a day it has not archived yet: no row, so nothing stored is overwritten.
    assert matomo.visits_rows({"2026-03-03": []}) == []


def _pull(app):
    run_worker(app, ["low"], burst=True, with_scheduler=False)


def _stored(app, tenant_id):
    visits = rows(app, tenant_id, "SELECT day::text, visits FROM analytics.web_visits_daily ORDER BY day")
    pages = rows(app, tenant_id, "SELECT day::text, page_url, hits, visits FROM analytics.web_pages_daily "
                                 "ORDER BY day, page_url")
    return visits, pages


def test_an_empty_answer_destroys_nothing(app, two_tenants, matomo_stub):
    """Matomo answers [] for days it has not archived yet: stored figures must survive it."""
    source_url, admin = _matomo_source(app, two_tenants, matomo_stub)
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-02"})
    _pull(app)
    before = _stored(app, two_tenants.a.id)
    assert before[0] == [("2026-03-01", 1034), ("2026-03-02", 1577)] and len(before[1]) == 3
    matomo_stub.answer = lambda form: _json({day: [] for day in _days_of(form)})
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-02"})
    _pull(app)
    assert _stored(app, two_tenants.a.id) == before
    status, error, args = rows(app, two_tenants.a.id, "SELECT status, error, error_args FROM portal.ingest_runs "
                                                      "ORDER BY id DESC LIMIT 1")[0]
    assert (status, error, args) == ("succeeded", matomo.NOT_COMPLETE, {"days": "01.03.2026, 02.03.2026"})
    # An answer with visits but without the pages report (archived halfway) keeps the stored pages too.
    matomo_stub.answer = lambda form: _json({day: VISITS if form["method"] == "VisitsSummary.get" else []
                                             for day in _days_of(form)})
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-02"})
    _pull(app)
    assert _stored(app, two_tenants.a.id) == before


def test_yesterday_is_fetched_again_until_matomo_has_archived_it(app, two_tenants, matomo_stub):
    from tenants.ingest.loader import berlin_today

    _matomo_source(app, two_tenants, matomo_stub)
    today = berlin_today()
    yesterday = (today - timedelta(days=1)).isoformat()
    matomo_stub.answer = lambda form: _json({day: [] for day in _days_of(form)})
    with app.app_context():
        assert pull_all_daily() == 1
    _pull(app)
    assert _stored(app, two_tenants.a.id) == ([], [])
    assert rows(app, two_tenants.a.id, "SELECT config->'pending_days' FROM portal.data_sources") == [([yesterday],)]
    with app.app_context():  # still not archived an hour later: asked again, still pending
        assert refetch_pending() == 1
    _pull(app)
    matomo_stub.answer = lambda form: _json({day: VISITS if form["method"] == "VisitsSummary.get" else [
        _page("https://www.marburg.de/buergerservice/hundesteuer", 20, 25)] for day in _days_of(form)})
    with app.app_context():
        assert refetch_pending() == 1
    _pull(app)
    assert _stored(app, two_tenants.a.id) == ([(yesterday, 60)], [
        (yesterday, "https://www.marburg.de/buergerservice/hundesteuer", 25, 20)])
    with app.app_context():
        assert refetch_pending() == 0  # archived: nothing pending any more
    assert [r["date"] for r in matomo_stub.requests if r["method"] == "VisitsSummary.get"] == [
        f"{yesterday},{yesterday}"] * 3


def test_a_day_matomo_never_archives_is_given_up_after_a_few_days(app, two_tenants, matomo_stub):
    from tenants.ingest.loader import berlin_today

    _matomo_source(app, two_tenants, matomo_stub)
    matomo_stub.answer = lambda form: _json({day: [] for day in _days_of(form)})
    with app.app_context():
        pull_all_daily()
    _pull(app)
    with app.app_context():
        assert refetch_pending(today=berlin_today() + timedelta(days=matomo.REFETCH_DAYS + 1)) == 0


def test_matomos_own_error_text_is_kept_and_permanent_errors_are_not_retried(app, two_tenants, matomo_stub):
    source_url, admin = _matomo_source(app, two_tenants, matomo_stub)
    health = f"/t/{two_tenants.a.ags}/data/health"
    matomo_stub.answer = lambda form: (401, json.dumps({"result": "error", "message": "Token is not valid."}).encode(),
                                       "application/json")
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-01"})
    _pull(app)
    assert "Matomo: Token is not valid." in admin.get(health).get_data(as_text=True)
    assert len(matomo_stub.requests) == 1  # refused once is refused: no retries
    matomo_stub.answer = lambda form: (200, b"<html><body><h1>Anmeldung</h1> Bitte melden Sie sich an</body></html>",
                                       "text/html")
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-01"})
    _pull(app)
    page = admin.get(health).get_data(as_text=True)
    assert "antwortet nicht wie die Reporting-API von Matomo; sie sandte: Anmeldung Bitte melden Sie sich an" in page
    assert "Expecting value" not in page and len(matomo_stub.requests) == 2


def test_matomo_briefly_away_is_asked_again(app, two_tenants, matomo_stub):
    source_url, admin = _matomo_source(app, two_tenants, matomo_stub)
    matomo_stub.answer = lambda form: (503, b"Service Unavailable", "text/plain") \
        if len(matomo_stub.requests) == 1 else None
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-01"})
    _pull(app)
    assert rows(app, two_tenants.a.id, "SELECT status, attempts FROM portal.ingest_runs") == [("succeeded", 2)]
    assert _stored(app, two_tenants.a.id)[0] == [("2026-03-01", 1034)]


def test_spellings_of_one_page_count_as_one(app, two_tenants, matomo_stub):
    source_url, admin = _matomo_source(app, two_tenants, matomo_stub)
    spellings = [_page("https://www.marburg.de/buergerservice/hundesteuer", 10, 12),
                 _page("http://www.marburg.de/buergerservice/hundesteuer", 3, 4),
                 _page("https://marburg.de/buergerservice/hundesteuer/", 2, 2),
                 _page("http://MARBURG.de/buergerservice/hundesteuer?ref=newsletter", 1, 1),
                 _page("https://www.marburg.de/buergerservice/hundesteuer/antrag", 5, 6),
                 _page("https://www.marburg.de/aktuelles", 50, 60)]
    matomo_stub.answer = lambda form: _json({"2026-03-01": VISITS if form["method"] == "VisitsSummary.get"
                                             else spellings})
    admin.post(source_url + "/backfill", data={"start": "2026-03-01", "end": "2026-03-01"})
    _pull(app)
    assert _stored(app, two_tenants.a.id)[1] == [
        ("2026-03-01", "https://www.marburg.de/buergerservice/hundesteuer", 19, 16),
        ("2026-03-01", "https://www.marburg.de/buergerservice/hundesteuer/antrag", 6, 5)]
