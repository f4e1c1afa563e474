"""Stored chart answers for embedded guests: a cached chart costs microseconds, not Superset's ~130 ms.

Profiling a cached chart-data request showed that Superset spends almost all of it on its own
per-request work (loading the guest, building the query context, permission and boundary checks,
serialising and compressing the JSON), not on Redis. With 20 viewers on two cores that queues up.
:class:`StoredAnswers` is a WSGI middleware in front of Superset (``ADDITIONAL_MIDDLEWARE``) that
answers ``POST /api/v1/chart/data`` of an embedded guest from a copy of Superset's own answer.

A copy is served only for an identical key, made of

* the guest token's data-relevant claims, after verifying the token as Superset does (HS256
  signature with ``GUEST_TOKEN_JWT_SECRET``, audience, expiry, type, and the project's rule that a
  token names its tenant and carries row rules): ``tenant``, ``resources``, ``rls_rules`` — not the
  user label or the expiry, so a renewed token of the same viewer finds the copy, a token of another
  tenant, dashboard or row rule never does;
* the exact query string and request body (and the ``Accept-Encoding`` it was compressed for);
* the data version: ``changed_on`` of the dataset the body names, of the chart and of the embedded
  dashboard, read from Superset's metadata database on every request. tenants/superset/cache.py
  moves the datasets' ``changed_on`` after each load (that is how Superset's own cache retires
  old figures too), so new data never shows old figures; an edited chart or dataset, or a removed
  dashboard, or a changed row-level rule of Superset's own, also misses. Bodies with a relative time
  range get today's date in the key (Superset resolves "Last week" against today); bodies that say
  ``now``, and Jinja in the body or the dataset's SQL (rendered per user or URL), are never stored.

A copy is written only after Superset itself answered the same request with 200 **as that guest**
(serving.py's ``after_request`` hook notes the claims Superset acted on: a request that also
carried a signed-in user's session is answered for that user, and is not stored) and **from its
own cache** (every result ``is_cached``): the copy is what Superset would answer again. Everything
else — other endpoints, signed-in users, ``force``, failures of Redis or the metadata database —
goes through Superset unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from io import BytesIO
from typing import Any

log = logging.getLogger(__name__)

CHART_DATA = "/api/v1/chart/data"
#: Redis keys of the stored answers (Superset's cache Redis).
PREFIX = "egov_answer:"
#: A day, not Superset's week: every load leaves the copies of the old version behind, and a copy missing
#: costs one answer from Superset's cache, which then stores it again.
LIFETIME_SECONDS = 24 * 3600
#: A chart-data body of the dashboards is a few kB; anything far larger goes to Superset unread.
MAX_BODY = 256 * 1024
#: Set by the response of a stored answer (tests and operators can see which path answered).
HEADER = "X-Egov-Answer"
#: environ keys: serving.py's after_request notes what Superset acted on; the middleware reads it.
ACTED_AS = "egov.answer.guest_claims"
ALL_CACHED = "egov.answer.all_cached"
#: Headers of Superset's answer not replayed: per connection or per response.
NOT_REPLAYED = frozenset({"set-cookie", "date", "server", "content-length", "connection", "transfer-encoding",
                          "keep-alive"})
_NOW = re.compile(rb"\bnow\b", re.IGNORECASE)
#: Jinja in a dataset's SQL or in the body: Superset renders it per request (user, URL parameters); never stored.
_TEMPLATED = re.compile(rb"\{\{|\{%")
#: The data version of a request, in one round trip: the dataset (NULL when its SQL is templated), the
#: embedded dashboard and the chart, and Superset's own row-level rules (a changed rule changes answers).
_VERSION_SQL = (
    "SELECT (SELECT changed_on FROM tables WHERE id = %(dataset)s "
    "        AND strpos(coalesce(sql, ''), '{{') = 0 AND strpos(coalesce(sql, ''), '{%%') = 0), "
    "(SELECT d.changed_on FROM embedded_dashboards e JOIN dashboards d ON d.id = e.dashboard_id "
    " WHERE e.uuid = %(dashboard)s), "
    "(SELECT changed_on FROM slices WHERE id = %(chart)s), "
    "(SELECT count(*) || ' ' || coalesce(max(changed_on)::text, '') FROM row_level_security_filters)")


def data_claims(claims: dict) -> dict:
    """What in a guest token decides the data it gets (not who the guest is called or how long it lives)."""
    return {"tenant": claims.get("tenant"), "resources": claims.get("resources"),
            "rls_rules": claims.get("rls_rules")}


def time_ranges(value: Any, found: list[str]) -> list[str]:
    """Every time range a chart-data body names (its queries', its form data's, temporal filters')."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "time_range" and isinstance(item, str):
                found.append(item)
            elif key in ("comparator", "val") and value.get("op") == "TEMPORAL_RANGE" and isinstance(item, str):
                found.append(item)
            else:
                time_ranges(item, found)
    elif isinstance(value, list):
        for item in value:
            time_ranges(item, found)
    return found


class StoredAnswers:
    """The WSGI middleware (superset_config.py builds it from the guest-token settings)."""

    def __init__(self, app, *, secret: str, audience: str, algorithm: str, redis_url: str, meta_url: str,
                 validator=None, enabled: bool = True):
        self.app = app
        self.secret, self.audience, self.algorithm = secret, audience, algorithm
        self.redis_url, self.meta_url = redis_url, meta_url
        self.validator = validator
        self.enabled = enabled
        self._lock = threading.Lock()
        self._redis = None
        self._engine = None

    # -- connections (made in the worker that uses them: gunicorn forks after the config is read) ----

    def redis(self):
        if self._redis is None:
            import redis

            with self._lock:
                if self._redis is None:
                    self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=0.5)
        return self._redis

    def engine(self):
        if self._engine is None:
            from sqlalchemy import create_engine

            with self._lock:
                if self._engine is None:
                    # Autocommit: one statement that only reads, and no rollback round trip when it is returned.
                    self._engine = create_engine(self.meta_url, pool_size=4, max_overflow=4,
                                                 isolation_level="AUTOCOMMIT")
        return self._engine

    # -- the request -----------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        if not (self.enabled and environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == CHART_DATA
                and environ.get("HTTP_X_GUESTTOKEN") and self.audience):
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= MAX_BODY:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = BytesIO(body)  # Superset reads it again on a miss
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            found = self.key(environ, body)
        except Exception:  # noqa: BLE001 - Redis or the metadata database away: Superset answers as always
            log.warning("stored chart answers: no key for this request", exc_info=True)
            found = None
        if found is None:
            return self.app(environ, start_response)
        key, claims = found
        try:
            stored = self.redis().get(key)
        except Exception:  # noqa: BLE001
            log.warning("stored chart answers: Redis away", exc_info=True)
            return self.app(environ, start_response)
        if stored is not None:
            head, _, payload = stored.partition(b"\n")
            headers = [(name, value) for name, value in json.loads(head)]
            start_response("200 OK", [*headers, ("Content-Length", str(len(payload))), (HEADER, "stored")])
            return [payload]
        return self._through_superset(environ, start_response, key, claims)

    def key(self, environ, body: bytes) -> tuple[str, dict] | None:
        """The stored answer's key for this request, or None when it must go to Superset."""
        claims = self.verified(environ["HTTP_X_GUESTTOKEN"])
        if claims is None:
            return None
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        if not isinstance(parsed, dict) or parsed.get("force") or _NOW.search(body) or _TEMPLATED.search(body):
            return None
        resources = claims.get("resources") or []
        datasource = parsed.get("datasource") or {}
        form_data = parsed.get("form_data") or {}
        if len(resources) != 1 or not isinstance(datasource, dict) or datasource.get("type") != "table":
            return None
        try:
            dashboard = str(uuid.UUID(str(resources[0].get("id"))))
            dataset = int(datasource.get("id"))
            chart = None if form_data.get("slice_id") in (None, "") else int(form_data["slice_id"])
        except (TypeError, ValueError, AttributeError):
            return None
        with self.engine().connect() as conn:
            versions = conn.exec_driver_sql(_VERSION_SQL, {"dataset": dataset, "dashboard": dashboard,
                                                           "chart": chart}).fetchone()
        if versions is None or None in versions[:2] or (chart is not None and versions[2] is None):
            return None  # gone (or never there): Superset says what to answer
        ranges = time_ranges(parsed, [])
        day = time.strftime("%Y-%m-%d") if any(r.strip() != "No filter" for r in ranges) else ""
        material = json.dumps({
            "claims": data_claims(claims),
            "query": environ.get("QUERY_STRING", ""),
            "encoding": environ.get("HTTP_ACCEPT_ENCODING", ""),
            "versions": [str(v) for v in versions],
            "day": day,
        }, sort_keys=True).encode() + b"\n" + body
        return PREFIX + hashlib.sha256(material).hexdigest(), claims

    def verified(self, raw: str) -> dict | None:
        """The token's claims when Superset would accept it (see ``parse_jwt_guest_token``), else None."""
        import jwt

        try:
            claims = jwt.decode(raw, self.secret, algorithms=[self.algorithm], audience=self.audience)
        except jwt.PyJWTError:
            return None
        if (claims.get("user") is None or claims.get("resources") is None or claims.get("rls_rules") is None
                or claims.get("type") != "guest"):
            return None
        if self.validator is not None and not self.validator(claims):
            return None
        return claims

    def _through_superset(self, environ, start_response, key: str, claims: dict):
        """Superset answers; its answer is kept when it answered this guest from its own cache."""
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        acted_as = environ.get(ACTED_AS)
        if (not captured.get("status", "").startswith("200 ") or not environ.get(ALL_CACHED)
                or acted_as is None or data_claims(acted_as) != data_claims(claims)):
            return result
        headers = [(name, value) for name, value in captured["headers"] if name.lower() not in NOT_REPLAYED]
        if not any(name.lower() == "content-type" and value.startswith("application/json") for name, value in headers):
            return result
        try:
            payload = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        try:
            self.redis().set(key, json.dumps(headers).encode() + b"\n" + payload, ex=LIFETIME_SECONDS)
        except Exception:  # noqa: BLE001 - the viewer has the answer; the next one asks Superset again
            log.warning("stored chart answers: could not store", exc_info=True)
        return [payload]


def note_guest_answer(response):
    """``after_request`` (before Flask-Compress): tell :class:`StoredAnswers` whom Superset answered, and
    whether every result came from Superset's cache."""
    from flask import request

    if request.path != CHART_DATA or request.method != "POST" or response.status_code != 200 \
            or response.is_streamed or response.mimetype != "application/json":
        return response
    try:
        import tenant_boundary

        user = tenant_boundary._loaded_user()
        if not getattr(user, "is_guest_user", False):
            return response
        answer = response.get_json(silent=True) or {}
        results = answer.get("result") if isinstance(answer, dict) else None
        request.environ[ALL_CACHED] = bool(results) and all(
            isinstance(r, dict) and r.get("is_cached") is True for r in results)
        request.environ[ACTED_AS] = dict(user.guest_token)
    except Exception:  # noqa: BLE001 - not stored then; the viewer's answer is unaffected
        log.warning("stored chart answers: could not note the answer", exc_info=True)
    return response
