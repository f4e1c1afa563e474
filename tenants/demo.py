"""Demo tenants: the nine GoDonu members, active, so `make up` has content."""

from __future__ import annotations

from sqlalchemy import select

from tenants.db import db
from tenants.models import Tenant
from tenants.registry import create_tenant

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


def seed_demo_tenants() -> list[Tenant]:
    """Create the demo tenants that are missing and activate them; idempotent."""
    tenants = []
    for ags in GODONU_MEMBERS:
        tenant = db.session.scalar(select(Tenant).where(Tenant.ags == ags))
        if tenant is None:
            tenant = create_tenant(ags, status="active")
        tenants.append(tenant)
    return tenants
