"""Health checks behind /healthz: database, Redis and the job queues.

Each check returns a dict with ``ok`` and details, and never raises: a
health endpoint that fails with a 500 tells an operator less than one that
says which part is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from tenants.db import db
from tenants.settings import get_settings


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        db.session.rollback()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict[str, Any]:
    row = db.session.execute(
        text("SELECT current_user, (SELECT version_num FROM public.alembic_version LIMIT 1)")
    ).one()
    db.session.rollback()
    return {"role": row[0], "migration": row[1]}


def _redis_connection():
    from tenants.jobs import redis_connection

    return redis_connection()


def _redis() -> dict[str, Any]:
    info = _redis_connection().info("server")
    return {"version": info.get("redis_version")}


def _queues() -> dict[str, Any]:
    from tenants.jobs import queue_state

    return queue_state(_redis_connection(), get_settings().queues)


def _superset() -> dict[str, Any]:
    import requests

    url = get_settings().superset_url
    response = requests.get(url + "/health", timeout=2)
    response.raise_for_status()
    return {"url": url}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "redis": _redis,
    "queues": _queues,
}
#: Reported, but the portal works without them (the dashboards page says
#: Superset is unavailable), so they do not turn the status to degraded.
OPTIONAL_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "superset": _superset,
}


def run_checks() -> dict[str, Any]:
    """All checks; ``status`` is ``ok`` when every required one passed; ``impaired`` lists failed optional ones."""
    checks = {name: _timed(check) for name, check in CHECKS.items()}
    optional = {name: _timed(check) for name, check in OPTIONAL_CHECKS.items()}
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "degraded",
            "impaired": sorted(name for name, c in optional.items() if not c["ok"]),
            "checks": {**checks, **optional}}
