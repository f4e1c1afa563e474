"""What a tenant's start page shows: last month against the month before, where people abandon,
how fresh each data source is, and the "Erste Schritte" checklist of a new tenant.

Everything is read through the request's session, which is bound to the tenant: row-level
security keeps the figures to the tenant's own rows, and every query names the tenant as well (the
route matrix's run without RLS proves the second layer on its own).
Months and days are German ones (``tenants.ingest.loader.berlin_today``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text

from tenants.ingest.health import LAST_SUCCESS_SQL

# The fewest starts in a month for a service to be ranked by abandonment: below it a single
# abandoned form would put a rarely used service at the top.
MIN_STARTS_FOR_RANKING = 10
TOP_ABANDONMENT = 5

MONTH_TOTALS = text("""
SELECT date_trunc('month', day)::date AS month, sum(started), sum(submitted), sum(aborted)
FROM analytics.rollup_service_daily
WHERE tenant_id = :tenant AND day >= :since AND day < :until
GROUP BY 1
""")

ABANDONMENT = text("""
SELECT r.service_key, s.name, s.leika_key, sum(r.started) AS started, sum(r.aborted) AS aborted
FROM analytics.rollup_service_daily r
JOIN analytics.services s ON s.tenant_id = r.tenant_id AND s.service_key = r.service_key
WHERE r.tenant_id = :tenant AND r.day >= :since AND r.day < :until
GROUP BY r.service_key, s.name, s.leika_key
HAVING sum(r.started) >= :min_started
ORDER BY sum(r.aborted)::numeric / sum(r.started) DESC, s.name
LIMIT :limit
""")

FRESHNESS = text(f"""
SELECT s.id, s.name, s.kind, s.active, {LAST_SUCCESS_SQL} AS last_success
FROM portal.data_sources s
WHERE s.tenant_id = :tenant
ORDER BY s.name
""")  # noqa: S608 - constant fragments

HAS_SUCCEEDED_RUN = text("SELECT EXISTS (SELECT 1 FROM portal.ingest_runs WHERE tenant_id = :tenant "
                         "AND status = 'succeeded')")


@dataclass(frozen=True)
class MonthFigures:
    """The totals of one calendar month; rates are fractions (0.25 = 25 %), None without starts."""

    month: date
    started: int
    submitted: int
    aborted: int

    @property
    def completion_rate(self) -> float | None:
        return self.submitted / self.started if self.started else None

    @property
    def abandonment_rate(self) -> float | None:
        return self.aborted / self.started if self.started else None


@dataclass(frozen=True)
class Step:
    """One item of "Erste Schritte"; ``endpoint`` is the page that does it."""

    key: str
    done: bool
    endpoint: str


def month_start(day: date, months_back: int = 0) -> date:
    """The first day of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def main_figures(session, tenant_id: int, today: date) -> tuple[MonthFigures, MonthFigures]:
    """(last full month, the month before); a month without data has zeros."""
    last, before = month_start(today, 1), month_start(today, 2)
    params = {"tenant": tenant_id, "since": before, "until": month_start(today)}
    totals = {row[0]: row[1:] for row in session.execute(MONTH_TOTALS, params)}

    def figures(month: date) -> MonthFigures:
        started, submitted, aborted = totals.get(month, (0, 0, 0))
        return MonthFigures(month, int(started), int(submitted), int(aborted))

    return figures(last), figures(before)


def highest_abandonment(session, tenant_id: int, today: date) -> list[dict]:
    """Last month's services with the highest share of aborted starts, highest first.

    Each item: ``service_key``, ``name``, ``leika_key`` (None for local services), ``started``,
    ``aborted``, ``rate`` (a fraction). Services with fewer than :data:`MIN_STARTS_FOR_RANKING`
    starts are left out.
    """
    rows = session.execute(ABANDONMENT, {"tenant": tenant_id, "since": month_start(today, 1),
                                         "until": month_start(today),
                                         "min_started": MIN_STARTS_FOR_RANKING, "limit": TOP_ABANDONMENT})
    return [{"service_key": key, "name": name, "leika_key": leika, "started": int(started),
             "aborted": int(aborted), "rate": int(aborted) / int(started)}
            for key, name, leika, started, aborted in rows]


def freshness(session, tenant_id: int, now: datetime) -> list[dict]:
    """Per data source: ``id``, ``name``, ``kind``, ``active``, ``last_success`` (a datetime or None)
    and ``state``: ``fresh`` (within 7 days), ``stale`` (older) or ``never``."""
    sources = []
    for source_id, name, kind, active, last_success in session.execute(FRESHNESS, {"tenant": tenant_id}):
        if last_success is None:
            state = "never"
        else:
            state = "fresh" if now - last_success <= timedelta(days=7) else "stale"
        sources.append({"id": source_id, "name": name, "kind": kind, "active": active,
                        "last_success": last_success, "state": state})
    return sources


def first_steps(session, tenant_id: int, *, has_identity_provider: bool, has_dashboards: bool,
                sources: list[dict]) -> list[Step]:
    """The checklist of a new tenant, each step ticked from the tenant's own state."""
    uploaded = bool(session.execute(HAS_SUCCEEDED_RUN, {"tenant": tenant_id}).scalar())
    return [
        Step("identity_provider", has_identity_provider, "tenant_admin.identity_provider"),
        Step("data_source", bool(sources), "tenant_ingest.index"),
        Step("upload", uploaded, "tenant_ingest.index"),
        Step("dashboards", has_dashboards and uploaded, "tenant_dashboards.show"),
    ]
