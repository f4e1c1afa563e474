"""How Superset's process serves eGovSAD's viewers quickly (``FLASK_APP_MUTATOR`` in superset_config.py).

* **Front-end assets** through WhiteNoise: Superset's ~100 MB of webpack output under
  ``superset/static`` is served before Flask sees the request (no session, CSP or compression
  work per file), gzip/Brotli files written once by ``egov superset install`` are sent to
  browsers that accept them, and the hashed bundles (``/static/assets/*.<hash>.*``) carry
  ``Cache-Control: max-age=31536000, immutable`` so a second visit downloads nothing. In
  production the reverse proxy does the same in front; WhiteNoise then answers only misses.
* **No event rows for guests** (:data:`EVENT_LOGGER`): a guest's chart request writes nothing.
* **Recording for the warm-up**: every successful chart-data request of an embedded guest is
  remembered once per distinct body in Redis (``egov_warm:<AGS>``, one field per body), and so are
  the page's metadata requests (answers.py) with the page's language, so the platform's worker can
  ask them again after the tenant's next load (tenants/superset/cache.py).
  A guest can only be of one tenant (its token's ``tenant`` claim, checked by
  tenant_boundary), and only the worker reads the hash.
* **The language pack** (``/superset/language_pack/<lang>/``, 100 kB that Superset's frontend asks
  for on every page before it draws anything) answered before Flask, compressed once, with an ETag
  and a day's lifetime: Flask's answer carried ``Vary: Cookie``, and the embedded page writes the
  session cookie on every visit (the language), so the browser never used its copy (140 ms per view).
* **Stored answers for guests** (answers.py): a guest's chart answer that Superset gave from its
  cache is kept and answered again before Flask for the identical token claims, body and data version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from functools import lru_cache
from pathlib import Path

from answers import ME_ROLES, is_metadata_path

log = logging.getLogger(__name__)

#: tenants/superset/cache.py's RECORD_PREFIX.
RECORD_PREFIX = "egov_warm:"
#: A tenant's hash holds at most this many requests; a full one drops its oldest tenth for a new request.
RECORD_LIMIT = 400
RECORD_TTL_SECONDS = 30 * 24 * 3600
CHART_DATA = "/api/v1/chart/data"
#: webpack's content hash in a file name (``8706.6dfab372988d20453152.entry.js``, ``Bar1.05db33fe.png``,
#: ``000bc761e5962a2869e2.chunk.js``): such a file never changes under its name.
HASHED = re.compile(r"(?:^|\.)[0-9a-f]{8,}\.")


def static_root() -> Path:
    import superset

    return Path(superset.__file__).resolve().parent / "static"


def _immutable(path: str, url: str) -> bool:
    return url.startswith("/static/assets/") and bool(HASHED.search(url.rsplit("/", 1)[-1]))



#: ``/superset/language_pack/<lang>/``: the frontend's strings (portal_ui.language_pack merges our overrides).
LANGUAGE_PACK = re.compile(r"^/superset/language_pack/([a-z]{2,3}(?:_[A-Z]{2})?)/$")
#: A deploy changes the pack; the ETag then differs, so after a day the browser asks and gets the new one.
LANGUAGE_PACK_MAX_AGE = 24 * 3600


@lru_cache(maxsize=8)
def _compressed_pack(lang: str) -> dict[str, bytes] | None:
    """The pack for ``lang`` per content coding ("br", "gzip", "" for none) and its "etag", or None when
    Superset has no pack for ``lang``."""
    import gzip

    import brotli
    from portal_ui import language_pack

    body = language_pack(lang)
    if body is None:
        return None
    return {"br": brotli.compress(body), "gzip": gzip.compress(body, mtime=0), "": body,
            "etag": f'"{hashlib.sha256(body).hexdigest()[:32]}"'.encode()}


def language_packs(wsgi_app):
    """``ADDITIONAL_MIDDLEWARE``: the language pack without Flask (see the module's description)."""

    def app(environ, start_response):
        match = LANGUAGE_PACK.match(environ.get("PATH_INFO", ""))
        if not match or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return wsgi_app(environ, start_response)
        variants = _compressed_pack(match.group(1))
        if variants is None:
            return wsgi_app(environ, start_response)  # Superset answers (404)
        accepted = {part.split(";")[0].strip() for part in environ.get("HTTP_ACCEPT_ENCODING", "").split(",")}
        coding = next((c for c in ("br", "gzip") if c in accepted), "")
        body, etag = variants[coding], variants["etag"].decode()
        headers = [("Content-Type", "application/json"), ("ETag", etag), ("Vary", "Accept-Encoding"),
                   ("Cache-Control", f"public, max-age={LANGUAGE_PACK_MAX_AGE}")]
        if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 Not Modified", headers)
            return [b""]
        if coding:
            headers.append(("Content-Encoding", coding))
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

    return app


def static_files(wsgi_app):
    """``ADDITIONAL_MIDDLEWARE``: Superset's static files, answered before Flask."""
    from whitenoise import WhiteNoise

    # max_age for the few unhashed files (service worker, error pages): an hour; hashed ones are immutable.
    return WhiteNoise(wsgi_app, root=str(static_root()), prefix="/static/", max_age=3600,
                      immutable_file_test=_immutable, allow_all_origins=False)


def _store():
    import redis

    if "store" not in _STATE:
        _STATE["store"] = redis.Redis.from_url(os.environ.get("EGOV_SUPERSET_REDIS_URL", "redis://127.0.0.1:6379/1"),
                                               socket_timeout=0.5)
    return _STATE["store"]


_STATE: dict = {}


def record_guest_request(response):
    """``after_request``: remember a guest's successful chart-data request, and the embedded page's metadata
    requests with the page's language, for the warm-up."""
    from flask import request

    chart = request.path == CHART_DATA and request.method == "POST"
    # Not the roles: their answer names the guest, so the worker's copy would serve no viewer.
    metadata = request.method == "GET" and is_metadata_path(request.path) and request.path != ME_ROLES
    if not (chart or metadata) or response.status_code != 200:
        return response
    try:
        import tenant_boundary

        user = tenant_boundary._loaded_user()
        if not getattr(user, "is_guest_user", False):
            return response
        ags = tenant_boundary.acting_tenant()
        resources = user.guest_token.get("resources") or []
        if not re.fullmatch(tenant_boundary.AGS, ags) or len(resources) != 1:
            return response
        dashboard = str(resources[0].get("id"))
        query = request.query_string.decode("latin-1")
        if chart:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return response
            asked = {"dashboard": dashboard, "query": query, "body": {**body, "force": False}}
        else:
            from portal_ui import dashboard_language

            asked = {"dashboard": dashboard, "method": "GET", "path": request.path, "query": query,
                     "language": dashboard_language()}
        field = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:32]
        key = RECORD_PREFIX + ags
        store = _store()
        if store.hlen(key) >= RECORD_LIMIT and not store.hexists(key, field):
            _evict_oldest(store, key)
        store.pipeline().hset(key, field, json.dumps({**asked, "at": time.time()})).expire(
            key, RECORD_TTL_SECONDS).execute()
    except Exception:  # noqa: BLE001 - the viewer's answer matters more than the warm-up's notes
        log.warning("could not record a guest request for the warm-up", exc_info=True)
    return response


def _evict_oldest(store, key: str) -> None:
    """A full hash makes room: its oldest tenth goes (requests of dashboards since re-created, filters nobody
    chooses any more). Refusing new requests instead left a tenant's current dashboards unwarmed for good."""

    def asked_at(raw: bytes) -> float:
        try:
            return float(json.loads(raw).get("at", 0))
        except (ValueError, TypeError, AttributeError):
            return 0.0

    entries = store.hgetall(key)
    oldest = sorted(entries, key=lambda field: asked_at(entries[field]))[: max(1, RECORD_LIMIT // 10)]
    if oldest:
        store.hdel(key, *oldest)


def _event_logger():
    from superset.utils.log import DBEventLogger

    class PortalEventLogger(DBEventLogger):
        """Superset's event log, without the rows of embedded guests and anonymous requests.

        Every chart request of a guest would insert two rows and commit (a fifth of a cached answer's
        database work); they name no user, so no one's activity list ever shows them.
        """

        def log(self, user_id, action, *args, **kwargs) -> None:
            if user_id is not None:
                super().log(user_id, action, *args, **kwargs)

    return PortalEventLogger()


EVENT_LOGGER = _event_logger()


def mutate(app) -> None:
    """``FLASK_APP_MUTATOR``: registered after Flask-Compress, so these hooks see the uncompressed answer."""
    from answers import note_guest_answer

    app.after_request(record_guest_request)
    app.after_request(note_guest_answer)
