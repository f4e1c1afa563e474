"""Template roll-out: which tenants differ from the current templates, and bringing them up to date.

Each tenant's copy records the fingerprint of the template it was made from
(``portal.tenant_settings['superset']['dashboards'][key]['fingerprint']``).
A tenant differs when a template is new, changed or gone. Rolling out runs
the tenant's Superset step again, which rewrites only what differs (and puts
back ready-made dashboards someone changed by hand in Superset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenants.superset import templates
from tenants.superset.provision import load_state, provision_objects


@dataclass
class TenantReport:
    tenant_id: int
    ags: str
    name: str
    differences: list[str] = field(default_factory=list)
    error: str | None = None


def differences(tenant_id: int) -> list[str]:
    """What differs between the tenant's dashboards and the current templates, in words."""
    provisioned = load_state(tenant_id).get("dashboards", {})
    found = []
    for key, template in templates.dashboards().items():
        current = templates.fingerprint(template)
        if key not in provisioned:
            found.append(f"{key}: missing (template {current})")
        elif provisioned[key].get("fingerprint") != current:
            found.append(f"{key}: {provisioned[key].get('fingerprint')} -> {current}")
    found.extend(f"{key}: no longer a template" for key in provisioned if key not in templates.dashboards())
    return found


def rollout(tenants, apply: bool = True) -> list[TenantReport]:
    """Report every tenant's differences; with ``apply``, bring those that differ to the current templates."""
    reports = []
    for tenant in tenants:
        report = TenantReport(tenant.id, tenant.ags, tenant.name, differences(tenant.id))
        if apply and report.differences:
            try:
                provision_objects(tenant.id)
            except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the roll-out
                report.error = f"{type(exc).__name__}: {exc}"
        reports.append(report)
    return reports
