"""Open Data housekeeping: keep each published dataset's dct:modified and ETag true to its content, and protect
and audit the months the night's data changed before anyone downloads them."""

from __future__ import annotations

from sqlalchemy import select

from tenants.context import platform_transaction
from tenants.db import db
from tenants.models import Tenant
from tenants.opendata.publication import refresh_published, rules_from
from tenants.settings import get_settings


def refresh_open_data() -> int:
    """Recompute the content hash of every published dataset of every active tenant.

    Downloads do this as they go; the daily run catches datasets nobody
    downloaded, so the catalogue's dct:modified moves when new data arrive
    and harvesters fetch again. On the way the disclosure audit runs for the
    months whose data changed (its decisions are kept), so that downloads
    during the day find them. Returns the number of datasets checked.
    """
    rules = rules_from(get_settings())
    with platform_transaction():
        tenant_ids = list(db.session.scalars(select(Tenant.id).where(Tenant.is_active)))
    return sum(refresh_published(tenant_id, rules) for tenant_id in tenant_ids)
