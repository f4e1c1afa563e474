"""Demo tenants: the nine GoDonu members, active, so `make up` has content."""

from __future__ import annotations

from tenants.models import Tenant, TenantStatus
from tenants.registry import create_tenant, find_tenant_by_ags

GODONU_MEMBERS = {
    "06534014": "Marburg",
    "06631009": "Fulda",
    "06531005": "Gießen",
    "06533009": "Limburg a. d. Lahn",
    "06413000": "Offenbach am Main",
    "06532023": "Wetzlar",
    "06611000": "Kassel",
    "06412000": "Frankfurt am Main",
    "06439": "Rheingau-Taunus-Kreis",
}


#: The e-mail domain of each demo tenant's staff (demo users: viewer@, editor@, admin@<domain>).
DEMO_DOMAINS = {
    "06534014": "marburg.de",
    "06631009": "fulda.de",
    "06531005": "giessen.de",
    "06533009": "limburg.de",
    "06413000": "offenbach.de",
    "06532023": "wetzlar.de",
    "06611000": "kassel.de",
    "06412000": "frankfurt.de",
    "06439": "rheingau-taunus.de",
}


def seed_demo_tenants() -> list[Tenant]:
    """Create the demo tenants that are missing and activate them; idempotent."""
    tenants = []
    for ags in GODONU_MEMBERS:
        tenant = find_tenant_by_ags(ags)
        if tenant is None:
            tenant = create_tenant(ags, status=TenantStatus.ACTIVE)
        tenants.append(tenant)
    return tenants


def seed_demo_identity(settings) -> int:
    """Point every demo tenant without an identity provider at the development IdP; returns how many.

    The development IdP need not run yet (``make up`` seeds before it starts
    the processes), so its issuer is pinned from the configured address.
    Tenants whose admin changed the settings keep them.
    """
    from demo.dev_idp import DEMO_ROLE_MAPPING
    from tenants.context import platform_acting_for
    from tenants.db import db
    from tenants.identity import ProviderSettings, find_identity_provider, save_identity_provider, set_domains

    count = 0
    for ags, domain in DEMO_DOMAINS.items():
        tenant = find_tenant_by_ags(ags)
        with platform_acting_for(tenant.id):
            if find_identity_provider(db.session, tenant.id) is not None:
                continue
            set_domains(tenant.id, [domain])
            save_identity_provider(tenant.id, ProviderSettings(
                discovery_url=f"{settings.dev_idp_url}/.well-known/openid-configuration",
                client_id=f"egovsad-{ags}", client_secret=f"dev-secret-{ags}", role_claim="roles",
                role_mapping=DEMO_ROLE_MAPPING), settings, trusted_issuer=settings.dev_idp_url)
            count += 1
    return count
