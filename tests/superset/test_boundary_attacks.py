"""The attacks of issue 11, each as seen: a tenant's editor in self-service Superset against another tenant.

Fulda's editor in the issue is Marburg's (A) here; Marburg's objects are Fulda's (B). Every test
shows both that the attack fails and that what it aimed at is still there and untouched.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import text

from tests.superset.boundary import MARKER, dashboard_with_chart, leaked, world
from tests.superset.test_self_service import sqllab


@pytest.fixture(scope="module")
def w(ss_app, ss_live_server, tenants_ab, superset, app_engine):
    return world(ss_app, ss_live_server, tenants_ab, superset, app_engine)


def _rows(response) -> list[dict]:
    body = response.json()
    return [row for result in body.get("result", []) for row in result.get("data", [])]


# -- 1. a foreign chart id in one's own dashboard's layout --------------------------------------------

def test_a_chart_of_the_other_tenant_cannot_be_put_on_ones_own_dashboard(w):
    editor, b = w.editor, w.b_ids
    created = editor.request("POST", "/api/v1/dashboard/", json={
        "dashboard_title": "Mein Dashboard", "published": True, "roles": [w.state_a["roles"]["editor"]]})
    assert created.status_code == 201, created.text[:300]
    mine = created.json()["id"]
    for chart in (b["chart"], b["provisioned_chart"]):
        editor.request("PUT", f"/api/v1/dashboard/{mine}", json=dashboard_with_chart(chart))
        listed = editor.request("GET", f"/api/v1/dashboard/{mine}/charts")
        assert chart not in [c["id"] for c in listed.json().get("result", [])]
        assert not leaked(listed, w.markers)


@pytest.mark.parametrize("dataset", ["egov_service_daily", "egov_feedback"])
@pytest.mark.parametrize("result", [{"result_type": "drill_detail"}, {"result_format": "csv"},
                                    {"result_type": "samples"}, {"result_type": "full"}])
def test_the_other_tenants_rows_are_not_read_through_ones_own_dashboard(w, dataset, result):
    editor, b = w.editor, w.b_ids
    # As in the issue: a dashboard carrying the editor's own role (the way DASHBOARD_RBAC opened charts).
    mine = editor.request("POST", "/api/v1/dashboard/", json={
        "dashboard_title": "Drill", "published": True, "roles": [w.state_a["roles"]["editor"]]}).json()
    editor.request("PUT", f"/api/v1/dashboard/{mine['id']}", json=dashboard_with_chart(b["provisioned_chart"]))
    dataset_id = b["datasets"][dataset]
    response = editor.request("POST", "/api/v1/chart/data", json={
        "datasource": {"id": dataset_id, "type": "table"}, "force": True,
        "form_data": {"dashboardId": mine["id"], "slice_id": b["provisioned_chart"], "viz_type": "table",
                      "datasource": f"{dataset_id}__table"},
        "queries": [{"columns": ["tenant_id", "service", "day"], "metrics": [], "row_limit": 100}],
        "result_format": "json", "result_type": "full", **result})
    assert response.status_code in (400, 403, 404), response.text[:300]
    assert not leaked(response, w.markers) and not _rows(response)


# -- 2. a chart on the other tenant's dataset; a dashboard with its role ---------------------------

def test_no_chart_on_the_other_tenants_dataset_and_no_dashboard_with_its_roles(w):
    editor, b = w.editor, w.b_ids
    chart = editor.request("POST", "/api/v1/chart/", json={
        "slice_name": "Fremd", "viz_type": "table", "datasource_id": b["dataset"], "datasource_type": "table",
        "params": json.dumps({"datasource": f"{b['dataset']}__table", "viz_type": "table"})})
    assert chart.status_code in (400, 403, 404, 422), chart.text[:300]
    for role in (b["role"], b["editor_role"]):
        dashboard = editor.request("POST", "/api/v1/dashboard/", json={
            "dashboard_title": "Für Fulda", "published": True, "roles": [role]})
        assert dashboard.status_code in (400, 403, 404, 422), dashboard.text[:300]
    # B's staff see only what B made.
    listed = w.b_editor.request("GET", "/api/v1/chart/", params={"q": "(page_size:100)"}).json()["result"]
    assert listed and not [c for c in listed if c["slice_name"] in ("Fremd",)]


# -- 3. people, roles and the database catalogue -------------------------------------------------------

@pytest.mark.parametrize("resource", ["chart", "dataset", "dashboard"])
@pytest.mark.parametrize("column", ["owners", "created_by", "changed_by", "roles"])
def test_related_lists_name_only_the_own_tenants_people_and_roles(w, resource, column):
    response = w.editor.request("GET", f"/api/v1/{resource}/related/{column}")
    if response.status_code == 404:  # the resource has no such relation
        return
    assert response.status_code == 200, response.text[:300]
    assert not leaked(response, w.markers)
    forced = w.editor.request("GET", f"/api/v1/{resource}/related/{column}",
                              params={"q": f"(include_ids:!({w.b_ids['user']},{w.b_ids['role']}))"})
    assert not leaked(forced, w.markers)


@pytest.mark.parametrize("sql", ["SELECT rolname FROM pg_roles", "SELECT datname FROM pg_database",
                                 "SELECT usename, query FROM pg_stat_activity", "SELECT pg_get_userbyid(10)",
                                 "SELECT grantee FROM information_schema.applicable_roles"])
def test_sql_lab_does_not_list_other_tenants_roles_or_databases(w, superset, sql):
    response = sqllab(w.editor.http, superset, w.state_a["database_id"], sql)
    assert "data" not in response.json(), response.text[:300]
    assert not leaked(response, w.markers)


# -- 4. no tenant slows or blocks another --------------------------------------------------------------

def login_role(ss_app, superset_settings, tenant_id: int):
    from tenants import crypto
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        state = load_state(tenant_id)
    password = crypto.decrypt(superset_settings, state["db_password"])
    url = superset_settings.database_url
    host, port = url.split("@")[1].split("/")[0].split(":")
    return {"host": host, "port": int(port), "dbname": superset_settings.database_name,
            "user": state["db_role"], "password": password}


@pytest.mark.parametrize("statement", [
    "SET statement_timeout = 0", "SET default_transaction_read_only = off", "SET work_mem = '4GB'",
    "RESET ALL", "SELECT pg_advisory_lock(4004, {b})", "SELECT set_config('statement_timeout', '0', false)",
    "BEGIN", "LOCK TABLE analytics.rollup_service_daily", "SELECT * FROM analytics.services FOR UPDATE",
])
def test_sql_lab_refuses_what_would_lift_a_limit_or_hold_a_lock_in_german(w, superset, statement):
    response = sqllab(w.editor.http, superset, w.state_a["database_id"],
                      statement.format(b=w.b.id) + ";\nSELECT 1 AS eins")
    assert "data" not in response.json()
    message = response.json()["errors"][0]["message"]
    assert ("nicht erlaubt" in message or "nur lesende Abfragen" in message), message


def test_the_database_refuses_locks_writes_and_catalogue_to_a_login_role_even_after_set(
        w, ss_app, superset_settings):
    """SQL Lab is not the floor: straight on the database, as the tenant's login role."""
    with psycopg.connect(**login_role(ss_app, superset_settings, w.a.id), autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # PostgreSQL lets a session do this…
        for statement in (f"SELECT pg_advisory_lock(4004, {w.b.id})",  # … but not what it would be for
                          f"SELECT pg_try_advisory_xact_lock(4004, {w.b.id})",
                          "SELECT set_config('statement_timeout', '0', false)",
                          "SELECT rolname FROM pg_roles", "SELECT datname FROM pg_database",
                          "SELECT pg_get_userbyid(10)", "CREATE TEMP TABLE t (x int)",
                          "CREATE TABLE analytics.x (x int)", "CREATE TABLE public.x (x int)",
                          "DELETE FROM analytics.services", "INSERT INTO analytics.services VALUES (1)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_a_long_query_is_ended_and_the_refresh_and_the_other_tenants_load_finish(
        w, ss_app, superset_settings, tmp_path):
    """A tenant switches its timeout off and holds a lock the nightly refresh needs; the watchdog ends it."""
    from ingest_workers.watchdog import run as watchdog
    from tenants.ingest.runs import load_file
    from tests.benchmark.conftest import run_refresh
    from tests.ingest.conftest import add_source

    held = threading.Event()
    ended: list[Exception] = []

    def hold_the_figures():
        with psycopg.connect(**login_role(ss_app, superset_settings, w.a.id)) as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute("SELECT count(*) FROM benchmark.figures")  # keeps ACCESS SHARE until the end
            held.set()
            try:
                conn.execute("SELECT pg_sleep(600)")
            except psycopg.OperationalError as exc:  # terminated by the watchdog
                ended.append(exc)

    holder = threading.Thread(target=hold_the_figures, daemon=True)
    holder.start()
    assert held.wait(30)
    refreshed: list = []
    refresh = threading.Thread(target=lambda: refreshed.append(run_refresh(ss_app)), daemon=True)
    refresh.start()
    loaded: list = []

    def load_b():
        with ss_app.app_context():
            source = add_source(w.b.id, "Zähler B", profile="canonical-aggregates")
            body = "day,service_key,measure,value\n2026-03-02,99102013104000,started,10\n"
            path = tmp_path / "b.csv"
            path.write_text(body)
            loaded.append(load_file(w.b.id, source, Path(path))[1])

    loader = threading.Thread(target=load_b, daemon=True)
    loader.start()
    loader.join(120)
    assert loaded and loaded[0]["status"] == "succeeded", loaded  # B's load never waits for A's query
    with ss_app.app_context():
        watchdog(limit_seconds=2, interval_seconds=0.5, sync_every_seconds=3600, rounds=40)
    holder.join(60)
    refresh.join(300)
    assert ended, "the watchdog did not end the overrunning session"
    assert not refresh.is_alive() and refreshed, "the refresh still waits for the tenant's lock"


# -- 5. revocation reaches Superset ------------------------------------------------------------------

def _run_jobs(ss_app):
    from ingest_workers.worker import run_worker

    run_worker(ss_app, ["high"], burst=True, with_scheduler=False)


def _still_in(principal) -> bool:
    me = principal.request("GET", "/api/v1/me/")
    return me.status_code == 200


def _admin_client(ss_app, tenant, subject: str):
    from tests.ingest.conftest import client_for
    from tests.superset.conftest import add_user

    return client_for(ss_app, add_user(ss_app, tenant, "admin", subject=subject))


@pytest.mark.parametrize("change", ["deactivate", "viewer"])
def test_a_deactivated_or_demoted_editor_loses_superset_within_the_minute(
        w, ss_app, ss_live_server, superset, change):
    from tests.superset.boundary import Principal, editor_session

    http, user_id = editor_session(ss_app, ss_live_server, superset, w.a, f"revoke-{change}")
    editor = Principal(f"revoke {change}", superset, http)
    assert _still_in(editor)
    admin = _admin_client(ss_app, w.a, f"admin-revoke-{change}")
    form = {"action": "deactivate"} if change == "deactivate" else {"action": "role", "role": "viewer"}
    assert admin.post(f"/t/{w.a.ags}/admin/users/{user_id}", data=form).status_code == 302
    _run_jobs(ss_app)
    assert not _still_in(editor)
    refused = sqllab(editor.http, superset, w.state_a["database_id"], "SELECT 1 AS eins")
    assert "data" not in (refused.json() if refused.headers.get("content-type", "").startswith("application/json")
                          else {})


def test_a_suspended_tenant_loses_its_superset_sessions_and_running_queries(
        w, ss_app, ss_live_server, superset, superset_settings):
    from tests.conftest import add_operator, sign_in
    from tests.superset.boundary import Principal, editor_session

    http, _ = editor_session(ss_app, ss_live_server, superset, w.a, "revoke-suspend")
    editor = Principal("suspended", superset, http)
    running: list[Exception] = []
    started = threading.Event()

    def long_query():
        with psycopg.connect(**login_role(ss_app, superset_settings, w.a.id)) as conn:
            started.set()
            try:
                conn.execute("SET statement_timeout = 0")
                conn.execute("SELECT pg_sleep(120)")
            except psycopg.OperationalError as exc:
                running.append(exc)

    query = threading.Thread(target=long_query, daemon=True)
    query.start()
    assert started.wait(30)
    time.sleep(0.5)
    operator = ss_app.test_client()
    sign_in(operator, add_operator(ss_app, "op-suspend@betrieb.example"))
    try:
        assert operator.post(f"/operator/tenants/{w.a.ags}/status",
                             data={"action": "suspend", "reason": "Test"}).status_code == 302
        _run_jobs(ss_app)
        assert not _still_in(editor)
        query.join(30)
        assert running, "the tenant's running query was not ended"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(**login_role(ss_app, superset_settings, w.a.id)).close()
    finally:
        operator.post(f"/operator/tenants/{w.a.ags}/status", data={"action": "reactivate"})
        _run_jobs(ss_app)
    psycopg.connect(**login_role(ss_app, superset_settings, w.a.id)).close()  # back again


def test_csv_export_of_ones_own_chart_still_works(w):
    """The boundary keeps what is one's own working: a sanity check against refusing everything."""
    a = w.a_ids
    response = w.editor.request("POST", "/api/v1/chart/data", json={
        "datasource": {"id": a["dataset"], "type": "table"}, "force": True,
        "form_data": {"slice_id": a["chart"], "viz_type": "table", "datasource": f"{a['dataset']}__table"},
        "queries": [{"columns": ["service"], "metrics": [], "row_limit": 10}],
        "result_format": "csv", "result_type": "full"})
    assert response.status_code == 200, response.text[:300]
    assert list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:]
    assert MARKER not in response.text


def test_a_cte_named_like_a_table_reads_only_ones_own_rows(w, superset):
    """Superset 6.1 drops a real table named like a CTE from its checks (#42717); the login role still binds rows."""
    sql = ("WITH rollup_service_daily AS (SELECT 1 AS tenant_id) "
           "SELECT DISTINCT r.tenant_id FROM analytics.rollup_service_daily r")
    response = sqllab(w.editor.http, superset, w.state_a["database_id"], sql)
    assert response.status_code == 200, response.text[:300]
    assert [row["tenant_id"] for row in response.json()["data"]] == [w.a.id]


def test_an_expired_or_unbound_guest_token_opens_nothing(w, ss_app, superset_settings):
    from tenants.superset import guest

    dashboard = w.state_a["dashboards"]["overview"]
    expired = guest.mint(superset_settings, w.a.id, w.a.ags, dashboard["embedded_uuid"], "alt",
                         now=time.time() - 3600)
    from joserfc import jwt
    from joserfc.jwk import OctKey

    key = OctKey.import_key(superset_settings.superset_guest_secret)
    claims = jwt.decode(guest.mint(superset_settings, w.a.id, w.a.ags, dashboard["embedded_uuid"], "x"), key).claims
    unbound = jwt.encode({"alg": "HS256"}, {k: v for k, v in claims.items() if k != "tenant"}, key)
    for token in (expired, unbound):
        response = requests.get(f"{superset_settings.superset_url}/api/v1/dashboard/{dashboard['id']}",
                                headers={"X-GuestToken": token}, timeout=30)
        assert response.status_code == 401, response.text[:200]


def test_the_watchdog_catches_up_with_a_revocation_whose_job_was_lost(w, ss_app, ss_live_server, superset,
                                                                       app_engine):
    """A change made without the portal's commit hook (or a lost job): the watchdog's minute sync ends it."""
    from ingest_workers.watchdog import run as watchdog
    from tests.superset.boundary import Principal, editor_session

    http, user_id = editor_session(ss_app, ss_live_server, superset, w.a, "revoke-lost-job")
    editor = Principal("lost job", superset, http)
    assert _still_in(editor)
    with app_engine.begin() as conn:  # straight in the database: no ORM commit, so nothing is queued
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(w.a.id)})
        conn.execute(text("UPDATE portal.users SET active = false WHERE id = :u"), {"u": user_id})
    with ss_app.app_context():
        watchdog(limit_seconds=60, interval_seconds=0, sync_every_seconds=0, rounds=1)
    assert not _still_in(editor)


def test_the_deny_rule_alone_keeps_everyone_else_out(w):
    """Superset's own row rules, on their own: the service account is outside the tenant boundary and may
    read every dataset by its permissions, yet the tenant's "Base" deny rule leaves it no row."""
    dataset = w.state_a["datasets"]["egov_service_daily"]
    response = w.admin.post("/api/v1/chart/data", {
        "datasource": {"id": dataset, "type": "table"}, "force": True, "result_format": "json",
        "result_type": "full", "queries": [{"columns": ["tenant_id"], "metrics": [], "row_limit": 10}]})
    assert [row for result in response["result"] for row in result["data"]] == []
