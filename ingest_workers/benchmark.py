"""The nightly benchmark refresh (scheduled in ingest_workers/cron.py)."""

from __future__ import annotations

from flask import current_app

from tenants.benchmark import rules_from
from tenants.benchmark.refresh import refresh
from tenants.context import tenant_transaction
from tenants.registry import list_tenants
from tenants.superset import cache as superset_cache

#: What the refresh writes (every tenant's "Vergleich" reads it).
TABLES = ("benchmark.figures", "benchmark.groups")


def refresh_benchmarks() -> dict:
    """Compute the comparison figures of the months not compared yet (published figures stay as they are);
    then every active tenant's cached comparison figures are retired and warmed again."""
    result = refresh(rules_from(current_app.config["EGOV"]))
    if result.get("figures"):
        with tenant_transaction(None):
            active = [tenant.id for tenant in list_tenants(status="active")]
        superset_cache.data_changed(active, TABLES)
    return result
