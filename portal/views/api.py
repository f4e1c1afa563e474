"""The push API: source systems send batches with their data source's bearer token.

``POST /api/v1/t/<ags>/sources/<id>/batches`` takes a JSON body (``batch_id``, ``events``,
``aggregates``) or a CSV body (``Content-Type: text/csv``, with a ``Batch-Id`` header or else
identified by its SHA-256) in the source's mapping profile, stores it and answers 202 with a
status URL; the batch is loaded by a worker. The same batch id again answers 200 with the first
run and changes nothing. The API is described at ``/api/v1/openapi.json``. No cookies, hence no
CSRF token: the API is exempt from CSRF and authenticates with the token alone.
"""

from __future__ import annotations

import hashlib
import json
import re

from flask import Blueprint, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from portal import inputs
from portal.access import public
from portal.extensions import csrf, limiter
from portal.openapi import openapi_document
from portal.tenancy import current_tenant
from tenants.canonical import PAYLOADS
from tenants.db import db
from tenants.ingest import runs
from tenants.ingest.sources import get_run, get_source, token_matches
from tenants.settings import get_settings

bp = Blueprint("tenant_api", __name__, url_prefix="/api/v1/t/<ags>")
public_bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
csrf.exempt(public_bp)

#: Larger deliveries belong in several batches (or a file upload).
MAX_BYTES = 20 * 1024 * 1024
MAX_BATCH_ID = 200


def _problem(status: int, title: str, **extra):
    """An RFC 9457 problem document."""
    response = jsonify({"status": status, "title": title, **extra})
    response.status_code = status
    response.content_type = "application/problem+json"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="egovsad"'
    return response


def _http_problem(exc: HTTPException):
    """Every error of the API as a problem document (an unknown AGS, a route's 404, 413, 429 …)."""
    titles = {404: "Not found.", 405: "Method not allowed.", 413: "The batch is too large.",
              429: "Too many requests."}
    extra = {"max_bytes": MAX_BYTES} if exc.code == 413 else {}
    response = _problem(exc.code or 500, titles.get(exc.code, exc.name), **extra)
    for header, value in exc.get_headers():
        if header.lower() == "retry-after":
            response.headers[header] = value
    return response


def _unrouted_problem(exc: HTTPException):
    """A URL under /api/ that matches no route (an id beyond the database's integers, a typo) answers
    as the API does; anywhere else the portal's usual page."""
    from portal.error_pages import error_page

    return _http_problem(exc) if request.path.startswith("/api/") else error_page(exc)


bp.register_error_handler(HTTPException, _http_problem)
public_bp.register_error_handler(HTTPException, _http_problem)
public_bp.app_errorhandler(404)(_unrouted_problem)
public_bp.app_errorhandler(405)(_unrouted_problem)


def _rate_key() -> str:
    return f"push:{request.view_args.get('source_id')}:{request.remote_addr}"


def _authorised_source(source_id: int):
    """The push source if the bearer token fits, else None; 404 for a source this tenant does not have."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    source = get_source(db.session, current_tenant().id, source_id)
    return source if source.kind == "push" and token_matches(source, token) else None


#: What a batch id may be (also in the OpenAPI document): it is stored as the run's key, so no
#: control characters (PostgreSQL refuses NUL) and valid Unicode (no lone surrogates).
BATCH_ID = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,200}")


def _check_batch_id(batch_id) -> str:
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise ValueError("batch_id is required: text of 1 to 200 characters without control characters.")
    return batch_id


def _json_body() -> tuple[str, bytes]:
    """(batch id, the batch as JSON). The batch's structure is checked here (422 as a whole); the
    values of each event and aggregate are checked by the loader, which rejects row by row."""
    try:
        body = inputs.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    batch_id = _check_batch_id(body.get("batch_id"))
    payload = {key: body.get(key) or [] for key in PAYLOADS}
    if set(body) - {"batch_id", *PAYLOADS}:
        raise ValueError("Unknown keys: " + ", ".join(sorted(set(body) - {"batch_id", *PAYLOADS})))
    for key, records in payload.items():
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError(f"{key} must be a list of objects.")
        unknown = {k for r in records for k in r} - set(PAYLOADS[key])
        if unknown:
            raise ValueError(f"Unknown fields in {key}: " + ", ".join(sorted(unknown)))
    if not any(payload.values()):
        raise ValueError("The batch holds no events and no aggregates.")
    return batch_id, json.dumps(payload).encode()


@bp.post("/sources/<int:source_id>/batches")
@public  # machines with the source's bearer token, no session
@limiter.limit("120/minute", key_func=_rate_key)
@inputs.body_limit(MAX_BYTES)
def push_batch(source_id: int):
    source = _authorised_source(source_id)
    if source is None:
        return _problem(401, "Missing or invalid token for this data source.")
    tenant = current_tenant()
    try:
        runs.require_ingest_allowed(tenant)
        if request.mimetype == "application/json":
            batch_id, data, fmt = *_json_body(), "json"
        elif request.mimetype in ("text/csv", "text/plain"):
            data, fmt = request.get_data(cache=False), "csv"
            # Without a Batch-Id the body's SHA-256 identifies it, as for an uploaded file.
            batch_id = request.headers.get("Batch-Id") or "sha256:" + hashlib.sha256(data).hexdigest()
            try:
                _check_batch_id(batch_id)
            except ValueError as exc:
                raise ValueError("The Batch-Id header must be text of 1 to 200 characters without control "
                                 "characters.") from exc
        else:
            return _problem(415, "Send application/json or text/csv.")
    except runs.IngestRefused as exc:
        return _problem(403, str(exc))
    except ValueError as exc:
        return _problem(422, str(exc))
    path, _ = runs.spool_bytes(tenant.id, [data], "." + fmt)
    try:
        run, new = runs.accept_batch(db.session, tenant, source, f"push:{batch_id}", path, fmt, None,
                                     f"push:{source.id}")
    except runs.IngestRefused as exc:
        path.unlink(missing_ok=True)
        return _problem(403, str(exc))
    run_id = run.id
    if new:
        runs.enqueue_after_commit(db.session, run)
    db.session.commit()
    status_url = url_for(".batch_status", source_id=source.id, run_id=run_id, _external=True)
    response = jsonify({**runs.run_status(run), "status_url": status_url, "batch_id": batch_id})
    response.status_code = 202 if new else 200
    response.headers["Location"] = status_url
    return response


@bp.get("/sources/<int:source_id>/batches/<int:run_id>")
@public
@limiter.limit("600/minute", key_func=_rate_key)
def batch_status(source_id: int, run_id: int):
    source = _authorised_source(source_id)
    if source is None:
        return _problem(401, "Missing or invalid token for this data source.")
    run = get_run(db.session, current_tenant().id, run_id, source=source)
    return jsonify(runs.run_status(run))


@public_bp.get("/openapi.json")
@public
def openapi():
    return jsonify(openapi_document(get_settings().portal_url))
