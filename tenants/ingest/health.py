"""Ingest health of one tenant: per source the last success, last error and rows per day; unfinished runs.

Tenant admins see it on their health page; operators call :func:`ingest_health` for any tenant
(``egov ingest health <AGS>``). It reads only the tenant's own control-plane rows, under RLS.
Every run that did not succeed is listed (failed, queued for a retry, running) with its error, so
none can hide; runs nobody works on are settled first (``runs.settle_runs``). Days are German days.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, text

from tenants.context import tenant_transaction

DAYS = 14

#: When a data source ``s`` last delivered: its latest succeeded run (one probe of migration 0014's index);
#: for the feedback widget, whose ratings arrive one by one without runs, its latest rating (the ratings'
#: (tenant, received_at) index). Shared by the health page, the start page's freshness and the metrics.
LAST_SUCCESS_SQL = """GREATEST(
    (SELECT max(r.finished_at) FROM portal.ingest_runs r
     WHERE r.tenant_id = s.tenant_id AND r.data_source_id = s.id AND r.status = 'succeeded'),
    CASE WHEN s.kind = 'feedback' THEN (SELECT max(f.received_at) FROM analytics.feedback f
                                        WHERE f.tenant_id = s.tenant_id AND f.data_source_id = s.id) END)"""

SUMMARY = text(f"""
SELECT s.id, s.name, s.kind, s.active, {LAST_SUCCESS_SQL},
       f.finished_at, f.error, f.error_args
FROM portal.data_sources s
LEFT JOIN LATERAL (SELECT finished_at, error, error_args FROM portal.ingest_runs r
                   WHERE r.data_source_id = s.id AND r.status = 'failed'
                   ORDER BY finished_at DESC NULLS LAST LIMIT 1) f ON true
ORDER BY s.name
""")  # noqa: S608 - constant fragments

PER_DAY = text("""
SELECT data_source_id, (finished_at AT TIME ZONE 'Europe/Berlin')::date AS day, sum(rows_accepted), sum(rows_rejected)
FROM portal.ingest_runs
WHERE status = 'succeeded' AND finished_at >= :since
GROUP BY 1, 2
""")

UNFINISHED = text("""
SELECT r.id, r.data_source_id, s.name, r.filename, r.batch_key, r.day_from, r.day_to, r.created_at, r.finished_at,
       r.status, r.error, r.error_args, r.attempts, r.payload_format
FROM portal.ingest_runs r JOIN portal.data_sources s ON s.tenant_id = r.tenant_id AND s.id = r.data_source_id
WHERE r.status IN ('failed', 'queued', 'running') ORDER BY coalesce(r.finished_at, r.created_at) DESC LIMIT 100
""")


def health_in_session(session, today: date | None = None) -> dict[str, Any]:
    """The report; settles the tenant's unfinished runs first (those due are queued after commit)."""
    from tenants.ingest.loader import berlin_today
    from tenants.ingest.runs import enqueue_due, error_text, settle_runs
    from tenants.models import IngestRun

    unfinished = list(session.scalars(select(IngestRun).where(IngestRun.status.in_(("queued", "running")))))
    enqueue_due(session, settle_runs(session, unfinished))
    today = today or berlin_today()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    per_day: dict[int, dict[date, tuple[int, int]]] = {}
    for source_id, day, accepted, rejected in session.execute(PER_DAY, {"since": days[0]}):
        per_day.setdefault(source_id, {})[day] = (int(accepted), int(rejected))
    sources = []
    for source_id, name, kind, active, last_ok, last_failed, last_error, args in session.execute(SUMMARY):
        counts = per_day.get(source_id, {})
        sources.append({
            "id": source_id, "name": name, "kind": kind, "active": active,
            "last_success": last_ok, "last_failure": last_failed, "last_error": error_text(last_error, args),
            "rows_per_day": [{"day": d, "accepted": counts.get(d, (0, 0))[0], "rejected": counts.get(d, (0, 0))[1]}
                             for d in days],
            "status": _status(last_ok, last_failed),
        })
    unfinished_runs = []
    for row in session.execute(UNFINISHED):
        run = dict(row._mapping)
        run["error"] = error_text(run.pop("error"), run.pop("error_args"))
        unfinished_runs.append(run)
    return {"days": days, "sources": sources, "unfinished_runs": unfinished_runs}


def _status(last_ok, last_failed) -> str:
    if last_failed and (last_ok is None or last_failed > last_ok):
        return "error"
    return "ok" if last_ok else "no_data"


def ingest_health(tenant_id: int, today: date | None = None) -> dict[str, Any]:
    """The health report of one tenant (for operators and the CLI); needs an app context."""
    with tenant_transaction(tenant_id) as session:
        return health_in_session(session, today)
