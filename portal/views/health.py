from flask import Blueprint, jsonify

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
