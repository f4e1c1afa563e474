"""Stored answers for embedded guests: a cached chart or the dashboard's metadata costs a few ms, not
Superset's ~100-220 ms.

Profiling a cached chart-data request showed that Superset spends almost all of it on its own
per-request work (loading the guest, building the query context, permission and boundary checks,
serialising and compressing the JSON), not on Redis. With 20 viewers on two cores that queues up.
:class:`StoredAnswers` is a WSGI middleware in front of Superset (``ADDITIONAL_MIDDLEWARE``) that
answers ``POST /api/v1/chart/data`` of an embedded guest from a copy of Superset's own answer, and
the four requests the embedded page makes before its first chart (``/api/v1/dashboard/<id>``, its
``/charts`` and ``/datasets``, ``/api/v1/me/roles/``; see "Metadata" below).

A copy is served only for an identical key, made of

* the guest token's data-relevant claims, after verifying the token as Superset does (HS256
  signature with ``GUEST_TOKEN_JWT_SECRET``, audience, expiry, type, and the project's rule that a
  token names its tenant and carries row rules): ``tenant``, ``resources``, ``rls_rules`` — not the
  user label or the expiry, so a renewed token of the same viewer finds the copy, a token of another
  tenant, dashboard or row rule never does;
* the exact query string and request body (and the ``Accept-Encoding`` it was compressed for);
* the data version, read from Superset's metadata database on every request (one prepared
  statement, :data:`_PREPARE_VERSION`): ``changed_on`` of the dataset the body names (and its
  database), of the chart (while it is on the dashboard) and of the embedded dashboard and its
  embedding; the dataset's columns and metrics, Superset's row-level rules on it with their roles,
  and the guest role's (``GUEST_ROLE_NAME``) permissions, as they are. tenants/superset/cache.py
  moves the datasets' ``changed_on`` after each load (that is how Superset's own cache retires old
  figures too), so new data never shows old figures; an edited chart, dataset, column, dashboard or
  embedding, a removed one, a rule or permission of Superset's own that changed also misses, so
  the guest gets Superset's own answer or refusal. Bodies with a relative time range get today's
  date in the key (Superset resolves "Last week" against today); bodies that say ``now``, and
  Jinja in the body or the dataset's SQL (rendered per user or URL), are never stored, and neither
  are bodies naming a dashboard other than the token's, or a second chart (a multi-layer chart's
  parent, Drill By's source).

A copy is written only after Superset itself answered the same request with 200 **as that guest**
(serving.py's ``after_request`` hook notes the claims Superset acted on: a request that also
carried a signed-in user's session is answered for that user, and is not stored) and **from its
own cache** (every result ``is_cached``): the copy is what Superset would answer again. Everything
else — other endpoints, signed-in users, ``force``, failures of Redis or the metadata database —
goes through Superset unchanged. Every key also holds :func:`deploy_fingerprint` (Superset's version
and this configuration's files), so a deploy never serves a copy made by the code before it.

Metadata: the key is the verified token's data claims (and the guest's name for ``/me/roles/``,
which shows it), the path and query, the encoding, the language of the embedded page (from the
``Referer``, as portal_ui translates by it; no ``Referer`` language, no copy), the hour (the
dashboard's answer says "changed 3 hours ago"), and one round trip's version of everything these
answers show: the token's dashboard (whose id or slug the path must name) and its theme, its charts,
their datasets with their columns and metrics (each row by id and ``changed_on``), and the permissions of the
guests' role. A copy is written after Superset answered 200 to that guest in that language.
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
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHART_DATA = "/api/v1/chart/data"
#: What the embedded page asks before its first chart: the dashboard, its charts, its datasets (the charts wait
#: for all three; ~100, ~100 and ~220 ms of Superset's CPU each) and the guest's roles.
DASHBOARD_API = re.compile(r"^/api/v1/dashboard/(?P<dashboard>[^/]+)(?:/charts|/datasets)?/?$")
ME_ROLES = "/api/v1/me/roles/"
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
LANGUAGE_USED = "egov.answer.language"
#: Headers of Superset's answer not replayed: per connection or per response.
NOT_REPLAYED = frozenset({"set-cookie", "date", "server", "content-length", "connection", "transfer-encoding",
                          "keep-alive"})
_NOW = re.compile(rb"\bnow\b", re.IGNORECASE)
#: Jinja in a dataset's SQL or in the body: Superset renders it per request (user, URL parameters); never stored.
_TEMPLATED = re.compile(rb"\{\{|\{%")
#: The data version of a request, in one round trip: what Superset reads to decide whether and what it answers
#: a guest, besides the token and the body. Superset moves no ``changed_on`` when a role's permissions, a
#: row rule's roles, or a column or metric removed on its own change, so those rows themselves are in the
#: version. (The tenant boundary also reads a dashboard's roles and owners, but for a guest it loads only its
#: own tenant's: another tenant's role or owner added changes nothing a guest gets.) Each part is a few rows
#: found by an index (tenants/superset/server.py, ``METADATA_INDEXES``), and the statement is prepared once
#: per connection: planning it took longer than running it. $1 dataset, $2 the token's dashboard UUID,
#: $3 chart, $4 ``GUEST_ROLE_NAME``. NULL in dataset, dashboard, guest_role (or chart, when the body names
#: one) means "not there": Superset answers.
_PREPARE_VERSION = """
PREPARE egov_answer_version (integer, uuid, integer, text) AS
WITH embedded AS (
    SELECT dashboard_id, changed_on, allow_domain_list FROM embedded_dashboards WHERE uuid = $2)
SELECT
    -- The dataset (NULL when its SQL is templated) and its database, whose name the tenant boundary reads.
    (SELECT t.changed_on || ' ' || db.id || ' ' || db.database_name || ' ' || coalesce(db.changed_on::text, '')
       FROM tables t JOIN dbs db ON db.id = t.database_id
      WHERE t.id = $1 AND strpos(coalesce(t.sql, ''), '{{') = 0 AND strpos(coalesce(t.sql, ''), '{%') = 0
    ) AS dataset,
    -- The token's dashboard, embedded under its UUID (Superset's guest check): its id first (the body must name
    -- it), changed_on (layout, native filters, slug), the embedding's own (allowed domains).
    (SELECT d.id || ' ' || d.changed_on || ' ' || coalesce(e.changed_on::text, '') || ' '
            || coalesce(e.allow_domain_list, '')
       FROM embedded e JOIN dashboards d ON d.id = e.dashboard_id) AS dashboard,
    -- The chart, only while it is on that dashboard (Superset's condition for a guest).
    (SELECT s.changed_on FROM slices s JOIN dashboard_slices x ON x.slice_id = s.id
       JOIN embedded e ON e.dashboard_id = x.dashboard_id WHERE s.id = $3) AS chart,
    -- The dashboard's charts on the dataset: Drill to Detail names no chart, and Superset lets a guest read
    -- a dataset's rows while some chart of the dashboard shows it.
    (SELECT string_agg(s.id || ' ' || s.changed_on, ',' ORDER BY s.id) FROM embedded e
       JOIN dashboard_slices x ON x.dashboard_id = e.dashboard_id JOIN slices s ON s.id = x.slice_id
      WHERE s.datasource_id = $1 AND s.datasource_type = 'table') AS shown_by,
    -- Superset reads the dataset's columns and metrics for every answer (types, which filters applied).
    (SELECT md5(string_agg(c::text, '|' ORDER BY c.id)) FROM table_columns c WHERE c.table_id = $1)
        AS columns,
    (SELECT md5(string_agg(m::text, '|' ORDER BY m.id)) FROM sql_metrics m WHERE m.table_id = $1)
        AS metrics,
    -- Superset's row-level rules on the dataset, with the roles each names (Regular) or spares (Base).
    (SELECT md5(string_agg(f::text || '/' || coalesce((SELECT string_agg(fr.role_id::text, ',' ORDER BY fr.role_id)
                                                        FROM rls_filter_roles fr WHERE fr.rls_filter_id = f.id), ''),
                           '|' ORDER BY f.id))
       FROM row_level_security_filters f JOIN rls_filter_tables ft ON ft.rls_filter_id = f.id
      WHERE ft.table_id = $1) AS rules,
    -- The role every guest acts with (GUEST_ROLE_NAME) and its permissions.
    (SELECT r.id || ':' || coalesce(string_agg(pr.permission_view_id::text, ',' ORDER BY pr.permission_view_id), '')
       FROM ab_role r LEFT JOIN ab_permission_view_role pr ON pr.role_id = r.id
      WHERE r.name = $4 GROUP BY r.id) AS guest_role
"""
#: The version of what the embedded page's metadata answers show, in one round trip: the dashboard (its
#: identifiers, to check the path names it, and ``changed_on``), its embedding, its theme, its charts, their
#: datasets with their columns and metrics, and the permissions of the guests' role (row rules change no
#: metadata answer).
_META_VERSION_SQL = (
    "WITH d AS (SELECT d.id, d.slug, d.changed_on, d.theme_id, e.changed_on AS embedded_on, e.allow_domain_list "
    "           FROM embedded_dashboards e JOIN dashboards d ON d.id = e.dashboard_id WHERE e.uuid = %(dashboard)s), "
    "s AS (SELECT sl.id, sl.changed_on, sl.datasource_id FROM dashboard_slices ds JOIN slices sl "
    "      ON sl.id = ds.slice_id WHERE ds.dashboard_id = (SELECT id FROM d)), "
    "t AS (SELECT id, changed_on FROM tables WHERE id IN (SELECT datasource_id FROM s)) "
    "SELECT (SELECT id FROM d), (SELECT slug FROM d), (SELECT changed_on FROM d), "
    "(SELECT changed_on FROM themes WHERE id = (SELECT theme_id FROM d)), "
    # The embedding (its allowed domains: Superset refuses a guest whose page is not among them).
    "(SELECT coalesce(embedded_on::text, '') || ' ' || coalesce(allow_domain_list, '') FROM d), "
    # Every row by id and changed_on (not a count and a maximum: one removed and one added would cancel out).
    "(SELECT md5(string_agg(id || ':' || coalesce(changed_on::text, ''), ',' ORDER BY id)) FROM s), "
    "(SELECT md5(string_agg(id || ':' || coalesce(changed_on::text, ''), ',' ORDER BY id)) FROM t), "
    "(SELECT md5(string_agg(id || ':' || coalesce(changed_on::text, ''), ',' ORDER BY id)) FROM table_columns "
    " WHERE table_id IN (SELECT id FROM t)), "
    "(SELECT md5(string_agg(id || ':' || coalesce(changed_on::text, ''), ',' ORDER BY id)) FROM sql_metrics "
    " WHERE table_id IN (SELECT id FROM t)), "
    "(SELECT md5(string_agg(pvr.permission_view_id::text, ',' ORDER BY pvr.permission_view_id)) "
    " FROM ab_permission_view_role pvr JOIN ab_role r ON r.id = pvr.role_id WHERE r.name = %(guest_role)s)")


def is_metadata_path(path: str) -> bool:
    """One of the embedded page's metadata requests (the dashboard, its charts and datasets, the roles)."""
    return path == ME_ROLES or DASHBOARD_API.match(path) is not None


def deploy_fingerprint(config_dir: Path) -> str:
    """Superset's version and every file of this configuration (code, translations, templates), hashed: what
    a stored answer was made with. A deploy that changes any of them makes every copy miss."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("apache-superset").encode())
    for path in sorted(config_dir.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(config_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


def _prepare(dbapi_connection, _record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_PREPARE_VERSION)


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
                 validator=None, enabled: bool = True, guest_role: str = "", fingerprint: str = ""):
        self.app = app
        self.guest_role = guest_role
        #: Superset's version and this configuration (with its translations): a deploy retires every copy.
        self.fingerprint = fingerprint
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
            from sqlalchemy import create_engine, event

            with self._lock:
                if self._engine is None:
                    # Autocommit: one statement that only reads, and no rollback round trip when it is returned.
                    engine = create_engine(self.meta_url, pool_size=4, max_overflow=4, isolation_level="AUTOCOMMIT")
                    event.listen(engine, "connect", _prepare)
                    self._engine = engine
        return self._engine

    # -- the request -----------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        if not (self.enabled and environ.get("HTTP_X_GUESTTOKEN") and self.audience):
            return self.app(environ, start_response)
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        if method == "POST" and path == CHART_DATA:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if not 0 < length <= MAX_BODY:
                return self.app(environ, start_response)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = BytesIO(body)  # Superset reads it again on a miss
            environ["CONTENT_LENGTH"] = str(len(body))

            def keyed():
                return self.key(environ, body)
        elif method == "GET" and is_metadata_path(path):
            def keyed():
                return self.metadata_key(environ)
        else:
            return self.app(environ, start_response)
        try:
            found = keyed()
        except Exception:  # noqa: BLE001 - Redis or the metadata database away: Superset answers as always
            log.warning("stored answers: no key for this request", exc_info=True)
            found = None
        if found is None:
            return self.app(environ, start_response)
        key, claims, language = found
        try:
            stored = self.redis().get(key)
        except Exception:  # noqa: BLE001
            log.warning("stored answers: Redis away", exc_info=True)
            return self.app(environ, start_response)
        if stored is not None:
            head, _, payload = stored.partition(b"\n")
            headers = [(name, value) for name, value in json.loads(head)]
            start_response("200 OK", [*headers, ("Content-Length", str(len(payload))), (HEADER, "stored")])
            return [payload]
        return self._through_superset(environ, start_response, key, claims, language)

    def key(self, environ, body: bytes) -> tuple[str, dict, None] | None:
        """A chart-data request's key, its token's claims (and no language: a chart answer has none), or None
        when it must go to Superset."""
        guest = self.guest_dashboard(environ)
        if guest is None:
            return None
        claims, dashboard = guest
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        if not isinstance(parsed, dict) or parsed.get("force") or _NOW.search(body) or _TEMPLATED.search(body):
            return None
        datasource = parsed.get("datasource") or {}
        form_data = parsed.get("form_data") or {}
        if not isinstance(datasource, dict) or datasource.get("type") != "table":
            return None
        try:
            dataset = int(datasource.get("id"))
            chart = None if form_data.get("slice_id") in (None, "") else int(form_data["slice_id"])
            named = None if form_data.get("dashboardId") in (None, "") else int(form_data["dashboardId"])
            # The dashboard sends every chart's own id as chart_id too; another one (Drill By's source chart)
            # or a multi-layer chart's parent is a second chart Superset checks, not in the version.
            if form_data.get("parent_slice_id") not in (None, "") or \
                    form_data.get("chart_id") not in (None, "", chart):
                return None
        except (TypeError, ValueError, AttributeError):
            return None
        with self.engine().connect() as conn:
            versions = conn.exec_driver_sql("EXECUTE egov_answer_version (%s, %s, %s, %s)",
                                            (dataset, dashboard, chart, self.guest_role)).fetchone()
        if versions is None or None in (versions.dataset, versions.dashboard, versions.guest_role) \
                or (chart is not None and versions.chart is None):
            return None  # gone, never there, or not this dashboard's: Superset says what to answer
        if named is not None and versions.dashboard.split(" ", 1)[0] != str(named):
            return None  # Superset checks the dashboard the body names; only the token's own is versioned here
        ranges = time_ranges(parsed, [])
        day = time.strftime("%Y-%m-%d") if any(r.strip() != "No filter" for r in ranges) else ""
        fields = {"claims": data_claims(claims), "versions": [str(v) for v in versions], "day": day}
        return self.stored_key(environ, fields, body), claims, None

    def metadata_key(self, environ) -> tuple[str, dict, str] | None:
        """A metadata request's key (:data:`DASHBOARD_API` of the token's own dashboard, or :data:`ME_ROLES`),
        its token's claims and the language the answer must be in; None when it must go to Superset.

        The texts of these answers follow the embedded page's language (portal_ui), which the frontend's
        calls carry only in their ``Referer``: without it, Superset answers. The key holds the hour, as the
        dashboard's answer says "changed 3 hours ago"; the guest's own name is in it only for the roles.
        """
        from urllib.parse import parse_qs, urlsplit

        referer = urlsplit(environ.get("HTTP_REFERER", ""))
        language = (parse_qs(referer.query).get("_l_") or [""])[0] if referer.path.startswith("/embedded/") else ""
        guest = self.guest_dashboard(environ) if re.fullmatch(r"[a-z]{2}", language) else None
        if guest is None:
            return None
        claims, dashboard = guest
        with self.engine().connect() as conn:
            versions = conn.exec_driver_sql(_META_VERSION_SQL, {"dashboard": dashboard,
                                                                "guest_role": self.guest_role}).fetchone()
        if versions is None or versions[0] is None:
            return None
        path = environ["PATH_INFO"]
        named = DASHBOARD_API.match(path)
        if named and named.group("dashboard") not in (str(versions[0]), versions[1]):
            return None  # another dashboard than the token's: Superset decides (and refuses)
        fields = {"claims": {**data_claims(claims), **({"user": claims.get("user")} if path == ME_ROLES else {})},
                  "path": path, "language": language, "versions": [str(v) for v in versions],
                  "hour": time.strftime("%Y-%m-%d %H")}
        return self.stored_key(environ, fields), claims, language

    def guest_dashboard(self, environ) -> tuple[dict, str] | None:
        """The verified token's claims and the one dashboard (UUID) it is for; None when Superset must answer."""
        claims = self.verified(environ["HTTP_X_GUESTTOKEN"])
        resources = (claims or {}).get("resources") or []
        if claims is None or len(resources) != 1:
            return None
        try:
            return claims, str(uuid.UUID(str(resources[0].get("id"))))
        except (TypeError, ValueError, AttributeError):
            return None

    def stored_key(self, environ, fields: dict, body: bytes = b"") -> str:
        """The Redis key of a stored answer: ``fields`` with what every key holds (the exact query string, the
        encoding the answer was compressed for, the deploy), and the exact body."""
        material = json.dumps({**fields, "query": environ.get("QUERY_STRING", ""),
                               "encoding": environ.get("HTTP_ACCEPT_ENCODING", ""), "deploy": self.fingerprint},
                              sort_keys=True).encode()
        return PREFIX + hashlib.sha256(material + (b"\n" + body if body else b"")).hexdigest()

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

    def _through_superset(self, environ, start_response, key: str, claims: dict, language: str | None):
        """Superset answers; its answer is kept when it answered this guest, a chart from its own cache and
        metadata in ``language``."""
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        acted_as = environ.get(ACTED_AS)
        done_as_asked = environ.get(ALL_CACHED) if language is None else environ.get(LANGUAGE_USED) == language
        if (not captured.get("status", "").startswith("200 ") or not done_as_asked
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
            log.warning("stored answers: could not store", exc_info=True)
        return [payload]


def note_guest_answer(response):
    """``after_request`` (before Flask-Compress): tell :class:`StoredAnswers` whom Superset answered, and
    whether every chart result came from Superset's cache, or in which language the metadata is."""
    from flask import request

    chart = request.path == CHART_DATA and request.method == "POST"
    metadata = request.method == "GET" and is_metadata_path(request.path)
    if not (chart or metadata) or response.status_code != 200 or response.is_streamed \
            or response.mimetype != "application/json":
        return response
    try:
        import tenant_boundary

        user = tenant_boundary._loaded_user()
        if not getattr(user, "is_guest_user", False):
            return response
        if chart:
            answer = response.get_json(silent=True) or {}
            results = answer.get("result") if isinstance(answer, dict) else None
            request.environ[ALL_CACHED] = bool(results) and all(
                isinstance(r, dict) and r.get("is_cached") is True for r in results)
        else:
            from portal_ui import dashboard_language

            request.environ[LANGUAGE_USED] = dashboard_language()
        request.environ[ACTED_AS] = dict(user.guest_token)
    except Exception:  # noqa: BLE001 - not stored then; the viewer's answer is unaffected
        log.warning("stored answers: could not note the answer", exc_info=True)
    return response
