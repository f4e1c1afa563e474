"""Resolving the tenant of a web request, once, at the edge.

Rules, in order:

1. A route that belongs to a tenant carries its AGS in the URL
   (``/t/<ags>/...``). The AGS is looked up; an unknown AGS is 404.
2. A signed-in member of staff belongs to exactly one tenant. If the URL
   names another tenant, the answer is 404, exactly as for a missing one, so
   URLs reveal nothing about other tenants.
3. Without an AGS in the URL, a signed-in member of staff works in their
   own tenant.

The tenant goes on ``g.tenant`` and is bound to the database context
(``tenants.context.bind_tenant``) before anything else reads tenant data,
including Flask-Login's user loader: every query of the request runs under
that tenant's row-level security.
"""

from __future__ import annotations

from flask import Flask, abort, g, session

from portal.principals import tenant_of_identity
from tenants.context import bind_tenant, unbind_tenant
from tenants.db import db
from tenants.models import Tenant
from tenants.registry import TenantError, get_tenant_by_ags


def current_tenant() -> Tenant | None:
    """The tenant of this request, or None on pages that belong to no tenant."""
    return g.get("tenant")


def _pull_ags(endpoint, values) -> None:
    if values and "ags" in values:
        g.tenant_ags = values.pop("ags")


def _add_ags(endpoint, values) -> None:
    tenant = g.get("tenant")
    if tenant is not None and "ags" not in values and endpoint and endpoint.startswith("tenant_"):
        values["ags"] = tenant.ags


def _resolve() -> None:
    ags = g.pop("tenant_ags", None)
    signed_in_tenant = tenant_of_identity(session.get("_user_id"))
    tenant = None
    if ags is not None:
        try:
            tenant = get_tenant_by_ags(ags)
        except TenantError:
            abort(404)
        if signed_in_tenant is not None and signed_in_tenant != tenant.id:
            abort(404)
    elif signed_in_tenant is not None:
        tenant = db.session.get(Tenant, signed_in_tenant)
    if tenant is not None:
        g.tenant = tenant
        g.tenant_token = bind_tenant(tenant.id)


def _release(exc=None) -> None:
    token = g.pop("tenant_token", None)
    if token is not None:
        unbind_tenant(token)


def init_app(app: Flask) -> None:
    from portal.extensions import login_manager
    from portal.principals import load_principal

    login_manager.user_loader(load_principal)
    app.url_value_preprocessor(_pull_ags)
    app.url_defaults(_add_ags)
    app.before_request(_resolve)
    app.teardown_request(_release)
