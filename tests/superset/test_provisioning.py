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
        embedded = api.request("GET", f"/api/v1/dashboard/{dashboard['id']}/embedded", expect=(200, 404))
        objects[f"embedded {dashboard['slug']}"] = embedded.json()["result"]["uuid"] if embedded.ok else None
        for chart in api.get(f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]:
            objects[f"chart {chart['id']}"] = api.find_one("chart", id=chart["id"])["changed_on_utc"]
    for level in ("viewer", "editor"):
        role = api.get("/api/v1/security/roles/search/", params={"q": rison(
            {"filters": [{"col": "name", "opr": "eq", "value": f"tenant_{ags}_{level}"}]})})["result"]
        if role:
            perms = api.get(f"/api/v1/security/roles/{role[0]['id']}/permissions/")["result"]
            objects[f"role {level}"] = sorted(p["id"] for p in perms)
    for name in (f"tenant_{ags}", f"tenant_{ags}_vergleich", f"tenant_{ags}_sperre"):
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


def test_bundle_has_stable_uuids_and_no_password(ss_app, superset_settings, giessen):
    """The import bundle names the tenant's objects by UUIDs of its AGS (so importing again overwrites them)
    and carries the connection's password nowhere: it goes with the request only."""
    import io
    import zipfile

    from tenants import crypto
    from tenants.provisioning import deprovision_tenant, provision_tenant
    from tenants.superset import bundle
    from tenants.superset.provision import _sqlalchemy_uri, client, load_state

    with ss_app.app_context():
        assert provision_tenant(giessen.id)["status"] == "succeeded"
        state = load_state(giessen.id)
        password = crypto.decrypt(superset_settings, state["db_password"])
        built = bundle.build(None, GIESSEN, giessen.name, _sqlalchemy_uri(state["db_role"], bundle.MASK),
                             state["uuids"])
        archive = zipfile.ZipFile(io.BytesIO(built.zip()))
        text_of_bundle = b"".join(archive.read(name) for name in archive.namelist()).decode()
        assert password not in text_of_bundle and bundle.MASK in text_of_bundle
        assert state["bundle"].startswith(built.version)

        api = client()
        uuids = {d["slug"]: d["uuid"] for d in api.get("/api/v1/dashboard/", params={"q": (
            f"(filters:!((col:slug,opr:sw,value:t{GIESSEN}-)),columns:!(slug,uuid),page:0,page_size:100)")})["result"]}
        assert uuids == {bundle.dashboard_slug(GIESSEN, key): bundle.object_uuid(GIESSEN, "dashboard", key)
                         for key in built.dashboards}
        # Offboarded and onboarded again: the same objects by the same UUIDs, the connection with the new password.
        assert deprovision_tenant(giessen.id)["status"] == "succeeded"
        assert provision_tenant(giessen.id)["status"] == "succeeded"
        again = load_state(giessen.id)
        assert again["uuids"] == state["uuids"] and again["db_password"] != state["db_password"]
        database_id = again["database_id"]
        answer = api.get(f"/api/v1/database/{database_id}/schemas/", params={"q": "(force:!t)"})
        assert "analytics" in answer["result"]  # Superset reaches PostgreSQL as the tenant's new login role


def test_the_comparison_table_heads_its_monthly_column_monat(ss_app, superset_settings, giessen):
    """The comparison figures are monthly: their time column reads "Monat" (it read "Tag", like the daily
    datasets', seen on Vergleich), while the daily datasets keep "Tag"."""
    from tenants.provisioning import provision_tenant
    from tenants.superset.provision import client, load_state

    with ss_app.app_context():
        assert provision_tenant(giessen.id)["status"] == "succeeded"
        datasets = load_state(giessen.id)["datasets"]
        api = client()

    def label_of_day(name: str) -> str:
        columns = api.get(f"/api/v1/dataset/{datasets[name]}")["result"]["columns"]
        return next(column["verbose_name"] for column in columns if column["column_name"] == "day")

    assert label_of_day("egov_benchmark") == "Monat"
    assert label_of_day("egov_service_daily") == "Tag"


def _as_before_german_names(api, ags: str, tenant_id: int, name: str, settings) -> dict[str, int]:
    """The tenant's Superset objects as provisioning left them before datasets had German names: each dataset
    named by its key in the schema ``analytics``, the metric "COUNT(*)", the roles' permissions of those names,
    the fingerprints of the older templates. Returns the dataset ids by key."""
    from tenants import crypto
    from tenants.superset import bundle
    from tenants.superset.provision import _import, _save_state, _sqlalchemy_uri, load_state
    from tenants.superset.roles import ensure_tenant_permissions, tenant_roles

    state = load_state(tenant_id)
    old = bundle.build(None, ags, name, _sqlalchemy_uri(state["db_role"], bundle.MASK), state["uuids"])
    for key in old.datasets:
        dataset = old.files[f"datasets/{bundle.database_name(ags)}/{key}.yaml"]
        dataset.update(table_name=key, schema="analytics")
        dataset["metrics"][0]["verbose_name"] = "COUNT(*)"
    _import(api, old, crypto.decrypt(settings, state["db_password"]))
    ensure_tenant_permissions(api, ags, tenant_roles(api, ags), state["database_id"], {
        key: state["datasets"][key] for key in old.datasets})
    state["bundle"] = old.version
    for dashboard in state["dashboards"].values():
        dashboard["fingerprint"] = "v4-before-german-names"
    _save_state(tenant_id, state)
    return state["datasets"]



def test_the_rollout_gives_a_tenant_s_datasets_german_names_and_their_permissions_with_them(
        ss_app, superset_settings, giessen):
    """A tenant provisioned before the German names: the roll-out renames its datasets in place (same ids, so
    what editors built on them stays), and its roles hold the permissions of the new names; none of the old
    names is left in Superset for anyone to hold."""
    from sqlalchemy import create_engine, text

    from tenants.provisioning import provision_tenant
    from tenants.superset import server, templates
    from tenants.superset.provision import client
    from tenants.superset.rollout import differences, rollout

    with ss_app.app_context():
        assert provision_tenant(giessen.id)["status"] == "succeeded"
        api = client()
        database_id = api.find_one("database", database_name=f"tenant_{GIESSEN}")["id"]

        def shown() -> dict[int, str]:
            return {d["id"]: d["table_name"] for d in api.find("dataset", database=("rel_o_m", database_id))}

        ids = _as_before_german_names(api, GIESSEN, giessen.id, giessen.name, superset_settings)
        assert shown() == {i: key for key, i in ids.items()} and differences(giessen.id)  # the old state

        assert [report.error for report in rollout([giessen])] == [None]
        assert differences(giessen.id) == []
        assert shown() == {i: templates.datasets()[key]["name"] for key, i in ids.items()}
        resources = {f"[tenant_{GIESSEN}].[{name}](id:{i})" for i, name in shown().items()}
        held = {}
        for level in ("viewer", "editor"):
            role = api.find_one("security/roles/search", name=f"tenant_{GIESSEN}_{level}")
            held[level] = {(p["permission_name"], p["view_menu_name"])
                           for p in api.get(f"/api/v1/security/roles/{role['id']}/permissions/")["result"]}
    assert held["viewer"] == {("datasource_access", resource) for resource in resources}
    assert held["editor"] - held["viewer"] == {("database_access", f"[tenant_{GIESSEN}].(id:{database_id})")}

    meta = create_engine(server.meta_url(superset_settings).replace("+psycopg2", "+psycopg"))
    with meta.connect() as conn:
        # Superset renamed each dataset's permission in place: nothing of the old names is left to grant, and the
        # datasets' and charts' own record of their permission (which Superset's list filters compare) follows.
        names = conn.execute(text("SELECT name FROM ab_view_menu WHERE name LIKE :prefix"),
                             {"prefix": f"[tenant_{GIESSEN}]%"}).scalars().all()
        recorded = conn.execute(text("SELECT perm, schema_perm FROM tables WHERE id = ANY(:ids) "
                                     "UNION SELECT perm, schema_perm FROM slices WHERE datasource_id = ANY(:ids)"),
                                {"ids": list(ids.values())}).all()
    meta.dispose()
    assert [name for name in names if any(f"[{key}]" in name for key in ids)] == []
    assert set(recorded) == {(resource, None) for resource in resources}
