"""Housekeeping jobs that keep the database ready for ingest."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import text

from tenants.context import platform_transaction


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def months_to_prepare(today: date, months_ahead: int = 2) -> list[date]:
    """The first days of ``today``'s month and of the ``months_ahead`` months after it."""
    return [_add_months(today, offset) for offset in range(months_ahead + 1)]


def ensure_partitions(months_ahead: int = 2, today: date | None = None) -> list[str]:
    """Make sure process_events has partitions for this month and the next ones.

    Loaders create partitions on demand as well; running this daily means the
    common case (events of this month) never waits for DDL. Partitions are bounded in UTC
    (migration 0011), so "this month" is UTC's; the months of German time's first hours of a
    month lie in the UTC month before, which exists already.
    """
    today = today or datetime.now(UTC).date()
    names = []
    with platform_transaction() as session:
        for month in months_to_prepare(today, months_ahead):
            names.append(session.execute(text("SELECT analytics.ensure_event_partition(:m)"), {"m": month}).scalar())
    return names
