"""The push API: source systems send batches with their data source's bearer token.

``POST /api/v1/t/<ags>/sources/<id>/batches`` takes a JSON body (``batch_id``, ``events``,
``aggregates``) or a CSV body (``Content-Type: text/csv`` plus a ``Batch-Id`` header) in the
source's mapping profile, stores it and answers 202 with a status URL; the batch is loaded by a
worker. The same batch id again answers 200 with the first run and changes nothing. The API
is described at ``/api/v1/openapi.json``. No cookies, hence no CSRF token: the API is exempt
from CSRF and authenticates with the token alone.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, jsonify, request, url_for

from ingest_workers import runs
from ingest_workers.canonical import PAYLOADS
from ingest_workers.sources import SourceNotFound, get_run, get_source, token_matches
from portal.access import public
from portal.extensions import csrf, limiter
from portal.openapi import openapi_document
from portal.tenancy import current_tenant
from tenants.db import db

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


def _rate_key() -> str:
    return f"push:{request.view_args.get('source_id')}:{request.remote_addr}"


def _authorised_source(source_id: int):
    """The push source if the bearer token fits, else None; 404 for a source this tenant does not have."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    try:
        source = get_source(db.session, current_tenant().id, source_id)
    except SourceNotFound:
        abort(404)
    return source if source.kind == "push" and token_matches(source, token) else None


def _json_body() -> tuple[str, bytes]:
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    batch_id = body.get("batch_id")
    payload = {key: body.get(key) or [] for key in PAYLOADS}
    if not isinstance(batch_id, str) or not batch_id or len(batch_id) > MAX_BATCH_ID:
        raise ValueError("batch_id is required (a string of at most 200 characters).")
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
def push_batch(source_id: int):
    if (request.content_length or 0) > MAX_BYTES:
        return _problem(413, "The batch is too large.", max_bytes=MAX_BYTES)
    source = _authorised_source(source_id)
    if source is None:
        return _problem(401, "Missing or invalid token for this data source.")
    tenant = current_tenant()
    try:
        runs.require_active(tenant)
        if request.mimetype == "application/json":
            batch_id, data, fmt = *_json_body(), "json"
        elif request.mimetype in ("text/csv", "text/plain"):
            batch_id, data, fmt = request.headers.get("Batch-Id", ""), request.get_data(cache=False), "csv"
            if not batch_id or len(batch_id) > MAX_BATCH_ID:
                raise ValueError("The Batch-Id header is required for CSV bodies.")
        else:
            return _problem(415, "Send application/json or text/csv.")
    except runs.IngestRefused as exc:
        return _problem(403, str(exc))
    except ValueError as exc:
        return _problem(422, str(exc))
    path, _ = runs.spool_bytes(tenant.id, [data], "." + fmt)
    run, new = runs.accept_batch(db.session, tenant, source, f"push:{batch_id}", path, fmt, None, f"push:{source.id}")
    run_id = run.id
    db.session.commit()
    if new:
        runs.enqueue_run(tenant.id, run_id)
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
    try:
        run = get_run(db.session, current_tenant().id, run_id)
    except SourceNotFound:
        run = None
    if run is None or run.data_source_id != source.id:
        return _problem(404, "No such batch.")
    return jsonify(runs.run_status(run))


@public_bp.get("/openapi.json")
@public
def openapi():
    return jsonify(openapi_document(current_app.config["EGOV"].portal_url))
