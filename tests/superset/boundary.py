"""Shared set-up of the Superset boundary tests: two tenants' principals and the other tenant's objects.

Tenant A (Marburg) acts: its editor and viewer signed in to Superset through the portal, and an
embedded guest with A's token. Tenant B (Fulda) owns, besides its provisioned database, datasets,
dashboards and roles, everything its editor can make in self-service Superset (a chart, a
dashboard holding it, a saved query, an SQL Lab query and tab, permalinks, filter and form-data
state, a cached chart result). Every one of B's objects carries :data:`MARKER` (or B's AGS or name)
so that a response leaking it is found by a plain text search.
"""

from __future__ import annotations

import json
import secrets
from datetime import date
from types import SimpleNamespace

import requests
from sqlalchemy import text

from tests.conftest import sign_in
from tests.superset.conftest import add_user
from tests.superset.test_self_service import sso_session

MARKER = "GEHEIMDIENST-FULDA"


class Principal:
    """One of A's principals in Superset: a browser-like session, or a guest token."""

    def __init__(self, name: str, base: str, http: requests.Session | None = None, guest_token: str | None = None):
        self.name, self.base = name, base
        self.http = http or requests.Session()
        if guest_token:
            self.http.headers["X-GuestToken"] = guest_token
        elif "X-CSRFToken" not in self.http.headers:
            csrf = self.http.get(base + "/api/v1/security/csrf_token/", timeout=30)
            if csrf.status_code == 200:
                self.http.headers["X-CSRFToken"] = csrf.json()["result"]
            self.http.headers["Referer"] = base

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, self.base + path, timeout=60, allow_redirects=False, **kwargs)
        except requests.ConnectionError:  # a gunicorn worker recycled under load: ask once more
            return self.http.request(method, self.base + path, timeout=60, allow_redirects=False, **kwargs)


def _ok(response: requests.Response, what: str) -> dict:
    assert response.status_code in (200, 201), f"{what}: {response.status_code} {response.text[:300]}"
    return response.json() if response.content else {}


def add_marker_data(app_engine, tenant_id: int) -> None:
    """A service of B's whose name is the marker, with a day of figures: B's rows become findable."""
    with app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        conn.execute(text("INSERT INTO analytics.services (tenant_id, service_key, name) "
                          "VALUES (:t, 'local:geheim', :n) ON CONFLICT DO NOTHING"), {"t": tenant_id, "n": MARKER})
        conn.execute(text("INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, "
                          "submitted, aborted) VALUES (:t, 'local:geheim', :d, 7, 5, 2) ON CONFLICT DO NOTHING"),
                     {"t": tenant_id, "d": date.today()})


def superset_user_id(admin, ags: str, user_id: int) -> int:
    from tenants.superset.client import rison

    query = {"filters": [{"col": "username", "opr": "eq", "value": f"{ags}:{user_id}"}]}
    found = admin.get("/api/v1/security/users/", params={"q": rison(query)})["result"]
    assert found, f"no Superset user {ags}:{user_id}"
    return found[0]["id"]


def editor_session(ss_app, ss_live_server, superset: str, tenant, subject: str):
    identity = add_user(ss_app, tenant, "editor", subject=subject)
    http, response = sso_session(ss_app, ss_live_server, superset, identity)
    assert response.status_code == 200, response.text[:300]
    return http, int(identity.split(":")[2])


def make_objects_of(editor: Principal, state: dict, marker: str = MARKER) -> dict:
    """Everything an editor can make in self-service Superset, on the editor's own tenant's objects.

    ``marker`` goes into every name, text and state, so a response that carries one is found.
    """
    MARKER = marker  # noqa: N806 - the same name as the module's, for the other tenant's own marker
    dataset = state["datasets"]["egov_service_daily"]
    database = state["database_id"]
    params = {"datasource": f"{dataset}__table", "viz_type": "table", "query_mode": "raw",
              "all_columns": ["service", "day", "started"], "row_limit": 100}
    chart = _ok(editor.request("POST", "/api/v1/chart/", json={
        "slice_name": f"{MARKER} Diagramm", "viz_type": "table", "datasource_id": dataset,
        "datasource_type": "table", "params": json.dumps(params)}), "chart")["id"]
    dashboard = _ok(editor.request("POST", "/api/v1/dashboard/", json={
        "dashboard_title": f"{MARKER} Übersicht", "published": True}), "dashboard")["id"]
    _ok(editor.request("PUT", f"/api/v1/dashboard/{dashboard}", json=dashboard_with_chart(chart)), "layout")
    saved = _ok(editor.request("POST", "/api/v1/saved_query/", json={
        "db_id": database, "label": MARKER, "schema": "analytics", "sql": f"SELECT '{MARKER}' AS marke"}),
        "saved query")["id"]
    client_id = secrets.token_hex(5)
    _ok(editor.request("POST", "/api/v1/sqllab/execute/", json={
        "database_id": database, "sql": f"SELECT '{MARKER}' AS marke_{client_id}", "schema": "analytics",
        "runAsync": False, "client_id": client_id, "queryLimit": 10}), "sql lab")
    queries = _ok(editor.request("GET", "/api/v1/query/", params={"q": "(page_size:100)"}), "queries")["result"]
    query = next(q["id"] for q in queries if client_id in (q.get("sql") or ""))
    data = _ok(editor.request("POST", "/api/v1/chart/data", json={
        "datasource": {"id": dataset, "type": "table"}, "force": True, "result_format": "json",
        "result_type": "full", "form_data": {**params, "slice_id": chart},
        "queries": [{"columns": ["service"], "metrics": [], "row_limit": 10}]}), "chart data")
    objects = {
        "database": database, "dataset": dataset, "chart": chart, "dashboard": dashboard, "saved_query": saved,
        "query": query, "client_id": client_id, "cache_key": data["result"][0].get("cache_key") or "x",
        "dashboard_permalink": _ok(editor.request("POST", f"/api/v1/dashboard/{dashboard}/permalink", json={
            "dataMask": {}, "activeTabs": [], "anchor": MARKER, "urlParams": []}), "dashboard permalink")["key"],
        "explore_permalink": _ok(editor.request("POST", "/api/v1/explore/permalink", json={
            "formData": {**params, "slice_id": chart, "adhoc_filters": [], "marke": MARKER}, "urlParams": []}),
            "explore permalink")["key"],
        "sqllab_permalink": _ok(editor.request("POST", "/api/v1/sqllab/permalink", json={
            "dbId": database, "name": MARKER, "schema": "analytics", "sql": f"SELECT '{MARKER}'", "autorun": False,
            "templateParams": ""}), "sqllab permalink")["key"],
        "filter_state": _ok(editor.request("POST", f"/api/v1/dashboard/{dashboard}/filter_state", json={
            "value": json.dumps({"marke": MARKER})}), "filter state")["key"],
        "form_data": _ok(editor.request("POST", "/api/v1/explore/form_data", json={
            "datasource_id": dataset, "datasource_type": "table", "chart_id": chart,
            "form_data": json.dumps({**params, "marke": MARKER})}), "form data")["key"],
    }
    tab = editor.request("POST", "/tabstateview/", data={"queryEditor": json.dumps({
        "name": MARKER, "dbId": database, "schema": "analytics", "autorun": False, "sql": f"SELECT '{MARKER}'",
        "queryLimit": 100})})
    objects["tab_state"] = tab.json().get("id", 0) if tab.status_code == 200 else 0
    return objects


def dashboard_with_chart(chart_id: int, *, chart_uuid: str | None = None) -> dict:
    """A dashboard layout (and the metadata's copy of it) that places one chart by its id."""
    node = {"type": "CHART", "id": "CHART-x1", "children": [], "parents": ["ROOT_ID", "GRID_ID", "ROW-x1"],
            "meta": {"chartId": chart_id, "width": 4, "height": 50, **({"uuid": chart_uuid} if chart_uuid else {})}}
    position = {"DASHBOARD_VERSION_KEY": "v2", "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": ["ROW-x1"], "parents": ["ROOT_ID"]},
                "ROW-x1": {"type": "ROW", "id": "ROW-x1", "children": ["CHART-x1"], "parents": ["ROOT_ID", "GRID_ID"],
                           "meta": {"background": "BACKGROUND_TRANSPARENT"}},
                "CHART-x1": node}
    return {"position_json": json.dumps(position), "json_metadata": json.dumps({"positions": position})}


def world(ss_app, ss_live_server, tenants_ab, superset: str, app_engine) -> SimpleNamespace:
    """A's three principals, B's objects (ids, keys, names) and the strings that betray B."""
    from tenants.superset.provision import client, load_state

    a, b = tenants_ab.a, tenants_ab.b
    add_marker_data(app_engine, b.id)
    with ss_app.app_context():
        state_a, state_b = load_state(a.id), load_state(b.id)
        admin = client()
    run = secrets.token_hex(3)  # subjects of their own: both boundary modules build a world per session
    b_http, b_user = editor_session(ss_app, ss_live_server, superset, b, f"editor-{MARKER.lower()}-{run}")
    b_editor = Principal("B editor", superset, b_http)
    b_objects = make_objects_of(b_editor, state_b)
    a_http, a_user = editor_session(ss_app, ss_live_server, superset, a, f"editor-matrix-a-{run}")
    editor = Principal("editor", superset, a_http)
    a_objects = make_objects_of(editor, state_a, marker="EIGENES-MARBURG")
    # A viewer in Superset: the portal never sends viewers there, so make one from a signed-in
    # editor whose roles the service account lowers to the viewer's (roles are read per request).
    v_http, v_user = editor_session(ss_app, ss_live_server, superset, a, f"viewer-matrix-a-{run}")
    viewer_roles = [admin.get("/api/v1/security/roles/search/", params={"q": (
        f"(filters:!((col:name,opr:eq,value:{name})))")})["result"][0]["id"]
        for name in ("egov_viewer", f"tenant_{a.ags}_viewer")]
    admin.put(f"/api/v1/security/users/{superset_user_id(admin, a.ags, v_user)}", {"roles": viewer_roles})
    viewer = Principal("viewer", superset, v_http)
    portal = ss_app.test_client()  # the token the portal's dashboards page fetches for A's viewers
    sign_in(portal, add_user(ss_app, a, "viewer", subject=f"guest-matrix-a-{run}"))
    token = portal.get(f"/t/{a.ags}/dashboards/overview/guest-token").get_json()["token"]
    guest = Principal("guest", superset, guest_token=token)
    b_superset_user = superset_user_id(admin, b.ags, b_user)
    b_ids = {**b_objects, "user": b_superset_user,
             "role": state_b["roles"]["viewer"], "editor_role": state_b["roles"]["editor"],
             "provisioned_dashboard": state_b["dashboards"]["overview"]["id"],
             "provisioned_chart": next(iter(state_b["dashboards"]["overview"]["charts"].values())),
             "embedded_uuid": state_b["dashboards"]["overview"]["embedded_uuid"],
             "datasets": state_b["datasets"]}
    b_ids["column"], b_ids["metric"] = _first_column_and_metric(admin, b_ids["dataset"])
    rules = admin.get("/api/v1/rowlevelsecurity/", params={"q": f"(filters:!((col:name,opr:sw,value:tenant_{b.ags})))"})
    b_ids["rls"] = rules["result"][0]["id"] if rules["result"] else 0
    return SimpleNamespace(a=a, b=b, state_a=state_a, state_b=state_b, admin=admin, b_ids=b_ids, a_ids=a_objects,
                           principals=[editor, viewer, guest], editor=editor, viewer=viewer, guest=guest,
                           b_editor=b_editor, markers=[MARKER.lower(), b.ags, "fulda"])


def _first_column_and_metric(admin, dataset_id: int) -> tuple[int, int]:
    found = admin.get(f"/api/v1/dataset/{dataset_id}")["result"]
    columns = [c["id"] for c in found.get("columns", [])]
    metrics = [m["id"] for m in found.get("metrics", [])]
    return (columns[0] if columns else 0), (metrics[0] if metrics else 0)


def leaked(response: requests.Response, markers: list[str]) -> list[str]:
    """The markers of B found in a response (headers and body; ZIP exports unpacked)."""
    body = response.content.decode("utf-8", errors="replace").lower()
    if response.content[:2] == b"PK":
        import io
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                body += " ".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist()).lower()
        except zipfile.BadZipFile:
            pass
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
    return [marker for marker in markers if marker in body or marker in headers]
