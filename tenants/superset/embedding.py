"""What the portal's dashboards page needs: the tenant's dashboards and guest tokens for them."""

from __future__ import annotations

from dataclasses import dataclass

from tenants.db import db
from tenants.superset import guest, templates
from tenants.superset.provision import load_state


class DashboardNotFound(LookupError):
    """No such dashboard for this tenant (or not provisioned yet): the view answers 404."""


@dataclass(frozen=True)
class EmbeddedDashboard:
    key: str
    title: str
    description: str
    embedded_uuid: str


def tenant_dashboards(tenant_id: int) -> list[EmbeddedDashboard]:
    """The tenant's ready-made dashboards in template order; empty before provisioning.

    Runs inside a request, whose session is already bound to the tenant.
    """
    provisioned = load_state(tenant_id, db.session).get("dashboards", {})
    return [EmbeddedDashboard(key, template["title"], template.get("description", ""),
                              provisioned[key]["embedded_uuid"])
            for key, template in templates.dashboards().items() if key in provisioned]


def tenant_dashboard(tenant_id: int, key: str) -> EmbeddedDashboard:
    for dashboard in tenant_dashboards(tenant_id):
        if dashboard.key == key:
            return dashboard
    raise DashboardNotFound(key)


def guest_token(settings, tenant_id: int, key: str, user_label: str) -> str:
    """A guest token for one of the tenant's own dashboards, with the tenant's RLS clause."""
    dashboard = tenant_dashboard(tenant_id, key)
    return guest.mint(settings, tenant_id, dashboard.embedded_uuid, user_label)
