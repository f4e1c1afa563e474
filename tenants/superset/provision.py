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
   templates, with embedding allowed for the portal's origin.

Deprovisioning removes the Superset objects, then the database role.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import text

from tenants import crypto, tenant_state
from tenants.benchmark.comparison import member_of
from tenants.benchmark.groups import groups_of
from tenants.context import tenant_transaction
from tenants.models import Tenant
from tenants.provisioning import register_step
from tenants.settings import get_settings
from tenants.superset import guest, templates
from tenants.superset.client import SupersetClient
from tenants.superset.roles import ensure_base_roles, ensure_tenant_roles, remove_tenant_roles

STATE_KEY = "superset"
SCHEMA = "analytics"
#: The dataset of published comparison figures and the tenant's own values ("Vergleich").
BENCHMARK_DATASET = "egov_benchmark"


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


def _save_state(tenant_id: int, state: dict[str, Any]) -> None:
    with tenant_transaction(tenant_id) as session:
        tenant_state.save(session, tenant_id, STATE_KEY, state)


def _tenant(tenant_id: int) -> Tenant:
    with tenant_transaction(tenant_id) as session:
        tenant = session.get(Tenant, tenant_id)
        session.expunge(tenant)
        return tenant


# -- 1. the database login role ----------------------------------------------------

def provision_db_role(tenant_id: int) -> None:
    state = load_state(tenant_id)
    settings = _settings()
    if "db_password" not in state:
        state["db_password"] = crypto.encrypt(settings, secrets.token_urlsafe(32))
    password = crypto.decrypt(settings, state["db_password"])
    with tenant_transaction(tenant_id) as session:
        session.execute(text("SELECT portal.superset_protect_analytics()"))
        state["db_role"] = session.execute(text("SELECT portal.superset_login_ensure(:t, :pw)"),
                                           {"t": tenant_id, "pw": password}).scalar_one()
    _save_state(tenant_id, state)


def deprovision_db_role(tenant_id: int) -> None:
    with tenant_transaction(tenant_id) as session:
        session.execute(text("SELECT portal.superset_login_drop(:t)"), {"t": tenant_id})
    state = load_state(tenant_id)
    for key in ("db_role", "db_password"):
        state.pop(key, None)
    _save_state(tenant_id, state)


# -- 2. Superset objects -------------------------------------------------------------

def database_name(ags: str) -> str:
    return f"tenant_{ags}"


def _sqlalchemy_uri(role: str, password: str) -> str:
    settings = _settings()
    server = urlsplit(settings.database_url)  # the platform's PostgreSQL, as the tenant's own role
    return (f"postgresql+psycopg2://{quote(role)}:{quote(password, safe='')}@{server.hostname or '127.0.0.1'}:"
            f"{server.port or 5432}/{quote(settings.database_name)}")


def ensure_database(api: SupersetClient, ags: str, role: str, password: str) -> int:
    wanted = {
        "database_name": database_name(ags), "expose_in_sqllab": True, "allow_run_async": False,
        "allow_dml": False, "allow_ctas": False, "allow_cvas": False, "allow_file_upload": False,
    }
    found = api.find_one("database", database_name=wanted["database_name"])
    if found is None:
        return api.post("/api/v1/database/", {**wanted, "sqlalchemy_uri": _sqlalchemy_uri(role, password)})["id"]
    current = api.get(f"/api/v1/database/{found['id']}")["result"]
    # The stored URI masks the password; compare the rest and trust the role's own idempotency.
    masked = _sqlalchemy_uri(role, "XXXXXXXXXX")
    if current.get("sqlalchemy_uri") != masked or any(current.get(k) != v for k, v in wanted.items()):
        api.put(f"/api/v1/database/{found['id']}", {**wanted, "sqlalchemy_uri": _sqlalchemy_uri(role, password)})
    return found["id"]


def _label_columns(api: SupersetClient, dataset_id: int) -> None:
    """German verbose names and ``day`` as the time column, written only when they differ."""
    current = api.get(f"/api/v1/dataset/{dataset_id}")["result"]
    labels = templates.column_labels()
    columns = [{"id": c["id"], "column_name": c["column_name"], "is_dttm": c["column_name"] == "day" or c["is_dttm"],
                "verbose_name": labels.get(c["column_name"], c.get("verbose_name"))} for c in current["columns"]]
    unchanged = all(c.get("verbose_name") == w["verbose_name"] and c["is_dttm"] == w["is_dttm"]
                    for c, w in zip(current["columns"], columns, strict=True))
    if not unchanged or current.get("main_dttm_col") != "day":
        api.put(f"/api/v1/dataset/{dataset_id}", {"main_dttm_col": "day", "columns": columns})


def ensure_datasets(api: SupersetClient, database_id: int) -> dict[str, int]:
    ids = {}
    for name, spec in templates.datasets().items():
        found = api.find_one("dataset", table_name=name, database=("rel_o_m", database_id))
        if found is None:
            dataset_id = api.post("/api/v1/dataset/", {"database": database_id, "schema": SCHEMA, "table_name": name,
                                                       "sql": spec["sql"]})["id"]
            # Columns are read from the query.
            api.put(f"/api/v1/dataset/{dataset_id}/refresh", {})
        else:
            dataset_id = found["id"]
            if api.get(f"/api/v1/dataset/{dataset_id}")["result"].get("sql") != spec["sql"]:
                api.put(f"/api/v1/dataset/{dataset_id}", {"sql": spec["sql"]})
                api.put(f"/api/v1/dataset/{dataset_id}/refresh", {})
        _label_columns(api, dataset_id)
        ids[name] = dataset_id
    return ids


def rls_name(ags: str) -> str:
    return f"tenant_{ags}"


def benchmark_rls_name(ags: str) -> str:
    return f"tenant_{ags}_vergleich"


def deny_rls_name(ags: str) -> str:
    return f"tenant_{ags}_sperre"


def benchmark_groups(tenant_id: int) -> list[str]:
    """Every comparison group the tenant can be shown, its peer group included whether chosen yet or not.

    For the staff who open the dashboards in Superset itself; guest tokens narrow this further to
    what the tenant's page shows right now (tenants/superset/embedding.py).
    """
    with tenant_transaction(tenant_id) as session:
        member = member_of(session, session.get(Tenant, tenant_id))
    return [key for _, key, _ in groups_of(member, has_peers=True)]


def _ensure_rule(api: SupersetClient, wanted: dict[str, Any]) -> None:
    found = api.find_one("rowlevelsecurity", name=wanted["name"])
    if found is None:
        api.post("/api/v1/rowlevelsecurity/", wanted)
        return
    current = {"name": found["name"], "filter_type": found["filter_type"],
               "tables": sorted(t["id"] for t in found["tables"]), "roles": sorted(r["id"] for r in found["roles"]),
               "clause": found["clause"], "group_key": found["group_key"], "description": found["description"]}
    if current != wanted:
        api.put(f"/api/v1/rowlevelsecurity/{found['id']}", wanted)


def ensure_rls(api: SupersetClient, ags: str, tenant_id: int, dataset_ids: dict[str, int],
               role_ids: dict[str, int]) -> None:
    from tenants.superset.roles import GUEST_ROLE, ensure_role

    roles = sorted(role_ids.values())
    # The deny layer behind the tenant boundary (superset_config/tenant_boundary.py): a "Base" rule
    # applies to everyone *except* its roles, so anyone but the tenant's own staff and embedded
    # guests (held to their token's tenant by the boundary and the token's own clause) reads no
    # row of the tenant's datasets, even if some path of Superset's lets them reach one.
    _ensure_rule(api, {"name": deny_rls_name(ags), "filter_type": "Base", "tables": sorted(dataset_ids.values()),
                       "roles": sorted([*roles, ensure_role(api, GUEST_ROLE)]), "clause": "1 = 0",
                       "group_key": "sperre",
                       "description": "Sperre für alle außer den eigenen Rollen (dritte Ebene der Mandantentrennung)"})
    _ensure_rule(api, {"name": rls_name(ags), "filter_type": "Regular", "tables": sorted(dataset_ids.values()),
                       "roles": roles, "clause": guest.rls_clause(tenant_id), "group_key": "tenant",
                       "description": "Mandantentrennung (zweite Ebene, zusätzlich zur Datenbankrolle)"})
    if BENCHMARK_DATASET in dataset_ids:
        # Its own group key: Superset ORs the rules of one group key, and this one must narrow the tenant rule.
        _ensure_rule(api, {"name": benchmark_rls_name(ags), "filter_type": "Regular",
                           "tables": [dataset_ids[BENCHMARK_DATASET]], "roles": roles,
                           "clause": guest.benchmark_clause(benchmark_groups(tenant_id)), "group_key": "vergleich",
                           "description": "Nur die eigenen Vergleichsgruppen"})


def provision_objects(tenant_id: int) -> None:
    from tenants.superset.dashboards import ensure_dashboards

    tenant = _tenant(tenant_id)
    state = load_state(tenant_id)
    if "db_role" not in state:
        raise RuntimeError("The database role step has not run for this tenant.")
    api = client()
    ensure_base_roles(api)
    database_id = ensure_database(api, tenant.ags, state["db_role"], crypto.decrypt(_settings(), state["db_password"]))
    dataset_ids = ensure_datasets(api, database_id)
    role_ids = ensure_tenant_roles(api, tenant.ags, database_id, dataset_ids)
    ensure_rls(api, tenant.ags, tenant_id, dataset_ids, role_ids)
    dashboards = ensure_dashboards(api, tenant.ags, tenant.name, dataset_ids, role_ids, state.get("dashboards", {}))
    state.update(database_id=database_id, datasets=dataset_ids, roles=role_ids, dashboards=dashboards)
    _save_state(tenant_id, state)


def deprovision_objects(tenant_id: int) -> None:
    from tenants.superset.access import remove_people
    from tenants.superset.dashboards import remove_dashboards

    tenant = _tenant(tenant_id)
    api = client()
    remove_people(api, _settings(), tenant.ags)
    remove_dashboards(api, tenant.ags)
    for name in (rls_name(tenant.ags), benchmark_rls_name(tenant.ags), deny_rls_name(tenant.ags)):
        found = api.find_one("rowlevelsecurity", name=name)
        if found:
            api.delete(f"/api/v1/rowlevelsecurity/{found['id']}")
    database = api.find_one("database", database_name=database_name(tenant.ags))
    if database:
        for dataset in api.find("dataset", database=("rel_o_m", database["id"])):
            for chart in api.find("chart", datasource_id=dataset["id"]):  # any made in self-service
                api.delete(f"/api/v1/chart/{chart['id']}")
            api.delete(f"/api/v1/dataset/{dataset['id']}")
        api.delete(f"/api/v1/database/{database['id']}")
    remove_tenant_roles(api, tenant.ags)
    state = load_state(tenant_id)
    for key in ("database_id", "datasets", "roles", "dashboards"):
        state.pop(key, None)
    _save_state(tenant_id, state)


def register() -> None:
    register_step("superset_db_role", provision_db_role, deprovision_db_role, order=50)
    register_step("superset_objects", provision_objects, deprovision_objects, order=60)
