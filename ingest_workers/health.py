"""Ingest health of one tenant: per source the last success, last error and rows per day; failed runs.

Tenant admins see it on their health page; operators call :func:`ingest_health` for any tenant
(``egov ingest health <AGS>``). It reads only the tenant's own control-plane rows, under RLS.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import text

from tenants.context import tenant_transaction

DAYS = 14

SUMMARY = text("""
SELECT s.id, s.name, s.kind, s.active,
       (SELECT max(finished_at) FROM portal.ingest_runs r WHERE r.data_source_id = s.id AND r.status = 'succeeded'),
       (SELECT finished_at FROM portal.ingest_runs r WHERE r.data_source_id = s.id AND r.status = 'failed'
        ORDER BY finished_at DESC NULLS LAST LIMIT 1),
       (SELECT error FROM portal.ingest_runs r WHERE r.data_source_id = s.id AND r.status = 'failed'
        ORDER BY finished_at DESC NULLS LAST LIMIT 1)
FROM portal.data_sources s ORDER BY s.name
""")

PER_DAY = text("""
SELECT data_source_id, (finished_at AT TIME ZONE 'Europe/Berlin')::date AS day, sum(rows_accepted), sum(rows_rejected)
FROM portal.ingest_runs
WHERE status = 'succeeded' AND finished_at >= :since
GROUP BY 1, 2
""")

FAILED = text("""
SELECT r.id, r.data_source_id, s.name, r.filename, r.created_at, r.finished_at, r.error, r.payload_format
FROM portal.ingest_runs r JOIN portal.data_sources s ON s.tenant_id = r.tenant_id AND s.id = r.data_source_id
WHERE r.status = 'failed' ORDER BY r.finished_at DESC NULLS LAST LIMIT 50
""")


def health_in_session(session, today: date | None = None) -> dict[str, Any]:
    today = today or date.today()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    per_day: dict[int, dict[date, tuple[int, int]]] = {}
    for source_id, day, accepted, rejected in session.execute(PER_DAY, {"since": days[0]}):
        per_day.setdefault(source_id, {})[day] = (int(accepted), int(rejected))
    sources = []
    for source_id, name, kind, active, last_ok, last_failed, last_error in session.execute(SUMMARY):
        counts = per_day.get(source_id, {})
        sources.append({
            "id": source_id, "name": name, "kind": kind, "active": active,
            "last_success": last_ok, "last_failure": last_failed, "last_error": last_error,
            "rows_per_day": [{"day": d, "accepted": counts.get(d, (0, 0))[0], "rejected": counts.get(d, (0, 0))[1]}
                             for d in days],
            "status": _status(last_ok, last_failed),
        })
    failed = [dict(row._mapping) for row in session.execute(FAILED)]
    return {"days": days, "sources": sources, "failed_runs": failed}


def _status(last_ok, last_failed) -> str:
    if last_failed and (last_ok is None or last_failed > last_ok):
        return "error"
    return "ok" if last_ok else "no_data"


def ingest_health(tenant_id: int, today: date | None = None) -> dict[str, Any]:
    """The health report of one tenant (for operators and the CLI); needs an app context."""
    with tenant_transaction(tenant_id) as session:
        return health_in_session(session, today)
