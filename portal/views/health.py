from flask import Blueprint, jsonify, render_template
from flask_babel import lazy_gettext as _l

from portal.extensions import csrf, limiter
from portal.health import run_checks

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@csrf.exempt
@limiter.exempt
def healthz():
    """Machine-readable state: 200 when everything answers, 503 otherwise."""
    report = run_checks()
    response = jsonify(report)
    response.status_code = 200 if report["status"] == "ok" else 503
    response.headers["Cache-Control"] = "no-store"
    return response


#: The parts of the platform as the status page names them (the keys of portal.health's checks).
PARTS = {"database": _l("Database"), "redis": _l("Cache and job queue (Redis)"),
         "queues": _l("Background processing (loads, refreshes)"), "superset": _l("Dashboards (Superset)")}


@bp.get("/status")
def status_page():
    """The same checks for people (the footer's "Systemstatus"): each part in words, with a way on.

    Rate-limited like any public page; monitoring asks /healthz.
    """
    report = run_checks()
    return render_template("status.html", report=report, parts=PARTS), 200 if report["status"] == "ok" else 503
