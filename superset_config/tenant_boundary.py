"""The tenant boundary inside Superset: a tenant's people reach only their own tenant's objects.

Superset's permissions say *what kind* of thing a role may do (read charts, run SQL Lab); they
know nothing of tenants. Its data paths also have side doors that widen access beyond the
permissions: a dashboard's roles (``DASHBOARD_RBAC``), a chart id named in a dashboard's layout,
drill-to-detail and CSV export through a dashboard, ownership of a dataset. Whoever reaches
another tenant's dataset through one of them runs the query on that tenant's own database
connection, whose login role lets that tenant's rows through. So this module is an isolation
layer of its own (docs/architecture.md, "Superset's object boundary"):

* every Superset object belongs to at most one tenant, derived from what it is made of
  (:func:`tenants_of`): a database by its name ``tenant_<AGS>``, a dataset by its database, a chart
  by its dataset, a dashboard by its charts, roles and owners, a query by its database, a user by
  their roles, a role by its name;
* the acting tenant (:func:`acting_tenant`) comes from the user's ``tenant_<AGS>_*`` roles or
  from the ``tenant`` claim of an embedded guest's token;
* **what can be loaded at all**: :func:`scope_reads` (a ``do_orm_execute`` hook) adds the tenant to
  every query Superset makes of its metadata on behalf of a tenant's principal, the way row-level
  security does in the platform's database: another tenant's databases, datasets, charts,
  dashboards, saved and SQL Lab queries, tabs, permalinks, people and roles do not exist for it,
  whatever endpoint, view, filter or relationship asks (a "related" list, ``include_ids``, a
  copy of a dashboard, a permalink key);
* **data**: :func:`check_access` runs after Superset's own ``raise_for_access`` on everything
  a request names (dashboard, chart, dataset, database, SQL Lab query, the dashboard and chart
  ids inside a query context) and refuses anything outside the acting tenant;
* **writes**: :func:`check_flush` runs before every flush of Superset's session and refuses to
  store an object that would tie the acting tenant's work to another tenant's object (a chart on
  a foreign dataset, a foreign chart on a dashboard, a foreign role or owner, ...);
* **lists of people and roles**: :data:`RELATED_FILTERS` narrow the "related" endpoints
  (owners, created_by, roles) to the acting tenant (``EXTRA_RELATED_QUERY_FILTERS``);
* **SQL Lab**: :func:`check_sql` lets through only statements that read (no ``SET``, ``RESET``,
  transaction control, locks or functions that change the session) and names the reason in German.

The portal's service account (Superset ``Admin``) provisions every tenant and is outside the
boundary. Anyone else without exactly one tenant reaches no tenant's object.
"""

from __future__ import annotations

import re
from typing import Any

from flask import g
from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
from superset.exceptions import SupersetSecurityException

AGS = r"06[0-9]{3}(?:[0-9]{3})?"
TENANT_ROLE = re.compile(rf"^tenant_({AGS})_(?:viewer|editor)$")
TENANT_DATABASE = re.compile(rf"^tenant_({AGS})$")
TENANT_USERNAME = re.compile(rf"^({AGS}):[0-9]+$")
#: Roles with no tenant that tenant staff hold beside their tenant's role (superset_config/portal_security.py,
#: tenants/superset/roles.py) or that Superset itself hands out.
SHARED_ROLES = frozenset({"egov_viewer", "egov_editor", "sql_lab", "Gamma", "EmbedGuest", "Public"})

#: The acting principal is outside every tenant's boundary (the portal's service account).
PLATFORM = "platform"
#: The acting principal belongs to no tenant (or to several, which never happens legitimately).
NOBODY = "nobody"
#: An object that belongs to no tenant (no tenant's staff may touch it).
UNOWNED = "unowned"

DENIED = ("Dieses Objekt gehört nicht zu Ihrer Kommune oder existiert nicht. "
          "(This object does not belong to your municipality or does not exist.)")


class BoundaryViolation(SupersetSecurityException):
    """Superset's own 403 (its API and views render it), with a German message."""

    def __init__(self, message: str = DENIED):
        super().__init__(SupersetError(message=message, error_type=SupersetErrorType.DATASOURCE_SECURITY_ACCESS_ERROR,
                                       level=ErrorLevel.ERROR))
        self.message = message


# -- who is acting --------------------------------------------------------------------------------

def _role_tenants(roles) -> set[str]:
    found = set()
    for role in roles or ():
        match = TENANT_ROLE.match(getattr(role, "name", "") or "")
        if match:
            found.add(match.group(1))
    return found


def acting_tenant(user: Any = None) -> str:
    """The AGS the current request acts for, :data:`PLATFORM` or :data:`NOBODY`.

    Cached on ``g`` for the request: Superset asks several times per chart request.
    """
    explicit = user is not None
    user = user if explicit else _loaded_user()
    if not explicit and "egov_tenant" in g.__dict__ and g.__dict__.get("egov_tenant_user") is user:
        return g.egov_tenant
    g.egov_resolving = True  # the user's roles load through the ORM: scope_reads must not ask back
    try:
        result = _acting_tenant(user)
    finally:
        g.egov_resolving = False
    if not explicit:
        g.egov_tenant, g.egov_tenant_user = result, user
    return result


def _loaded_user() -> Any:
    """The signed-in user once Flask-Login has loaded it (or the embedded guest), else None.

    ``g.user`` is a proxy that loads the user on first touch, through the ORM; the read scope runs
    inside every ORM query, so it must not touch the proxy before the user is there.
    """
    from flask import has_request_context
    from werkzeug.local import LocalProxy

    if not has_request_context():
        return None
    user = g.__dict__.get("user")
    if user is None or type(user) is LocalProxy:
        # An API token sets g.user to the user itself (Flask-AppBuilder's JWT sign-in); otherwise
        # it is Flask-Login's proxy, and the user is there once Flask-Login has loaded it.
        user = g.__dict__.get("_login_user")
    return None if user is None or getattr(user, "is_anonymous", True) else user


def _acting_tenant(user: Any) -> str:
    if user is None or getattr(user, "is_anonymous", True):
        return NOBODY
    if getattr(user, "is_guest_user", False):
        tenant = str(user.guest_token.get("tenant", ""))
        return tenant if re.fullmatch(AGS, tenant) else NOBODY
    names = {getattr(role, "name", "") for role in getattr(user, "roles", ()) or ()}
    if "Admin" in names:
        return PLATFORM
    tenants = _role_tenants(user.roles)
    return tenants.pop() if len(tenants) == 1 else NOBODY


# -- whose object is it ---------------------------------------------------------------------------

def tenants_of(obj: Any, _seen: set | None = None) -> set[str]:
    """The tenants an object is made of: usually one AGS; empty for an object nobody owns yet.

    An object that names something of no tenant (a database not provisioned for one) yields
    :data:`UNOWNED`. Administrators (the service account) among owners add nothing.
    """
    seen = _seen if _seen is not None else set()
    if obj is None or id(obj) in seen:
        return set()
    seen.add(id(obj))
    if isinstance(obj, _DatabaseName):
        match = TENANT_DATABASE.match(obj)
        return {match.group(1) if match else UNOWNED}
    if isinstance(obj, _Unowned):
        return {UNOWNED}
    if _is_user(obj):
        return user_tenants(obj)
    if _is_role(obj):
        return role_tenants(obj)
    for model, parts in _parts().items():
        if isinstance(obj, model):
            return set().union(*(tenants_of(part, seen) for part in parts(obj))) | _owners(obj, seen)
    return set()


def _parts() -> dict[type, Any]:
    """What each kind of Superset object is made of, for :func:`tenants_of` (a database is a leaf)."""
    from superset.connectors.sqla.models import SqlaTable, SqlMetric, TableColumn
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.embedded_dashboard import EmbeddedDashboard
    from superset.models.slice import Slice
    from superset.models.sql_lab import Query, SavedQuery, TableSchema, TabState

    return {
        Database: lambda db: [_DatabaseName(db.database_name)],
        SqlaTable: lambda table: [table.database or _database(table.database_id)],
        TableColumn: lambda column: [column.table or _get(SqlaTable, column.table_id)],
        SqlMetric: lambda metric: [metric.table or _get(SqlaTable, metric.table_id)],
        Slice: lambda chart: [] if chart.datasource_id is None else [
            _datasource(chart.datasource_type, chart.datasource_id) or _Unowned()],
        Dashboard: lambda dashboard: [*(dashboard.slices or ()), *(dashboard.roles or ())],
        EmbeddedDashboard: lambda embedded: [embedded.dashboard],
        Query: lambda query: [query.database or _database(query.database_id)],
        TabState: lambda tab: [tab.database or _database(tab.database_id)],
        TableSchema: lambda schema: [schema.database or _database(schema.database_id)],
        SavedQuery: lambda saved: [saved.database or _database(saved.db_id)],
    }


class _DatabaseName(str):
    """A database's name, the leaf every dataset, chart and query leads to: ``tenant_<AGS>``."""


def is_tenant_database(database: Any) -> bool:
    """Whether ``database`` is a tenant's connection (named ``tenant_<AGS>``)."""
    return bool(TENANT_DATABASE.match(getattr(database, "database_name", "") or ""))


class _Unowned:
    """Stands for a part that is missing (a chart whose dataset is gone): it belongs to no tenant."""


def role_tenants(role: Any) -> set[str]:
    name = getattr(role, "name", "") or ""
    match = TENANT_ROLE.match(name)
    if match:
        return {match.group(1)}
    return set() if name in SHARED_ROLES or name == "Admin" else {UNOWNED}


def user_tenants(user: Any) -> set[str]:
    names = {getattr(role, "name", "") for role in getattr(user, "roles", ()) or ()}
    if "Admin" in names:
        return set()
    tenants = _role_tenants(user.roles)
    match = TENANT_USERNAME.match(getattr(user, "username", "") or "")
    if match:  # a deactivated portal user keeps the AGS in their name when the roles are gone
        tenants.add(match.group(1))
    return tenants


def _owners(obj: Any, seen: set) -> set[str]:
    found: set[str] = set()
    for owner in getattr(obj, "owners", None) or ():
        if id(owner) not in seen:
            seen.add(id(owner))
            found |= user_tenants(owner)
    return found


def _is_user(obj: Any) -> bool:
    from superset import security_manager

    return isinstance(obj, security_manager.user_model)


def _is_role(obj: Any) -> bool:
    from superset import security_manager

    return isinstance(obj, security_manager.role_model)


def _get(model, pk):
    from superset.extensions import db

    return db.session.get(model, pk) if pk is not None else None


def _datasource(kind: str | None, pk: int):
    """A chart's datasource of any kind (a dataset, or a SQL Lab query explored as a chart)."""
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.sql_lab import Query, SavedQuery

    model = {"table": SqlaTable, "query": Query, "saved_query": SavedQuery}.get(kind or "table")
    return _get(model, pk) if model is not None else None


def _database(pk):
    from superset.models.core import Database

    return _get(Database, pk)


def belongs_to(obj: Any, tenant: str) -> bool:
    """True when every part of ``obj`` is the tenant's and the object is the tenant's at all."""
    owners = tenants_of(obj)
    return owners == {tenant}


# -- what can be loaded at all ---------------------------------------------------------------------

def scope_reads(execute_state) -> None:
    """``do_orm_execute`` listener: a tenant's principal loads only its own tenant's metadata.

    Nothing is added before anyone is signed in (Flask-AppBuilder loads the user and runs the
    OpenID Connect sign-in then) and nothing for the portal's service account.
    """
    if not execute_state.is_select or _loaded_user() is None or g.__dict__.get("egov_resolving"):
        return
    tenant = acting_tenant()
    if tenant == PLATFORM:
        return
    execute_state.statement = execute_state.statement.options(*_criteria(tenant))


def _criteria(tenant: str) -> list:
    """The loader criteria for ``tenant`` (:data:`NOBODY`: only oneself), built once per request."""
    cached = g.__dict__.get("egov_criteria")
    if cached is not None and cached[0] == tenant:
        return cached[1]
    from sqlalchemy import false, or_, select
    from sqlalchemy.orm import with_loader_criteria
    from superset import security_manager
    from superset.connectors.sqla.models import SqlaTable, SqlMetric, TableColumn
    from superset.key_value.models import KeyValueEntry
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.embedded_dashboard import EmbeddedDashboard
    from superset.models.slice import Slice
    from superset.models.sql_lab import Query, SavedQuery, TableSchema, TabState

    user_model, role_model = security_manager.user_model, security_manager.role_model
    me = getattr(_loaded_user(), "id", None)
    if tenant == NOBODY:
        databases = select(Database.id).where(false())
        people = user_model.id == me
        roles = role_model.name.in_(SHARED_ROLES)
        dashboards = select(Dashboard.id).where(false())
    else:
        databases = select(Database.id).where(Database.database_name == f"tenant_{tenant}")
        people = or_(user_model.id == me, user_model.username.like(f"{tenant}:%"))
        roles = role_model.name.in_([*SHARED_ROLES, f"tenant_{tenant}_viewer", f"tenant_{tenant}_editor"])
        owners = select(user_model.id).where(user_model.username.like(f"{tenant}:%"))
        from superset.models.dashboard import dashboard_user

        dashboards = select(Dashboard.id).where(or_(
            Dashboard.slug.like(f"t{tenant}-%"),
            Dashboard.id.in_(select(dashboard_user.c.dashboard_id).where(dashboard_user.c.user_id.in_(owners)))))
    tenant_people = select(user_model.id).where(people)
    datasets = select(SqlaTable.id).where(SqlaTable.database_id.in_(databases))
    options = [
        with_loader_criteria(Database, Database.id.in_(databases)),
        with_loader_criteria(SqlaTable, SqlaTable.database_id.in_(databases)),
        with_loader_criteria(TableColumn, TableColumn.table_id.in_(datasets)),
        with_loader_criteria(SqlMetric, SqlMetric.table_id.in_(datasets)),
        with_loader_criteria(Slice, (Slice.datasource_type == "table") & Slice.datasource_id.in_(datasets)),
        with_loader_criteria(Dashboard, Dashboard.id.in_(dashboards)),
        with_loader_criteria(EmbeddedDashboard, EmbeddedDashboard.dashboard_id.in_(dashboards)),
        with_loader_criteria(SavedQuery, SavedQuery.db_id.in_(databases)),
        with_loader_criteria(Query, Query.database_id.in_(databases)),
        with_loader_criteria(TabState, or_(TabState.database_id.in_(databases),
                                           TabState.database_id.is_(None) & (TabState.user_id == me))),
        with_loader_criteria(TableSchema, TableSchema.database_id.in_(databases)),
        # SQL Lab permalinks carry SQL text and are read without any access check of Superset's
        # own: only the tenant's people's. (Dashboard and chart permalinks are resolved through
        # the dashboard or chart, which the criteria above already hide; Superset reuses such an
        # entry for equal content, so hiding them by maker would break their creation.)
        with_loader_criteria(KeyValueEntry, (KeyValueEntry.resource != "sqllab_permalink")
                             | KeyValueEntry.created_by_fk.in_(tenant_people)),
        with_loader_criteria(user_model, people),
        with_loader_criteria(role_model, roles),
    ]
    g.egov_criteria = (tenant, options)
    return options


# -- data -----------------------------------------------------------------------------------------

def check_access(*, dashboard=None, chart=None, database=None, datasource=None, query=None,
                 query_context=None, table=None, viz=None, sql=None, **_: Any) -> None:
    """Refuse every object a data request names that is not the acting tenant's.

    :raises BoundaryViolation: an object of another tenant, or of none, for a tenant principal.
    """
    tenant = acting_tenant()
    if tenant == PLATFORM:
        return
    objects = [dashboard, chart, database, datasource]
    if query is not None:
        objects.append(getattr(query, "database", None) or _database(getattr(query, "database_id", None)))
        if hasattr(query, "sql"):
            check_sql(query.sql)
    if sql is not None:
        check_sql(sql)
    form_data = None
    if query_context is not None:
        objects.append(query_context.datasource)
        form_data = query_context.form_data
    if viz is not None:
        objects.append(viz.datasource)
        form_data = viz.form_data
    objects.extend(_named_in(form_data))
    for obj in objects:
        if obj is not None and not (tenant != NOBODY and _checked_belongs_to(obj, tenant)):
            raise BoundaryViolation()


#: Requests that only read: Superset checks the same dashboard, chart and dataset twice while answering
#: one (its own check of the dashboard calls raise_for_access again), and nothing changes in between.
READ_ONLY_DATA = frozenset({"/api/v1/chart/data"})


def _checked_belongs_to(obj: Any, tenant: str) -> bool:
    """:func:`belongs_to`, remembered for the request when it only reads (walking a dashboard's charts,
    datasets and owners is most of the boundary's cost of a cached chart answer)."""
    from flask import has_request_context, request

    if not has_request_context() or request.path not in READ_ONLY_DATA or getattr(obj, "id", None) is None:
        return belongs_to(obj, tenant)
    seen = g.__dict__.setdefault("egov_checked", {})
    key = (type(obj).__name__, obj.id, tenant)
    if key not in seen:
        seen[key] = belongs_to(obj, tenant)
    return seen[key]


def _named_in(form_data: dict | None) -> list[Any]:
    """The dashboard and charts a request claims to come from: they must be the tenant's too."""
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    if not form_data:
        return []
    named = []
    for key, model in (("dashboardId", Dashboard), ("slice_id", Slice), ("parent_slice_id", Slice)):
        value = form_data.get(key)
        if value in (None, ""):
            continue
        try:
            obj = _get(model, int(value))
        except (TypeError, ValueError):
            raise BoundaryViolation() from None
        if obj is None:
            raise BoundaryViolation()
        named.append(obj)
    return named


# -- writes ---------------------------------------------------------------------------------------

def _guarded_models() -> tuple[type, ...]:
    from superset.connectors.sqla.models import SqlaTable, SqlMetric, TableColumn
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.embedded_dashboard import EmbeddedDashboard
    from superset.models.slice import Slice
    from superset.models.sql_lab import Query, SavedQuery, TableSchema, TabState

    return (SqlaTable, SqlMetric, TableColumn, Database, Dashboard, EmbeddedDashboard, Slice, Query, SavedQuery,
            TableSchema, TabState)


def check_flush(session, flush_context=None, instances=None) -> None:
    """``before_flush`` listener: a tenant's principal stores nothing that reaches another tenant.

    New and changed objects must belong to the acting tenant alone; deleted ones too. Users and
    roles are never written by tenant principals except by Superset's own sign-in (which runs
    before anyone acts, with no tenant yet) — an acting tenant that changes them is refused.
    """
    user = _loaded_user()
    if user is None:
        return  # sign-in in progress (FAB creates or updates the user): nobody acts yet
    tenant = acting_tenant()
    if tenant == PLATFORM:
        return
    guarded = _guarded_models()
    personal = _personal_models()
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, guarded):
            owners = tenants_of(obj)
            if isinstance(obj, personal) and not owners:
                continue  # an SQL Lab tab before a database is chosen: the user's own, of no tenant
            if tenant == NOBODY or owners != {tenant}:
                raise BoundaryViolation()
        elif (_is_user(obj) and obj is not user) or _is_role(obj):
            # Collections change when one of the tenant's own objects names a user or role (owners);
            # those objects are checked above. The person or role itself must not change.
            if obj in session.new or obj in session.deleted or session.is_modified(obj, include_collections=False):
                raise BoundaryViolation()


def _personal_models() -> tuple[type, ...]:
    from superset.models.sql_lab import TableSchema, TabState

    return (TabState, TableSchema)


# -- who appears in lists -------------------------------------------------------------------------

def related_users(query):
    """``EXTRA_RELATED_QUERY_FILTERS["user"]``: the acting tenant's people only (and oneself)."""
    from superset import security_manager

    tenant = acting_tenant()
    if tenant == PLATFORM:
        return query
    user_model, role_model = security_manager.user_model, security_manager.role_model
    if tenant == NOBODY:
        return query.filter(user_model.id == getattr(_loaded_user(), "id", -1))
    roles = [f"tenant_{tenant}_viewer", f"tenant_{tenant}_editor"]
    return query.filter(user_model.roles.any(role_model.name.in_(roles)))


def related_roles(query):
    """``EXTRA_RELATED_QUERY_FILTERS["role"]``: the acting tenant's own roles only."""
    from superset import security_manager

    tenant = acting_tenant()
    if tenant == PLATFORM:
        return query
    role_model = security_manager.role_model
    if tenant == NOBODY:
        return query.filter(role_model.id == -1)
    return query.filter(role_model.name.in_([f"tenant_{tenant}_viewer", f"tenant_{tenant}_editor"]))


RELATED_FILTERS = {"user": related_users, "role": related_roles}


# -- SQL Lab --------------------------------------------------------------------------------------

#: Functions a tenant's SQL must not call: they change the session (and with it the limits that
#: keep one tenant from slowing another), take locks other work waits for, or read the server.
#: The database refuses most of them anyway (egov db bootstrap revokes them from PUBLIC); this
#: list gives the editor a German reason instead of a permission error.
FORBIDDEN_FUNCTIONS = frozenset({
    "set_config", "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
    "pg_advisory_unlock_shared", "pg_advisory_unlock_all", "pg_get_userbyid", "pg_has_role",
    "has_database_privilege", "has_schema_privilege", "has_table_privilege", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_notify", "dblink", "dblink_exec", "lo_import", "lo_export",
})
#: Relations of the server's catalogue that describe other roles, databases or sessions.
FORBIDDEN_RELATIONS = frozenset({
    "pg_roles", "pg_user", "pg_authid", "pg_shadow", "pg_auth_members", "pg_group", "pg_database",
    "pg_db_role_setting", "pg_shdescription", "pg_stat_activity", "pg_stat_database", "pg_locks",
    "pg_prepared_xacts", "pg_stat_ssl", "pg_stat_gssapi", "pg_settings", "pg_file_settings", "pg_hba_file_rules",
    "pg_ident_file_mappings", "pg_stat_replication", "pg_replication_slots", "pg_config",
    "enabled_roles", "applicable_roles", "administrable_role_authorizations", "role_table_grants",
    "role_column_grants", "role_routine_grants", "role_usage_grants", "role_udt_grants",
})

ONLY_READING = ("In SQL Lab sind nur lesende Abfragen erlaubt (SELECT, WITH). Anweisungen wie SET, RESET, "
                "BEGIN, LOCK oder DO werden abgelehnt, weil sie die Grenzen Ihrer Sitzung verändern würden. "
                "(Only reading queries are allowed.)")
FORBIDDEN_CALL = ("Die Funktion {name} ist in SQL Lab nicht erlaubt: Sie verändert die Sitzung, hält Sperren "
                  "oder liest Angaben über andere Kommunen. (Function not allowed.)")
FORBIDDEN_TABLE = ("Die Systemtabelle {name} ist in SQL Lab nicht erlaubt: Sie beschreibt Rollen, Datenbanken "
                   "oder Sitzungen anderer Kommunen. (System table not allowed.)")
UNREADABLE = "Diese Abfrage kann nicht geprüft werden und wird deshalb nicht ausgeführt. (Query cannot be parsed.)"


def check_sql(sql: str, engine: str = "postgresql") -> None:
    """Let through only SQL that reads: every statement a query (SELECT, set operation, WITH …).

    :raises BoundaryViolation: with the German reason (a statement that is no query, a forbidden
        function or catalogue relation, SQL that cannot be parsed).
    """
    from sqlglot import exp
    from superset.sql.parse import SQLScript

    try:
        script = SQLScript(sql, engine=engine)
    except Exception:  # noqa: BLE001 - Superset raises several kinds; all mean "cannot check"
        # Say why when it is plain that a statement is not a query (LOCK, VACUUM, …).
        words = [line.split(None, 1)[0].lower() for line in re.split(r";", sql) if line.strip()]
        raise BoundaryViolation(ONLY_READING if any(w not in ("select", "with", "(") for w in words)
                                else UNREADABLE) from None
    for statement in script.statements:
        parsed = getattr(statement, "_parsed", None)
        if not isinstance(parsed, (exp.Select, exp.SetOperation, exp.Subquery)) or statement.is_mutating():
            raise BoundaryViolation(ONLY_READING)
        if parsed.find(exp.Lock) is not None:  # SELECT … FOR UPDATE / FOR SHARE
            raise BoundaryViolation(ONLY_READING)
        for function in parsed.find_all(exp.Func):
            name = (function.name if function.sql_name() == "ANONYMOUS" else function.sql_name()) or ""
            if name.lower() in FORBIDDEN_FUNCTIONS:
                raise BoundaryViolation(FORBIDDEN_CALL.format(name=name.lower()))
        for table in parsed.find_all(exp.Table):
            if table.name.lower() in FORBIDDEN_RELATIONS or (table.db or "").lower() == "information_schema":
                raise BoundaryViolation(FORBIDDEN_TABLE.format(name=table.name.lower()))
