"""Upload pages, push API and health page as users and source systems use them (real worker, real Redis)."""

from __future__ import annotations

import io
import json
import re

from ingest_workers.worker import run_worker
from tenants.ingest.loader import UNKNOWN_VALUE_LISTED
from tests.conftest import add_operator
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, add_source, client_for, rows, sign_in

CSV = f"""{EVENT_HEADER}
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,2026-03-02T09:04:00+01:00,{HUNDESTEUER},s1,submitted,,,web,,,,
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s2,started,,,telefax,,,,
"""


def work(app):
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)


def _badge(page: str) -> str:
    """The run page's status badge, as shown."""
    return re.search(r'data-field="status"><span[^>]*>([^<]*)</span>', page).group(1)


def upload(client, ags, source_id, content: bytes, name="ereignisse.csv"):
    return client.post(f"/t/{ags}/data/upload", data={"source_id": source_id, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def test_editor_uploads_and_reads_progress_result_and_errors(app, sources, two_tenants):
    client = sign_in(app, two_tenants.a.id, "editor")
    response = upload(client, two_tenants.a.ags, sources.a, CSV.encode())
    assert response.status_code == 302
    run_url = response.headers["Location"]
    page = client.get(run_url)
    assert page.status_code == 200 and b"ingest-run.js" in page.data
    assert client.get(run_url + "/status").get_json()["status"] == "queued"
    work(app)
    status = client.get(run_url + "/status").get_json()
    assert (status["status"], status["rows_accepted"], status["rows_rejected"]) == ("succeeded", 2, 1)
    page = client.get(run_url).get_data(as_text=True)
    assert "channel" in page and "unbekannter Wert „telefax“ (erlaubt: web, ios, android)" in page
    # Not "erfolgreich" over a rejected row: the badge and a notice say how much was taken.
    assert _badge(page) == "teilweise übernommen" and "2 von 3 Zeilen wurden übernommen" in page
    csv = client.get(run_url + "/errors.csv")
    assert csv.mimetype == "text/csv"
    reason = "unbekannter Wert „telefax“ (erlaubt: web, ios, android)"  # the value and the codes allowed
    assert csv.get_data(as_text=True).splitlines()[1] == f"4;channel;{reason}"
    assert rows(app, two_tenants.a.id, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]


def test_a_load_that_took_no_row_does_not_say_it_succeeded(app, sources, two_tenants):
    """A clerk's file in German words ("begonnen", 02.11.2026): every row is rejected, and the page says so."""
    client = sign_in(app, two_tenants.a.id, "editor")
    german = f"{EVENT_HEADER}\n,02.11.2026 09:15,{HUNDESTEUER},s1,begonnen,,,web,,,,\n"
    run_url = upload(client, two_tenants.a.ags, sources.a, german.encode()).headers["Location"]
    work(app)
    page = client.get(run_url).get_data(as_text=True)
    assert _badge(page) == "keine Zeile übernommen" and "Keine Zeile wurde übernommen" in page
    assert "kein Zeitpunkt nach ISO 8601 (z. B. 2026-03-02T09:15:00)" in page
    listed = client.get(f"/t/{two_tenants.a.ags}/data/").get_data(as_text=True)
    assert "keine Zeile übernommen" in listed


def test_a_corrected_file_sent_again_counts_nothing_twice(app, sources, two_tenants):
    """A clerk deletes the rejected row and uploads the file again: the rows loaded before (events without an
    id of their own) are recognised although their row numbers moved, and nothing is counted twice."""
    client = sign_in(app, two_tenants.a.id, "editor")
    first = f"""{EVENT_HEADER}
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,telefax,,,,
,2026-03-02T09:01:00+01:00,{HUNDESTEUER},s2,started,,,web,,,,
,2026-03-02T09:04:00+01:00,{HUNDESTEUER},s2,submitted,,,web,,,,
,2026-03-02T09:05:00+01:00,{HUNDESTEUER},s3,started,,,web,,,,
,2026-03-02T09:05:00+01:00,{HUNDESTEUER},s3,started,,,web,,,,
"""
    upload(client, two_tenants.a.ags, sources.a, first.encode())
    work(app)
    corrected = first.replace(f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,telefax,,,,\n", "")
    upload(client, two_tenants.a.ags, sources.a, corrected.encode(), name="ereignisse-korrigiert.csv")
    work(app)
    # The same event twice in one file is two events (as before); sent again, neither is added a third time.
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.process_events") == [(4,)]
    assert rows(app, two_tenants.a.id, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(3, 1)]


def test_uploading_the_same_file_again_says_so_and_changes_nothing(app, sources, two_tenants):
    client = sign_in(app, two_tenants.a.id, "editor")
    first = upload(client, two_tenants.a.ags, sources.a, CSV.encode()).headers["Location"]
    work(app)
    second = upload(client, two_tenants.a.ags, sources.a, CSV.encode())
    assert second.headers["Location"] == first
    assert "bereits" in client.get(first).get_data(as_text=True)
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.process_events") == [(2,)]


def test_viewers_may_not_upload_and_other_tenants_runs_are_not_found(app, sources, two_tenants):
    viewer = sign_in(app, two_tenants.a.id, "viewer")
    assert upload(viewer, two_tenants.a.ags, sources.a, CSV.encode()).status_code == 403
    editor_a = sign_in(app, two_tenants.a.id, "editor")
    run_url = upload(editor_a, two_tenants.a.ags, sources.a, CSV.encode()).headers["Location"]
    editor_b = sign_in(app, two_tenants.b.id, "editor")
    assert editor_b.get(run_url).status_code == 404
    run_id = run_url.rsplit("/", 1)[1]
    assert editor_b.get(f"/t/{two_tenants.b.ags}/data/runs/{run_id}").status_code == 404
    # ... nor can B upload into A's data source through its own tenant's URL.
    assert upload(editor_b, two_tenants.b.ags, sources.a, CSV.encode()).status_code == 404


def _push_source(app, client, ags):
    response = client.post(f"/t/{ags}/data/sources", data={"name": "Formularserver", "kind": "push",
                                                           "profile": "canonical"})
    source_url = response.headers["Location"]
    page = client.post(source_url + "/token").get_data(as_text=True)
    token = page.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert client.get(source_url).get_data(as_text=True).count(token) == 0  # shown once only
    return int(source_url.rsplit("/", 1)[1]), token, source_url


def test_push_api_with_token_json_and_csv_idempotent(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    api = app.test_client()
    url = f"/api/v1/t/{two_tenants.a.ags}/sources/{source_id}/batches"
    auth = {"Authorization": f"Bearer {token}"}
    batch = {"batch_id": "2026-03-02", "events": [
        {"occurred_at": "2026-03-02T09:00:00+01:00", "service_key": HUNDESTEUER, "event_type": "started",
         "session_id": "x", "channel": "android"},
        {"occurred_at": "2026-03-02T09:05:00+01:00", "service_key": HUNDESTEUER, "event_type": "submitted",
         "session_id": "x", "channel": "android"}],
        "aggregates": [{"day": "2026-03-03", "service_key": HUNDESTEUER, "measure": "started", "value": 40}]}
    response = api.post(url, json=batch, headers=auth)
    assert response.status_code == 202
    status_url = response.get_json()["status_url"]
    assert response.headers["Location"] == status_url
    again = api.post(url, json=batch, headers=auth)
    assert again.status_code == 200 and again.get_json()["run_id"] == response.get_json()["run_id"]
    work(app)
    status = api.get(status_url, headers=auth).get_json()
    assert (status["status"], status["rows_accepted"]) == ("succeeded", 3)
    csv_body = f"{EVENT_HEADER}\n,2026-03-04T10:00:00+01:00,{HUNDESTEUER},y,started,,,web,,,,\n"
    # Without a Batch-Id, a CSV body is identified by its SHA-256: the same body again changes nothing.
    first = api.post(url, data=csv_body, headers={**auth, "Content-Type": "text/csv"})
    again = api.post(url, data=csv_body, headers={**auth, "Content-Type": "text/csv"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["run_id"] == again.get_json()["run_id"]
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT day::text, started, submitted FROM analytics.rollup_service_daily "
                                       "ORDER BY day") == [("2026-03-02", 1, 1), ("2026-03-03", 40, 0),
                                                           ("2026-03-04", 1, 0)]


def test_push_api_refuses_wrong_revoked_and_foreign_tokens_and_bad_bodies(app, two_tenants):
    admin_a = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, source_url = _push_source(app, admin_a, two_tenants.a.ags)
    admin_b = sign_in(app, two_tenants.b.id, "admin")
    _, token_b, _ = _push_source(app, admin_b, two_tenants.b.ags)
    api = app.test_client()
    url = f"/api/v1/t/{two_tenants.a.ags}/sources/{source_id}/batches"
    body = {"batch_id": "b1", "events": [{"occurred_at": "2026-03-02T09:00:00Z", "service_key": HUNDESTEUER,
                                          "event_type": "started"}]}
    assert api.post(url, json=body).status_code == 401
    assert api.post(url.replace(f"/sources/{source_id}/", "/sources/999/"), json=body,
                    headers={"Authorization": f"Bearer {token}"}).status_code == 404
    assert api.post(url, json=body, headers={"Authorization": f"Bearer {token_b}"}).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    assert api.post(url, json={"events": []}, headers=auth).status_code == 422
    bad_field = {"batch_id": "b2", "events": [{"occurred_at": "2026-03-02", "email": "a@b.de"}]}
    problem = api.post(url, json=bad_field, headers=auth)
    assert problem.status_code == 422 and "email" in problem.get_json()["title"]
    assert api.post(url, data=b"x" * (21 * 1024 * 1024), headers={**auth, "Content-Type": "text/csv",
                                                                   "Batch-Id": "big"}).status_code == 413
    admin_a.post(source_url + "/token/revoke")
    assert api.post(url, json=body, headers=auth).status_code == 401


def test_push_is_refused_for_a_suspended_tenant(app, two_tenants):
    from sqlalchemy import text

    from tenants.context import platform_transaction

    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    with app.app_context(), platform_transaction() as session:
        session.execute(text("UPDATE portal.tenants SET status = 'suspended' WHERE id = :t"), {"t": two_tenants.a.id})
    response = app.test_client().post(
        f"/api/v1/t/{two_tenants.a.ags}/sources/{source_id}/batches", headers={"Authorization": f"Bearer {token}"},
        json={"batch_id": "s", "events": [{"occurred_at": "2026-03-02", "service_key": HUNDESTEUER,
                                           "event_type": "started"}]})
    assert response.status_code == 403
    # Refused means nothing kept: no run to load later, no events.
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM portal.ingest_runs") == [(0,)]
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.process_events") == [(0,)]


def test_openapi_document_describes_the_push_api(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    post = doc["paths"]["/api/v1/t/{ags}/sources/{source_id}/batches"]["post"]
    assert {"202", "401", "413", "422", "429"} <= set(post["responses"])
    event = doc["components"]["schemas"]["ProcessEvent"]
    assert "wero" in event["properties"]["payment_method"]["enum"]


def test_health_page_shows_failures_and_retry_loads_the_batch(app, two_tenants, monkeypatch):
    from tenants.ingest import loader

    source = None
    with app.app_context():
        source = add_source(two_tenants.a.id, "Formulardienst")
    admin = sign_in(app, two_tenants.a.id, "admin")
    original = loader.load

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(loader, "load", broken)
    upload(admin, two_tenants.a.ags, source, CSV.encode())
    monkeypatch.setattr("tenants.ingest.runs.RETRIES", 0)
    from tenants.ingest import runs

    monkeypatch.setattr(runs, "RETRY_DELAYS", [])
    work(app)
    page = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    assert "database went away" in page and "Erneut versuchen" in page
    run_id = rows(app, two_tenants.a.id, "SELECT id FROM portal.ingest_runs")[0][0]
    monkeypatch.setattr(loader, "load", original)
    assert admin.post(f"/t/{two_tenants.a.ags}/data/runs/{run_id}/retry").status_code == 302
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT status, rows_accepted FROM portal.ingest_runs") == [("succeeded", 2)]
    from tenants.ingest.health import ingest_health

    with app.app_context():
        report = ingest_health(two_tenants.a.id)
    assert report["sources"][0]["status"] == "ok" and report["sources"][0]["rows_per_day"][-1]["accepted"] == 2
    viewer = sign_in(app, two_tenants.a.id, "viewer")
    assert viewer.get(f"/t/{two_tenants.a.ags}/data/health").status_code == 403
    # Operators read the same report as JSON on the command line.
    from click.testing import CliRunner

    from portal.cli import main

    printed = CliRunner().invoke(main, ["ingest", "health", two_tenants.a.ags, "--json"], catch_exceptions=False)
    as_json = json.loads(printed.output)
    assert [(s["name"], s["status"], s["rows_per_day"][-1]["accepted"]) for s in as_json["sources"]] == [
        ("Formulardienst", "ok", 2)]
    assert as_json["unfinished_runs"] == []  # the retried run succeeded: nothing left unfinished


def test_errors_of_a_json_batch_count_events_first_then_aggregates(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    batch = {"batch_id": "mixed", "events": [
        {"occurred_at": "2026-03-02T09:00:00+01:00", "service_key": HUNDESTEUER, "event_type": "started"},
        {"occurred_at": "2026-03-02T09:00:00+01:00", "service_key": HUNDESTEUER, "event_type": "gestartet"}],
        "aggregates": [{"day": "2026-03-03", "service_key": HUNDESTEUER, "measure": "started", "value": -4}]}
    response = app.test_client().post(f"/api/v1/t/{two_tenants.a.ags}/sources/{source_id}/batches", json=batch,
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT row_no, column_name, reason FROM portal.ingest_errors "
                                       "ORDER BY row_no") == [(2, "event_type", UNKNOWN_VALUE_LISTED),
                                                              (3, "value", "not a whole number of 0 or more")]
    assert rows(app, two_tenants.a.id, "SELECT rows_total, rows_accepted, rows_rejected FROM portal.ingest_runs"
                ) == [(3, 1, 2)]


def test_operators_see_any_tenants_ingest_health_and_can_retry(app, two_tenants, monkeypatch):
    from tenants.ingest import loader, runs

    with app.app_context():
        source = add_source(two_tenants.a.id, "Formulardienst")
    identity = add_operator(app, "ops@betrieb.example")
    monkeypatch.setattr(loader, "load", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    monkeypatch.setattr(runs, "RETRIES", 0)
    upload(sign_in(app, two_tenants.a.id, "editor"), two_tenants.a.ags, source, CSV.encode())
    work(app)
    ops = client_for(app, identity)
    page = ops.get(f"/ops/t/{two_tenants.a.ags}/ingest/").get_data(as_text=True)
    assert "disk full" in page and "Marburg" in page
    monkeypatch.undo()
    run_id = rows(app, two_tenants.a.id, "SELECT id FROM portal.ingest_runs")[0][0]
    assert ops.post(f"/ops/t/{two_tenants.a.ags}/ingest/runs/{run_id}/retry").status_code == 302
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT status FROM portal.ingest_runs") == [("succeeded",)]
    # Tenant staff do not get the operators' page.
    assert sign_in(app, two_tenants.a.id, "admin").get(f"/ops/t/{two_tenants.a.ags}/ingest/").status_code == 403
