"""Superset's object boundary, tried on every endpoint and view Superset registers.

The matrix is generated from Superset's own registry (tests/superset/superset_registry.py: every
URL rule, its view and model, and the OpenAPI document of the REST API), so an endpoint a Superset
upgrade adds is tried the day it appears, and a URL parameter nobody has classified fails the test.
For every rule and method, each of tenant A's principals (editor, viewer, embedded guest) asks
with tenant B's ids, keys and names in every place the rule takes them (path, ``q`` parameter,
request body built from the endpoint's own schema with every reference to another object pointed
at B's). Two things must hold:

* no response carries anything of B (its marker, AGS or name; ZIP exports unpacked);
* afterwards, Superset's metadata holds no object that mixes tenants (a chart on another tenant's
  dataset, a dashboard with another tenant's chart or role, owners from another tenant, a saved or
  SQL Lab query on another tenant's database) and B's objects are exactly as before.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from sqlalchemy import create_engine, text

from tenants.superset import server
from tests.superset.boundary import leaked, world

#: Rules that would end the principal's session or start a sign-in: not data paths, tried elsewhere.
SKIPPED = re.compile(r"^/(static|login|logout|oauth-authorized|register|api/v1/security/(login|refresh)|"
                     r"users/userinfo|back$|lang/)")
#: Names of "related"/"distinct" columns worth asking for (anything else answers 404 or 400).
RELATED_COLUMNS = ("owners", "created_by", "changed_by", "roles", "database", "dashboards", "slices", "tags",
                   "user", "tables", "datasource", "dataset", "label", "schema")


@pytest.fixture(scope="module")
def registry(superset_settings, superset, tmp_path_factory):
    out = tmp_path_factory.mktemp("registry") / "superset.json"
    env = server.environment(superset_settings, url=superset, portal_url=superset_settings.portal_url)
    subprocess.run([str(server.VENV / "bin" / "python"), "tests/superset/superset_registry.py", str(out)], env=env,
                   cwd=str(server.PROJECT_ROOT), check=True, capture_output=True, timeout=300)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def matrix(ss_app, ss_live_server, tenants_ab, superset, app_engine):
    return world(ss_app, ss_live_server, tenants_ab, superset, app_engine)


# -- what goes into the URL --------------------------------------------------------------------------

#: Which of B's objects an id names, by the view's model or else by the path segment before it.
BY_MODEL = {"Slice": "chart", "Dashboard": "dashboard", "SqlaTable": "dataset", "Database": "database",
            "SavedQuery": "saved_query", "Query": "query", "Role": "role", "User": "user",
            "RowLevelSecurityFilter": "rls", "TableColumn": "dataset", "EmbeddedDashboard": "embedded_uuid"}
BY_SEGMENT = {"dashboard": "dashboard", "chart": "chart", "dataset": "dataset", "database": "database",
              "saved_query": "saved_query", "query": "query"}


def _placeholder(arg: str) -> re.Pattern:
    return re.compile(r"<(?:[a-z]+:)?" + re.escape(arg) + ">")


def _kind(rule: str, model: str | None, arg: str | None = None) -> str:
    """Which of B's objects an id in ``rule`` (at ``arg``, or at the end for list endpoints) names."""
    if model in BY_MODEL:
        return BY_MODEL[model]
    prefix = rule[:_placeholder(arg).search(rule).start()] if arg else rule
    return BY_SEGMENT.get(prefix.rstrip("/").rsplit("/", 1)[-1], "other")


def _key_kind(rule: str) -> str:
    for fragment, kind in (("sqllab", "sqllab_permalink"), ("explore/permalink", "explore_permalink"),
                           ("explore/p/", "explore_permalink"), ("dashboard/permalink", "dashboard_permalink"),
                           ("dashboard/p/", "dashboard_permalink"), ("filter_state", "filter_state"),
                           ("form_data", "form_data")):
        if fragment in rule:
            return kind
    raise AssertionError(f"classify the key of {rule}")


def url_values(rule: str, arg: str, model: str | None, b: dict) -> list[str]:
    """Values for one URL argument; a new argument name fails until it is classified here."""
    if arg in ("pk", "id_or_slug", "id_or_uuid", "dashboard_id_or_slug", "role_id", "user_id"):
        kind = {"role_id": "role", "user_id": "user", "dashboard_id_or_slug": "dashboard"}.get(
            arg, _kind(rule, model, arg))
        if kind == "other":
            return ["1"]
        values = [str(b[kind])]
        if kind == "dashboard":
            values.append(str(b["provisioned_dashboard"]))
        if kind == "chart":
            values.append(str(b["provisioned_chart"]))
        return values
    fixed = {
        "datasource_id": str(b["dataset"]), "slice_id": str(b["chart"]), "tab_state_id": str(b["tab_state"]),
        "table_schema_id": "1", "client_id": b["client_id"], "uuid": b["embedded_uuid"], "column_id": str(b["column"]),
        "metric_id": str(b["metric"]), "object_id": str(b["chart"]), "datasource_type": "table",
        "schema_name": "analytics", "table_name": "rollup_service_daily", "locale": "de", "lang": "de",
        "version": "v1", "filename": "x.csv", "name": "muldelete", "digest": "x", "activation_hash": "x",
        "cache_key": b["cache_key"], "object_type": "1", "tag": "x", "log_id": "1", "annotation_id": "1",
        "provider": "portal",
    }
    if arg in fixed:
        return [fixed[arg]]
    if arg in ("key", "permalink"):
        return [b[_key_kind(rule)]]
    if arg == "column_name":
        return list(RELATED_COLUMNS)
    raise AssertionError(f"classify the URL argument <{arg}> of {rule} in url_values()")


def urls(rule: dict, b: dict) -> list[str]:
    paths = [rule["rule"]]
    for arg in rule["args"]:
        pattern = _placeholder(arg)
        model = (rule["view"] or {}).get("model")
        paths = [pattern.sub(value, path) for path in paths for value in url_values(rule["rule"], arg, model, b)]
    return paths


def query_variants(rule: dict, method: str, b: dict) -> list[dict]:
    """Plain, a long page of a list, and B's ids for bulk endpoints (delete, export, favourites)."""
    model = (rule["view"] or {}).get("model")
    if rule["args"] or method not in ("GET", "DELETE") or not rule["rule"].startswith("/api/"):
        return [{}]
    kind = _kind(rule["rule"], model)
    ids = f"!({b[kind]})" if kind in b and kind != "embedded_uuid" else "!(1)"
    return [{}, {"q": "(page:0,page_size:100)"}, {"q": ids}]


# -- what goes into the body -------------------------------------------------------------------------

def _references(b: dict) -> dict:
    """Fields of Superset's request schemas that name another object, each pointed at B's."""
    dataset, chart, dashboard, database = b["dataset"], b["chart"], b["dashboard"], b["database"]
    from tests.superset.boundary import dashboard_with_chart

    layout = dashboard_with_chart(chart)
    return {
        "datasource_id": dataset, "dataset_id": dataset, "table_id": dataset, "datasource": dataset,
        "datasource_name": f"{dataset}__table", "database": database, "database_id": database, "db_id": database,
        "dbId": database, "dashboards": [dashboard], "dashboard_id": dashboard, "dashboard": dashboard,
        "slices": [chart], "slice_id": chart, "chart_id": chart, "chart": chart, "owners": [b["user"]],
        "roles": [b["role"]], "created_by": b["user"], "user_id": b["user"], "client_id": b["client_id"],
        "query_id": b["query"], "tables": [dataset], "position_json": layout["position_json"],
        "json_metadata": layout["json_metadata"], "params": json.dumps({"datasource": f"{dataset}__table",
                                                                         "slice_id": chart}),
        "query_context": json.dumps({"datasource": {"id": dataset, "type": "table"}, "queries": [{}],
                                     "form_data": {"slice_id": chart, "dashboardId": dashboard}}),
        "form_data": json.dumps({"datasource": f"{dataset}__table", "slice_id": chart}),
        "key": b["explore_permalink"], "uuid": b["embedded_uuid"],
    }


def _resolve(spec: dict, schema: dict) -> dict:
    """A schema with its references followed; one the document names but lacks counts as open."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"].get(schema["$ref"].rsplit("/", 1)[1], {})
    return schema


def _filler(schema: dict):
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "x", "integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(kind, "x")


def bodies(spec: dict | None, rule: str, method: str, b: dict) -> list[dict]:
    """``{}`` and, when the endpoint declares a JSON body, one built from its schema with B's references."""
    if method not in ("POST", "PUT", "PATCH"):
        return [{}]
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)
    operation = ((spec or {}).get("paths", {}).get(path) or {}).get(method.lower()) or {}
    content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
    if not content:
        return [{}]
    schema = _resolve(spec, content["schema"])
    references = _references(b)
    properties = schema.get("properties", {})
    body = {name: _filler(_resolve(spec, properties[name]))
            for name in schema.get("required", []) if name in properties}
    named = {name: references[name] for name in properties if name in references}
    for name, value in list(named.items()):  # a list where the schema wants one, a number where it wants one
        if _resolve(spec, properties[name]).get("type") == "array" and not isinstance(value, list):
            named[name] = [value]
        elif _resolve(spec, properties[name]).get("type") == "integer" and isinstance(value, list):
            named[name] = value[0]
    return [{}, {**body, **named}] if named else [{}, body]


# -- the oracle afterwards -----------------------------------------------------------------------------

MIXED = {
    "a chart on another tenant's dataset, by its owners": """
        SELECT s.id FROM slices s JOIN tables t ON t.id = s.datasource_id AND s.datasource_type = 'table'
        JOIN dbs d ON d.id = t.database_id JOIN slice_user su ON su.slice_id = s.id JOIN ab_user u ON u.id = su.user_id
        WHERE u.username ~ '^[0-9]{8}:' AND d.database_name <> 'tenant_' || split_part(u.username, ':', 1)""",
    "a dashboard holding charts of two tenants": """
        SELECT ds.dashboard_id FROM dashboard_slices ds JOIN slices s ON s.id = ds.slice_id
        JOIN tables t ON t.id = s.datasource_id JOIN dbs d ON d.id = t.database_id
        GROUP BY ds.dashboard_id HAVING count(DISTINCT d.database_name) > 1""",
    "a dashboard with a chart of a tenant other than its owners'": """
        SELECT ds.dashboard_id FROM dashboard_slices ds JOIN slices s ON s.id = ds.slice_id
        JOIN tables t ON t.id = s.datasource_id JOIN dbs d ON d.id = t.database_id
        JOIN dashboard_user du ON du.dashboard_id = ds.dashboard_id JOIN ab_user u ON u.id = du.user_id
        WHERE u.username ~ '^[0-9]{8}:' AND d.database_name <> 'tenant_' || split_part(u.username, ':', 1)""",
    "a dashboard carrying another tenant's role": """
        SELECT dr.dashboard_id FROM dashboard_roles dr JOIN ab_role r ON r.id = dr.role_id
        JOIN dashboard_user du ON du.dashboard_id = dr.dashboard_id JOIN ab_user u ON u.id = du.user_id
        WHERE u.username ~ '^[0-9]{8}:' AND r.name ~ '^tenant_[0-9]+_'
          AND r.name NOT LIKE 'tenant_' || split_part(u.username, ':', 1) || '\\_%'""",
    "owners of two tenants on one object": """
        SELECT 'dashboard ' || dashboard_id FROM dashboard_user du JOIN ab_user u ON u.id = du.user_id
        WHERE u.username ~ '^[0-9]{8}:' GROUP BY dashboard_id HAVING count(DISTINCT split_part(u.username, ':', 1)) > 1
        UNION ALL
        SELECT 'chart ' || slice_id FROM slice_user su JOIN ab_user u ON u.id = su.user_id
        WHERE u.username ~ '^[0-9]{8}:' GROUP BY slice_id HAVING count(DISTINCT split_part(u.username, ':', 1)) > 1
        UNION ALL
        SELECT 'dataset ' || t.id FROM tables t JOIN sqlatable_user tu ON tu.table_id = t.id
        JOIN ab_user u ON u.id = tu.user_id JOIN dbs d ON d.id = t.database_id
        WHERE u.username ~ '^[0-9]{8}:' AND d.database_name <> 'tenant_' || split_part(u.username, ':', 1)""",
    "a saved or SQL Lab query on another tenant's database": """
        SELECT 'saved ' || q.id FROM saved_query q JOIN dbs d ON d.id = q.db_id JOIN ab_user u ON u.id = q.created_by_fk
        WHERE u.username ~ '^[0-9]{8}:' AND d.database_name <> 'tenant_' || split_part(u.username, ':', 1)
        UNION ALL
        SELECT 'query ' || q.id FROM query q JOIN dbs d ON d.id = q.database_id JOIN ab_user u ON u.id = q.user_id
        WHERE u.username ~ '^[0-9]{8}:' AND d.database_name <> 'tenant_' || split_part(u.username, ':', 1)
        UNION ALL
        SELECT 'tab ' || q.id FROM tab_state q JOIN dbs d ON d.id = q.database_id JOIN ab_user u ON u.id = q.user_id
        WHERE u.username ~ '^[0-9]{8}:' AND d.database_name <> 'tenant_' || split_part(u.username, ':', 1)""",
}

SNAPSHOT = """
    SELECT 'slice', s.id::text, md5(concat_ws('|', s.slice_name, s.params, s.datasource_id, s.query_context))
    FROM slices s JOIN tables t ON t.id = s.datasource_id JOIN dbs d ON d.id = t.database_id WHERE d.database_name = :db
    UNION ALL SELECT 'dashboard', d.id::text, md5(concat_ws('|', d.dashboard_title, d.position_json, d.json_metadata,
        d.published,
        (SELECT string_agg(slice_id::text, ',' ORDER BY slice_id) FROM dashboard_slices WHERE dashboard_id = d.id),
        (SELECT string_agg(user_id::text, ',' ORDER BY user_id) FROM dashboard_user WHERE dashboard_id = d.id)))
    FROM dashboards d WHERE d.slug LIKE :slug OR d.id = ANY(:dashboards)
    UNION ALL SELECT 'dataset', t.id::text, md5(concat_ws('|', t.sql, t.table_name,
        (SELECT string_agg(user_id::text, ',' ORDER BY user_id) FROM sqlatable_user WHERE table_id = t.id)))
    FROM tables t JOIN dbs d ON d.id = t.database_id WHERE d.database_name = :db
    UNION ALL SELECT 'saved', q.id::text, md5(concat_ws('|', q.label, q.sql, q.db_id))
    FROM saved_query q JOIN dbs d ON d.id = q.db_id WHERE d.database_name = :db
    UNION ALL SELECT 'user', u.id::text, md5(concat_ws('|', u.active, u.email,
        (SELECT string_agg(role_id::text, ',' ORDER BY role_id) FROM ab_user_role WHERE user_id = u.id)))
    FROM ab_user u WHERE u.username LIKE :users
    UNION ALL SELECT 'role', r.id::text, md5(concat_ws('|', r.name,
        (SELECT string_agg(permission_view_id::text, ',' ORDER BY permission_view_id) FROM ab_permission_view_role
         WHERE role_id = r.id)))
    FROM ab_role r WHERE r.name LIKE :roles
    UNION ALL SELECT 'database', d.id::text, md5(concat_ws('|', d.database_name, d.sqlalchemy_uri, d.expose_in_sqllab))
    FROM dbs d WHERE d.database_name = :db
    ORDER BY 1, 2
"""


def _metadata(superset_settings):
    return create_engine(server.meta_url(superset_settings).replace("+psycopg2", "+psycopg"))


def b_snapshot(engine, matrix) -> list[tuple]:
    b = matrix.b
    with engine.connect() as conn:
        return conn.execute(text(SNAPSHOT), {
            "db": f"tenant_{b.ags}", "slug": f"t{b.ags}-%", "dashboards": [matrix.b_ids["dashboard"]],
            "users": f"{b.ags}:%", "roles": f"tenant\\_{b.ags}\\_%"}).all()


def mixed_objects(engine) -> dict[str, list]:
    with engine.connect() as conn:
        found = {what: conn.execute(text(sql)).scalars().all() for what, sql in MIXED.items()}
    return {what: rows for what, rows in found.items() if rows}


# -- the matrix ----------------------------------------------------------------------------------------

def test_every_endpoint_and_view_keeps_the_other_tenant_out(registry, matrix, superset_settings):
    metadata = _metadata(superset_settings)
    before = b_snapshot(metadata, matrix)
    assert len(before) > 20, "B's objects were not found, so the snapshot would prove nothing"
    assert not mixed_objects(metadata), "the world is mixed before the matrix starts"
    b = matrix.b_ids
    leaks, tried = [], 0
    for rule in registry["rules"]:
        if SKIPPED.match(rule["rule"]):
            continue
        for method in rule["methods"]:
            for path in urls(rule, b):
                for params in query_variants(rule, method, b):
                    for body in bodies(registry["openapi"], rule["rule"], method, b):
                        for principal in matrix.principals:
                            response = principal.request(method, path, params=params,
                                                         **({"json": body} if method in ("POST", "PUT", "PATCH")
                                                            else {}))
                            tried += 1
                            found = leaked(response, matrix.markers)
                            if found:
                                leaks.append(f"{principal.name} {method} {path} {params or ''} "
                                             f"{json.dumps(body)[:80] if body else ''} → {response.status_code} "
                                             f"shows {found}: {response.text[:160]!r}")
    mixed = mixed_objects(metadata)
    after = b_snapshot(metadata, matrix)
    metadata.dispose()
    assert tried > 2000, f"only {tried} requests: the registry or the generator lost endpoints"
    assert not leaks, f"{len(leaks)} responses show tenant B's objects:\n" + "\n".join(leaks[:60])
    assert not mixed, f"objects that mix tenants after the matrix: {mixed}"
    assert after == before, "tenant B's objects changed: " + str(sorted(set(after) ^ set(before))[:20])


def test_every_url_argument_superset_has_is_classified(registry, matrix):
    """A Superset upgrade that adds a URL argument fails here until the matrix knows what to put there."""
    for rule in registry["rules"]:
        if not SKIPPED.match(rule["rule"]):
            assert urls(rule, matrix.b_ids)
