"""The nightly benchmark refresh (scheduled in ingest_workers/cron.py)."""

from __future__ import annotations

from tenants.benchmark import rules_from
from tenants.benchmark.refresh import refresh
from tenants.context import platform_transaction
from tenants.models import TenantStatus
from tenants.registry import list_tenants
from tenants.settings import get_settings
from tenants.superset import cache as superset_cache

#: What the refresh writes (every tenant's "Vergleich" reads it).
TABLES = ("benchmark.figures", "benchmark.groups")


def refresh_benchmarks() -> dict:
    """Compute the comparison figures of the months not compared yet (published figures stay as they are);
    then every active tenant's cached comparison figures are retired and warmed again."""
    result = refresh(rules_from(get_settings()))
    if result.get("figures"):
        with platform_transaction():
            active = [tenant.id for tenant in list_tenants(status=TenantStatus.ACTIVE)]
        superset_cache.data_changed(active, TABLES)
    return result
