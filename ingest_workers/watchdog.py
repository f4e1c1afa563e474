"""The watchdog (``egov watchdog``): limits a tenant cannot lift, enforced from outside its session.

A tenant's SQL Lab session may change its own ``statement_timeout`` (PostgreSQL lets every role
do so), and Superset's own limits stop waiting for a query without stopping the query. A query
left running holds locks: the nightly comparison refresh's ``TRUNCATE`` waits for it, and with
it every tenant. So this process ends, every few seconds, each session of a tenant's Superset
login role that has run longer than ``EGOV_TENANT_QUERY_LIMIT_SECONDS``
(``portal.superset_end_overrunning``, migration 0010), and once a minute brings Superset's users
in line with the portal (tenants/superset/access.py), in case a queued revocation was lost.

It runs as a process of its own rather than as queued jobs: a job waits while every worker is
busy with long loads, and the limit must hold exactly then.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import text

from tenants.context import platform_transaction

log = logging.getLogger(__name__)


def end_overrunning(limit_seconds: int) -> int:
    """End the tenant Superset sessions over the limit; returns how many were ended."""
    with platform_transaction() as session:  # pg_stat_activity, not tenant data
        return session.execute(text("SELECT portal.superset_end_overrunning(:limit)"),
                               {"limit": int(limit_seconds)}).scalar_one()


def run(limit_seconds: int, interval_seconds: float, sync_every_seconds: float = 60.0,
        rounds: int | None = None) -> None:
    """Loop for ever (or ``rounds`` times); every failure is logged and the loop goes on."""
    from tenants.superset.access import sync_all

    last_sync = 0.0
    done = 0
    while rounds is None or done < rounds:
        try:
            ended = end_overrunning(limit_seconds)
            if ended:
                log.warning("ended %s tenant Superset session(s) running longer than %s s", ended, limit_seconds)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("watchdog: could not end overrunning sessions")
        if time.monotonic() - last_sync >= sync_every_seconds:
            last_sync = time.monotonic()
            try:
                sync_all()
            except Exception:  # noqa: BLE001
                log.exception("watchdog: Superset access could not be synchronised")
        done += 1
        if rounds is None or done < rounds:
            time.sleep(interval_seconds)
