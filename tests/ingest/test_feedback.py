"""The feedback endpoint and widget: allowed origins only, spam defences, comments scrubbed."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tenants.ingest import feedback
from tests.ingest.conftest import HUNDESTEUER, rows, sign_in

ORIGIN = "https://www.marburg.de"


@pytest.fixture
def widget_source(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    response = admin.post(f"/t/{two_tenants.a.ags}/data/sources",
                          data={"name": "Zufriedenheit", "kind": "feedback", "origins": ORIGIN})
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    endpoint = page.split('data-endpoint="', 1)[1].split('"', 1)[0]
    return endpoint.replace("http://127.0.0.1:5000", "")


@pytest.fixture
def no_wait(monkeypatch):
    monkeypatch.setattr(feedback, "MIN_SECONDS", 0)


def _form(client, endpoint, origin=ORIGIN):
    return client.get(endpoint + "/form", headers={"Origin": origin})


def _send(client, endpoint, token, origin=ORIGIN, **fields):
    body = {"rating": 4, "service_key": HUNDESTEUER, "token": token, "website": "", **fields}
    return client.post(endpoint, json=body, headers={"Origin": origin})


def test_feedback_from_an_allowed_origin_is_stored_scrubbed(app, two_tenants, widget_source, no_wait):
    client = app.test_client()
    form = _form(client, widget_source)
    assert form.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert form.get_json()["labels"]["question"] == "Wie zufrieden sind Sie mit diesem Onlinedienst?"
    response = _send(client, widget_source, form.get_json()["token"],
                     comment="Ging schnell. Rückfragen gern an max.muster@example.org oder 06421 201-0.")
    assert response.status_code == 201 and response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert rows(app, two_tenants.a.id, "SELECT service_key, rating, comment FROM analytics.feedback") == [
        (HUNDESTEUER, 4, "Ging schnell. Rückfragen gern an […] oder […].")]
    assert rows(app, two_tenants.b.id, "SELECT count(*) FROM analytics.feedback") == [(0,)]


def test_other_origins_get_no_cors_and_are_refused(app, widget_source, no_wait):
    client = app.test_client()
    form = _form(client, widget_source, origin="https://evil.example")
    assert form.status_code == 403 and "Access-Control-Allow-Origin" not in form.headers
    token = _form(client, widget_source).get_json()["token"]
    response = _send(client, widget_source, token, origin="https://evil.example")
    assert response.status_code == 403 and "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(widget_source, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Methods"] == "GET, POST"


def test_spam_defences(app, two_tenants, widget_source, monkeypatch):
    client = app.test_client()
    token = _form(client, widget_source).get_json()["token"]
    assert _send(client, widget_source, token).status_code == 400  # posted faster than a person can
    monkeypatch.setattr(feedback, "MIN_SECONDS", 0)
    assert _send(client, widget_source, token, website="http://spam.example").status_code == 400  # honeypot
    assert _send(client, widget_source, token, comment="Billig: www.spam.example").status_code == 400  # links
    assert _send(client, widget_source, "forged.token").status_code == 400
    assert _send(client, widget_source, token, rating=9).status_code == 400
    assert _send(client, widget_source, token).status_code == 201
    assert _send(client, widget_source, token).status_code == 400  # a token counts once
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.feedback") == [(1,)]


def test_rate_limit_per_address(app, widget_source, no_wait):
    client = app.test_client()
    statuses = [_send(client, widget_source, _form(client, widget_source).get_json()["token"]).status_code
                for _ in range(11)]
    assert statuses[:10] == [201] * 10 and statuses[10] == 429


def test_unknown_key_and_inactive_tenant_are_not_found(app, two_tenants, widget_source):
    client = app.test_client()
    assert _form(client, widget_source.rsplit("/", 1)[0] + "/nokey").status_code == 404
    other_tenant = widget_source.replace(two_tenants.a.ags, two_tenants.b.ags)
    assert _form(client, other_tenant).status_code == 404


@pytest.mark.slow
def test_widget_on_a_municipal_page_sends_feedback(app, two_tenants, live_server, page, clean_db):
    """A real browser on another origin (localhost vs 127.0.0.1) embeds the widget from the portal."""
    admin = sign_in(app, two_tenants.a.id, "admin")
    host = ThreadingHTTPServer(("127.0.0.1", 0), _host_page_handler(live_server.url))
    origin = f"http://localhost:{host.server_port}"
    response = admin.post(f"/t/{two_tenants.a.ags}/data/sources",
                          data={"name": "Widget", "kind": "feedback", "origins": origin})
    key_page = admin.get(response.headers["Location"]).get_data(as_text=True)
    host.endpoint = live_server.url + key_page.split('data-endpoint="http://127.0.0.1:5000', 1)[1].split('"', 1)[0]
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        page.goto(origin + "/bestaetigung.html")
        page.get_by_label("4 – zufrieden").check()
        page.get_by_label("Kommentar (freiwillig, bitte keine persönlichen Daten)").fill("Sehr übersichtlich")
        time.sleep(feedback.MIN_SECONDS)
        page.get_by_role("button", name="Senden").click()
        page.get_by_text("Vielen Dank für Ihre Rückmeldung!").wait_for()
    finally:
        host.shutdown()
    assert rows(app, two_tenants.a.id, "SELECT rating, comment FROM analytics.feedback") == [(4, "Sehr übersichtlich")]


def _host_page_handler(portal_url: str):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            html = (f'<!doctype html><html lang="de"><body><h1>Antrag eingegangen</h1><div id="egov-feedback"></div>'
                    f'<script src="{portal_url}/static/feedback-widget.js" data-endpoint="{self.server.endpoint}" '
                    f'data-service="{HUNDESTEUER}"></script></body></html>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    return Handler


def test_the_widgets_ratings_count_as_its_deliveries(app, two_tenants, widget_source, no_wait):
    """The widget's ratings arrive one by one, without load runs: the start page and the health page said
    "nie" / "noch keine Daten geladen" beside a dashboard of 479 ratings (a walk-through)."""
    client = app.test_client()
    _send(client, widget_source, _form(client, widget_source).get_json()["token"])
    admin = sign_in(app, two_tenants.a.id, "admin")
    home = admin.get(f"/t/{two_tenants.a.ags}/").get_data(as_text=True)
    table = home.split('id="freshness"')[1].split("</table>")[0]
    row = next(r for r in re.findall(r"<tr.*?</tr>", table, flags=re.S) if "Zufriedenheit</a>" in r)
    assert "aktuell" in row and "nie" not in row, row
    health = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    section = health.split(">Zufriedenheit")[1].split("</section>")[0]
    assert "Letzter Erfolg: nie" not in section
