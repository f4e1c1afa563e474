"""What the portal's dashboards page needs: the tenant's dashboards and guest tokens for them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from tenants.benchmark import participation
from tenants.benchmark.comparison import shown_groups
from tenants.errors import NotFound
from tenants.models import Tenant
from tenants.superset import guest, templates
from tenants.superset.provision import BENCHMARK_DATASET, load_state


class DashboardNotFound(NotFound):
    """No such dashboard for this tenant (or not provisioned yet): the view answers 404."""


@dataclass(frozen=True)
class EmbeddedDashboard:
    key: str
    title: str
    description: str
    embedded_uuid: str
    needs_steps: bool = False  # the charts need step data (process events with steps)


def list_dashboards(session, tenant_id: int) -> list[EmbeddedDashboard]:
    """The tenant's ready-made dashboards in template order; empty before provisioning.

    Runs inside a request, whose session is already bound to the tenant.
    """
    provisioned = load_state(tenant_id, session).get("dashboards", {})
    return [EmbeddedDashboard(key, template["title"], template.get("description", ""),
                              provisioned[key]["embedded_uuid"], template.get("needs") == "steps")
            for key, template in templates.dashboards().items() if key in provisioned]


def has_step_data(session, tenant_id: int) -> bool:
    """Whether the tenant has any step counts (from process events); daily counts alone have none."""
    return session.execute(text("SELECT EXISTS (SELECT 1 FROM analytics.rollup_step_daily WHERE tenant_id = :t)"),
                              {"t": tenant_id}).scalar_one()


def get_dashboard(session, tenant_id: int, key: str) -> EmbeddedDashboard:
    """:raise DashboardNotFound: no such dashboard for this tenant, or not provisioned yet."""
    for dashboard in list_dashboards(session, tenant_id):
        if dashboard.key == key:
            return dashboard
    raise DashboardNotFound(key)


def benchmark_rules(session, tenant_id: int) -> list[dict]:
    """The comparison dataset's rule: the groups and families the tenant's comparison page shows.

    Computed from the tenant's own settings and reference data at every token, so a changed opt-in
    or peer group reaches the dashboard with the next token. Added to every token, not only the
    Vergleich dashboard's, so a chart on that dataset anywhere stays within the tenant's groups.
    """
    dataset_id = load_state(tenant_id, session).get("datasets", {}).get(BENCHMARK_DATASET)
    if dataset_id is None:
        return []
    tenant = session.get(Tenant, tenant_id)
    keys = [key for _, key, _ in shown_groups(session, tenant)]
    return [{"dataset": dataset_id,
             "clause": guest.benchmark_clause(keys, participation.opted_in(session, tenant_id))}]


def guest_token(session, settings, tenant_id: int, key: str, user_label: str) -> str:
    """A guest token for one of the tenant's own dashboards, with the tenant's RLS clauses.

    :raise DashboardNotFound: see ``get_dashboard``.
    """
    dashboard = get_dashboard(session, tenant_id, key)
    ags = session.get(Tenant, tenant_id).ags
    return guest.mint(settings, tenant_id, ags, dashboard.embedded_uuid, user_label,
                      benchmark_rules(session, tenant_id))
