"""Superset roles: the shared base roles and the two roles of each tenant.

* ``Public``: anonymous requests; only the language pack.
* ``EmbedGuest`` (``GUEST_ROLE_NAME``): what a guest token of an embedded
  dashboard may do. Data access comes from the token's dashboard, rows from
  the token's RLS clause and, underneath, the tenant's database role.
* ``egov_editor``: what staff who build their own charts may do, listed
  one by one (:data:`EDITOR_PERMISSIONS`) rather than copied from Superset's
  Gamma: Gamma grows with every Superset release and holds things that reach
  beyond a tenant (reading every tenant's row-level rules, tags and themes
  shared by all, invalidating any cache, user registrations). A permission a
  new release adds stays off until it is listed here.
* ``egov_viewer``: ``egov_editor`` without anything that writes, for staff
  who may look but not build.
* ``tenant_<AGS>_viewer`` / ``tenant_<AGS>_editor``: access to the tenant's
  datasets; the editor also to the tenant's database (SQL Lab). Editors get
  ``egov_editor`` and ``sql_lab`` beside it (superset_config/portal_security.py).

``POST /roles/<id>/permissions`` replaces a role's whole set, so every role
is compared first and written only when it differs.
"""

from __future__ import annotations

from tenants.superset.client import SupersetClient

GUEST_ROLE = "EmbedGuest"
VIEWER_BASE = "egov_viewer"
GUEST_PERMISSIONS = [
    ("can_read", "Dashboard"), ("can_read", "Chart"), ("can_read", "CurrentUserRestApi"), ("can_log", "Superset"),
    ("can_read", "EmbeddedDashboard"), ("can_read", "DashboardFilterStateRestApi"),
    ("can_write", "DashboardFilterStateRestApi"), ("can_read", "DashboardPermalinkRestApi"),
    ("can_write", "DashboardPermalinkRestApi"), ("can_time_range", "Api"), ("can_explore_json", "Superset"),
    ("can_drill", "Dashboard"), ("can_samples", "Datasource"),
    ("can_csv", "Superset"), ("can_language_pack", "Superset"),
]
# Not for guests: ("can_view_chart_as_table", "Dashboard"). Superset 6.1's embedded page does not register the
# table component (AG Grid) that "Als Tabelle anzeigen" draws with (its SPA entry does, the embedded entry does
# not), so the view opened empty; without the permission the menu does not offer it.
#: What editors may do besides their tenant's datasets and database (``sql_lab`` adds SQL Lab).
#: Superset 6.1's Gamma without: ``RowLevelSecurity`` (lists every tenant's rules), tags (one
#: namespace for all tenants), writing and exporting themes (shared by all), ``CacheRestApi``
#: (invalidates any tenant's cache), ``UserRegistrationsRestAPI``, ``Task``, screenshots and the
#: file handler (uploads are off).
EDITOR_PERMISSIONS = [
    ("can_csv", "Superset"), ("can_dashboard", "Superset"), ("can_dashboard_permalink", "Superset"),
    ("can_delete_embedded", "Dashboard"), ("can_drill", "Dashboard"), ("can_explore", "Superset"),
    ("can_explore_json", "Superset"), ("can_export", "Chart"), ("can_export", "Dashboard"),
    ("can_export_streaming_csv", "SQLLab"), ("can_external_metadata", "Datasource"),
    ("can_external_metadata_by_name", "Datasource"), ("can_fetch_datasource_metadata", "Superset"),
    ("can_get", "Datasource"), ("can_get", "MenuApi"), ("can_get", "OpenApi"), ("can_get_drill_info", "Dataset"),
    ("can_get_embedded", "Dashboard"), ("can_language_pack", "Superset"), ("can_list", "AsyncEventsRestApi"),
    ("can_list", "DynamicPlugin"), ("can_list", "SavedQuery"), ("can_log", "Superset"),
    ("can_put_chart_customizations", "Dashboard"), ("can_query", "Api"), ("can_query_form_data", "Api"),
    ("can_read", "AdvancedDataType"), ("can_read", "AvailableDomains"), ("can_read", "Chart"),
    ("can_read", "CssTemplate"), ("can_read", "CurrentUserRestApi"), ("can_read", "Dashboard"),
    ("can_read", "DashboardFilterStateRestApi"), ("can_read", "DashboardPermalinkRestApi"), ("can_read", "Database"),
    ("can_read", "Dataset"), ("can_read", "EmbeddedDashboard"), ("can_read", "Explore"),
    ("can_read", "ExploreFormDataRestApi"), ("can_read", "ExplorePermalinkRestApi"), ("can_read", "Theme"),
    ("can_read", "SecurityRestApi"),
    ("can_recent_activity", "Log"), ("can_share_chart", "Superset"), ("can_share_dashboard", "Superset"),
    ("can_show", "DynamicPlugin"), ("can_slice", "Superset"), ("can_time_range", "Api"),
    ("can_view_chart_as_table", "Dashboard"), ("can_view_query", "Dashboard"), ("can_write", "Chart"),
    ("can_write", "CurrentUserRestApi"), ("can_write", "Dashboard"), ("can_write", "DashboardFilterStateRestApi"),
    ("can_write", "DashboardPermalinkRestApi"), ("can_write", "ExploreFormDataRestApi"),
    ("can_write", "ExplorePermalinkRestApi"),
    # The chart editor's "Beispiele" (samples) tab: rows of the dataset, bounded like every query of the
    # tenant's database role and its row rules (a walk-through met "Zugriff verweigert" there).
    ("can_samples", "Datasource"),
    ("menu_access", "Charts"), ("menu_access", "Dashboards"), ("menu_access", "Data"), ("menu_access", "Databases"),
    ("menu_access", "Datasets"), ("menu_access", "Home"),
]
EDITOR_BASE = "egov_editor"
#: Editor permissions a viewer does not get: everything that creates, changes or deletes.
WRITING = ("write", "add", "edit", "delete", "save", "import", "copy", "bulk_create", "tag", "invalidate",
           "put_chart", "file_handler", "export", "share")


def tenant_role(ags: str, level: str) -> str:
    return f"tenant_{ags}_{level}"


def _role_id(api: SupersetClient, name: str) -> int | None:
    found = api.get("/api/v1/security/roles/search/",
                    params={"q": _q([{"col": "name", "opr": "eq", "value": name}])})["result"]
    return found[0]["id"] if found else None


def _q(filters: list[dict]) -> str:
    from tenants.superset.client import rison

    return rison({"filters": filters, "page": 0, "page_size": 100})


def ensure_role(api: SupersetClient, name: str) -> int:
    role_id = _role_id(api, name)
    if role_id is None:
        role_id = api.post("/api/v1/security/roles/", {"name": name})["id"]
    return role_id


def role_permissions(api: SupersetClient, role_id: int) -> list[dict]:
    return api.get(f"/api/v1/security/roles/{role_id}/permissions/")["result"]


def _lookup(api: SupersetClient, missing: set[tuple[str, str]], known: dict[tuple[str, str], int]) -> None:
    """Ids of (permission, resource) pairs not seen on any role yet, newest first: a new tenant's datasets
    made their permissions a moment ago, so the first page (Superset sends at most 100) nearly always has them."""
    from tenants.superset.client import rison

    page, pages = 0, 1
    while missing - known.keys() and page < pages:
        answer = api.get("/api/v1/security/permissions-resources/", params={"q": rison(
            {"order_column": "id", "order_direction": "desc", "page": page, "page_size": 100})})
        for p in answer["result"]:
            known[(p["permission"]["name"], p["view_menu"]["name"])] = p["id"]
        pages, page = -(-answer["count"] // 100), page + 1
    for permission, resource in sorted(missing - known.keys()):
        raise LookupError(f"Superset has no permission {permission} on {resource!r}")


def find_roles(api: SupersetClient, names: list[str]) -> dict[str, dict]:
    """Each named role as ``{"id", "permission_ids"}``, created if missing; one search per role (a prefix
    search is SQL's LIKE, where "_" matches any character: a district's prefix would also find the roles
    of its municipalities, and a page holds at most 100)."""
    from tenants.superset.client import rison

    found = {}
    for name in names:
        query = {"filters": [{"col": "name", "opr": "eq", "value": name}], "page": 0, "page_size": 100}
        for role in api.get("/api/v1/security/roles/search/", params={"q": rison(query)})["result"]:
            found[role["name"]] = role
        if name not in found:
            found[name] = {"id": api.post("/api/v1/security/roles/", {"name": name})["id"], "permission_ids": []}
    return found


def converge_permissions(api: SupersetClient, roles: dict[str, dict], wanted: dict[str, list[tuple[str, str]]]) -> None:
    """Each role of ``wanted`` (found by :func:`find_roles`) with exactly its (permission, resource) pairs.

    A role's permissions are read by name only when some wanted pair's id is not known yet from a role
    read before (list the larger roles first); ids unknown after that are looked up (:func:`_lookup`).
    Written only when they differ.
    """
    known: dict[tuple[str, str], int] = {}
    for name, pairs in wanted.items():
        role = roles[name]
        if set(pairs) - known.keys() and role["permission_ids"]:
            known.update({(p["permission_name"], p["view_menu_name"]): p["id"]
                          for p in role_permissions(api, role["id"])})
        _lookup(api, set(pairs), known)
        target = {known[pair] for pair in pairs}
        if set(role["permission_ids"]) != target:
            api.post(f"/api/v1/security/roles/{role['id']}/permissions",
                     {"permission_view_menu_ids": sorted(target)})


def converge_roles(api: SupersetClient, wanted: dict[str, list[tuple[str, str]]]) -> dict[str, int]:
    """:func:`find_roles` and :func:`converge_permissions`; the role ids."""
    roles = find_roles(api, list(wanted))
    converge_permissions(api, roles, wanted)
    return {name: role["id"] for name, role in roles.items()}


#: What anonymous requests may do: fetch the German UI texts. The embedded dashboard loads them
#: without its guest token; everything else stays closed to anonymous users.
PUBLIC_PERMISSIONS = [("can_language_pack", "Superset")]


#: Superset servers whose base roles this process has brought in line (base URL -> role ids); see ensure_base_roles.
_base_roles_done: dict[str, dict[str, int]] = {}


def ensure_base_roles(api: SupersetClient) -> dict[str, int]:
    """The shared roles, once per process and Superset: they do not differ per tenant. Their ids by name.

    A change made to them by hand is undone by the next ``egov superset provision`` (a new process).
    """
    if api.base_url not in _base_roles_done:
        reading = [(p, r) for p, r in EDITOR_PERMISSIONS if not any(word in p for word in WRITING)]
        _base_roles_done[api.base_url] = converge_roles(api, {
            EDITOR_BASE: EDITOR_PERMISSIONS, VIEWER_BASE: reading, GUEST_ROLE: GUEST_PERMISSIONS,
            "Public": PUBLIC_PERMISSIONS})
    return _base_roles_done[api.base_url]


def dataset_resource(ags: str, dataset: str, dataset_id: int) -> str:
    """Superset's name of the permission on a dataset: its database, its table name (the German name
    users see, templates.dataset_keys_by_name) and its id."""
    return f"[tenant_{ags}].[{dataset}](id:{dataset_id})"


def tenant_roles(api: SupersetClient, ags: str) -> dict[str, dict]:
    """The tenant's two roles by level (created if missing), before its datasets exist."""
    found = find_roles(api, [tenant_role(ags, "editor"), tenant_role(ags, "viewer")])
    return {level: found[tenant_role(ags, level)] for level in ("viewer", "editor")}


def ensure_tenant_permissions(api: SupersetClient, ags: str, roles: dict[str, dict], database_id: int,
                              datasets: dict[str, int]) -> None:
    """The viewer reads the tenant's datasets (table name -> id); the editor also its database (SQL Lab)."""
    data = [("datasource_access", dataset_resource(ags, name, i)) for name, i in datasets.items()]
    editor = [*data, ("database_access", f"[tenant_{ags}].(id:{database_id})")]
    converge_permissions(api, {tenant_role(ags, level): role for level, role in roles.items()},
                         {tenant_role(ags, "editor"): editor, tenant_role(ags, "viewer"): data})


def remove_tenant_roles(api: SupersetClient, ags: str) -> None:
    for level in ("viewer", "editor"):
        role_id = _role_id(api, tenant_role(ags, level))
        if role_id is not None:
            api.delete(f"/api/v1/security/roles/{role_id}")
