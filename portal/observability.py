"""Request ids, one JSON log line per request, request metrics, and ``/metrics``.

The request id is the caller's ``X-Request-ID`` when it is sane (a reverse proxy sets one, so
its log and ours meet), else a new one; it is in every log line of the request
(``tenants/logs.py``) and echoed in the answer's ``X-Request-ID``. The request line names the
endpoint, the path without its query string, the status and the time taken: no client address,
no user, no query (e-mail addresses travel in queries as ``login_hint``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Blueprint, Flask, Response, abort, g, request

from portal.extensions import csrf, limiter
from tenants import metrics
from tenants.settings import get_settings

log = logging.getLogger("egov.request")

#: What a caller's request id may look like: a UUID, a hex or base64url token, a proxy's id.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")

bp = Blueprint("observability", __name__)


def request_id_from(header: str | None) -> str:
    """The caller's id when it is sane, else a new one (32 hex digits)."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _start() -> None:
    g.request_id = request_id_from(request.headers.get("X-Request-ID"))
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:  # a request that failed before our first hook
        return response
    seconds = time.perf_counter() - started
    endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
    metrics.HTTP_REQUEST_SECONDS.labels(endpoint, request.method).observe(seconds)
    metrics.HTTP_REQUESTS.labels(endpoint, request.method, metrics.status_class(response.status_code)).inc()
    response.headers["X-Request-ID"] = g.request_id
    if endpoint != "observability.metrics":  # a scrape every few seconds would drown the log
        log.info("request", extra={"method": request.method, "endpoint": endpoint, "path": request.path,
                                   "status": response.status_code, "duration_ms": round(seconds * 1000, 1)})
    return response


@bp.get("/metrics", endpoint="metrics")
@csrf.exempt
@limiter.exempt
def metrics_view():
    """The portal's metrics for Prometheus; 404 to anyone not allowed (``tenants.metrics.allowed``)."""
    settings = get_settings()
    if not metrics.allowed(settings, request.remote_addr, request.headers.get("Authorization")):
        abort(404)
    body, content_type = metrics.exposition(metrics.portal_registry())
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


metrics_view.required_role = None  # not a page of people: its own access rule above


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _start)  # first: every later hook's lines carry the id
    app.after_request(_finish)
    app.register_blueprint(bp)
