"""Open Data in the demo: two GoDonu members publish, so /opendata/ and the catalogue have content."""

from __future__ import annotations

from tenants.context import platform_transaction, tenant_transaction
from tenants.models import Tenant
from tenants.opendata.publication import DEFAULT_LICENCE, publications, publish
from tenants.registry import find_tenant_by_ags

DEMO_PUBLISHERS = {"06534014": ["usage", "completion", "satisfaction"], "06631009": ["usage"]}


def publish_demo_datasets() -> list[str]:
    """Publish the demo datasets of tenants that never decided yet; a withdrawal is respected."""
    done = []
    for ags, datasets in DEMO_PUBLISHERS.items():
        with platform_transaction():
            tenant = find_tenant_by_ags(ags)
            tenant_id = tenant.id if tenant is not None and tenant.is_active else None
        if tenant_id is None:
            continue
        with tenant_transaction(tenant_id) as session:
            tenant = session.get(Tenant, tenant_id)
            if publications(session, tenant_id):
                continue
            publish(session, tenant, datasets, DEFAULT_LICENCE, tenant.contact_email or f"opendata@{ags}.example",
                    "demo")
            done.append(tenant.name)
    return done
