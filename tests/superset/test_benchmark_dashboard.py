"""The "Vergleich" dashboard: a tenant sees its own groups' published figures and its own values, nothing else.

Twelve tenants in two Landkreise take part and one real refresh publishes their figures. Marburg takes
part in usage only; Fulda in usage and payment, with a peer group that includes Marburg. Whatever
Marburg's guest token asks Superset for, it gets Hessen, the Landkreis Marburg-Biedenkopf, its size
class and its own values; never Fulda's Landkreis or peer group, never payment figures, never a row
of another tenant's own values.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import text

from tests.benchmark.conftest import opt_in, run_refresh
from tests.conftest import sign_in
from tests.superset.conftest import add_user, create_tenant_with_data, remove_tenant, without_row_rules
from tests.superset.test_embedding import open_dashboard
from tests.superset.test_guest_isolation import chart_data
from tests.superset.test_self_service import sqllab, sso_session

KREIS_MR = ["06534001", "06534002", "06534003", "06534004", "06534005"]
KREIS_FD = ["06631001", "06631003", "06631012", "06631016"]
OWN_GROUPS_A = {"own", "hessen", "kreis:06534", "size:50k-100k"}
USAGE = ("usage_per_1000", "completion_rate", "abandonment_rate", "abandon_step")
COLUMNS = ["tenant_id", "day", "service_key", "group_key", "group_kind", "family", "family_code",
           "metric_key", "value", "q1", "median", "q3",
           "withheld"]


@pytest.fixture(scope="module")
def compared(ss_app, tenants_ab, owner_engine, superset_settings):
    from tenants.benchmark.groups import peer_key
    from tenants.superset.provision import load_state

    a, b = tenants_ab.a, tenants_ab.b
    others = [create_tenant_with_data(ss_app, ags, scale=1, days=100) for ags in KREIS_MR + KREIS_FD]
    opt_in(ss_app, a.id, families=("usage",))
    opt_in(ss_app, b.id, families=("usage", "payment"), peers=[*KREIS_FD, a.ags])
    for tenant in others:
        opt_in(ss_app, tenant.id, families=("usage", "payment"))
    run_refresh(ss_app)
    with ss_app.app_context():
        states = {a.id: load_state(a.id), b.id: load_state(b.id)}
        peer_b = peer_key(b.id)
    yield SimpleNamespace(a=a, b=b, states=states, peer_b=peer_b, settings=superset_settings)
    for tenant in others:
        remove_tenant(ss_app, owner_engine, tenant)
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE benchmark.figures, benchmark.groups"))


def guest_token(app, tenant, subject: str) -> str:
    """The token the portal's dashboards page fetches for the Vergleich dashboard."""
    client = app.test_client()
    sign_in(client, add_user(app, tenant, "viewer", subject=subject))
    response = client.get(f"/t/{tenant.ags}/dashboards/benchmark/guest-token")
    assert response.status_code == 200
    return response.get_json()["token"]


def benchmark_rows(compared, tenant, token: str, *, of=None, where: str = "", result_type: str = "full") -> list[dict]:
    """Every row of the comparison dataset a token gets, asking for every column (a guest may ask that)."""
    of = of or tenant
    ctx = {"settings": compared.settings, "state": compared.states[of.id]}
    query = {"columns": COLUMNS, "metrics": [], "extras": {"where": where, "having": ""}}
    if result_type != "full":
        query = {"columns": [], "metrics": []}
    response = chart_data(ctx, token, query, state="state", dashboard="benchmark", chart="figures",
                          dataset="egov_benchmark", result_type=result_type)
    assert response.status_code == 200, response.text[:500]
    return [row for result in response.json()["result"] for row in result["data"]]


def published(owner_engine, group_keys, families_metrics) -> dict:
    """benchmark.figures as the refresh wrote them: (group, service, month, metric) -> (q1, median, q3)."""
    with owner_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT group_key, service_key, month, metric, q1, median, q3 FROM benchmark.figures "
            "WHERE group_key = ANY(:groups)"), {"groups": list(group_keys)}).all()
    return {(g, s, m, metric): (q1, median, q3) for g, s, m, metric, q1, median, q3 in rows
            if families_metrics(metric)}


def own_values(app, tenant, metric: str) -> dict:
    """The tenant's own monthly values as its comparison page computes them: (service, month) -> value."""
    from tenants.benchmark.metrics import tenant_values
    from tenants.context import tenant_transaction
    from tenants.models import Region

    with app.app_context(), tenant_transaction(tenant.id) as session:
        population = session.get(Region, tenant.ags).population
        values = tenant_values(session, tenant.id, population, date.today()).values
    return {(leika, month): value.value for (leika, month, key), value in values.items() if key == metric}


def _day(row) -> date:
    """Superset sends temporal columns as epoch milliseconds."""
    return datetime.fromtimestamp(row["day"] / 1000, UTC).date()


def _same(shown, expected, scale: float = 100.0) -> bool:
    if expected is None:
        return shown is None
    return shown is not None and math.isclose(shown, expected * scale, rel_tol=1e-9)


def test_marburg_gets_its_own_groups_published_figures_and_withheld_cells_stay_empty(ss_app, compared,
                                                                                     owner_engine):
    a = compared.a
    rows = benchmark_rows(compared, a, guest_token(ss_app, a, "viewer-vergleich"))
    groups = [row for row in rows if row["group_key"] != "own"]
    assert {row["group_key"] for row in rows} == OWN_GROUPS_A
    assert {row["tenant_id"] for row in rows} == {a.id}
    # Only the usage family: Marburg does not take part in the payment comparison Fulda and the others publish.
    assert {row["family_code"] for row in groups} == {"usage"}
    # A clerk reads the kinds of group and the areas in German, the codes stay beside them.
    assert {row["family"] for row in groups} == {"Nutzung, Abschluss und Abbruch"}
    assert {row["group_kind"] for row in rows} == {"Eigene Kommune", "ganz Hessen", "Landkreis", "Größenklasse"}
    assert published(owner_engine, ["hessen"], lambda m: m.startswith("payment:"))

    expected = published(owner_engine, OWN_GROUPS_A - {"own"}, lambda m: m in USAGE)
    shown = {(r["group_key"], r["service_key"], _day(r), r["metric_key"]): r for r in groups}
    assert shown.keys() == expected.keys()
    for key, (q1, median, q3) in expected.items():
        row, scale = shown[key], 100.0 if key[3] in ("completion_rate", "abandonment_rate") else 1.0
        assert _same(row["q1"], q1, scale) and _same(row["median"], median, scale) and _same(row["q3"], q3, scale)
        if key[3] != "abandon_step":  # its figure is a step's name, not quartiles
            assert bool(row["withheld"]) == (None in (q1, median, q3))
    # The Landkreis publishes medians; its quartiles and the two-member size class are withheld, and stay empty.
    assert any(r["median"] is not None for r in groups if r["group_key"] == "kreis:06534")
    size = [r for r in groups if r["group_key"] == "size:50k-100k" and r["metric_key"] != "abandon_step"]
    assert size and all(r["median"] is None and r["value"] is None and r["withheld"] for r in size)


def test_marburg_never_sees_fuldas_landkreis_or_peer_group_even_when_asking_for_them(ss_app, compared):
    a, b = compared.a, compared.b
    wider = f"1 = 1 OR group_key IN ('kreis:06631', '{compared.peer_b}') OR tenant_id = {b.id}"
    rows = benchmark_rows(compared, a, guest_token(ss_app, a, "viewer-vergleich-wider"), where=wider)
    assert rows and {row["group_key"] for row in rows} <= OWN_GROUPS_A
    # Fulda's own token does get them: they exist, and they are Fulda's.
    fulda = benchmark_rows(compared, b, guest_token(ss_app, b, "viewer-vergleich-fulda"))
    assert {"kreis:06631", compared.peer_b} <= {row["group_key"] for row in fulda}
    assert "kreis:06534" not in {row["group_key"] for row in fulda}
    assert {row["family_code"] for row in fulda if row["group_key"] != "own"} == {"usage", "payment"}


def test_own_values_are_the_tenants_own_through_every_path(ss_app, compared):
    a, b = compared.a, compared.b
    token = guest_token(ss_app, a, "viewer-vergleich-own")
    expected = own_values(ss_app, a, "completion_rate")
    others = set(own_values(ss_app, b, "completion_rate").values())
    for rows in (benchmark_rows(compared, a, token), benchmark_rows(compared, a, token, result_type="samples"),
                 benchmark_rows(compared, a, without_row_rules(compared.settings, token))):
        own = {(r["service_key"], _day(r)): r["value"] for r in rows
               if r["group_key"] == "own" and r["metric_key"] == "completion_rate"}
        assert {r["tenant_id"] for r in rows} == {a.id}
        assert own.keys() == expected.keys() and len(own) >= 8
        assert all(math.isclose(own[key], 100 * value) for key, value in expected.items())
        assert not [v for v in own.values() if any(math.isclose(v, 100 * o) for o in others)]


def test_marburgs_token_cannot_read_fuldas_comparison_dataset(ss_app, compared):
    a, b = compared.a, compared.b
    ctx = {"settings": compared.settings, "state": compared.states[b.id]}
    response = chart_data(ctx, guest_token(ss_app, a, "viewer-vergleich-b"), {"columns": COLUMNS, "metrics": []},
                          state="state", dashboard="benchmark", chart=None, dataset="egov_benchmark")
    assert response.status_code in (403, 404) and "result" not in response.json()


def _login_role(compared, tenant):
    from tenants import crypto

    state = compared.states[tenant.id]
    host = re.search(r"@([^:/]+):(\d+)", compared.settings.admin_database_url)
    return psycopg.connect(host=host.group(1), port=int(host.group(2)), dbname=compared.settings.database_name,
                           user=state["db_role"], password=crypto.decrypt(compared.settings, state["db_password"]),
                           autocommit=True)


def test_login_role_reads_published_figures_and_groups_but_not_the_refresh_runs(compared):
    from tenants.superset.templates import datasets

    with _login_role(compared, compared.a) as conn:
        assert conn.execute("SELECT count(*) FROM benchmark.figures").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM benchmark.groups WHERE group_key = 'kreis:06631'").fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM benchmark.refresh_runs")
        conn.execute("SET default_transaction_read_only = off")  # a session may; the grants still refuse
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM benchmark.figures")
        # The dataset's own values stay the login role's tenant's, whatever the session claims to be.
        conn.execute(f"SET app.tenant_id = '{compared.b.id}'")
        sql = datasets()["egov_benchmark"]["sql"]
        found = conn.execute(f"SELECT DISTINCT tenant_id FROM ({sql}) d").fetchall()  # noqa: S608 - our template
        assert found == [(compared.a.id,)]


@pytest.fixture(scope="module")
def editor_a(ss_app, ss_live_server, compared, superset):
    http, response = sso_session(ss_app, ss_live_server, superset, add_user(ss_app, compared.a, "editor",
                                                                          subject="editor-vergleich"))
    assert response.status_code == 200, response.text[:300]
    return http


def test_sql_lab_reads_the_published_figures_but_only_own_values(editor_a, superset, compared):
    from tenants.superset.templates import datasets

    database_id = compared.states[compared.a.id]["database_id"]
    figures = sqllab(editor_a, superset, database_id, "SELECT count(*) AS n FROM benchmark.figures")
    assert figures.status_code == 200 and figures.json()["data"][0]["n"] > 0
    runs = sqllab(editor_a, superset, database_id, "SELECT * FROM benchmark.refresh_runs")
    assert runs.status_code != 200 and "permission denied" in runs.text
    sql = datasets()["egov_benchmark"]["sql"]
    own = sqllab(editor_a, superset, database_id,
                 f"SELECT DISTINCT tenant_id FROM ({sql}) d WHERE group_key = 'own'")  # noqa: S608 - our template
    assert own.status_code == 200, own.text[:300]
    assert [row["tenant_id"] for row in own.json()["data"]] == [compared.a.id]


def test_in_superset_itself_the_dataset_keeps_the_editors_groups(editor_a, superset, compared):
    """Staff who open the dashboard in Superset (not embedded) get the groups through their role's RLS rule."""
    state = compared.states[compared.a.id]
    csrf = editor_a.get(superset + "/api/v1/security/csrf_token/", timeout=30).json()["result"]
    response = editor_a.post(superset + "/api/v1/chart/data", headers={"X-CSRFToken": csrf, "Referer": superset},
                             timeout=60, json={
                                 "datasource": {"id": state["datasets"]["egov_benchmark"], "type": "table"},
                                 "force": True, "result_format": "json", "result_type": "full",
                                 "queries": [{"columns": ["tenant_id", "group_key"], "metrics": [], "row_limit": 10000,
                                              "extras": {"where": "1 = 1 OR group_key = 'kreis:06631'"}}]})
    assert response.status_code == 200, response.text[:300]
    rows = response.json()["result"][0]["data"]
    assert {row["tenant_id"] for row in rows} == {compared.a.id}
    assert {"own", "hessen", "kreis:06534"} <= {row["group_key"] for row in rows} <= OWN_GROUPS_A


def test_the_portal_lists_and_embeds_the_vergleich_dashboard(ss_app, ss_live_server, compared, browser):
    a = compared.a
    client = ss_app.test_client()
    sign_in(client, add_user(ss_app, a, "viewer", subject="viewer-vergleich-ui"))
    listing = client.get(f"/t/{a.ags}/dashboards/").get_data(as_text=True)
    assert f'href="/t/{a.ags}/dashboards/benchmark"' in listing and ">Vergleich</a>" in listing
    page = client.get(f"/t/{a.ags}/vergleich/").get_data(as_text=True)
    assert f'id="benchmark-dashboard-link" href="/t/{a.ags}/dashboards/benchmark"' in page

    chart_data_seen = open_dashboard(browser, ss_app, ss_live_server.url, a,
                                     add_user(ss_app, a, "viewer", subject="viewer-vergleich-browser"), "benchmark")
    seen = json.dumps(chart_data_seen, ensure_ascii=False)
    assert "Landkreis Marburg-Biedenkopf" in seen and "Eigene Kommune" in seen and "Hessen" in seen
    assert "Landkreis Fulda" not in seen and "Eigene Vergleichsgruppe" not in seen


def test_the_clause_takes_only_keys_the_comparison_can_produce():
    from tenants.superset.guest import benchmark_clause

    clause = benchmark_clause(["hessen", "kreis:06534", "size:50k-100k", "peer:" + "0a" * 10], ["usage"])
    assert clause == ("group_key = 'own' OR (group_key IN ('hessen', 'kreis:06534', 'peer:0a0a0a0a0a0a0a0a0a0a', "
                      "'size:50k-100k') AND family_code IN ('usage'))")
    assert benchmark_clause(["hessen"], []) == "group_key = 'own' OR (1 = 0)"
    for wrong in (["kreis:0653' OR '1'='1"], ["size:huge"], ["peer:xyz"], ["Hessen"]):
        with pytest.raises(ValueError):
            benchmark_clause(wrong)
    with pytest.raises(ValueError):
        benchmark_clause(["hessen"], ["usage') OR ('1'='1"])
