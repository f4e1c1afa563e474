"""Editors reach Superset through the portal (OIDC, no second password) and stay in their tenant, even in SQL Lab."""

from __future__ import annotations

import re
import secrets
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
import requests
from sqlalchemy import text

from tests.superset.conftest import add_user
from tests.superset.test_embedding import session_cookie


@pytest.fixture(scope="module")
def every_table_has_both(tenants_ab, owner_engine, app_engine):
    """A row of each tenant in the analytics tables the demo figures leave empty."""
    now = datetime.now(UTC)
    for tenant in (tenants_ab.a, tenants_ab.b):
        with app_engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)})
            conn.execute(text("SELECT analytics.ensure_event_partition(CAST(:d AS date))"), {"d": now.date()})
            conn.execute(text(
                "INSERT INTO analytics.process_events (tenant_id, occurred_at, event_id, data_source_id, service_key, "
                "event_type) VALUES (:t, :at, :e, 0, '99050012104000', 'started')"),
                {"t": tenant.id, "at": now, "e": uuid.uuid4()})
            conn.execute(text(
                "INSERT INTO analytics.daily_aggregates (tenant_id, data_source_id, day, service_key, measure, value) "
                "VALUES (:t, 0, :d, '99050012104000', 'started', 5) ON CONFLICT DO NOTHING"),
                {"t": tenant.id, "d": now.date()})
    with owner_engine.connect() as conn:
        return conn.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition "
            "ORDER BY 1")).scalars().all()


def sso_session(ss_app, ss_live_server, superset_url: str, identity: str) -> tuple[requests.Session, requests.Response]:
    """A browser-like session: signed in to the portal, then "Eigene Auswertungen erstellen"."""
    http = requests.Session()
    cookie = session_cookie(ss_app, identity)
    http.cookies.set(cookie["name"], cookie["value"], domain="127.0.0.1", path="/")
    response = http.get(f"{ss_live_server.url}/t/{identity_ags(ss_app, identity)}/self-service", timeout=60)
    return http, response


def identity_ags(ss_app, identity: str) -> str:
    from tenants.context import platform_transaction
    from tenants.models import Tenant

    tenant_id = int(identity.split(":")[1])
    with ss_app.app_context(), platform_transaction() as session:
        return session.get(Tenant, tenant_id).ags


def sqllab(http: requests.Session, superset_url: str, database_id: int, sql: str) -> requests.Response:
    if "X-CSRFToken" not in http.headers:
        csrf = http.get(superset_url + "/api/v1/security/csrf_token/", timeout=30)
        http.headers["X-CSRFToken"] = csrf.json()["result"]
        http.headers["Referer"] = superset_url
    return http.post(superset_url + "/api/v1/sqllab/execute/", timeout=60, json={
        "database_id": database_id, "sql": sql, "schema": "analytics", "runAsync": False,
        "client_id": secrets.token_hex(5), "queryLimit": 1000})


@pytest.fixture(scope="module")
def editor_a(ss_app, ss_live_server, tenants_ab, superset):
    http, response = sso_session(ss_app, ss_live_server, superset, add_user(ss_app, tenants_ab.a, "editor"))
    assert response.status_code == 200, response.text[:300]
    return http


def test_editor_signs_in_to_superset_without_a_password(editor_a, superset, tenants_ab):
    me = editor_a.get(superset + "/api/v1/me/roles/", timeout=30)
    assert me.status_code == 200
    roles = set(me.json()["result"]["roles"])
    assert {f"tenant_{tenants_ab.a.ags}_editor", "egov_editor", "sql_lab"} <= roles
    assert "Gamma" not in roles
    assert not any(tenants_ab.b.ags in role for role in roles)
    databases = editor_a.get(superset + "/api/v1/database/", timeout=30).json()["result"]
    assert [d["database_name"] for d in databases] == [f"tenant_{tenants_ab.a.ags}"]
    datasets = editor_a.get(superset + "/api/v1/dataset/", timeout=30).json()["result"]
    assert datasets and {d["database"]["database_name"] for d in datasets} == {f"tenant_{tenants_ab.a.ags}"}


def test_editors_choose_among_datasets_with_german_names(editor_a, superset):
    """Building a chart starts with choosing a dataset: editors see German names ("Dienste je Tag", not
    egov_service_daily), in the list and above the chart editor's columns, and German column and metric names."""
    from tenants.superset import templates

    datasets = editor_a.get(superset + "/api/v1/dataset/", params={"q": "(page_size:100)"}, timeout=30).json()["result"]
    names = sorted(d["table_name"] for d in datasets)
    assert "Dienste je Tag" in names and [name for name in names if "_" in name or name.islower()] == []
    assert names == sorted(spec["name"] for spec in templates.datasets().values())
    for dataset in datasets:
        shown = editor_a.get(superset + "/api/v1/explore/", timeout=30, params={
            "datasource_type": "table", "datasource_id": dataset["id"]}).json()["result"]["dataset"]
        assert shown["name"] == dataset["table_name"]  # the chart editor's heading, without a schema before it
        assert [c["column_name"] for c in shown["columns"] if not c["verbose_name"]] == []
        assert [m["verbose_name"] for m in shown["metrics"]] == ["Anzahl Zeilen"]
    charts = editor_a.get(superset + "/api/v1/chart/", params={"q": "(page_size:100)"}, timeout=30).json()["result"]
    assert charts and {c["datasource_name_text"] for c in charts} <= set(names)  # the chart list's dataset column


def test_viewers_do_not_get_into_superset(ss_app, ss_live_server, tenants_ab, superset):
    http, response = sso_session(ss_app, ss_live_server, superset, add_user(ss_app, tenants_ab.a, "viewer",
                                                                          subject="viewer-sso"))
    assert response.status_code == 403
    # Nor by going to the authorization endpoint directly, the way Superset would send them.
    authorize = http.get(ss_live_server.url + "/oauth/authorize", allow_redirects=False, timeout=30, params={
        "response_type": "code", "client_id": "superset", "redirect_uri": superset + "/oauth-authorized/portal",
        "scope": "openid email profile", "state": "s", "nonce": "n", "code_challenge": "x" * 43,
        "code_challenge_method": "S256"})
    assert authorize.status_code == 403


def test_sql_lab_sees_only_the_editors_tenant_in_every_analytics_table(editor_a, superset, tenants_ab,
                                                                       every_table_has_both, ss_app):
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        database_id = load_state(tenants_ab.a.id)["database_id"]
    for table in every_table_has_both:
        # Table names come from pg_catalog; this is the query an editor would type.
        response = sqllab(editor_a, superset, database_id, f"SELECT DISTINCT tenant_id FROM analytics.{table}")  # noqa: S608
        assert response.status_code == 200, (table, response.text[:300])
        assert [row["tenant_id"] for row in response.json()["data"]] == [tenants_ab.a.id], table


def test_sql_lab_lists_only_the_schemas_the_tenant_reads(editor_a, superset, tenants_ab, ss_app):
    """SQL Lab offered the schemas portal and public (PostgreSQL lists every schema's name), which then answered
    "permission denied" in English (a walk-through)."""
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        database_id = load_state(tenants_ab.a.id)["database_id"]
    answer = editor_a.get(f"{superset}/api/v1/database/{database_id}/schemas/", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert sorted(answer.json()["result"]) == ["analytics", "benchmark"]


@pytest.mark.parametrize("widen", ["SET app.tenant_id = '{b}'", "SET ROLE {group}", "SET ROLE {app}",
                                   "RESET ROLE", "SET SESSION AUTHORIZATION {app}",
                                   "SELECT set_config('app.tenant_id', '{b}', false)"])
def test_sql_lab_refuses_what_would_widen_the_session(editor_a, superset, tenants_ab, ss_app, superset_settings,
                                                      widen):
    """SQL Lab runs reading queries only; anything that changes the session is refused in German."""
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        database_id = load_state(tenants_ab.a.id)["database_id"]
    statement = widen.format(b=tenants_ab.b.id, group=superset_settings.database_name + "_ss_readers",
                             app=superset_settings.app_role)
    response = sqllab(editor_a, superset, database_id,
                      f"{statement};\nSELECT DISTINCT tenant_id FROM analytics.rollup_service_daily")
    assert "data" not in response.json()
    message = response.json()["errors"][0]["message"]
    assert "nicht erlaubt" in message or "nur lesende Abfragen" in message, message


@pytest.mark.parametrize("widen", ["SET app.tenant_id = '{b}'", "SET ROLE {group}",
                                   "SELECT set_config('app.tenant_id', '{b}', false)"])
def test_database_role_cannot_widen_itself(ss_app, tenants_ab, superset_settings, widen):
    """The same, straight on the database as the tenant's login role, without Superset in between."""
    from tenants import crypto
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        state = load_state(tenants_ab.a.id)
    password = crypto.decrypt(superset_settings, state["db_password"])
    host = re.search(r"@([^:/]+):(\d+)", superset_settings.admin_database_url)
    with psycopg.connect(host=host.group(1), port=int(host.group(2)), dbname=superset_settings.database_name,
                         user=state["db_role"], password=password, autocommit=True) as conn:
        statement = widen.format(b=tenants_ab.b.id, group=superset_settings.database_name + "_ss_readers")
        if "set_config" in statement:  # egov db bootstrap takes set_config from PUBLIC
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        else:
            conn.execute(statement)
        rows = conn.execute("SELECT DISTINCT tenant_id FROM analytics.rollup_service_daily").fetchall()
        assert rows in ([(tenants_ab.a.id,)], [])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SET ROLE {superset_settings.app_role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM portal.users")


def test_editor_builds_a_chart_on_own_data_but_never_reads_the_other_tenants(editor_a, superset, tenants_ab, ss_app):
    import json

    from tenants.superset.provision import load_state

    with ss_app.app_context():
        own, other = load_state(tenants_ab.a.id), load_state(tenants_ab.b.id)
    csrf = editor_a.get(superset + "/api/v1/security/csrf_token/", timeout=30).json()["result"]
    headers = {"X-CSRFToken": csrf, "Referer": superset}
    metric = {"expressionType": "SQL", "sqlExpression": "SUM(started)", "label": "Begonnen"}

    def create(dataset_id: int) -> requests.Response:
        params = {"datasource": f"{dataset_id}__table", "viz_type": "big_number_total", "metric": metric}
        return editor_a.post(superset + "/api/v1/chart/", headers=headers, timeout=30, json={
            "slice_name": "Meine Auswertung", "viz_type": "big_number_total", "datasource_id": dataset_id,
            "datasource_type": "table", "params": json.dumps(params)})

    def data(dataset_id: int) -> requests.Response:
        return editor_a.post(superset + "/api/v1/chart/data", headers=headers, timeout=60, json={
            "datasource": {"id": dataset_id, "type": "table"}, "force": True, "result_format": "json",
            "result_type": "full", "queries": [{"columns": ["tenant_id"], "metrics": [metric], "row_limit": 10}]})

    created = create(own["datasets"]["egov_service_daily"])
    assert created.status_code == 201, created.text[:300]
    editor_a.delete(f"{superset}/api/v1/chart/{created.json()['id']}", headers=headers, timeout=30)
    mine = data(own["datasets"]["egov_service_daily"])
    assert mine.status_code == 200 and [r["tenant_id"] for r in mine.json()["result"][0]["data"]] == [tenants_ab.a.id]

    # Neither saving a chart on the other tenant's dataset nor reading it: for A's editor it does not exist.
    foreign = create(other["datasets"]["egov_service_daily"])
    assert foreign.status_code in (400, 403, 404, 422), foreign.text[:300]
    refused = data(other["datasets"]["egov_service_daily"])
    assert refused.status_code in (403, 404) and "result" not in refused.json()


def test_editors_see_samples_of_their_own_rows_only(editor_a, superset, tenants_ab, ss_app):
    """The chart editor's "Beispiele" tab (Superset's samples endpoint) answers, with the tenant's rows only."""
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        dataset_id = load_state(tenants_ab.a.id)["datasets"]["egov_service_daily"]
    answer = editor_a.post(superset + "/datasource/samples", headers=_csrf_headers(editor_a, superset), timeout=60,
                           params={"datasource_id": dataset_id, "datasource_type": "table", "per_page": 1000},
                           json={})
    assert answer.status_code == 200, answer.text[:300]
    rows = answer.json()["result"]["data"]
    assert rows and {row["tenant_id"] for row in rows} == {tenants_ab.a.id}


def test_editor_clicks_through_to_superset_in_the_browser(ss_app, ss_live_server, tenants_ab, browser, superset):
    from tests.superset.conftest import ARTIFACTS

    context = browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 1000})
    context.add_cookies([session_cookie(ss_app, add_user(ss_app, tenants_ab.a, "editor", subject="editor-ui"))])
    page = context.new_page()
    try:
        page.goto(f"{ss_live_server.url}/t/{tenants_ab.a.ags}/dashboards/")
        page.locator("#main").get_by_role("link", name="Eigene Auswertungen erstellen").click()
        page.wait_for_url(f"{superset}/chart/add**", timeout=60_000)
        page.wait_for_load_state("networkidle")
        # The first choice is the dataset: its list shows the German names.
        page.get_by_role("combobox").first.click()
        page.get_by_text("Dienste je Tag").first.wait_for(timeout=30_000)
        choices = page.locator(".ant-select-dropdown").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "self_service_chart_add_tenant_a.png"))
        roles = page.evaluate("async () => (await (await fetch('/api/v1/me/roles/')).json()).result.roles")
    finally:
        context.close()
    assert f"tenant_{tenants_ab.a.ags}_editor" in roles
    assert "Dienste je Tag" in choices and "egov_" not in choices, choices


@contextmanager
def _editor_in_superset(ss_app, ss_live_server, tenants_ab, browser, superset: str, subject: str):
    """A Chromium page of a new editor of tenant A, signed in to Superset through the portal (German)."""
    context = browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 1000})
    context.add_cookies([session_cookie(ss_app, add_user(ss_app, tenants_ab.a, "editor", subject=subject))])
    page = context.new_page()
    try:
        page.goto(f"{ss_live_server.url}/t/{tenants_ab.a.ags}/self-service")
        page.wait_for_url(f"{superset}/**", timeout=60_000)
        yield page
    finally:
        context.close()


def test_editors_see_their_database_as_own_data_not_its_key(ss_app, ss_live_server, tenants_ab, browser, superset):
    """The tenant's database is named tenant_<AGS> (its isolation key); SQL Lab's database choice and the
    dataset list show "Eigene Daten" instead, while the SQL typed in the editor stays as typed."""
    from tests.superset.conftest import ARTIFACTS

    key = f"tenant_{tenants_ab.a.ags}"
    with _editor_in_superset(ss_app, ss_live_server, tenants_ab, browser, superset, "editor-db-name") as page:
        page.goto(f"{superset}/tablemodelview/list/")
        page.get_by_text("Dienste je Tag").first.wait_for(timeout=60_000)
        datasets = page.locator("body").inner_text()
        page.goto(f"{superset}/sqllab/")
        page.get_by_text("Registerkarte hinzufügen").first.click(timeout=60_000)
        page.get_by_text("Eigene Daten").first.wait_for(timeout=30_000)  # the query tab's database
        page.locator(".ace_text-input").first.focus()
        page.keyboard.type(f"SELECT '{key}'")
        page.locator(".ace_content").filter(has_text=key).first.wait_for(timeout=10_000)
        page.wait_for_timeout(2500)  # Superset validates typed SQL after a pause (when a validator is set)
        sqllab = page.locator("body").inner_text()
        error_marks = page.locator(".ace_gutter-cell.ace_error").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "self_service_sqllab_own_data.png"))
    assert "Eigene Daten" in datasets and key not in datasets, datasets[:2000]
    assert key not in sqllab.replace(f"SELECT '{key}'", ""), sqllab[:2000]
    assert error_marks == 0  # valid SQL is not marked as an error (the validator needed ecpg, absent)


def test_supersets_settings_menu_offers_no_page_the_editor_may_not_open(editor_a, superset):
    """"Einstellungen → Info" opened a bare JSON 403 (a walk-through): the menu no longer links it."""
    import json

    page = editor_a.get(superset + "/chart/list/", timeout=30).text
    bootstrap = json.loads(re.search(r'id="app"[^>]*data-bootstrap="([^"]*)"', page).group(1)
                           .replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))
    assert bootstrap["common"]["menu_data"]["navbar_right"].get("user_info_url") is None


def test_signing_out_of_superset_leads_to_the_portal(ss_app, ss_live_server, tenants_ab, browser, superset):
    with _editor_in_superset(ss_app, ss_live_server, tenants_ab, browser, superset, "editor-sign-out") as page:
        page.goto(f"{superset}/logout/")
        page.wait_for_load_state("networkidle")
        landed = page.url
        text_shown = page.locator("body").inner_text()
    assert landed.startswith(ss_live_server.url) and "/t/" in landed, landed  # the tenant's start page
    assert "Anmelden mit" not in text_shown


#: A metric with a thousands group and a fraction, whatever tenant A's figures are.
GROUPED_METRIC = {"expressionType": "SQL", "sqlExpression": "SUM(started) * 1000 + 1000.25", "label": "Begonnen"}


def _csrf_headers(http: requests.Session, superset_url: str) -> dict[str, str]:
    csrf = http.get(superset_url + "/api/v1/security/csrf_token/", timeout=30).json()["result"]
    return {"X-CSRFToken": csrf, "Referer": superset_url}


def test_new_charts_start_with_the_locales_number_format_and_saved_charts_keep_theirs(editor_a, superset,
                                                                                      tenants_ab, ss_app):
    """Superset's built-in default ("SMART_NUMBER") writes 16.2k and 0.684 in English whatever the locale.
    Every kind of new chart starts with grouped numbers instead; a saved chart keeps the format it was saved with."""
    import json

    from tenants.superset.provision import load_state

    with ss_app.app_context():
        dataset_id = load_state(tenants_ab.a.id)["datasets"]["egov_service_daily"]
    for viz_type in ("big_number_total", "pie", "echarts_timeseries_bar", "mixed_timeseries", "table"):
        answer = editor_a.get(superset + "/api/v1/explore/", timeout=30, params={
            "datasource_type": "table", "datasource_id": dataset_id, "viz_type": viz_type}).json()
        form_data = answer["result"]["form_data"]
        # grouped thousands, at most two decimals, in the page's locale (superset_config/portal_ui.py)
        assert form_data["y_axis_format"] == form_data["number_format"] == ",.2~f", viz_type

    headers = _csrf_headers(editor_a, superset)
    params = {"datasource": f"{dataset_id}__table", "viz_type": "big_number_total", "metric": GROUPED_METRIC,
              "y_axis_format": "SMART_NUMBER"}
    created = editor_a.post(superset + "/api/v1/chart/", headers=headers, timeout=30, json={
        "slice_name": "Kurzform gewählt", "viz_type": "big_number_total", "datasource_id": dataset_id,
        "datasource_type": "table", "params": json.dumps(params)})
    assert created.status_code == 201, created.text[:300]
    try:
        saved = editor_a.get(superset + "/api/v1/explore/", timeout=30,
                             params={"slice_id": created.json()["id"]}).json()["result"]["form_data"]
    finally:
        editor_a.delete(f"{superset}/api/v1/chart/{created.json()['id']}", headers=headers, timeout=30)
    assert saved["y_axis_format"] == "SMART_NUMBER" and "number_format" not in saved


def _explore(page, superset: str, dataset_id: int, form_data: dict) -> None:
    """Open an unsaved exploration of ``form_data`` on the dataset, as Superset keeps one while an editor works."""
    import json

    form_data = {"datasource": f"{dataset_id}__table", **form_data}
    key = page.evaluate("""async ([datasetId, formData]) => {
        const csrf = (await (await fetch('/api/v1/security/csrf_token/')).json()).result;
        const answer = await fetch('/api/v1/explore/form_data', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf},
            body: JSON.stringify({datasource_id: datasetId, datasource_type: 'table', form_data: formData})});
        return (await answer.json()).key;
    }""", [dataset_id, json.dumps(form_data)])
    assert key
    page.goto(f"{superset}/explore/?form_data_key={key}")


def test_the_data_under_an_editors_chart_reads_in_german(ss_app, ss_live_server, tenants_ab, browser, superset):
    """The editor's data pane shows Superset's raw values ("day", "2026-08-01 00:00:00", "341000.25", "1k rows");
    the editor reads "Tag", "01.08.2026", "341.000,25" and "1.000 Zeilen"."""
    from tenants.superset.provision import load_state
    from tests.superset.conftest import ARTIFACTS

    with ss_app.app_context():
        dataset_id = load_state(tenants_ab.a.id)["datasets"]["egov_service_daily"]
    with _editor_in_superset(ss_app, ss_live_server, tenants_ab, browser, superset, "editor-data-pane") as page:
        _explore(page, superset, dataset_id, {"viz_type": "echarts_timeseries_bar", "metrics": [GROUPED_METRIC],
                                              "x_axis": "day", "time_grain_sqla": "P1M", "time_range": "No filter",
                                              "groupby": ["service"]})
        page.get_by_text("Ergebnisse", exact=True).first.click(timeout=60_000)
        cells = page.locator(".ag-cell[col-id='day'] .ag-cell-value")
        cells.first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)  # the script rewrites after the grid's last mutation
        headers = page.locator(".ag-header-cell-text").all_inner_texts()
        days = cells.all_inner_texts()
        figures = page.locator(".ag-cell:not([col-id='day']):not([col-id='-1']) .ag-cell-value").all_inner_texts()
        limit = page.locator(".ant-select-selection-item").filter(has_text="Zeilen").first.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "self_service_data_pane.png"))
    assert "Tag" in headers and "day" not in headers, headers
    assert days and all(re.fullmatch(r"01\.\d{2}\.\d{4}", day) for day in days), days
    assert figures and all(re.fullmatch(r"\d{1,3}(\.\d{3})+,25", figure) for figure in figures), figures
    assert limit == "1.000 Zeilen", limit


def test_the_editor_script_writes_what_the_grid_and_the_row_count_say_in_german(superset, browser):
    """What Superset and AG Grid write themselves, in English, as the script on every Superset page finds it:
    a count cell "16,482", a row count "5.03k Zeilen", the grid's "No Matching Rows" (met in a walk-through)."""
    page_html = requests.get(f"{superset}/login/", headers={"Accept-Language": "de"}, timeout=30).text
    script = next(s for s in re.findall(r"<script nonce=\"[^\"]+\">(.*?)</script>", page_html, flags=re.S)
                  if "MutationObserver" in s and "tenant_" in s)
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    try:
        page.set_content("<html><body><main></main></body></html>")
        page.add_script_tag(content=script)
        page.evaluate("""() => document.querySelector('main').innerHTML = `
            <div class="ag-cell" col-id="SUM(Begonnen)"><span class="ag-cell-value">16,482</span></div>
            <div class="ag-cell" col-id="service_key"><span class="ag-cell-value">99102013104000</span></div>
            <span data-test="row-count-label">5.03k Zeilen</span>
            <div class="ag-overlay"><span>No Matching Rows</span></div>
            <div class="ant-tabs-tab"><span>Untitled Query 1</span></div>`""")
        page.wait_for_timeout(300)
        shown = page.evaluate("""() => [...document.querySelectorAll(
            '.ag-cell-value, [data-test=row-count-label], .ag-overlay span, .ant-tabs-tab span')]
            .map(e => e.textContent)""")
    finally:
        context.close()
    assert shown == ["16.482", "99102013104000", "5,03 Tsd. Zeilen", "Keine passenden Zeilen",
                     "Unbenannte Abfrage 1"], shown


def test_an_editors_new_chart_shows_german_numbers_in_the_browser(ss_app, ss_live_server, tenants_ab, browser,
                                                                  superset):
    """What the editor sees in the chart editor: a new big number with a metric chosen reads "37.000,25",
    not "37k", and its time filter "Tag (Kein Filter)", not "day (No filter)" (an unsaved exploration, as
    Superset keeps it while the editor works, opened in Chromium)."""

    from tenants.superset.provision import load_state
    from tests.superset.conftest import ARTIFACTS

    with ss_app.app_context():
        dataset_id = load_state(tenants_ab.a.id)["datasets"]["egov_service_daily"]
    with _editor_in_superset(ss_app, ss_live_server, tenants_ab, browser, superset, "editor-numbers") as page:
        _explore(page, superset, dataset_id, {"viz_type": "big_number_total", "metric": GROUPED_METRIC,
                                              "time_range": "No filter"})
        number = page.locator(".header-line").first
        number.wait_for(timeout=60_000)
        shown = number.inner_text().strip()
        # The time filter Superset adds to a new chart: named by its column's label, "No filter" in German.
        time_filter = page.locator("[data-test='option-label']").filter(has_text="Filter").first.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "self_service_new_chart_numbers.png"))
    assert re.fullmatch(r"\d{1,3}(\.\d{3})+,25", shown), shown
    assert time_filter.strip() == "Tag (Kein Filter)", time_filter


def test_supersets_logo_leads_back_to_the_portal(editor_a, superset, ss_live_server, tenants_ab):
    """Superset's own pages (chart editor, SQL Lab) have no menu of the portal: their logo is the way back,
    to the editor's start page in the portal."""
    import html
    import json

    def tokens(value):
        if isinstance(value, dict):
            yield value
            for inner in value.values():
                yield from tokens(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from tokens(inner)

    page = editor_a.get(superset + "/chart/add", timeout=30).text
    bootstrap = json.loads(html.unescape(re.search(r'data-bootstrap="([^"]*)"', page).group(1)))
    hrefs = {t["brandLogoHref"] for t in tokens(bootstrap) if "brandLogoHref" in t}
    assert hrefs == {f"{ss_live_server.url}/start"}
    back = editor_a.get(f"{ss_live_server.url}/start", allow_redirects=False, timeout=30)
    assert back.headers["Location"].endswith(f"/t/{tenants_ab.a.ags}/")
