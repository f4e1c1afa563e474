"""Superset provisioning is idempotent, and offboarding leaves nothing of the tenant behind."""

from __future__ import annotations

import psycopg
import pytest

from tests.superset.conftest import create_tenant_with_data, remove_tenant

GIESSEN = "06531005"


def _superset_objects(api, ags: str) -> dict:
    """Everything Superset holds for the tenant, with its last change time."""
    from tenants.superset.client import rison

    objects = {}
    database = api.find_one("database", database_name=f"tenant_{ags}")
    if database:
        objects["database"] = database["changed_on"]
        for dataset in api.find("dataset", database=("rel_o_m", database["id"])):
            objects[f"dataset {dataset['table_name']}"] = dataset["changed_on_utc"]
    query = rison({"filters": [{"col": "slug", "opr": "sw", "value": f"t{ags}-"}], "page": 0, "page_size": 100})
    for dashboard in api.get("/api/v1/dashboard/", params={"q": query})["result"]:
        objects[f"dashboard {dashboard['slug']}"] = dashboard["changed_on_utc"]
        for chart in api.get(f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]:
            objects[f"chart {chart['id']}"] = api.find_one("chart", id=chart["id"])["changed_on_utc"]
    for level in ("viewer", "editor"):
        role = api.get("/api/v1/security/roles/search/", params={"q": rison(
            {"filters": [{"col": "name", "opr": "eq", "value": f"tenant_{ags}_{level}"}]})})["result"]
        if role:
            perms = api.get(f"/api/v1/security/roles/{role[0]['id']}/permissions/")["result"]
            objects[f"role {level}"] = sorted(p["id"] for p in perms)
    for name in (f"tenant_{ags}", f"tenant_{ags}_vergleich"):
        rls = api.find_one("rowlevelsecurity", name=name)
        if rls:
            objects[f"rls {name}"] = {k: v for k, v in rls.items() if k != "changed_on_delta_humanized"}
    return objects


def _peer_key(app, tenant_id: int) -> str:
    from tenants.benchmark.groups import peer_key

    with app.app_context():
        return peer_key(tenant_id)


def _login_role(settings, tenant_id: int):
    with psycopg.connect(settings.admin_database_url) as conn:
        return conn.execute(
            "SELECT rolname, rolcanlogin, rolconnlimit, rolsuper, rolbypassrls, rolcreaterole, rolconfig "
            "FROM pg_roles WHERE rolname = %s", (f"{settings.database_name}_ss_t{tenant_id}",)).fetchone()


@pytest.fixture
def giessen(ss_app, owner_engine, superset_settings):
    tenant = create_tenant_with_data(ss_app, GIESSEN, scale=3, days=10)
    yield tenant
    remove_tenant(ss_app, owner_engine, tenant)


def test_provisioning_twice_changes_nothing_and_offboarding_leaves_nothing(ss_app, superset_settings, giessen):
    from tenants.provisioning import deprovision_tenant, provision_tenant
    from tenants.superset import templates
    from tenants.superset.provision import client

    with ss_app.app_context():
        assert provision_tenant(giessen.id)["status"] == "succeeded"
        api = client()
        first = _superset_objects(api, GIESSEN)
        role = _login_role(superset_settings, giessen.id)
        # Eight dashboards, one database, the datasets, two roles, two RLS rules (tenant; its comparison groups).
        assert sum(k.startswith("dashboard") for k in first) == len(templates.dashboards()) == 8
        assert "database" in first and {"role viewer", "role editor"} <= first.keys()
        assert {f"rls tenant_{GIESSEN}", f"rls tenant_{GIESSEN}_vergleich"} <= first.keys()
        assert first[f"rls tenant_{GIESSEN}_vergleich"]["clause"] == (
            "group_key = 'own' OR (group_key IN ('hessen', 'kreis:06531', "
            f"'{_peer_key(ss_app, giessen.id)}', 'size:50k-100k'))")
        assert role is not None and role[1:6] == (True, 10, False, False, False)
        assert "statement_timeout=30s" in role[6] and "default_transaction_read_only=on" in role[6]

        assert provision_tenant(giessen.id)["status"] == "succeeded"
        assert _superset_objects(api, GIESSEN) == first
        assert _login_role(superset_settings, giessen.id) == role

        assert deprovision_tenant(giessen.id)["status"] == "succeeded"
        assert _superset_objects(api, GIESSEN) == {}
        assert _login_role(superset_settings, giessen.id) is None
