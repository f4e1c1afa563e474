"""Creating, finding and listing tenants (the control-plane registry).

Plain functions on the session; portal views, the operator CLI and the demo
seed all call these rather than touching the models themselves.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from tenants.db import db
from tenants.errors import NotFound, UserError
from tenants.models import Region, Tenant, TenantStatus


class TenantError(UserError, ValueError):
    """A request about a tenant that cannot be fulfilled; the message is for the user."""


class TenantNotFound(TenantError, NotFound):
    """No tenant (or region) with this AGS: the portal answers 404, the CLI prints the message."""


def normalise_ags(ags: str) -> str:
    ags = (ags or "").strip()
    if not re.fullmatch(r"\d{5}|\d{8}", ags):
        raise TenantError(f"Ein AGS hat 8 Stellen (Landkreise: 5), nicht {ags!r}.")
    return ags


def get_region(ags: str) -> Region:
    region = db.session.get(Region, normalise_ags(ags))
    if region is None:
        raise TenantNotFound(f"Der AGS {ags} steht nicht im amtlichen Verzeichnis.")
    return region


def find_tenant_by_ags(ags: str) -> Tenant | None:
    """The tenant with exactly this AGS (8 or 5 digits), or None; the one lookup by AGS (URLs, seeds, sign-up)."""
    return db.session.scalar(select(Tenant).where(Tenant.ags == ags))


def get_tenant_by_ags(ags: str) -> Tenant:
    """The tenant with this AGS. :raise TenantNotFound: when there is none; TenantError: not an AGS."""
    tenant = find_tenant_by_ags(normalise_ags(ags))
    if tenant is None:
        raise TenantNotFound(f"Es gibt keinen Mandanten mit dem AGS {ags}.")
    return tenant


def list_tenants(status: str | None = None) -> list[Tenant]:
    query = select(Tenant).order_by(Tenant.ags)
    if status:
        query = query.where(Tenant.status == status)
    return list(db.session.scalars(query))


def create_tenant(ags: str, *, status: str = TenantStatus.PENDING, contact_name: str | None = None,
                  contact_email: str | None = None) -> Tenant:
    """Register the municipality or district with this AGS as a tenant.

    :raise TenantNotFound: the AGS is not in the official list.
    :raise TenantError: the AGS already has a tenant.
    """
    region = get_region(ags)
    if db.session.scalar(select(Tenant.id).where(Tenant.ags == region.ags)) is not None:
        raise TenantError(f"Für {region.name} (AGS {region.ags}) gibt es bereits einen Mandanten.")
    tenant = Tenant(ags=region.ags, ars=region.ars, name=region.name, status=status,
                    contact_name=contact_name, contact_email=contact_email)
    if status == TenantStatus.ACTIVE:
        tenant.activated_at = db.func.now()
    db.session.add(tenant)
    db.session.flush()
    return tenant


def is_ingest_allowed(tenant: Tenant) -> bool:
    """Whether data may be loaded for the tenant: only while it is active.

    Ingest code (uploads, push API, scheduled pulls) asks this before it
    accepts or fetches anything; a suspended tenant keeps its data but
    receives no new data until it is reactivated.
    """
    return tenant.is_active


def search_regions(query: str, limit: int = 25) -> list[tuple[Region, str | None]]:
    """Municipalities and districts by name, AGS or postcode, with the status of an existing tenant.

    Digits search AGS and postcode by prefix; anything else the name, as a
    case-insensitive substring (wildcards in the input are taken literally).
    """
    query = (query or "").strip()[:80]
    if len(query) < 2:
        return []
    if query.isdigit():
        condition = Region.ags.startswith(query) | Region.postal_code.startswith(query)
    else:
        condition = Region.name.icontains(query, autoescape=True)
    rows = db.session.execute(
        select(Region, Tenant.status).outerjoin(Tenant, Tenant.ags == Region.ags)
        .where(condition).order_by(Region.name).limit(limit)
    )
    return [(region, status) for region, status in rows]
