"""Matomo connector: daily visits and the service pages' figures from Matomo's Reporting API.

Per data source the tenant stores the Matomo address, the site id, a view-only ``token_auth``
(encrypted) and which URL prefixes belong to which online service. A pull fetches, for a range
of days with ``period=day``:

* ``VisitsSummary.get`` -> ``analytics.web_visits_daily`` (visits, unique visitors, actions,
  bounce rate, average time on site);
* ``Actions.getPageUrls`` with ``flat=1`` -> ``analytics.web_pages_daily``, only for pages under
  a configured prefix, with the query string cut off (query strings can carry personal data).

The token travels in the POST body, never in the URL (URLs end up in logs). Rows are upserted,
so pulling a day again (the daily schedule, a backfill, a retry) replaces its figures. Every pull
is an ingest run, so the health page shows its outcome.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import current_app
from sqlalchemy import select, text

from tenants import outbound
from tenants.context import tenant_transaction
from tenants.crypto import decrypt
from tenants.db import db
from tenants.models import DataSource, IngestRun, Tenant

log = logging.getLogger(__name__)

TIMEOUT = 60
#: The largest answer taken: a year of ``Actions.getPageUrls`` for a big city's portal is a few MB.
MAX_BYTES = 64 * 1024 * 1024
MAX_DAYS = 366
RETRIES = 2


class MatomoError(RuntimeError):
    """Matomo answered with an error or with something that is not its documented JSON."""


def check_range(start: date, end: date) -> None:
    if end < start or (end - start).days >= MAX_DAYS or end > date.today():
        raise ValueError("invalid period")


def call(base_url: str, token: str, method: str, site_id: int, start: date, end: date,
         **extra: Any) -> dict[str, Any]:
    """One Reporting API request for a range of days; returns ``{"YYYY-MM-DD": report}``."""
    data = {"module": "API", "method": method, "idSite": site_id, "period": "day",
            "date": f"{start.isoformat()},{end.isoformat()}", "format": "JSON", "token_auth": token, **extra}
    try:  # tenants/outbound.py: the address checked once and connected to, no redirect, time and size capped
        response = outbound.fetch(f"{base_url}/index.php", current_app.config["EGOV"], method="POST", data=data,
                                  timeout=TIMEOUT, max_bytes=MAX_BYTES)
    except outbound.OutboundError as exc:
        raise MatomoError(f"Matomo: {exc}") from exc
    if response.status >= 400:
        raise MatomoError(f"Matomo answered HTTP {response.status} to {method}")
    body = response.json()
    if isinstance(body, dict) and body.get("result") == "error":
        raise MatomoError(f"Matomo: {body.get('message', 'error')}")
    if not isinstance(body, dict):
        raise MatomoError(f"Matomo returned an unexpected answer to {method}")
    return body


def _rate(value: Any) -> Decimal | None:
    """Matomo writes rates as strings like ``"45%"`` (or ``"45,5 %"`` with some locales)."""
    if value in (None, ""):
        return None
    return Decimal(str(value).replace("%", "").replace(",", ".").strip())


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(float(value))


def visits_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for day, metrics in report.items():
        if not metrics:  # Matomo sends [] for a day without visits
            metrics = {}
        rows.append({"day": date.fromisoformat(day), "visits": _int(metrics.get("nb_visits")) or 0,
                     "unique_visitors": _int(metrics.get("nb_uniq_visitors")),
                     "actions": _int(metrics.get("nb_actions")) or 0, "bounce_rate": _rate(metrics.get("bounce_rate")),
                     "avg_time_on_site": _int(metrics.get("avg_time_on_site"))})
    return rows


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def page_rows(report: dict[str, Any], pages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rows of the configured service pages, one per day and URL (query strings cut off)."""
    merged: dict[tuple[date, str], dict[str, Any]] = {}
    for day, rows in report.items():
        for row in rows or []:
            url = _without_query(row.get("url") or row.get("label") or "")
            service = next((p["service_key"] for p in pages if url.startswith(p["prefix"])), None)
            if service is None:
                continue
            key = (date.fromisoformat(day), url)
            visits = _int(row.get("nb_visits")) or 0
            entry = merged.setdefault(key, {"day": key[0], "page_url": url, "service_key": service, "hits": 0,
                                            "visits": 0, "bounce_rate": None, "avg_time_on_page": None, "_best": -1})
            entry["hits"] += _int(row.get("nb_hits")) or 0
            entry["visits"] += visits
            if visits > entry["_best"]:  # rates of the most visited variant of the URL
                entry["_best"] = visits
                entry["bounce_rate"] = _rate(row.get("bounce_rate"))
                entry["avg_time_on_page"] = _int(row.get("avg_time_on_page"))
    return [{k: v for k, v in entry.items() if k != "_best"} for entry in merged.values()]


UPSERT_VISITS = text("""
INSERT INTO analytics.web_visits_daily (tenant_id, data_source_id, day, visits, unique_visitors, actions, bounce_rate,
    avg_time_on_site)
VALUES (:tenant, :source, :day, :visits, :unique_visitors, :actions, :bounce_rate, :avg_time_on_site)
ON CONFLICT (tenant_id, data_source_id, day) DO UPDATE SET visits = EXCLUDED.visits,
    unique_visitors = EXCLUDED.unique_visitors, actions = EXCLUDED.actions, bounce_rate = EXCLUDED.bounce_rate,
    avg_time_on_site = EXCLUDED.avg_time_on_site
""")

UPSERT_PAGES = text("""
INSERT INTO analytics.web_pages_daily (tenant_id, data_source_id, day, page_url, service_key, hits, visits,
    bounce_rate, avg_time_on_page)
VALUES (:tenant, :source, :day, :page_url, :service_key, :hits, :visits, :bounce_rate, :avg_time_on_page)
ON CONFLICT (tenant_id, data_source_id, day, page_url) DO UPDATE SET service_key = EXCLUDED.service_key,
    hits = EXCLUDED.hits, visits = EXCLUDED.visits, bounce_rate = EXCLUDED.bounce_rate,
    avg_time_on_page = EXCLUDED.avg_time_on_page
""")


def store(session, tenant_id: int, source_id: int, visits: list[dict], pages: list[dict],
          days: tuple[date, date]) -> int:
    """Replace the figures of the pulled days (pages that vanished from a day are removed)."""
    base = {"tenant": tenant_id, "source": source_id}
    session.execute(text("DELETE FROM analytics.web_pages_daily WHERE data_source_id = :source "
                         "AND day BETWEEN :start AND :end"), {**base, "start": days[0], "end": days[1]})
    if visits:
        session.execute(UPSERT_VISITS, [{**base, **row} for row in visits])
    if pages:
        session.execute(UPSERT_PAGES, [{**base, **row} for row in pages])
    return len(visits) + len(pages)


# -- runs and jobs --------------------------------------------------------------------------------

def create_pull_run(session, tenant_id: int, source_id: int, start: date, end: date, requested_by: str) -> IngestRun:
    run = IngestRun(tenant_id=tenant_id, data_source_id=source_id, status="queued", payload_format="matomo",
                    batch_key=f"matomo:{start}:{end}:{uuid.uuid4().hex}", day_from=start, day_to=end,
                    requested_by=requested_by)
    session.add(run)
    session.flush()
    run.job_id = f"matomo-{tenant_id}-{run.id}"
    return run


def enqueue_run(tenant_id: int, run_id: int) -> None:
    from ingest_workers.jobs import enqueue, redis_connection

    enqueue(pull_run, tenant_id, run_id, queue="low", timeout=600, retries=RETRIES,
            job_id=f"matomo-{tenant_id}-{run_id}", connection=redis_connection(current_app.config["EGOV"].redis_url))


def enqueue_pull(tenant_id: int, source_id: int, start: date, end: date, requested_by: str = "portal") -> int:
    """A backfill on request: record the run (in the request's session) and queue it after commit."""
    run = create_pull_run(db.session, tenant_id, source_id, start, end, requested_by)
    run_id = run.id
    db.session.commit()
    enqueue_run(tenant_id, run_id)
    return run_id


def pull_run(tenant_id: int, run_id: int) -> dict[str, Any]:
    """The RQ job: fetch the run's days from Matomo and store them."""
    settings = current_app.config["EGOV"]
    with tenant_transaction(tenant_id) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        source = session.get(DataSource, (tenant_id, run.data_source_id))
        tenant = session.get(Tenant, tenant_id)
        if tenant.status != "active" or not source.active:
            run.status, run.error, run.finished_at = "failed", "Tenant or data source is not active.", datetime.now(UTC)
            return {"status": "failed"}
        run.status, run.started_at = "running", datetime.now(UTC)
        config, token = dict(source.config), decrypt(settings, source.secret_encrypted)
        days = (run.day_from, run.day_to)
    try:
        visits = visits_rows(call(config["url"], token, "VisitsSummary.get", config["site_id"], *days))
        pages = page_rows(call(config["url"], token, "Actions.getPageUrls", config["site_id"], *days,
                               flat=1, filter_limit=-1), config.get("pages", []))
        with tenant_transaction(tenant_id) as session:
            count = store(session, tenant_id, source.id, visits, pages, days)
            run = session.get(IngestRun, (tenant_id, run_id))
            run.status, run.finished_at, run.error = "succeeded", datetime.now(UTC), None
            run.rows_total = run.rows_accepted = count
    except (requests.RequestException, MatomoError, ValueError, KeyError) as exc:
        with tenant_transaction(tenant_id) as session:
            run = session.get(IngestRun, (tenant_id, run_id))
            run.status, run.error, run.finished_at = "failed", str(exc)[:1000], datetime.now(UTC)
        raise
    return {"status": "succeeded", "rows": count}


def pull_all_daily(today: date | None = None) -> int:
    """The scheduled job: queue yesterday's pull for every active Matomo source of every active tenant."""
    day = (today or date.today()) - timedelta(days=1)
    queued = []
    with tenant_transaction(None) as session:
        tenant_ids = list(session.scalars(select(Tenant.id).where(Tenant.status == "active")))
    for tenant_id in tenant_ids:
        with tenant_transaction(tenant_id) as session:
            sources = session.scalars(select(DataSource).where(DataSource.kind == "matomo", DataSource.active))
            queued += [(tenant_id, create_pull_run(session, tenant_id, s.id, day, day, "schedule").id)
                       for s in sources]
    for tenant_id, run_id in queued:
        enqueue_run(tenant_id, run_id)
    return len(queued)
