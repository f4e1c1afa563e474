"""Prometheus metrics of the platform (``prometheus_client``), declared once for every process.

Where they are served (docs/operations.md, "Metrics and alerts"):

* the portal at ``/metrics`` on its own port: requests, sign-ins, guest tokens. Under gunicorn
  the worker processes write their values to files (the library's multiprocess mode,
  ``EGOV_METRICS_DIR``, set up by ``portal/gunicorn_conf.py``) and ``/metrics`` adds them up;
* the RQ worker (``egov worker``, port 9101): jobs, their durations and outcomes, ingest runs
  and rows. RQ runs each job in a forked work-horse; the worker records a job's figures in its
  own process after the horse has ended (``ingest_workers/worker.py``), so nothing is lost with
  the horse and no files pile up;
* the scheduler (``egov scheduler``, port 9102): the state of queues and the last success of every
  data source, read from Redis and the database when scraped (:class:`StateCollector`), once
  for the whole platform;
* the watchdog (``egov watchdog``, port 9103): the sessions it ended.

Label values are bounded: endpoints are Flask's rule names (never the path, which holds AGS and
ids), jobs their function's name, reasons a fixed vocabulary. Only the last-success gauge is per
tenant and data source (about three sources per tenant, ~1,300 series for 443 tenants): an operator
must see *which* source went quiet, and that is the one figure that needs it.

Nobody outside reads them: :func:`allowed` lets in clients from ``EGOV_METRICS_ALLOWED_NETWORKS``
(loopback by default) or with the bearer token ``EGOV_METRICS_TOKEN``; everyone else gets 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from tenants.ingest.health import LAST_SUCCESS_SQL

log = logging.getLogger(__name__)

# The *_created series double the count and tell Prometheus nothing it needs here.
disable_created_metrics()

# Seconds: a page answers in milliseconds, an export or a guest token may take seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Seconds: jobs run from a second (a partition check) to an hour (a large load, the comparison refresh).
JOB_BUCKETS = (0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

HTTP_REQUEST_SECONDS = Histogram(
    "egov_http_request_duration_seconds", "Time the portal took to answer, by Flask endpoint and method.",
    ["endpoint", "method"], buckets=REQUEST_BUCKETS)
HTTP_REQUESTS = Counter(
    "egov_http_requests", "Answers of the portal, by Flask endpoint, method and status class (2xx, 4xx, ...).",
    ["endpoint", "method", "status"])
SIGN_INS = Counter(
    "egov_sign_ins", "Sign-ins of tenant staff and operators: succeeded, or refused with the reason.",
    ["kind", "outcome", "reason"])
GUEST_TOKENS = Counter(
    "egov_guest_tokens", "Superset guest tokens for embedded dashboards: issued, or refused with the reason.",
    ["outcome"])
JOB_SECONDS = Histogram(
    "egov_job_duration_seconds", "Run time of RQ jobs, by job function and final status.",
    ["job", "status"], buckets=JOB_BUCKETS)
JOBS = Counter("egov_jobs", "RQ jobs that ended, by job function and status (finished, failed, retried).",
               ["job", "status"])
INGEST_RUNS = Counter("egov_ingest_runs", "Ingest runs (uploads, pushes, Matomo pulls) that ended, by outcome.",
                      ["outcome"])
INGEST_ROWS = Counter("egov_ingest_rows", "Rows of ingest runs, accepted or rejected (with a reason for the sender).",
                      ["outcome"])
INGEST_RUN_SECONDS = Histogram("egov_ingest_run_duration_seconds", "Run time of ingest runs, by outcome.",
                               ["outcome"], buckets=JOB_BUCKETS)
WATCHDOG_ENDED = Counter("egov_watchdog_sessions_ended", "Tenant Superset database sessions the watchdog ended.")

#: The reasons a sign-in is refused (``SIGN_INS``' label ``reason``).
SIGN_IN_REASONS = ("tenant_inactive", "no_provider", "provider_unreachable", "token_refused", "not_admitted")


def status_class(code: int) -> str:
    return f"{int(code) // 100}xx"


def sign_in(kind: str, reason: str | None = None) -> None:
    """Count a sign-in of ``kind`` (``tenant`` or ``operator``); ``reason`` from ``SIGN_IN_REASONS`` if refused."""
    SIGN_INS.labels(kind, "refused" if reason else "succeeded", reason or "").inc()


# -- what a scrape reads at the moment ------------------------------------------------------------

class StateCollector:
    """Queue lengths from Redis and every data source's last successful run from the database.

    Read when scraped, at most every ``max_age`` seconds (the database query visits every tenant
    under its own row-level security, one short query each, in one transaction).
    """

    def __init__(self, app, max_age: float = 60.0):
        self.app = app
        self.max_age = max_age
        self._cached: tuple[float, list] | None = None
        self._lock = threading.Lock()

    def collect(self):
        yield from self._queues()
        database = GaugeMetricFamily("egov_database_up", "1 when the database answered the last reading, else 0.")
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.max_age:
                try:
                    self._cached = (time.monotonic(), self._last_successes())
                except Exception:  # noqa: BLE001 - a scrape must answer; the database being away is the figure
                    log.warning("metrics: the database did not answer")
                    self._cached = None
            rows = self._cached[1] if self._cached is not None else []
        database.add_metric([], 1 if self._cached is not None else 0)
        yield database
        gauge = GaugeMetricFamily(
            "egov_ingest_last_success_timestamp_seconds",
            "When a data source of an active tenant last loaded successfully (Unix time); absent: never.",
            labels=["tenant", "source", "kind"])
        for ags, source_id, kind, when in rows:
            gauge.add_metric([ags, str(source_id), kind], when)
        yield gauge

    def _queues(self):
        from tenants.jobs import queue_state, redis_connection
        from tenants.settings import settings_of

        settings = settings_of(self.app)
        jobs = GaugeMetricFamily("egov_queue_jobs", "RQ jobs per queue and state (queued, running, failed).",
                                 labels=["queue", "state"])
        up = GaugeMetricFamily("egov_queue_up", "1 when Redis answered this scrape, else 0.")
        try:
            state = queue_state(redis_connection(settings.redis_url), settings.queues)
        except Exception:  # noqa: BLE001 - a scrape must answer; Redis being away is itself the figure
            log.warning("metrics: Redis did not answer")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for queue, counts in state["queues"].items():
            for name, value in counts.items():
                jobs.add_metric([queue, name], value)
        yield up
        yield jobs
        yield GaugeMetricFamily("egov_workers", "RQ workers alive.", value=state["workers"])
        yield GaugeMetricFamily("egov_schedulers", "rq cron schedulers alive.", value=state["schedulers"])

    def _last_successes(self) -> list[tuple[str, int, str, float]]:
        from tenants.context import apply_tenant
        from tenants.db import db

        rows = []
        with self.app.app_context(), db.engine.connect() as conn, conn.begin():
            tenants = conn.execute(text("SELECT id, ags FROM portal.tenants WHERE status = 'active' ORDER BY ags"))
            for tenant_id, ags in tenants.all():
                apply_tenant(conn, tenant_id)
                rows += [(ags, source_id, kind, when.timestamp())
                         for source_id, kind, when in conn.execute(LAST_SUCCESS) if when is not None]
        return rows


# One index probe per source (tenants.ingest.health.LAST_SUCCESS_SQL), under the tenant's row-level security.
LAST_SUCCESS = text(f"""
SELECT s.id, s.kind, {LAST_SUCCESS_SQL}
FROM portal.data_sources s
WHERE s.active
""")  # noqa: S608 - constant fragments


# -- serving --------------------------------------------------------------------------------------

def allowed(settings, remote_addr: str | None, authorization: str | None) -> bool:
    """Whether a client may read the metrics: the bearer token, or an address in the allowed networks."""
    token = settings.metrics_token
    if token and authorization and authorization.startswith("Bearer ") and \
            hmac.compare_digest(authorization[7:].strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.metrics_allowed_networks)


def portal_registry() -> CollectorRegistry:
    """What the portal's ``/metrics`` shows: this process's, or all gunicorn workers' in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition(registry) -> tuple[bytes, str]:
    """The text format and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def wsgi_app(settings, registry=REGISTRY):
    """A WSGI app that answers every path with the metrics, to allowed clients only (404 otherwise)."""

    def app(environ, start_response):
        if not allowed(settings, environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION")):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found"]
        body, content_type = exposition(registry)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _ThreadingServer(WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # every scrape would be a line in the log


def serve(settings, role: str, registry=REGISTRY, port: int | None = None):
    """Serve the metrics of a background process on a daemon thread; returns the server (``None`` when off).

    :param role: ``worker``, ``scheduler`` or ``watchdog``: picks the default port (``METRICS_PORTS``).
    :param port: overrides ``EGOV_METRICS_PORT`` (0: a free port, for tests).
    :return: the server (``server.server_port`` is its port), or None when switched off or the port is taken.
    """
    from socketserver import ThreadingMixIn

    from tenants.settings import METRICS_PORTS

    if port is None:
        port = settings.metrics_port if settings.metrics_port is not None else METRICS_PORTS[role]
        if port == 0:
            return None
    server_class = type("MetricsServer", (ThreadingMixIn, _ThreadingServer), {})
    try:
        server = make_server(settings.metrics_bind, port, wsgi_app(settings, registry), server_class, _QuietHandler)
    except OSError:
        # The process's work matters more than its figures; the missing scrape target raises the alert.
        log.exception("metrics of the %s: cannot listen on %s:%s", role, settings.metrics_bind, port)
        return None
    threading.Thread(target=server.serve_forever, name=f"metrics-{role}", daemon=True).start()
    log.info("metrics of the %s on http://%s:%s/metrics", role, settings.metrics_bind, server.server_port)
    return server
