"""Revocation reaches Superset: who may still act there follows the portal within a minute.

Staff reach self-service Superset through the portal's sign-in (portal/oidc.py), and Superset
keeps its own session afterwards. So when the portal deactivates a person, lowers their role, or
suspends or offboards a tenant, Superset must hear of it:

* :func:`sync_tenant_access` brings one tenant's Superset users to what the portal says (active
  editors keep the editor roles; everyone else is set inactive, which ends their Superset session
  at the next request because Flask-AppBuilder loads only active users) and switches the tenant's
  database login role off while the tenant is not active, which ends its running SQL Lab queries;
* :func:`watch` hooks it onto the portal's database session: a commit that changed a user's role
  or active flag or a tenant's status queues the job for that tenant *after* the commit (the job
  must read the committed state, and nothing is queued for a rolled-back change);
* the watchdog (ingest_workers/watchdog.py) runs :func:`sync_all` every minute as well, so a lost
  job or a change made outside the portal is caught up with.

Superset usernames are the portal's subjects, ``<AGS>:<user id>`` (portal/oidc.py).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from sqlalchemy import event, inspect, select, text
from sqlalchemy.orm import Session

from tenants.context import platform_transaction, tenant_transaction
from tenants.db import after_commit
from tenants.models import Tenant, User
from tenants.superset.client import SupersetClient, rison

log = logging.getLogger(__name__)

#: Superset roles of an active editor besides the tenant's own (superset_config/portal_security.py).
EDITOR_BASE_ROLES = ("egov_editor", "sql_lab")
#: Portal roles that reach self-service Superset (viewers are refused at the portal's authorize step).
SUPERSET_ROLES = ("editor", "admin")
SYNC_KEY = "superset_access_sync"


def wanted_access(tenant: Tenant, users: dict[int, User]) -> dict[int, bool]:
    """Which of the tenant's portal users may act in Superset now (user id → allowed)."""
    return {user_id: tenant.is_active and user.active and user.role in SUPERSET_ROLES
            for user_id, user in users.items()}


def _superset_users(api: SupersetClient, ags: str) -> list[dict[str, Any]]:
    query = {"filters": [{"col": "username", "opr": "sw", "value": f"{ags}:"}], "page": 0, "page_size": 100,
             "columns": ["id", "username", "active", "roles.id", "roles.name"]}
    found, page = [], 0
    while True:
        query["page"] = page
        result = api.get("/api/v1/security/users/", params={"q": rison(query)})["result"]
        found += [user for user in result if user["username"].startswith(f"{ags}:")]
        if len(result) < query["page_size"]:
            return found
        page += 1


def _role_ids(api: SupersetClient, names: list[str]) -> list[int]:
    from tenants.superset.roles import ensure_role

    return sorted(ensure_role(api, name) for name in names)


def sync_tenant_access(tenant_id: int, api: SupersetClient | None = None) -> dict[str, int]:
    """Job: make the tenant's Superset users and database login role follow the portal.

    Idempotent; writes only what differs. Returns counts of what it changed
    (``{"deactivated": n, "reactivated": n, "sessions_ended": n}``).
    """
    from tenants.superset.provision import client, load_state
    from tenants.superset.roles import tenant_role

    with tenant_transaction(tenant_id) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            return {"deactivated": 0, "reactivated": 0, "sessions_ended": 0}
        users = {user.id: user for user in session.scalars(select(User).where(User.tenant_id == tenant_id))}
        allowed = wanted_access(tenant, users)
        ags, enabled = tenant.ags, tenant.is_active
        ended = session.execute(text("SELECT portal.superset_login_enable(:t, :on)"),
                                {"t": tenant_id, "on": enabled}).scalar_one()
        provisioned = "database_id" in load_state(tenant_id, session)
    counts = {"deactivated": 0, "reactivated": 0, "sessions_ended": ended}
    if not provisioned:  # nobody of this tenant has been in Superset
        return counts
    api = api or client()
    editor_roles: list[int] | None = None
    nobody_roles: list[int] | None = None
    for superset_user in _superset_users(api, ags):
        user_id = superset_user["username"].split(":", 1)[1]
        may_act = user_id.isdigit() and allowed.get(int(user_id), False)
        current = sorted(role["id"] for role in superset_user.get("roles", []))
        if may_act:
            if editor_roles is None:
                editor_roles = _role_ids(api, [*EDITOR_BASE_ROLES, tenant_role(ags, "editor")])
            if superset_user["active"] and current == editor_roles:
                continue
            api.put(f"/api/v1/security/users/{superset_user['id']}", {"active": True, "roles": editor_roles})
            counts["reactivated"] += 1
        else:
            # Inactive and with nothing but what anonymous visitors have (Flask-AppBuilder refuses an
            # empty role list): even a session Superset kept can do nothing.
            if nobody_roles is None:
                nobody_roles = _role_ids(api, ["Public"])
            if superset_user["active"] or current != nobody_roles:
                api.put(f"/api/v1/security/users/{superset_user['id']}", {"active": False, "roles": nobody_roles})
                counts["deactivated"] += 1
    return counts


def sync_all() -> dict[int, dict[str, int]]:
    """Every tenant that was ever provisioned (the watchdog's minute-by-minute catch-up)."""
    from tenants.superset.provision import client

    with platform_transaction() as session:  # the registry itself has no tenant
        tenant_ids = session.scalars(select(Tenant.id).where(Tenant.status != "pending")).all()
    api = client()
    results = {}
    for tenant_id in tenant_ids:
        try:
            results[tenant_id] = sync_tenant_access(tenant_id, api)
        except Exception:  # noqa: BLE001 - one tenant's failure must not stop the others
            log.exception("Superset access of tenant %s could not be synchronised", tenant_id)
    return results


# -- queued after the commit that changed who may act ---------------------------------------------

def _changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _left_or_regained_active(tenant: Tenant) -> bool:
    """A status change that narrows or restores access of people who may have used Superset.

    Approving a pending tenant is not one: nobody of it has been in Superset yet.
    """
    history = inspect(tenant).attrs["status"].history
    before = set(history.deleted)
    return bool(history.added) and bool(before) and not before <= {"pending", "rejected"}


def _collect(session: Session, flush_context) -> None:
    """After each flush: the tenants whose people changed get one access sync once the transaction commits."""
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, User) and obj not in session.new and (obj in session.deleted
                                                                 or _changed(obj, "role", "active")):
            tenant_id = obj.tenant_id
        elif isinstance(obj, Tenant) and obj not in session.new and _left_or_regained_active(obj):
            tenant_id = obj.id
        else:
            continue
        after_commit(session, partial(_enqueue, tenant_id), key=(SYNC_KEY, tenant_id))


def _enqueue(tenant_id: int) -> None:
    from tenants.jobs import enqueue

    try:
        enqueue(sync_tenant_access, tenant_id, queue="high", timeout=120, retries=3, retry_delays=[5, 15, 30])
    except Exception:  # noqa: BLE001 - Redis down: the watchdog's catch-up still comes within a minute
        log.exception("could not queue the Superset access sync of tenant %s", tenant_id)


def watch(session_class=Session) -> None:
    """Hook the sync onto every session of ``session_class`` (called once by ``create_app``)."""
    if not event.contains(session_class, "after_flush", _collect):
        event.listen(session_class, "after_flush", _collect)


#: Superset's tables that hold what a person did (queries with their SQL, tabs, permalinks, logs,
#: favourites, memberships): removed with the person. Other references to a person (who last
#: changed a shared object) are set to NULL.
PERSONAL_TABLES = ("tab_state", "query", "key_value", "logs", "favstar", "user_attribute", "ab_user_role",
                   "ab_user_group", "sqlatable_user", "slice_user", "dashboard_user", "database_user_oauth2_tokens",
                   "ab_api_key", "report_schedule_user", "user_favorite_tag", "task_subscribers", "tasks")


def remove_people(api: SupersetClient, settings, ags: str) -> int:
    """Offboarding: the tenant's Superset users and everything they made or left in Superset.

    Charts, dashboards and saved queries they own go through the API (Superset's own clean-up of
    layouts and permissions); their query history, SQL Lab tabs, permalinks and logs, which the API
    cannot delete for another user, go straight from Superset's metadata database, followed by the
    users themselves. Returns the number of users removed.
    """
    people = _superset_users(api, ags)
    for person in people:
        owned = rison({"filters": [{"col": "owners", "opr": "rel_m_m", "value": person["id"]}], "page_size": 100})
        for resource in ("dashboard", "chart"):
            for found in api.get(f"/api/v1/{resource}/", params={"q": owned})["result"]:
                api.delete(f"/api/v1/{resource}/{found['id']}")
        made = rison({"filters": [{"col": "created_by", "opr": "rel_o_m", "value": person["id"]}], "page_size": 100})
        for found in api.get("/api/v1/saved_query/", params={"q": made})["result"]:
            api.delete(f"/api/v1/saved_query/{found['id']}")
    if people:
        _purge_traces(settings, [person["id"] for person in people])
    return len(people)


def _purge_traces(settings, user_ids: list[int]) -> None:
    import psycopg
    from psycopg import sql

    from tenants.superset.server import meta_dsn

    with psycopg.connect(meta_dsn(settings)) as conn:
        references = conn.execute("""
            SELECT c.conrelid::regclass::text, a.attname, NOT a.attnotnull
            FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.contype = 'f' AND c.confrelid = 'ab_user'::regclass AND cardinality(c.conkey) = 1""").fetchall()
        tables = {table for table, _, _ in references}
        for table in PERSONAL_TABLES:  # the tab's table schemas go with the tab (ON DELETE CASCADE or first)
            if table == "tab_state" and "table_schema" in tables:
                conn.execute("DELETE FROM table_schema WHERE tab_state_id IN "
                             "(SELECT id FROM tab_state WHERE user_id = ANY(%s))", (user_ids,))
            for ref_table, column, _ in references:
                if ref_table == table:
                    conn.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                        sql.Identifier(ref_table), sql.Identifier(column)), (user_ids,))
        for ref_table, column, nullable in references:
            if ref_table not in PERSONAL_TABLES and ref_table != "ab_user" and nullable:
                conn.execute(sql.SQL("UPDATE {} SET {} = NULL WHERE {} = ANY(%s)").format(
                    sql.Identifier(ref_table), sql.Identifier(column), sql.Identifier(column)), (user_ids,))
        conn.execute("UPDATE ab_user SET created_by_fk = NULL WHERE created_by_fk = ANY(%s)", (user_ids,))
        conn.execute("UPDATE ab_user SET changed_by_fk = NULL WHERE changed_by_fk = ANY(%s)", (user_ids,))
        conn.execute("DELETE FROM ab_user WHERE id = ANY(%s)", (user_ids,))
