"""Matomo connector: daily visits and the service pages' figures from Matomo's Reporting API.

Per data source the tenant stores the Matomo address, the site id, a view-only ``token_auth``
(encrypted) and which URL prefixes belong to which online service. A pull fetches, for a range
of days with ``period=day``:

* ``VisitsSummary.get`` -> ``analytics.web_visits_daily`` (visits, unique visitors, actions,
  bounce rate, average time on site);
* ``Actions.getPageUrls`` with ``flat=1`` -> ``analytics.web_pages_daily``, only for pages under
  a configured prefix, with the query string cut off (query strings can carry personal data).
  The spellings of one page (``http://``, ``https://``, with or without ``www.``, a trailing
  slash) are one page: they are matched and counted together under the configured spelling.

The token travels in the POST body, never in the URL (URLs end up in logs). Pulling a day again
(the daily schedule, a backfill, a retry) replaces that day's figures, but only with figures:
Matomo answers ``[]`` for a day it has not archived yet (before its nightly archiving), and an
empty or missing day in an answer never overwrites or deletes what is stored. Such days of the
last ``REFETCH_DAYS`` days are kept in the source's ``pending_days`` and fetched again every hour
(``refetch_pending``) until Matomo has them. Every pull is an ingest run, so the health page shows
its outcome; Matomo's own error text is kept, and only errors that may pass (no connection, HTTP
5xx or 429) are tried again.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text

from tenants import outbound
from tenants.context import tenant_transaction
from tenants.crypto import decrypt
from tenants.db import after_commit
from tenants.ingest import runs
from tenants.ingest.loader import berlin_today
from tenants.models import DataSource, IngestRun
from tenants.settings import get_settings
from tenants.superset import cache as superset_cache

log = logging.getLogger(__name__)

TIMEOUT = 60
#: The largest answer taken: a year of ``Actions.getPageUrls`` for a big city's portal is a few MB.
MAX_BYTES = 64 * 1024 * 1024
MAX_DAYS = 366
RETRIES = 2
#: What a pull writes (their dashboards' cached figures are retired after it).
TABLES = ("analytics.web_visits_daily", "analytics.web_pages_daily")
#: Days Matomo answered empty are fetched again while they are at most this old.
REFETCH_DAYS = 3
#: A pull's batch key starts so (``matomo:<first day>:<last day>:<random>``); pages name such a load by its days.
BATCH_PREFIX = "matomo:"


class MatomoError(RuntimeError):
    """Matomo answered with an error or with something that is not its documented JSON.

    ``message`` is an English message id, ``args_dict`` its values (Matomo's own text among them).
    """

    def __init__(self, msgid: str = "Matomo: %(message)s", **args: Any):
        super().__init__(msgid % args if args else msgid)
        self.message, self.args_dict = msgid, args


def check_range(start: date, end: date) -> None:
    if end < start or (end - start).days >= MAX_DAYS or end > berlin_today():
        raise ValueError("invalid period")


#: Why an outbound request failed that may well work in a while (tenants/outbound.py reasons).
TRANSIENT_OUTBOUND = {"connect", "timeout", "protocol", "resolve"}


def call(base_url: str, token: str, method: str, site_id: int, start: date, end: date,
         **extra: Any) -> outbound.Answer:
    """One Reporting API request for a range of days, as the raw answer.

    Through tenants/outbound.py, like every URL a tenant gives: the address is checked once and
    connected to, redirects are not followed for a POST, time and size are capped.
    """
    data = {"module": "API", "method": method, "idSite": site_id, "period": "day",
            "date": f"{start.isoformat()},{end.isoformat()}", "format": "JSON", "token_auth": token, **extra}
    return outbound.fetch(f"{base_url}/index.php", get_settings(), method="POST", data=data,
                          timeout=TIMEOUT, max_bytes=MAX_BYTES)


def report(base_url: str, token: str, method: str, site_id: int, start: date, end: date,
           **extra: Any) -> dict[str, Any]:
    """:func:`call`'s answer as ``{"YYYY-MM-DD": report}``, with Matomo's failures told apart and in
    Matomo's own words.

    :raise runs.TransientError: Matomo is away or overloaded (no connection, a timeout, HTTP 5xx,
        429); the job is tried again.
    :raise MatomoError: anything else (a refused token, an unknown site, an address that is not
        Matomo or that the platform may not call); trying again would not help.
    """
    try:
        answer = call(base_url, token, method, site_id, start, end, **extra)
    except outbound.OutboundError as exc:
        if exc.reason in TRANSIENT_OUTBOUND:
            raise runs.TransientError(f"Matomo: {exc}") from exc
        raise MatomoError(message=str(exc)) from exc
    if answer.status >= 400:
        said = _matomo_message(answer)
        if answer.status >= 500 or answer.status == 429:
            raise runs.TransientError(f"Matomo answered HTTP {answer.status}" + (f": {said}" if said else ""))
        if said:
            raise MatomoError(message=said)
        raise MatomoError("Matomo answered HTTP %(status)s.", status=answer.status)
    try:
        body = answer.json()
    except ValueError as exc:
        raise MatomoError("The address does not answer like Matomo's Reporting API; it sent: %(snippet)s",
                          snippet=_snippet(answer.body.decode("utf-8", "replace"))) from exc
    if isinstance(body, dict) and body.get("result") == "error":
        raise MatomoError(message=str(body.get("message", "error"))[:500])
    if not isinstance(body, dict):
        raise MatomoError("Matomo returned an unexpected answer to %(method)s", method=method)
    return body


def _matomo_message(answer: outbound.Answer) -> str | None:
    """Matomo's error text in an error answer (``{"result": "error", "message": …}``), if it sent one."""
    try:
        body = answer.json()
    except ValueError:
        return _snippet(answer.body.decode("utf-8", "replace")) or None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:500]
    return None


def _snippet(body: str | None) -> str:
    """The start of an answer as plain text (tags removed), for an error message."""
    import re

    plain = " ".join(re.sub(r"<[^>]*>", " ", body or "").split())
    return plain[:200] + ("…" if len(plain) > 200 else "")


def _rate(value: Any) -> Decimal | None:
    """Matomo writes rates as strings like ``"45%"`` (or ``"45,5 %"`` with some locales)."""
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value).replace("%", "").replace(",", ".").strip())
    except InvalidOperation:
        return None


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _days(report: dict[str, Any]) -> dict[date, Any]:
    """The report's days that hold figures; Matomo's ``[]`` (not archived yet, or nothing) is no figure."""
    days = {}
    for day, figures in report.items():
        try:
            parsed = date.fromisoformat(day)
        except (TypeError, ValueError):
            continue
        if figures:
            days[parsed] = figures
    return days


def visits_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for day, metrics in _days(report).items():
        if not isinstance(metrics, dict):
            continue
        rows.append({"day": day, "visits": _int(metrics.get("nb_visits")) or 0,
                     "unique_visitors": _int(metrics.get("nb_uniq_visitors")),
                     "actions": _int(metrics.get("nb_actions")) or 0, "bounce_rate": _rate(metrics.get("bounce_rate")),
                     "avg_time_on_site": _int(metrics.get("avg_time_on_site"))})
    return rows


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def page_key(url: str) -> str:
    """One page however it is spelled: no scheme, host in lower case without ``www.`` and default
    port, path without query string and trailing slash (paths themselves are case-sensitive)."""
    parts = urlsplit(url if "//" in url else "//" + url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host += f":{parts.port}"
    path = parts.path.rstrip("/")
    return host + path


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def page_rows(report: dict[str, Any], pages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rows of the configured service pages, one per day and page (spellings merged, query strings cut off).

    A page is stored under the configured prefix's spelling (scheme and host) with its own path.
    """
    prefixes = [(page_key(p["prefix"]), _origin(p["prefix"]), p["service_key"]) for p in pages]
    merged: dict[tuple[date, str], dict[str, Any]] = {}
    for day, rows in _days(report).items():
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            url = _without_query(str(row.get("url") or row.get("label") or ""))
            key = page_key(url)
            match = next(((origin, service) for prefix, origin, service in prefixes if key.startswith(prefix)), None)
            if match is None:
                continue
            origin, service = match
            page_url = origin + "/" + key.split("/", 1)[1] if "/" in key else origin
            entry = merged.setdefault((day, page_url), {"day": day, "page_url": page_url, "service_key": service,
                                                        "hits": 0, "visits": 0, "bounce_rate": None,
                                                        "avg_time_on_page": None, "_best": -1})
            visits = _int(row.get("nb_visits")) or 0
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


def complete_days(visits_report: dict[str, Any], pages_report: dict[str, Any]) -> set[date]:
    """Days Matomo answered in full: visits, and (when there were visits) the pages report too."""
    visits, pages = _days(visits_report), _days(pages_report)
    return {day for day, figures in visits.items()
            if isinstance(figures, dict) and (day in pages or not _int(figures.get("nb_visits")))}


def store(session, tenant_id: int, source_id: int, visits: list[dict], pages: list[dict],
          days: set[date]) -> int:
    """Replace the figures of the complete ``days`` (pages that vanished from such a day are removed).

    Days not in ``days`` are left as they are: an empty or partial answer destroys nothing.
    """
    base = {"tenant": tenant_id, "source": source_id}
    visits = [row for row in visits if row["day"] in days]
    pages = [row for row in pages if row["day"] in days]
    if days:
        session.execute(text("DELETE FROM analytics.web_pages_daily WHERE data_source_id = :source "
                             "AND day = ANY(:days)"), {**base, "days": sorted(days)})
    if visits:
        session.execute(UPSERT_VISITS, [{**base, **row} for row in visits])
    if pages:
        session.execute(UPSERT_PAGES, [{**base, **row} for row in pages])
    return len(visits) + len(pages)


# -- runs and jobs --------------------------------------------------------------------------------

def create_pull_run(session, tenant_id: int, source_id: int, start: date, end: date, requested_by: str) -> IngestRun:
    import uuid

    run = IngestRun(tenant_id=tenant_id, data_source_id=source_id, status="queued", payload_format="matomo",
                    batch_key=f"{BATCH_PREFIX}{start}:{end}:{uuid.uuid4().hex}", day_from=start, day_to=end,
                    requested_by=requested_by, attempts=0)
    session.add(run)
    session.flush()
    run.job_id = runs.job_id_for(run)
    return run


def enqueue_run(tenant_id: int, run_id: int, job_id: str | None = None) -> str:
    from tenants.jobs import enqueue

    job = enqueue(pull_run, tenant_id, run_id, queue="low", timeout=600, retries=RETRIES,
                  retry_delays=runs.RETRY_DELAYS, job_id=job_id or f"matomo-{tenant_id}-{run_id}-0")
    return job.id


def enqueue_pull(session, tenant_id: int, source_id: int, start: date, end: date, requested_by: str = "portal") -> int:
    """A backfill on request: record the run in ``session`` (the request's); it is queued after the commit."""
    run = create_pull_run(session, tenant_id, source_id, start, end, requested_by)
    run_id, job_id = run.id, run.job_id
    after_commit(session, lambda: enqueue_run(tenant_id, run_id, job_id))
    return run_id


NOT_COMPLETE = "Matomo had no figures yet for %(days)s; nothing stored for them was changed."
REFETCHING = "Matomo had no figures yet for %(days)s; they are fetched again until it has them."


def pull_run(tenant_id: int, run_id: int) -> dict[str, Any]:
    """The RQ job: fetch the run's days from Matomo and store the complete ones."""
    settings = get_settings()
    with runs.attempt(tenant_id, run_id) as (_, session):
        run = runs.claim(session, tenant_id, run_id, RETRIES + 1)
        if run is None:
            return {"status": "nothing to do"}
        try:
            with tenant_transaction(tenant_id, session) as s:
                source = s.get(DataSource, (tenant_id, run.data_source_id))
                if not source.active:
                    raise MatomoError("The data source is switched off.")
                config, token = dict(source.config), decrypt(settings, source.secret_encrypted)
            days = (run.day_from, run.day_to)
            visits_report = report(config["url"], token, "VisitsSummary.get", config["site_id"], *days)
            pages_report = report(config["url"], token, "Actions.getPageUrls", config["site_id"], *days,
                                  flat=1, filter_limit=-1)
            complete = complete_days(visits_report, pages_report)
            with tenant_transaction(tenant_id, session) as s:
                count = store(s, tenant_id, source.id, visits_rows(visits_report),
                              page_rows(pages_report, config.get("pages", [])), complete)
                pending = _update_pending(s.get(DataSource, (tenant_id, source.id)), days, complete)
                run = s.get(IngestRun, (tenant_id, run_id))
                missing = _missing(days, complete)
                run.status, run.finished_at = "succeeded", runs._clock(s)
                run.error, run.error_args = (None, None) if not missing else (
                    REFETCHING if set(missing) & pending else NOT_COMPLETE,
                    {"days": ", ".join(d.strftime("%d.%m.%Y") for d in missing)})
                run.rows_total = run.rows_accepted = count
        except Exception as exc:  # noqa: BLE001 - every failure ends in a recorded state
            return runs.failed_attempt(tenant_id, run_id, exc, RETRIES + 1)
    superset_cache.data_changed(tenant_id, TABLES)  # after the attempt's commit, outside its session
    return {"status": "succeeded", "rows": count}


def _missing(days: tuple[date, date], complete: set[date]) -> list[date]:
    return [d for d in (days[0] + timedelta(n) for n in range((days[1] - days[0]).days + 1)) if d not in complete]


def _update_pending(source: DataSource, days: tuple[date, date], complete: set[date]) -> set[date]:
    """Remember the recent days of the range Matomo had no figures for; forget the ones it now had."""
    oldest = berlin_today() - timedelta(days=REFETCH_DAYS)
    pending = {date.fromisoformat(d) for d in source.config.get("pending_days", [])}
    pending = {d for d in pending if d >= oldest and d not in complete}
    pending |= {d for d in _missing(days, complete) if d >= oldest}
    source.config = {**source.config, "pending_days": sorted(d.isoformat() for d in pending)}
    return pending
