"""Provisioning steps for Superset, registered with ``tenants.provisioning``.

Per tenant (all idempotent; a second run finds everything and changes nothing):

1. ``superset_db_role``: the PostgreSQL login role ``<database>_ss_t<id>``
   (migration 0004), read-only on ``analytics``, rows bound to
   ``current_user``. Its password is generated once and kept encrypted in
   ``portal.tenant_settings`` (key ``superset``).
2. ``superset_objects``: a Superset database connection with that role,
   the datasets of ``superset_config/dashboards/datasets.json``, the roles
   ``tenant_<AGS>_viewer`` and ``tenant_<AGS>_editor``, a Superset RLS rule
   (second layer), one more on the comparison dataset (the tenant's own
   comparison groups) and the ready-made dashboards cloned from the
   templates, with embedding allowed for the portal's origin. Connection,
   datasets, charts and dashboards arrive in one import of the tenant's
   bundle (:mod:`tenants.superset.bundle`); the rest is REST.

Deprovisioning removes the Superset objects, then the database role.
"""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

from flask import current_app, has_app_context
from sqlalchemy import text

from tenants import crypto, tenant_state
from tenants.benchmark.comparison import member_of
from tenants.benchmark.groups import groups_of
from tenants.context import tenant_transaction
from tenants.models import Tenant
from tenants.provisioning import register_step
from tenants.settings import get_settings
from tenants.superset import bundle, guest, templates
from tenants.superset.client import SupersetClient, rison
from tenants.superset.roles import (
    GUEST_ROLE,
    ensure_base_roles,
    ensure_tenant_permissions,
    remove_tenant_roles,
    tenant_roles,
)

STATE_KEY = "superset"
#: The dataset of published comparison figures and the tenant's own values ("Vergleich").
BENCHMARK_DATASET = "egov_benchmark"
#: Advisory lock key of the database-role step (any constant no other lock uses: "SSPR").
PROTECT_LOCK = 0x53535052


def _settings():
    return get_settings()


def client() -> SupersetClient:
    return SupersetClient.from_settings(_settings())


def load_state(tenant_id: int, session=None) -> dict[str, Any]:
    """What provisioning recorded; pass ``session`` inside a request, where the tenant is already bound."""
    if session is not None:
        return tenant_state.load(session, tenant_id, STATE_KEY) or {}
    with tenant_transaction(tenant_id) as own:
        return load_state(tenant_id, own)


def _save_state(tenant_id: int, state: dict[str, Any], session=None) -> None:
    if session is not None:
        tenant_state.save(session, tenant_id, STATE_KEY, state)
        return
    with tenant_transaction(tenant_id) as own:
        tenant_state.save(own, tenant_id, STATE_KEY, state)


# -- 1. the database login role ----------------------------------------------------

def provision_db_role(tenant_id: int) -> None:
    settings = _settings()
    with tenant_transaction(tenant_id) as session:  # read, create and record in one transaction
        state = load_state(tenant_id, session)
        if "db_password" not in state:
            state["db_password"] = crypto.encrypt(settings, secrets.token_urlsafe(32))
        password = crypto.decrypt(settings, state["db_password"])
        # Tenants are provisioned side by side (egov superset provision); concurrent GRANTs on one
        # table fail with "tuple concurrently updated", so this transaction waits for the others.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PROTECT_LOCK})
        session.execute(text("SELECT portal.superset_protect_analytics()"))
        state["db_role"] = session.execute(text("SELECT portal.superset_login_ensure(:t, :pw)"),
                                           {"t": tenant_id, "pw": password}).scalar_one()
        _save_state(tenant_id, state, session)


def deprovision_db_role(tenant_id: int) -> None:
    with tenant_transaction(tenant_id) as session:
        session.execute(text("SELECT portal.superset_login_drop(:t)"), {"t": tenant_id})
        state = load_state(tenant_id, session)
        for key in ("db_role", "db_password"):
            state.pop(key, None)
        _save_state(tenant_id, state, session)


# -- 2. Superset objects -------------------------------------------------------------

def _sqlalchemy_uri(role: str, password: str) -> str:
    settings = _settings()
    server = urlsplit(settings.database_url)  # the platform's PostgreSQL, as the tenant's own role
    return (f"postgresql+psycopg2://{quote(role)}:{quote(password, safe='')}@{server.hostname or '127.0.0.1'}:"
            f"{server.port or 5432}/{quote(settings.database_name)}")


def rls_name(ags: str) -> str:
    return f"tenant_{ags}"


def benchmark_rls_name(ags: str) -> str:
    return f"tenant_{ags}_vergleich"


def deny_rls_name(ags: str) -> str:
    return f"tenant_{ags}_sperre"


def _benchmark_groups(session, tenant: Tenant) -> list[str]:
    """Every comparison group the tenant can be shown, its peer group included whether chosen yet or not.

    For the staff who open the dashboards in Superset itself; guest tokens narrow this further to
    what the tenant's page shows right now (tenants/superset/embedding.py).
    """
    return [key for _, key, _ in groups_of(member_of(session, tenant), has_peers=True)]


def _listed(api: SupersetClient, resource: str, columns: list[str], filters: list[dict]) -> list[dict]:
    query = {"columns": columns, "filters": filters, "page": 0, "page_size": 1000}
    return api.get(f"/api/v1/{resource}/", params={"q": rison(query)})["result"]


@dataclass
class Found:
    """The tenant's objects in Superset as four list requests show them."""

    database: dict | None = None
    datasets: dict[str, dict] = field(default_factory=dict)  # by template key (datasets.json)
    dashboards: dict[str, dict] = field(default_factory=dict)  # by slug
    charts: dict[str, dict] = field(default_factory=dict)  # by UUID

    def complete(self, wanted: bundle.Bundle) -> bool:
        datasets = {key: (d["uuid"], d["table_name"]) for key, d in self.datasets.items()}  # a renamed one differs
        return (self.database is not None and self.database["uuid"] == wanted.database
                and all(datasets.get(k) == (u, wanted.dataset_names[k]) for k, u in wanted.datasets.items())
                and all(self.dashboards.get(bundle.dashboard_slug(wanted.ags, k), {}).get("uuid") == u
                        for k, u in wanted.dashboards.items())
                and all(u in self.charts for charts in wanted.charts.values() for u in charts.values()))

    def renamed(self, wanted: bundle.Bundle) -> bool:
        """Whether the bundle gives a dataset found here another name."""
        return any(d["table_name"] != wanted.dataset_names[k] for k, d in self.datasets.items()
                   if k in wanted.dataset_names)


def _connection(api: SupersetClient, ags: str, dataset_uuids: dict[str, str] | None = None) -> tuple[dict | None, dict]:
    """The tenant's database connection and datasets by template key: by the datasets' UUIDs (key -> UUID,
    one request), or else by the connection's name, its datasets keyed by their names (the German name, or
    the key a dataset was named by before)."""
    database, datasets = None, {}
    if dataset_uuids:
        key_of = {u: k for k, u in dataset_uuids.items()}
        for d in _listed(api, "dataset", ["id", "uuid", "table_name", "database.id", "database.uuid"],
                         [{"col": "uuid", "opr": "in", "value": list(key_of)}]):
            database = d.pop("database")
            datasets[key_of[d["uuid"]]] = d
    if database is None:
        databases = _listed(api, "database", ["id", "uuid", "database_name"],
                            [{"col": "database_name", "opr": "eq", "value": bundle.database_name(ags)}])
        database = databases[0] if databases else None
        if database is not None:
            key_of = templates.dataset_keys_by_name()
            datasets = {key_of.get(d["table_name"], d["table_name"]): d for d in _listed(
                api, "dataset", ["id", "uuid", "table_name"], [{"col": "database", "opr": "rel_o_m",
                                                                "value": database["id"]}])}
    return database, datasets


def _dashboards(api: SupersetClient, ags: str) -> dict[str, dict]:
    """The tenant's ready-made dashboards by slug (``sw`` is SQL's LIKE, so the prefix is checked again)."""
    prefix = bundle.dashboard_slug(ags, "")
    return {d["slug"]: d for d in _listed(api, "dashboard", ["id", "uuid", "slug", "roles.id"],
                                          [{"col": "slug", "opr": "sw", "value": prefix}])
            if (d.get("slug") or "").startswith(prefix)}


def _charts(api: SupersetClient, col: str, values: list) -> dict[str, dict]:
    if not values:
        return {}
    return {c["uuid"]: c for c in _listed(api, "chart", ["id", "uuid", "slice_name"],
                                          [{"col": col, "opr": "in", "value": values}])}


def _find(api: SupersetClient, wanted: bundle.Bundle, *more) -> tuple:
    """What Superset holds of the bundle's objects, and the results of ``more`` calls run beside the look-ups.

    Charts by their datasets' ids: a filter on chart UUIDs takes Superset seconds.
    """
    connection, dashboards, *rest = _side_by_side(api, [
        partial(_connection, ags=wanted.ags, dataset_uuids=wanted.datasets),
        partial(_dashboards, ags=wanted.ags), *more])
    charts = _charts(api, "datasource_id", sorted(d["id"] for d in connection[1].values()))
    return Found(*connection, dashboards=dashboards, charts=charts), *rest


def _adopted_uuids(database: dict | None, datasets: dict[str, dict]) -> dict[str, str]:
    """UUIDs of a connection and datasets made before bundles (by REST): kept, so the import overwrites them
    (datasets keep their ids, and with them what editors built on them)."""
    if database is None:
        return {}
    return {"database": database["uuid"], **{f"dataset/{name}": d["uuid"] for name, d in datasets.items()}}


def _import(api: SupersetClient, wanted: bundle.Bundle, password: str) -> None:
    api.request("POST", "/api/v1/assets/import/", files={"bundle": ("bundle.zip", wanted.zip(), "application/zip")},
                data={"passwords": json.dumps({wanted.database_file: password})})


def _ensure_rule(api: SupersetClient, found: dict | None, wanted: dict[str, Any]) -> None:
    if found is None:
        api.post("/api/v1/rowlevelsecurity/", wanted)
        return
    current = {"name": found["name"], "filter_type": found["filter_type"],
               "tables": sorted(t["id"] for t in found["tables"]), "roles": sorted(r["id"] for r in found["roles"]),
               "clause": found["clause"], "group_key": found["group_key"], "description": found["description"]}
    if current != wanted:
        api.put(f"/api/v1/rowlevelsecurity/{found['id']}", wanted)


def _rules(api: SupersetClient, ags: str) -> dict[str, dict]:
    """The tenant's row-level rules by name, in one request."""
    names = [rls_name(ags), benchmark_rls_name(ags), deny_rls_name(ags)]
    listed = api.get("/api/v1/rowlevelsecurity/", params={"q": rison(
        {"filters": [{"col": "name", "opr": "in", "value": names}], "page": 0, "page_size": 100})})["result"]
    return {rule["name"]: rule for rule in listed if rule["name"] in names}


def ensure_rls(api: SupersetClient, ags: str, tenant_id: int, dataset_ids: dict[str, int],
               role_ids: dict[str, int], groups: list[str], guest_role: int) -> None:
    roles = sorted(role_ids.values())
    found = _rules(api, ags)
    # The deny layer behind the tenant boundary (superset_config/tenant_boundary.py): a "Base" rule
    # applies to everyone *except* its roles, so anyone but the tenant's own staff and embedded
    # guests (held to their token's tenant by the boundary and the token's own clause) reads no
    # row of the tenant's datasets, even if some path of Superset's lets them reach one.
    _ensure_rule(api, found.get(deny_rls_name(ags)), {
        "name": deny_rls_name(ags), "filter_type": "Base", "tables": sorted(dataset_ids.values()),
        "roles": sorted([*roles, guest_role]), "clause": "1 = 0", "group_key": "sperre",
        "description": "Sperre für alle außer den eigenen Rollen (dritte Ebene der Mandantentrennung)"})
    _ensure_rule(api, found.get(rls_name(ags)), {
        "name": rls_name(ags), "filter_type": "Regular", "tables": sorted(dataset_ids.values()), "roles": roles,
        "clause": guest.rls_clause(tenant_id), "group_key": "tenant",
        "description": "Mandantentrennung (zweite Ebene, zusätzlich zur Datenbankrolle)"})
    if BENCHMARK_DATASET in dataset_ids:
        # Its own group key: Superset ORs the rules of one group key, and this one must narrow the tenant rule.
        _ensure_rule(api, found.get(benchmark_rls_name(ags)), {
            "name": benchmark_rls_name(ags), "filter_type": "Regular", "tables": [dataset_ids[BENCHMARK_DATASET]],
            "roles": roles, "clause": guest.benchmark_clause(groups), "group_key": "vergleich",
            "description": "Nur die eigenen Vergleichsgruppen"})


#: Requests sent side by side for the per-dashboard work (Superset serves 2 workers x 4 threads).
SIDE_BY_SIDE = 4


def _dashboard(api: SupersetClient, dashboard: dict, roles: list[int], new: bool) -> str:
    """A bundle carries no dashboard roles (the tenant boundary reads them: a dashboard's tenant) and no
    embedding; both written only when they differ (``new``: just created, so no embedding yet). Returns the
    embedding's UUID."""
    from tenants.superset.dashboards import ensure_embedded

    if sorted(r["id"] for r in dashboard.get("roles") or []) != roles:
        api.put(f"/api/v1/dashboard/{dashboard['id']}", {"roles": roles})
    return ensure_embedded(api, dashboard["id"], new=new)


def _delete(api: SupersetClient, path: str) -> None:
    api.delete(path)


def _side_by_side(api: SupersetClient, calls: list) -> list:
    """``calls`` (functions of a client) on up to SIDE_BY_SIDE clients at once; their results in order."""
    if not calls:
        return []
    clients = queue.SimpleQueue()
    for _ in range(min(SIDE_BY_SIDE, len(calls))):
        clients.put(api.clone())

    def run(call):
        own = clients.get()
        try:
            return call(own)
        finally:
            clients.put(own)

    # The calls may read the settings (the portal's origin for embedding): the caller's app, not the environment's.
    app = current_app._get_current_object() if has_app_context() else None

    def in_app(call):
        if app is None:
            return run(call)
        with app.app_context():
            return run(call)

    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        return list(pool.map(in_app, calls))


def provision_objects(tenant_id: int) -> None:
    from tenants.superset.dashboards import remove_dashboard

    settings = _settings()
    with tenant_transaction(tenant_id) as session:  # everything this step reads from the platform, at once
        tenant = session.get(Tenant, tenant_id)
        ags, name = tenant.ags, tenant.name
        state = load_state(tenant_id, session)
        groups = _benchmark_groups(session, tenant)
        bundle.warm(session)
    if "db_role" not in state:
        raise RuntimeError("The database role step has not run for this tenant.")
    password = crypto.decrypt(settings, state["db_password"])
    api = client()
    base_roles = ensure_base_roles(api)
    uuids = state.get("uuids") or _adopted_uuids(*_connection(api, ags))
    wanted = bundle.build(None, ags, name, _sqlalchemy_uri(state["db_role"], bundle.MASK), uuids)
    # The tenant's roles need nothing of the import: found (or made) beside the look-ups.
    found, roles = _find(api, wanted, partial(tenant_roles, ags=ags))
    role_ids = {level: role["id"] for level, role in roles.items()}
    # A new login role's password (deprovisioned and provisioned again) must reach the connection too.
    version = wanted.version + "-" + hashlib.sha256(state["db_password"].encode()).hexdigest()[:8]
    created: set[str] = set()
    if state.get("bundle") != version or not found.complete(wanted):
        keep = {bundle.dashboard_slug(ags, key): u for key, u in wanted.dashboards.items()}
        for slug, dashboard in found.dashboards.items():
            if keep.get(slug) != dashboard["uuid"]:  # a dropped template, or a dashboard made before bundles
                remove_dashboard(api, dashboard["id"])
        if found.renamed(wanted):
            # Superset renames a renamed dataset's permission, and its charts' record of it, in the same
            # transaction; but a chart the same import changes takes back the old record its dataset still
            # holds in memory (seen for the last dataset of a bundle). So the datasets go first, alone.
            _import(api, wanted.datasets_only(), password)
        _import(api, wanted, password)
        # Charts a newer template no longer has: the import took them off their dashboard, not out of Superset.
        for key, previous in state.get("dashboards", {}).items():
            for chart_key, chart_id in previous.get("charts", {}).items():
                if chart_key not in wanted.charts.get(key, {}):
                    api.delete(f"/api/v1/chart/{chart_id}")
        created = {slug for slug in keep if slug not in found.dashboards}
        (found,) = _find(api, wanted)
        if not found.complete(wanted):
            raise RuntimeError(f"Superset's import left out some of tenant {ags}'s objects.")
    database_id = found.database["id"]
    dataset_ids = {key: found.datasets[key]["id"] for key in wanted.datasets}
    keys = list(templates.dashboards())
    shown = [found.dashboards[bundle.dashboard_slug(ags, key)] for key in keys]
    # By the names Superset holds now (complete() checked them): renaming a dataset renamed its permission.
    permissions = partial(ensure_tenant_permissions, ags=ags, roles=roles, database_id=database_id,
                          datasets={wanted.dataset_names[key]: i for key, i in dataset_ids.items()})
    rls = partial(ensure_rls, ags=ags, tenant_id=tenant_id, dataset_ids=dataset_ids, role_ids=role_ids,
                  groups=groups, guest_role=base_roles[GUEST_ROLE])
    # The two chains of several requests first, so they start at once.
    _, _, *embedded = _side_by_side(api, [permissions, rls] + [
        partial(_dashboard, dashboard=d, roles=sorted(role_ids.values()), new=d["slug"] in created) for d in shown])
    dashboards = {}
    for key, dashboard, embedded_uuid in zip(keys, shown, embedded, strict=True):
        template = templates.dashboards()[key]
        dashboards[key] = {"id": dashboard["id"], "embedded_uuid": embedded_uuid,
                           "title": template["title"], "fingerprint": templates.fingerprint(template),
                           "charts": {k: found.charts[u]["id"] for k, u in wanted.charts[key].items()}}
    state.update(database_id=database_id, datasets=dataset_ids, roles=role_ids, dashboards=dashboards,
                 bundle=version, uuids={"database": wanted.database,
                                        **{f"dataset/{n}": u for n, u in wanted.datasets.items()}})
    _save_state(tenant_id, state)


def deprovision_objects(tenant_id: int) -> None:
    from tenants.superset.access import remove_people
    from tenants.superset.dashboards import remove_dashboard

    with tenant_transaction(tenant_id) as session:
        ags = session.get(Tenant, tenant_id).ags
    api = client()
    remove_people(api, _settings(), ags)
    database, datasets = _connection(api, ags)
    charts = _charts(api, "datasource_id", sorted(d["id"] for d in datasets.values()))  # ready-made, self-service
    _side_by_side(api, [partial(_delete, path=f"/api/v1/chart/{c['id']}") for c in charts.values()])
    _side_by_side(api, [partial(remove_dashboard, dashboard_id=d["id"]) for d in _dashboards(api, ags).values()])
    for rule in _rules(api, ags).values():
        api.delete(f"/api/v1/rowlevelsecurity/{rule['id']}")
    _side_by_side(api, [partial(_delete, path=f"/api/v1/dataset/{d['id']}") for d in datasets.values()])
    if database:
        api.delete(f"/api/v1/database/{database['id']}")
    remove_tenant_roles(api, ags)
    with tenant_transaction(tenant_id) as session:
        state = load_state(tenant_id, session)
        for key in ("database_id", "datasets", "roles", "dashboards", "bundle", "uuids"):
            state.pop(key, None)
        _save_state(tenant_id, state, session)


def register() -> None:
    register_step("superset_db_role", provision_db_role, deprovision_db_role, order=50)
    register_step("superset_objects", provision_objects, deprovision_objects, order=60)
