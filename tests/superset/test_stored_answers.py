"""An embedded guest's cached chart is answered from Superset's stored answer, and only for the identical key.

Real Superset: the answer marked ``X-Egov-Answer: stored`` comes from superset_config/answers.py,
in front of Superset. A foreign, expired or tampered token never gets it; after a load the viewer
sees the new figures at once; and whatever else changes what Superset would answer the guest (its
role's permissions, a row rule's roles, the embedding, the dataset's columns)
retires the copy before the next request, so the guest gets Superset's own answer or refusal.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey

from tenants.superset import guest
from tenants.superset.roles import GUEST_PERMISSIONS, GUEST_ROLE, converge_roles
from tests.superset.test_cache import _load_through_the_worker
from tests.superset.test_embedding import started_sum

HEADER = "X-Egov-Answer"
SUM_STARTED = {"expressionType": "SQL", "sqlExpression": "SUM(started)", "label": "Begonnen"}


@pytest.fixture(scope="module")
def ctx(ss_app, tenants_ab, superset_settings):
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        return {"a": tenants_ab.a, "b": tenants_ab.b, "state_a": load_state(tenants_ab.a.id),
                "state_b": load_state(tenants_ab.b.id), "settings": superset_settings}


@pytest.fixture(scope="module")
def admin(ss_app):
    """The portal's service account in Superset: what an operator or provisioning changes goes through it."""
    from tenants.superset.provision import client

    with ss_app.app_context():
        return client()


def token(ctx, tenant: str = "a", **changes) -> str:
    t = ctx[tenant]
    minted = guest.mint(ctx["settings"], t.id, t.ags, ctx[f"state_{tenant}"]["dashboards"]["overview"]["embedded_uuid"],
                        f"guest-{time.time_ns()}")
    if not changes:
        return minted
    key = OctKey.import_key(ctx["settings"].superset_guest_secret)
    claims = {**jwt.decode(minted, key).claims, **changes}
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)


def started_total_body(ctx, tenant: str = "a", marker: int = 0) -> dict:
    """The overview's "Begonnene Vorgänge" as the embedded page asks for it (``marker`` makes a body of its own;
    the dashboard names each chart twice, as ``slice_id`` and ``chart_id``)."""
    st = ctx[f"state_{tenant}"]
    dashboard = st["dashboards"]["overview"]
    dataset_id = st["datasets"]["egov_service_daily"]
    chart = dashboard["charts"]["started_total"]
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": False,
            "form_data": {"dashboardId": dashboard["id"], "slice_id": chart, "chart_id": chart,
                          "viz_type": "big_number_total", "datasource": f"{dataset_id}__table"},
            "queries": [{"filters": [], "extras": {"where": "", "having": ""}, "row_limit": 10000 - marker,
                         "time_range": "No filter", "columns": [], "metrics": [SUM_STARTED]}],
            "result_format": "json", "result_type": "full"}


def ask(ctx, raw_token: str, body: dict) -> requests.Response:
    return requests.post(ctx["settings"].superset_url + "/api/v1/chart/data", json=body, timeout=60,
                         headers={"X-GuestToken": raw_token})


def total(response: requests.Response) -> int:
    assert response.status_code == 200, response.text[:300]
    return response.json()["result"][0]["data"][0]["Begonnen"]


def stored_answer(ctx, body: dict, tenant: str = "a") -> requests.Response:
    """Ask until the answer comes stored: Superset computes, answers from its cache (kept), then the copy."""
    for _ in range(3):
        response = ask(ctx, token(ctx, tenant), body)
        if response.headers.get(HEADER) == "stored":
            return response
    pytest.fail("the third identical request was still answered by Superset, not from the stored answer")


def test_a_renewed_token_of_the_same_dashboard_gets_the_stored_answer(ctx, owner_engine):
    body = started_total_body(ctx, marker=1)
    first = ask(ctx, token(ctx), body)
    assert first.headers.get(HEADER) is None  # nothing stored before Superset answered from its cache
    stored = stored_answer(ctx, body)
    assert total(stored) == total(first) == started_sum(owner_engine, ctx["a"].id)
    assert stored.json()["result"][0]["is_cached"] is True
    # A changed body is another question: Superset answers it.
    assert ask(ctx, token(ctx), started_total_body(ctx, marker=2)).headers.get(HEADER) is None


def test_another_tenants_token_never_receives_the_stored_answer(ctx, owner_engine):
    body = started_total_body(ctx, marker=3)
    stored_answer(ctx, body)
    foreign = ask(ctx, token(ctx, "b"), body)
    assert foreign.headers.get(HEADER) is None
    assert foreign.status_code in (403, 404) and "result" not in foreign.json()
    # B's token with A's tenant claim put back in, but signed with a key of its own: refused as well.
    forged = jwt.encode({"alg": "HS256", "typ": "JWT"},
                        jwt.decode(token(ctx), OctKey.import_key(ctx["settings"].superset_guest_secret)).claims,
                        OctKey.import_key("x" * 64))
    assert ask(ctx, forged, body).status_code == 401


def test_expired_or_tampered_tokens_are_refused(ctx):
    body = started_total_body(ctx, marker=4)
    stored_answer(ctx, body)
    expired = token(ctx, exp=int(time.time()) - 5, iat=int(time.time()) - 400)
    assert ask(ctx, expired, body).status_code == 401
    head, claims, signature = token(ctx).split(".")
    tampered = ".".join([head, claims, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert ask(ctx, tampered, body).status_code == 401
    # Another audience (a token for another installation's Superset sharing the secret).
    assert ask(ctx, token(ctx, aud="https://staging.invalid"), body).status_code == 401
    # A wider row rule, properly signed with the secret, is another key: Superset answers it afresh.
    assert ask(ctx, token(ctx, rls_rules=[{"clause": "1 = 1"}]), body).headers.get(HEADER) is None


def test_after_a_load_the_viewer_sees_the_new_figures_at_once(ss_app, ctx, owner_engine, tmp_path):
    body = started_total_body(ctx, marker=5)
    before = total(stored_answer(ctx, body))
    _load_through_the_worker(ss_app, ctx["a"], 5, tmp_path, queues=[])
    after = started_sum(owner_engine, ctx["a"].id)
    assert after != before
    fresh = ask(ctx, token(ctx), body)
    assert fresh.headers.get(HEADER) is None
    assert total(fresh) == after
    assert total(stored_answer(ctx, body)) == after


def test_a_time_range_relative_to_now_is_always_answered_by_superset(ctx):
    """Superset resolves "now" anew for every request; a stored copy would show a window that has moved on."""
    body = started_total_body(ctx, marker=6)
    body["queries"][0]["time_range"] = 'DATEADD(DATETIME("now"), -3650, day) : now'
    answers = [ask(ctx, token(ctx), body) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200], answers[0].text[:300]
    assert [r.headers.get(HEADER) for r in answers] == [None, None, None]


# -- the embedded page's metadata: the dashboard, its charts and datasets, the guest's roles ---------------


def metadata_paths(ctx, tenant: str = "a") -> list[str]:
    dashboard = ctx[f"state_{tenant}"]["dashboards"]["overview"]["id"]
    return [f"/api/v1/dashboard/{dashboard}", f"/api/v1/dashboard/{dashboard}/charts",
            f"/api/v1/dashboard/{dashboard}/datasets", "/api/v1/me/roles/"]


def ask_metadata(ctx, raw_token: str, path: str, language: str | None = "de", tenant: str = "a") -> requests.Response:
    """As the embedded page asks: the guest token, and the page's address (with its language) as Referer."""
    embedded = ctx[f"state_{tenant}"]["dashboards"]["overview"]["embedded_uuid"]
    referer = f"{ctx['settings'].superset_url}/embedded/{embedded}?uiConfig=1"
    if language:
        referer += f"&_l_={language}"
    return requests.get(ctx["settings"].superset_url + path, timeout=60,
                        headers={"X-GuestToken": raw_token, "Referer": referer})


def stored_metadata(ctx, raw_token: str, path: str, language: str = "de") -> requests.Response:
    for _ in range(2):
        response = ask_metadata(ctx, raw_token, path, language)
        assert response.status_code == 200, response.text[:300]
        if response.headers.get(HEADER) == "stored":
            return response
    pytest.fail(f"{path}: the second identical request was still answered by Superset")


def test_the_embedded_pages_metadata_is_stored_and_is_superset_s_own_answer(ctx):
    raw = token(ctx)
    for path in metadata_paths(ctx):
        first = ask_metadata(ctx, raw, path)
        stored = stored_metadata(ctx, raw, path)
        assert stored.json() == first.json(), path
    charts = ask_metadata(ctx, raw, metadata_paths(ctx)[1]).json()["result"]
    assert "Begonnene Vorgänge" in {c["slice_name"] for c in charts}
    # English mode is another copy, in English.
    english = [ask_metadata(ctx, raw, metadata_paths(ctx)[1], "en") for _ in range(2)]
    assert [r.headers.get(HEADER) for r in english] == [None, "stored"]
    assert "Begonnene Vorgänge" not in {c["slice_name"] for c in english[1].json()["result"]}
    # Without the page's language in the Referer the language is the session's: never stored.
    assert [ask_metadata(ctx, raw, metadata_paths(ctx)[0], None).headers.get(HEADER) for _ in range(2)] == [None] * 2


def test_another_tenants_guest_never_gets_a_stored_dashboard(ctx):
    for path in metadata_paths(ctx)[:3]:
        stored_metadata(ctx, token(ctx), path)
        foreign = ask_metadata(ctx, token(ctx, "b"), path, tenant="b")
        assert foreign.headers.get(HEADER) is None
        assert foreign.status_code in (403, 404), (path, foreign.status_code)
    assert ask_metadata(ctx, token(ctx, exp=int(time.time()) - 5, iat=int(time.time()) - 400),
                        metadata_paths(ctx)[2]).status_code == 401


def test_a_renamed_chart_shows_at_once(ss_app, ctx):
    from tenants.superset.provision import client

    chart = ctx["state_a"]["dashboards"]["overview"]["charts"]["started_total"]
    path = metadata_paths(ctx)[1]
    stored_metadata(ctx, token(ctx), path)
    with ss_app.app_context():
        client().put(f"/api/v1/chart/{chart}", {"slice_name": "Begonnene Vorgänge (umbenannt)"})
        try:
            fresh = ask_metadata(ctx, token(ctx), path)
            assert fresh.headers.get(HEADER) is None
            assert "Begonnene Vorgänge (umbenannt)" in {c["slice_name"] for c in fresh.json()["result"]}
        finally:
            client().put(f"/api/v1/chart/{chart}", {"slice_name": "Begonnene Vorgänge"})
    assert "Begonnene Vorgänge" in {c["slice_name"] for c in ask_metadata(ctx, token(ctx), path).json()["result"]}


def refused(response: requests.Response) -> bool:
    """Superset's own refusal: no stored copy, no figures."""
    return (response.headers.get(HEADER) is None and response.status_code in (401, 403, 404)
            and "result" not in response.json())


@contextmanager
def guest_permissions(admin, permissions: list[tuple[str, str]]):
    """The guest role (``GUEST_ROLE_NAME``) with exactly ``permissions`` for a while, then as provisioned."""
    try:
        converge_roles(admin, {GUEST_ROLE: permissions})
        yield
    finally:
        converge_roles(admin, {GUEST_ROLE: GUEST_PERMISSIONS})


def test_a_permission_the_guest_role_loses_or_gains_retires_the_stored_answer(ctx, admin):
    body = started_total_body(ctx, marker=7)
    figure = total(stored_answer(ctx, body))
    # Superset checks "can read Chart" for every chart-data request: without it the guest is refused.
    with guest_permissions(admin, [p for p in GUEST_PERMISSIONS if p != ("can_read", "Chart")]):
        assert refused(ask(ctx, token(ctx), body))
    # A permission gained changes the role too: Superset answers, not the copy made before.
    with guest_permissions(admin, [*GUEST_PERMISSIONS, ("can_read", "Dataset")]):
        gained = ask(ctx, token(ctx), body)
        assert gained.headers.get(HEADER) is None
        assert total(gained) == figure
    # Back as provisioned: the same permissions as when the copy was made, so it is good again.
    assert total(stored_answer(ctx, body)) == figure


def _rule(admin, name: str) -> dict:
    found = admin.get("/api/v1/rowlevelsecurity/", params={"q": f"(filters:!((col:name,opr:eq,value:'{name}')))"})
    rule = found["result"][0]
    return {"id": rule["id"], "name": rule["name"], "filter_type": rule["filter_type"],
            "tables": sorted(t["id"] for t in rule["tables"]), "roles": sorted(r["id"] for r in rule["roles"]),
            "clause": rule["clause"], "group_key": rule["group_key"], "description": rule["description"]}


def test_a_row_rule_that_stops_sparing_the_guest_role_hides_the_figures_at_once(ctx, admin):
    """The tenant's "Sperre" rule (clause ``1 = 0``) spares the tenant's roles and the guest role; taking the
    guest role off it changes only the rule's roles (Superset leaves the rule's ``changed_on`` alone)."""
    from tenants.superset.provision import deny_rls_name

    body = started_total_body(ctx, marker=8)
    assert total(stored_answer(ctx, body)) > 0
    rule = _rule(admin, deny_rls_name(ctx["a"].ags))
    guest_role = admin.get("/api/v1/security/roles/search/", params={
        "q": f"(filters:!((col:name,opr:eq,value:{GUEST_ROLE})))"})["result"][0]["id"]
    assert guest_role in rule["roles"]
    settings = {key: value for key, value in rule.items() if key != "id"}
    try:
        admin.put(f"/api/v1/rowlevelsecurity/{rule['id']}",
                  {**settings, "roles": [r for r in rule["roles"] if r != guest_role]})
        hidden = ask(ctx, token(ctx), body)
        assert hidden.headers.get(HEADER) is None
        assert total(hidden) is None  # the sum of no rows
    finally:
        admin.put(f"/api/v1/rowlevelsecurity/{rule['id']}", settings)
    assert total(ask(ctx, token(ctx), body)) > 0


def test_a_dataset_column_removed_shows_in_the_next_answer(ctx, admin):
    """Removing a column on its own (``DELETE .../column/<id>``) leaves the dataset's ``changed_on`` alone,
    but Superset reads the columns for every answer: without a temporal column the dashboard's time filter
    no longer applies to the chart, and Superset says so."""
    body = started_total_body(ctx, marker=10)
    body["queries"][0]["applied_time_extras"] = {"__time_range": "No filter"}
    before = stored_answer(ctx, body).json()["result"][0]
    assert {"column": "__time_range"} in before["applied_filters"]
    dataset = ctx["state_a"]["datasets"]["egov_service_daily"]
    columns = admin.get(f"/api/v1/dataset/{dataset}")["result"]["columns"]
    day = next(c for c in columns if c["column_name"] == "day")
    assert [c["column_name"] for c in columns if c["is_dttm"]] == ["day"]
    try:
        admin.request("DELETE", f"/api/v1/dataset/{dataset}/column/{day['id']}", expect=(200,))
        after = ask(ctx, token(ctx), body)
        assert after.headers.get(HEADER) is None
        assert {"column": "__time_range"} not in after.json()["result"][0]["applied_filters"]
    finally:
        kept = [{k: v for k, v in c.items() if k in _COLUMN_FIELDS} for c in columns if c["id"] != day["id"]]
        admin.put(f"/api/v1/dataset/{dataset}",
                  {"columns": [*kept, {k: v for k, v in day.items() if k in _COLUMN_FIELDS and k != "id"}]})
    restored = total(ask(ctx, token(ctx), body))
    assert restored == total(stored_answer(ctx, body))


#: What the dataset API takes back of a column it listed (its ``PUT`` refuses read-only fields).
_COLUMN_FIELDS = ("id", "column_name", "type", "is_dttm", "groupby", "filterable", "expression", "verbose_name",
                  "description", "python_date_format", "is_active", "advanced_data_type", "extra",
                  "datetime_format")


def test_drill_to_detail_stops_with_the_last_chart_of_its_dataset_leaving_the_dashboard(ctx, admin):
    """Drill to Detail names no chart: Superset lets a guest read the rows of a dataset while some chart of the
    dashboard shows it. Taking the charts off the dashboard one by one moves only their own ``changed_on``."""
    from tenants.superset.client import rison

    st = ctx["state_a"]
    dashboard, dataset = st["dashboards"]["overview"]["id"], st["datasets"]["egov_service_daily"]
    body = {"datasource": {"id": dataset, "type": "table"}, "force": False,
            "form_data": {"dashboardId": dashboard, "datasource": f"{dataset}__table", "viz_type": "table"},
            "queries": [{"filters": [], "extras": {"where": "", "having": ""}, "columns": [], "metrics": [],
                         "orderby": [], "row_limit": 12, "time_range": "No filter"}],
            "result_format": "json", "result_type": "drill_detail"}
    rows = stored_answer(ctx, body).json()["result"][0]["data"]
    assert rows and all(row["tenant_id"] == ctx["a"].id for row in rows)
    on_dataset = {c["id"] for c in admin.get("/api/v1/chart/", params={"q": rison({
        "columns": ["id"], "filters": [{"col": "datasource_id", "opr": "eq", "value": dataset}], "page_size": 100})})[
        "result"]}
    leaving = sorted(on_dataset & set(st["dashboards"]["overview"]["charts"].values()))
    assert leaving
    try:
        for chart in leaving:
            admin.put(f"/api/v1/chart/{chart}", {"dashboards": []})
        assert refused(ask(ctx, token(ctx), body))
    finally:
        for chart in leaving:
            admin.put(f"/api/v1/chart/{chart}", {"dashboards": [dashboard]})
    assert ask(ctx, token(ctx), body).json()["result"][0]["data"] == rows


def test_a_dashboard_whose_embedding_changes_or_goes_is_answered_by_superset(ss_app, ctx, admin):
    """Allowed domains are checked by Superset when the page opens, not per chart: a copy made under other
    allowed domains is still retired (when in doubt, Superset answers). An embedding removed refuses the
    guest at once; provisioning embeds the dashboard again (with a new UUID, which the portal then mints)."""
    from tenants.provisioning import provision_tenant
    from tenants.superset.provision import load_state

    body = started_total_body(ctx, marker=11)
    figure = total(stored_answer(ctx, body))
    dashboard = ctx["state_a"]["dashboards"]["overview"]["id"]
    raw = token(ctx)  # minted for the embedding that is about to go
    charts = metadata_paths(ctx)[1]
    stored_metadata(ctx, raw, charts)
    try:
        admin.post(f"/api/v1/dashboard/{dashboard}/embedded", {"allowed_domains": ["https://anderswo.invalid"]})
        elsewhere = ask(ctx, raw, body)
        assert elsewhere.headers.get(HEADER) is None
        assert total(elsewhere) == figure
        assert ask_metadata(ctx, raw, charts).headers.get(HEADER) is None  # the page's metadata too
        admin.request("DELETE", f"/api/v1/dashboard/{dashboard}/embedded", expect=(200,))
        assert refused(ask(ctx, raw, body))
    finally:
        with ss_app.app_context():
            provision_tenant(ctx["a"].id)
            ctx["state_a"] = load_state(ctx["a"].id)
    assert ctx["state_a"]["dashboards"]["overview"]["embedded_uuid"] != guest_uuid(raw, ctx)
    assert total(stored_answer(ctx, body)) == figure


def guest_uuid(raw: str, ctx) -> str:
    return jwt.decode(raw, OctKey.import_key(ctx["settings"].superset_guest_secret)).claims["resources"][0]["id"]


def test_every_view_of_a_dashboard_asks_the_same_questions(ss_app, ss_live_server, tenants_ab, browser):
    """A stored answer is found only for the identical body: the page must send the same bodies on every view
    (the charts once asked with Superset's default colour scheme or the dashboard's, depending on which loaded
    first, and half the views missed their copies)."""
    from tests.superset.conftest import add_user
    from tests.superset.test_embedding import open_dashboard

    viewer = add_user(ss_app, tenants_ab.a, "viewer", subject="viewer-same-bodies")
    views = []
    for _ in range(3):
        sent: list[str] = []
        open_dashboard(browser, ss_app, ss_live_server.url, tenants_ab.a, viewer, "payment", sent=sent)
        views.append(set(sent))  # a chart may ask twice in one view (a resize); the question is the same
    assert views[0] == views[1] == views[2]
