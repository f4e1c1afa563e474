"""The Matomo connector's scheduled jobs (``ingest_workers/cron.py``): queue the daily pull of every
active Matomo source, and fetch again the recent days Matomo had no figures for yet.

The pull itself (a run per source and range) is ``tenants.ingest.matomo``; these only decide what to queue.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from tenants.context import platform_transaction, tenant_transaction
from tenants.ingest.loader import berlin_today
from tenants.ingest.matomo import REFETCH_DAYS, enqueue_pull
from tenants.models import DataSource, Tenant


def _active_sources() -> list[tuple[int, DataSource]]:
    with platform_transaction() as session:
        tenant_ids = list(session.scalars(select(Tenant.id).where(Tenant.is_active)))
    found = []
    for tenant_id in tenant_ids:
        with tenant_transaction(tenant_id) as session:
            for source in session.scalars(select(DataSource).where(DataSource.kind == "matomo", DataSource.active)):
                session.expunge(source)
                found.append((tenant_id, source))
    return found


def _queue_pulls(wanted: list[tuple[int, int, date, date]], requested_by: str) -> int:
    for tenant_id, source_id, start, end in wanted:
        with tenant_transaction(tenant_id) as session:
            enqueue_pull(session, tenant_id, source_id, start, end, requested_by)
    return len(wanted)


def pull_all_daily(today: date | None = None) -> int:
    """The scheduled job: queue yesterday's pull (German calendar) for every active Matomo source."""
    day = (today or berlin_today()) - timedelta(days=1)
    return _queue_pulls([(t, s.id, day, day) for t, s in _active_sources()], "schedule")


def refetch_pending(today: date | None = None) -> int:
    """The hourly job: fetch again the recent days Matomo had no figures for yet."""
    oldest = (today or berlin_today()) - timedelta(days=REFETCH_DAYS)
    wanted = []
    for tenant_id, source in _active_sources():
        pending = sorted(d for d in map(date.fromisoformat, source.config.get("pending_days", [])) if d >= oldest)
        if pending:
            wanted.append((tenant_id, source.id, pending[0], pending[-1]))
    return _queue_pulls(wanted, "refetch")
