"""Push API tokens belong to one data source, and events without an id keep a stable identity.

Rules from docs/data-format.md ("Push API", "Keeping sources and services in order", column
``event_id``): a push is authorised by the bearer token *of that data source*; the status URL of a
batch answers only with the token of the source that sent it; a paused source refuses pushes; and
an event without ``event_id`` gets an id derived from the row (source, time, all values, row
number), so re-sending the same rows stores them once.
"""

from __future__ import annotations

from tests.ingest.conftest import HUNDESTEUER, rows, sign_in
from tests.ingest.test_upload_and_api import _push_source, work


def _batch(batch_id: str, *events: dict) -> dict:
    return {"batch_id": batch_id, "events": list(events)}


def _event(at: str, session: str = "s1", event_type: str = "started") -> dict:
    return {"occurred_at": at, "service_key": HUNDESTEUER, "event_type": event_type, "session_id": session}


def _api(app, ags: str, source_id: int, token: str):
    client = app.test_client()
    url = f"/api/v1/t/{ags}/sources/{source_id}/batches"
    headers = {"Authorization": f"Bearer {token}"}
    return client, url, headers


def _stored(app, tenant_id: int) -> tuple[int, int]:
    """(process events, ingest runs) stored for the tenant."""
    events = rows(app, tenant_id, "SELECT count(*) FROM analytics.process_events")[0][0]
    runs = rows(app, tenant_id, "SELECT count(*) FROM portal.ingest_runs")[0][0]
    return events, runs


def _two_push_sources(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    x = _push_source(app, admin, two_tenants.a.ags)
    # A second push source of the same tenant; its own name (the form refuses a duplicate name).
    response = admin.post(f"/t/{two_tenants.a.ags}/data/sources", data={"name": "Zweites Fachverfahren",
                                                                          "kind": "push", "profile": "canonical"})
    y_url = response.headers["Location"]
    page = admin.post(y_url + "/token").get_data(as_text=True)
    y_token = page.split('id="new-token">', 1)[1].split("<", 1)[0]
    return admin, x, (int(y_url.rsplit("/", 1)[1]), y_token, y_url)


def test_a_token_of_one_source_is_refused_for_another_source_of_the_same_tenant(app, two_tenants):
    _, (x_id, x_token, _), (y_id, y_token, _) = _two_push_sources(app, two_tenants)
    client, y_url, _ = _api(app, two_tenants.a.ags, y_id, y_token)
    response = client.post(y_url, json=_batch("b1", _event("2026-03-02T09:00:00+01:00")),
                           headers={"Authorization": f"Bearer {x_token}"})
    assert response.status_code == 401
    assert _stored(app, two_tenants.a.id) == (0, 0)
    # Its own token is accepted (the refusal above is about the token, not the batch).
    assert client.post(y_url, json=_batch("b1", _event("2026-03-02T09:00:00+01:00")),
                       headers={"Authorization": f"Bearer {y_token}"}).status_code == 202


def test_a_batch_status_is_read_only_with_the_token_of_its_own_source(app, two_tenants):
    _, (x_id, x_token, _), (y_id, y_token, _) = _two_push_sources(app, two_tenants)
    client, y_url, y_auth = _api(app, two_tenants.a.ags, y_id, y_token)
    accepted = client.post(y_url, json=_batch("b1", _event("2026-03-02T09:00:00+01:00")), headers=y_auth)
    assert accepted.status_code == 202
    run_id = accepted.get_json()["run_id"]
    x_auth = {"Authorization": f"Bearer {x_token}"}
    # Y's status URL with X's token ...
    assert client.get(f"{y_url}/{run_id}", headers=x_auth).status_code == 401
    # ... and Y's run under X's URL with X's token: no such batch for X.
    x_url = f"/api/v1/t/{two_tenants.a.ags}/sources/{x_id}/batches"
    assert client.get(f"{x_url}/{run_id}", headers=x_auth).status_code == 404
    assert client.get(f"{y_url}/{run_id}", headers=y_auth).status_code == 200


def test_a_paused_source_refuses_pushes_and_stores_nothing(app, two_tenants):
    admin, (x_id, x_token, x_source_url), _ = _two_push_sources(app, two_tenants)
    client, url, auth = _api(app, two_tenants.a.ags, x_id, x_token)
    paused = admin.post(x_source_url + "/settings", data={"name": "Formularserver"})  # "active" unticked: paused
    assert paused.status_code == 302, paused.get_data(as_text=True)
    assert rows(app, two_tenants.a.id, "SELECT active FROM portal.data_sources WHERE id = :i", i=x_id) == [(False,)]
    response = client.post(url, json=_batch("while-paused", _event("2026-03-02T09:00:00+01:00")), headers=auth)
    assert response.status_code in (401, 403)
    work(app)
    assert _stored(app, two_tenants.a.id) == (0, 0)


# -- event ids derived from the row -------------------------------------------------------------

def test_events_without_an_id_sent_again_in_another_batch_are_stored_once(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    client, url, auth = _api(app, two_tenants.a.ags, source_id, token)
    events = [_event("2026-03-02T09:00:00+01:00"), _event("2026-03-02T09:04:00+01:00", event_type="submitted")]
    assert client.post(url, json=_batch("monday", *events), headers=auth).status_code == 202
    work(app)
    # The source system lost track and sends the same rows again under a new batch id.
    assert client.post(url, json=_batch("monday-again", *events), headers=auth).status_code == 202
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT status, rows_total FROM portal.ingest_runs ORDER BY id") == [
        ("succeeded", 2), ("succeeded", 2)]
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.process_events") == [(2,)]
    assert rows(app, two_tenants.a.id, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]


def test_the_same_rows_from_another_source_or_twice_in_one_batch_are_different_events(app, two_tenants):
    """The id is derived from the source and the row number too: equal rows are not always one event."""
    _, (x_id, x_token, _), (y_id, y_token, _) = _two_push_sources(app, two_tenants)
    same = _event("2026-03-02T09:00:00+01:00", session="")
    client, x_url, x_auth = _api(app, two_tenants.a.ags, x_id, x_token)
    # Two people start at the same second without a session id: two rows, two events.
    assert client.post(x_url, json=_batch("x", same, same), headers=x_auth).status_code == 202
    _, y_url, y_auth = _api(app, two_tenants.a.ags, y_id, y_token)
    assert client.post(y_url, json=_batch("y", same), headers=y_auth).status_code == 202
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT data_source_id, count(*) FROM analytics.process_events "
                                       "GROUP BY 1 ORDER BY 1") == [(x_id, 2), (y_id, 1)]
    assert rows(app, two_tenants.a.id, "SELECT started FROM analytics.rollup_service_daily") == [(3,)]


# -- what the API refuses (docs/data-format.md, OpenAPI document) -------------------------------------

def test_tokens_are_256_random_bits_and_bad_requests_are_refused_with_their_status(app, two_tenants):
    import base64

    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    assert token.startswith("egov_") and len(base64.urlsafe_b64decode(token[5:] + "=")) == 32
    client, url, auth = _api(app, two_tenants.a.ags, source_id, token)
    event = _event("2026-03-02T09:00:00+01:00")
    for batch_id in ("", 17, None, "x" * 201):
        answer = client.post(url, json={"batch_id": batch_id, "events": [event]}, headers=auth)
        assert answer.status_code == 422, (batch_id, answer.get_json())
    assert client.post(url, data="<batch/>", headers={**auth, "Content-Type": "application/xml"}).status_code == 415
    for body in ('{"batch_id": "b", "events": [', '{"batch_id": "b", "events": [1, 2]}', '["b"]',
                 '{"batch_id": "b", "events": "none"}'):
        assert client.post(url, data=body, headers={**auth, "Content-Type": "application/json"}).status_code == 422
    broken = client.post(url, data='{"batch_id": "b"', headers={**auth, "Content-Type": "application/json"})
    assert broken.get_json()["title"] == "The body is not valid JSON."
    unknown = client.post(url, json={"batch_id": "b", "events": [event], "sessions": []}, headers=auth)
    assert unknown.status_code == 422 and "sessions" in unknown.get_json()["title"]
    assert _stored(app, two_tenants.a.id) == (0, 0)


def test_csv_batch_ids_of_up_to_200_characters_and_120_pushes_a_minute(app, two_tenants):
    from tests.ingest.conftest import EVENT_HEADER

    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    client, url, auth = _api(app, two_tenants.a.ags, source_id, token)
    body = f"{EVENT_HEADER}\n,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,\n"
    csv = {**auth, "Content-Type": "text/csv"}
    assert client.post(url, data=body, headers={**csv, "Batch-Id": "x" * 201}).status_code == 422
    assert client.post(url, data=body, headers={**csv, "Batch-Id": "x" * 200}).status_code == 202
    # 120 requests per minute per source and address (two were sent above): the 121st is refused.
    statuses = [client.post(url, json={}, headers=auth).status_code for _ in range(119)]
    assert statuses[:118] == [422] * 118 and statuses[118] == 429
