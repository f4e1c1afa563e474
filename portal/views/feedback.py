"""The public feedback endpoint of the embeddable widget (CORS, rate limits, spam defences).

``GET  /api/v1/t/<ags>/feedback/<public_key>/form``  a signed form token and the widget's texts
``POST /api/v1/t/<ags>/feedback/<public_key>``       rating, comment, service key, token, honeypot

Cross-origin by design, so no cookies and no CSRF token; the origin check, the signed token
and the rate limits take their place (see tenants/ingest/feedback.py).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, jsonify, request
from flask_babel import gettext as _

from portal.access import public
from portal.extensions import csrf, limiter
from portal.inputs import body_limit
from portal.tenancy import current_tenant
from tenants.db import db
from tenants.ingest.feedback import (
    MAX_SECONDS,
    FeedbackRejected,
    check_token,
    clean_submission,
    find_source,
    form_token,
    origin_allowed,
    store_feedback,
)
from tenants.registry import is_ingest_allowed

bp = Blueprint("tenant_feedback", __name__, url_prefix="/api/v1/t/<ags>/feedback")
csrf.exempt(bp)
#: A rating, a comment of at most 1,000 characters, a service key and a form token fit easily.
MAX_BODY = 8192


def _key_limit() -> str:
    return f"feedback:{request.view_args.get('public_key')}"


def _source_and_origin(key: str):
    tenant = current_tenant()
    source = find_source(db.session, tenant.id, key) if is_ingest_allowed(tenant) else None
    if source is None:
        abort(404)
    origin = request.headers.get("Origin")
    return source, origin if origin_allowed(source, origin) else None


def _cors(response, origin: str | None):
    response.headers["Vary"] = "Origin"
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Cache-Control"] = "no-store"
    return response


def _once(nonce: str) -> bool:
    """True the first time a form token is used (Redis remembers it as long as it is valid)."""
    from tenants.jobs import redis_connection

    redis = redis_connection()
    return bool(redis.set(f"feedback:nonce:{nonce}", 1, nx=True, ex=MAX_SECONDS))


@bp.route("/<public_key>/form", methods=["GET", "OPTIONS"])
@bp.route("/<public_key>", methods=["OPTIONS"])
@public  # citizens on a municipality's website; the origin check and the signed token guard it
@limiter.limit("60/minute")
def form(public_key: str):
    source, origin = _source_and_origin(public_key)
    if request.method == "OPTIONS" or origin is None:
        return _cors(current_app.response_class(status=204 if origin else 403), origin)
    labels = {"question": _("How satisfied are you with this online service?"),
              "rating": [_("very dissatisfied"), _("dissatisfied"), _("neutral"), _("satisfied"), _("very satisfied")],
              "comment": _("Comment (optional, please no personal data)"), "send": _("Send"),
              "thanks": _("Thank you for your feedback!"), "error": _("Sending failed.")}
    token = form_token(current_app.config["SECRET_KEY"], source.config["public_key"], secrets.token_urlsafe(12))
    return _cors(jsonify({"token": token, "labels": labels}), origin)


@bp.post("/<public_key>")
@public
@limiter.limit("10/minute;100/day")
@limiter.limit("300/hour", key_func=_key_limit)
@body_limit(MAX_BODY)
def submit(public_key: str):
    source, origin = _source_and_origin(public_key)
    if origin is None:
        return _cors(jsonify({"error": "origin not allowed"}), None), 403
    body = request.get_json(silent=True)  # None for anything but JSON (also JSON nested too deeply)
    if not isinstance(body, dict):
        return _cors(jsonify({"error": _("Invalid form.")}), origin), 400
    try:
        nonce = check_token(current_app.config["SECRET_KEY"], public_key, str(body.get("token", "")))
        submission = clean_submission(body)
        if not _once(nonce):
            raise FeedbackRejected("Invalid form.")
    except FeedbackRejected as exc:
        return _cors(jsonify({"error": _(str(exc))}), origin), 400
    store_feedback(db.session, current_tenant().id, source.id, submission)
    db.session.commit()
    return _cors(jsonify({"status": "stored"}), origin), 201
