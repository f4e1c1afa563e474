"""Structured logs: one JSON object a line on stderr, with the request id or the job id.

Every process (portal, worker, scheduler, watchdog, CLI) calls :func:`configure_logging` once at
start. Each line carries ``time``, ``level``, ``logger``, ``message``, the process role and, where
there is one, ``request_id`` (a web request; see ``portal/observability.py``) or ``job_id`` (an RQ
job, read from RQ itself, so every line a job writes has it, also those of libraries).

No personal data in logs: request lines name the endpoint, path and status, never the client's
address, a query string, an e-mail address or a user's name. Code that logs keeps to this too
(ids of tenants, runs and jobs are fine).

``EGOV_LOG_FORMAT=text`` gives the classic one-line text for a person at a terminal.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(ids)s]: %(message)s"

#: The job a worker is busy with (set by ``ingest_workers/worker.py`` around the whole job, so RQ's own
#: lines before and after the job function carry its id as well).
current_job_id: ContextVar[str | None] = ContextVar("current_job_id", default=None)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` to every record (None outside a request or a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id()
        record.job_id = _job_id()
        record.ids = " ".join(v for v in (record.request_id, record.job_id) if v) or "-"
        return True


def _request_id() -> str | None:
    from flask import g, has_request_context

    return g.get("request_id") if has_request_context() else None


def _job_id() -> str | None:
    if current_job_id.get() is not None:
        return current_job_id.get()
    from rq import get_current_job

    try:
        job = get_current_job()
    except Exception:  # noqa: BLE001 - outside a worker there is no job (and maybe no Redis)
        return None
    return job.id if job is not None else None


class _Json(JsonFormatter):
    def __init__(self, role: str):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         static_fields={"process": role}, timestamp=False,
                         reserved_attrs=[*RESERVED_ATTRS, "ids"])  # "ids" is the text format's

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        # ISO 8601 with the offset: log collectors across containers sort on it.
        from datetime import UTC, datetime

        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(settings, role: str, stream=None) -> logging.Handler:
    """Send every logger's records to one handler on ``stream`` (stderr) in the configured format.

    Replaces handlers set up before (``logging.basicConfig``, RQ's own), so nothing is written twice.

    :param settings: the platform settings (``log_format``, ``log_level``).
    :param role: ``portal``, ``worker``, ``scheduler``, ``watchdog`` or ``cli``, written on each line.
    :return: the handler (tests read what it writes).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(_Json(role) if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("rq.worker", "rq.job", "rq.cron", "rq.scheduler", "gunicorn.error"):
        # RQ adds a handler of its own to these unless one is there; ours is, through propagation.
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    return handler
