"""Push API and feedback endpoint: no input gives a 5xx, limits hold however a body is sent."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.conftest import HUNDESTEUER, add_source, rows, sign_in
from tests.ingest.test_upload_and_api import _push_source, work

MB = 1024 * 1024


@pytest.fixture
def push(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    return type("Push", (), {"url": f"/api/v1/t/{two_tenants.a.ags}/sources/{source_id}/batches",
                             "auth": {"Authorization": f"Bearer {token}"}, "admin": admin})


def test_ids_outside_the_integer_range_are_not_found(app, two_tenants, push):
    api, ags = app.test_client(), two_tenants.a.ags
    body = {"batch_id": "b", "events": [{"occurred_at": "2026-03-02T09:00:00Z", "service_key": HUNDESTEUER,
                                         "event_type": "started"}]}
    for source in ("2147483648", "9223372036854775808", "99999999999999999999999"):
        response = api.post(f"/api/v1/t/{ags}/sources/{source}/batches", json=body)
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
    for run in ("2147483648", "9223372036854775808", "99999999999999999999999"):
        assert api.get(f"{push.url}/{run}", headers=push.auth).status_code == 404
    for page in (f"/t/{ags}/data/sources/2147483648", f"/t/{ags}/data/runs/9223372036854775808",
                 f"/t/{ags}/data/runs/2147483648/status"):
        assert push.admin.get(page).status_code == 404


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_is_refused_with_a_clear_answer(app, two_tenants, push):
    api = app.test_client()
    response = api.post(push.url, data=_deep(100_000), headers={**push.auth, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    nested_value = '{"batch_id": "n", "events": [{"occurred_at": "2026-03-02", "step_name": ' + _deep(50_000) + "}]}"
    assert api.post(push.url, data=nested_value, headers={**push.auth, "Content-Type": "application/json"}
                    ).status_code == 422
    with app.app_context():
        source = add_source(two_tenants.a.id, "Widget", kind="feedback",
                            config={"public_key": "k1", "allowed_origins": ["https://www.marburg.de"]})
    assert source
    response = api.post(f"/api/v1/t/{two_tenants.a.ags}/feedback/k1", data=_deep(4_000),  # within 8 KB
                        headers={"Content-Type": "application/json", "Origin": "https://www.marburg.de"})
    assert response.status_code == 400


def test_a_bad_event_is_rejected_on_its_own_after_the_202(app, two_tenants, push):
    batch = {"batch_id": "per-event", "events": [
        {"occurred_at": "2026-03-02T09:00:00+01:00", "service_key": HUNDESTEUER, "event_type": "started"},
        {"occurred_at": "2026-03-02T09:01:00+01:00", "service_key": HUNDESTEUER, "event_type": "started",
         "session_id": "a\u0000b"},
        {"occurred_at": "2026-03-02T09:02:00+01:00", "service_key": HUNDESTEUER, "event_type": "step_reached",
         "step_no": 1, "step_name": ["Angaben", "zum Hund"]},
        {"occurred_at": "2026-03-02T09:03:00+01:00", "service_key": HUNDESTEUER, "event_type": "started",
         "channel": "web\ud800"},
        {"occurred_at": "2026-03-02T09:04:00+01:00", "service_key": HUNDESTEUER, "event_type": "submitted",
         "step_no": 10 ** 40}]}
    response = app.test_client().post(push.url, data=json.dumps(batch), headers={**push.auth,
                                                                                 "Content-Type": "application/json"})
    assert response.status_code == 202
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT status, rows_total, rows_accepted, rows_rejected FROM "
                                       "portal.ingest_runs") == [("succeeded", 5, 1, 4)]
    assert rows(app, two_tenants.a.id, "SELECT row_no, column_name, reason FROM portal.ingest_errors "
                                       "ORDER BY row_no") == [
        (2, "session_id", "contains a NUL character"), (3, "step_name", "not a single value"),
        (4, "channel", "contains an invalid character"), (5, "step_no", "not a whole number from 0 to 999")]


def test_events_that_all_lack_a_field_are_rejected_one_by_one(app, two_tenants, push):
    batch = {"batch_id": "no-time", "events": [{"service_key": HUNDESTEUER, "event_type": "started"}] * 2}
    assert app.test_client().post(push.url, json=batch, headers=push.auth).status_code == 202
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT status, rows_total, rows_rejected FROM portal.ingest_runs") == [
        ("succeeded", 2, 2)]
    assert rows(app, two_tenants.a.id, "SELECT row_no, column_name, reason FROM portal.ingest_errors "
                                       "ORDER BY row_no") == [(1, "occurred_at", "required"),
                                                              (2, "occurred_at", "required")]


def test_an_unusable_batch_id_is_refused_not_a_server_error(app, two_tenants, push):
    api = app.test_client()
    for batch_id in ("a\u0000b", "x\ud800"):
        body = json.dumps({"batch_id": batch_id, "events": [{"occurred_at": "2026-03-02", "service_key": HUNDESTEUER,
                                                             "event_type": "started"}]})
        response = api.post(push.url, data=body, headers={**push.auth, "Content-Type": "application/json"})
        assert response.status_code == 422
    assert api.post(push.url, data=b"day\n", headers={**push.auth, "Content-Type": "text/csv",
                                                       "Batch-Id": "a\x01b"}).status_code == 422
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM portal.ingest_runs") == [(0,)]


def _chunks(total: int, size: int = 256 * 1024):
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


def _post_chunked(url: str, total: int, headers: dict) -> int | None:
    """POST a body of ``total`` bytes without Content-Length; the status, or None if the server hung up."""
    try:
        return requests.post(url, data=_chunks(total), headers=headers, timeout=60).status_code
    except requests.ConnectionError:
        return None


def test_chunked_bodies_obey_the_size_limits(app, two_tenants, push, live_server):
    from tenants.ingest import runs

    with app.app_context():
        add_source(two_tenants.a.id, "Widget", kind="feedback",
                   config={"public_key": "k2", "allowed_origins": ["https://www.marburg.de"]})
        upload_source = add_source(two_tenants.a.id, "Dateien")
    base = live_server.url
    # Within the limit, a chunked body is read whole (not cut off at the limit).
    assert _post_chunked(base + push.url, 2 * MB, {**push.auth, "Content-Type": "text/csv", "Batch-Id": "c"}) == 202
    spooled = rows(app, two_tenants.a.id, "SELECT spool_path FROM portal.ingest_runs")[0][0]
    with app.app_context():
        assert runs.Path(spooled).stat().st_size == 2 * MB
    assert _post_chunked(base + push.url, 21 * MB, {**push.auth, "Content-Type": "text/csv", "Batch-Id": "big"}) == 413
    assert _post_chunked(f"{base}/api/v1/t/{two_tenants.a.ags}/feedback/k2", 9 * 1024,
                         {"Content-Type": "application/json", "Origin": "https://www.marburg.de"}) == 413
    cookie = push.admin.get_cookie(app.config["SESSION_COOKIE_NAME"])
    status = _post_chunked(f"{base}/t/{two_tenants.a.ags}/data/upload", 70 * MB, {
        "Content-Type": "multipart/form-data; boundary=xyz", "Cookie": f"{cookie.key}={cookie.value}",
        "X-CSRFToken": push.admin.environ_base["HTTP_X_CSRFTOKEN"]})
    assert status in (413, None)  # refused, or cut off by the server after its answer
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM portal.ingest_runs WHERE data_source_id = :s",
                s=upload_source) == [(0,)]
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM portal.ingest_runs") == [(1,)]
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.feedback") == [(0,)]


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                        max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                      st.fixed_dictionaries({"rating": JSON_VALUES, "comment": JSON_VALUES, "service_key": JSON_VALUES,
                                             "token": JSON_VALUES, "website": JSON_VALUES}
                                            ).map(lambda v: json.dumps(v).encode())),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
       address=st.integers(1, 250))
def test_no_body_makes_the_feedback_endpoint_fail(app, two_tenants, feedback_key, body, content_type, address):
    response = app.test_client().post(
        f"/api/v1/t/{two_tenants.a.ags}/feedback/{feedback_key}", data=body,
        headers={"Content-Type": content_type, "Origin": "https://www.marburg.de"},
        environ_base={"REMOTE_ADDR": f"10.0.{address}.1"})
    assert response.status_code in (400, 429)


@pytest.fixture
def feedback_key(app, two_tenants):
    with app.app_context():
        add_source(two_tenants.a.id, "Widget", kind="feedback",
                   config={"public_key": "fuzz", "allowed_origins": ["https://www.marburg.de"]})
    return "fuzz"
