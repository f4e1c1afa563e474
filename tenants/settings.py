"""The one settings module of the platform.

Every option is read from an environment variable with the prefix ``EGOV_``
and has its default documented next to its declaration below. Portal, workers,
the scheduler and the CLI all read their configuration here, so there is one
place to look.

Modes (``EGOV_ENV``):

``development`` (default)
    Secrets that are not given are generated once and kept in
    ``var/secrets.json`` (mode 0600), so a restart keeps sessions and the
    database passwords stay valid.
``test``
    Like development, but the database name defaults to ``egovsad_test``.
``production``
    Nothing is generated: a missing secret stops the process at start-up with
    a message that names the variable.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from urllib.parse import quote, urlsplit

PREFIX = "EGOV_"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Secrets that production must be given explicitly. Development generates them.
REQUIRED_SECRETS = ("SECRET_KEY", "DATABASE_URL", "MIGRATION_DATABASE_URL", "ENCRYPTION_KEYS",
                    "SUPERSET_SECRET_KEY", "SUPERSET_GUEST_SECRET", "SUPERSET_ADMIN_PASSWORD", "SUPERSET_OIDC_SECRET",
                    "SUPERSET_META_PASSWORD")


class SettingsError(RuntimeError):
    """Raised at start-up when the configuration cannot work."""


def _env(environ, name: str, default: str | None = None) -> str | None:
    """``EGOV_<name>``, else the content of the file ``EGOV_<name>_FILE`` names (container secrets), else default.

    :raise SettingsError: the ``_FILE`` variable names a file that cannot be read.
    """
    value = environ.get(PREFIX + name)
    file_name = environ.get(PREFIX + name + "_FILE")
    if value in (None, "") and file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{PREFIX}{name}_FILE: cannot read {file_name}: {exc.strerror}") from exc
    return default if value in (None, "") else value


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    #: EGOV_ENV: development, test or production.
    env: str = "development"
    #: EGOV_VAR_DIR: runtime state (generated secrets, logs, pid files, local
    #: database and Redis instances). Default: ``<project>/var``.
    var_dir: Path = PROJECT_ROOT / "var"
    #: EGOV_SECRET_KEY: signs session cookies and CSRF tokens.
    secret_key: str = ""
    #: EGOV_ADMIN_DATABASE_URL: a PostgreSQL superuser, used only by
    #: ``egov db bootstrap`` to create roles and the database once.
    #: Default: postgresql://postgres@127.0.0.1:5432/postgres
    admin_database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    #: EGOV_DATABASE_NAME: the platform database. Default egovsad (test: egovsad_test).
    database_name: str = "egovsad"
    #: EGOV_DB_OWNER_ROLE / EGOV_DB_APP_ROLE: role names (see docs/architecture.md).
    #: Test mode defaults to ``<database>_owner`` / ``<database>_app`` (and ``<database>_benchmark``):
    #: roles are cluster-wide and bootstrap sets their passwords, so a test run must not
    #: share role names with a running ``make up`` or another checkout's tests.
    owner_role: str = "egov_owner"
    app_role: str = "egov_app"
    #: EGOV_DB_OWNER_PASSWORD / EGOV_DB_APP_PASSWORD: generated in development.
    owner_password: str = ""
    app_password: str = ""
    #: EGOV_DATABASE_URL: how portal and workers connect (the application role).
    #: Default: built from the admin URL's host and port, the app role and its password.
    database_url: str = ""
    #: EGOV_MIGRATION_DATABASE_URL: how migrations connect (the schema owner).
    migration_database_url: str = ""
    #: EGOV_DB_POOL_SIZE: connections per process.
    db_pool_size: int = 5
    #: EGOV_REDIS_URL: queues, rate limits and caches. Default redis://127.0.0.1:6379/0
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: EGOV_ENCRYPTION_KEYS: comma-separated Fernet keys for secrets at rest;
    #: the first encrypts, all decrypt (this is how keys are rotated).
    encryption_keys: tuple[str, ...] = field(default_factory=tuple)
    #: EGOV_DEFAULT_LOCALE: de (the users' language) or en.
    default_locale: str = "de"
    #: EGOV_PORTAL_URL: the public base URL of the portal.
    portal_url: str = "http://127.0.0.1:5000"
    #: EGOV_SECURE_COOKIES: send cookies only over HTTPS. Default: on in production.
    secure_cookies: bool = False
    #: EGOV_QUEUES: RQ queues, highest priority first.
    queues: tuple[str, ...] = ("high", "default", "low")
    #: EGOV_CONFIDENTIALITY_MIN_CASES: a published cell rests on at least this many
    #: cases (docs/confidentiality.md). Default 3.
    confidentiality_min_cases: int = 3
    #: EGOV_CONFIDENTIALITY_MIN_CONTRIBUTORS: a group figure needs this many tenants. Default 3.
    confidentiality_min_contributors: int = 3
    #: EGOV_DCAT_CONTRIBUTOR_ID: the dcatde:contributorID GovData assigns to the operator
    #: (an IRI under http://dcat-ap.de/def/contributors/). Empty: not stated; GovData's direct
    #: delivery requires it, so set it before registering the catalogue there.
    dcat_contributor_id: str = ""
    #: EGOV_DCAT_PAGE_SIZE: datasets per catalogue page (hydra:PagedCollection). Default 100.
    dcat_page_size: int = 100
    #: EGOV_SESSION_IDLE_MINUTES: a session unused this long is signed out.
    session_idle_minutes: int = 30
    #: EGOV_LOGIN_RATE_LIMIT / EGOV_SIGNUP_RATE_LIMIT: per client address, in
    #: Flask-Limiter's notation; counted in Redis across all portal processes.
    login_rate_limit: str = "30/minute"
    signup_rate_limit: str = "10/hour"
    #: EGOV_OIDC_ALLOW_HTTP: accept identity providers on plain http (loopback
    #: development IdP). Default: off in production, on otherwise.
    oidc_allow_http: bool = False
    #: EGOV_OIDC_TIMEOUT: seconds one request to an identity provider may take in all
    #: (connecting, TLS, every redirect, reading the answer), not per read.
    oidc_timeout: float = 5.0
    #: EGOV_CONNECTION_TEST_RATE_LIMIT: "Verbindung testen" per client address (sign-up and
    #: the identity-provider page), counted apart from the sign-up's own limit.
    connection_test_rate_limit: str = "20/hour"
    #: EGOV_OUTBOUND_ALLOW_PRIVATE_ADDRESSES: let the portal and the workers fetch URLs a
    #: tenant gives (identity provider, Matomo) on loopback, private, link-local or other
    #: non-public addresses. Default: off in production (anyone may sign up and make the
    #: portal fetch a URL), on otherwise. The former name EGOV_OIDC_ALLOW_PRIVATE_ADDRESSES
    #: is still read.
    outbound_allow_private_addresses: bool = False
    #: EGOV_OUTBOUND_ALLOWED_NETWORKS: comma-separated networks (CIDR) allowed even when
    #: private addresses are not, e.g. a municipal network reached through the operator's VPN.
    outbound_allowed_networks: tuple[str, ...] = ()
    #: EGOV_OUTBOUND_CA_FILE: a PEM file of further certificate authorities to trust for
    #: those URLs (an administration's own PKI), besides the system's.
    outbound_ca_file: str = ""
    #: The platform identity provider operators sign in through (they belong to
    #: no tenant). EGOV_OPERATOR_OIDC_DISCOVERY_URL, _CLIENT_ID, _CLIENT_SECRET.
    #: Development defaults to the development IdP (``make up``); production and
    #: tests have no default: without it operator sign-in is switched off.
    operator_oidc_discovery_url: str = ""
    operator_oidc_client_id: str = ""
    operator_oidc_client_secret: str = ""
    #: EGOV_OPERATOR_ROLE_CLAIM / EGOV_OPERATOR_ROLE_VALUE: only a person whose
    #: claim (a string or a list, e.g. groups) holds this value becomes an operator.
    operator_role_claim: str = "roles"
    operator_role_value: str = "egovsad-operator"
    #: EGOV_DEV_IDP_URL: the development identity provider that ``make up``
    #: starts; ``egov demo seed`` points the demo tenants at it.
    dev_idp_url: str = "http://127.0.0.1:9400"
    #: EGOV_PROXY_COUNT: reverse proxies in front of the portal whose
    #: X-Forwarded-* headers are trusted (0: none). Needed for correct callback URLs.
    proxy_count: int = 0
    #: EGOV_PORTAL_INTERNAL_URL: how Superset's server reaches the portal's OpenID Connect token, key and
    #: user-info endpoints (behind a reverse proxy: the portal's own address on the internal network, so
    #: Superset needs neither the public name nor the proxy's CA). Default: EGOV_PORTAL_URL.
    portal_internal_url: str = ""
    #: EGOV_SUPERSET_URL: where Superset answers, same-site with the portal.
    superset_url: str = "http://127.0.0.1:8088"
    #: EGOV_SUPERSET_INTERNAL_URL: how portal, workers and the CLI reach Superset's API and health check
    #: (browsers always use EGOV_SUPERSET_URL). Default: EGOV_SUPERSET_URL.
    superset_internal_url: str = ""
    #: EGOV_SUPERSET_META_DATABASE: Superset's metadata database (default <database>_superset).
    superset_meta_database: str = ""
    #: EGOV_SUPERSET_REDIS_URL / EGOV_SUPERSET_LIMITS_URL: Superset's caches and rate limits.
    superset_redis_url: str = "redis://127.0.0.1:6379/1"
    superset_limits_url: str = "redis://127.0.0.1:6379/2"
    #: EGOV_SUPERSET_SECRET_KEY, _GUEST_SECRET, _ADMIN_PASSWORD, _OIDC_SECRET,
    #: _META_PASSWORD: Superset's secrets (generated in development).
    superset_secret_key: str = ""
    superset_guest_secret: str = ""
    superset_admin_password: str = ""
    superset_oidc_secret: str = ""
    superset_meta_password: str = ""
    #: EGOV_OIDC_SIGNING_KEY_FILE: RSA key (PEM) the portal signs ID tokens for Superset with.
    #: Default <var>/oidc-signing-key.pem, generated outside production.
    oidc_signing_key_file: str = ""
    #: EGOV_OIDC_PUBLISHED_KEY_FILES: comma-separated further RSA keys (PEM, private or public) whose public
    #: halves the portal publishes next to the signing key, so a key can be published before it signs and
    #: kept published after (docs/operations.md, "Rotating the OIDC signing key").
    oidc_published_key_files: tuple[str, ...] = ()
    #: EGOV_DB_BENCHMARK_ROLE / EGOV_DB_BENCHMARK_PASSWORD: the read-only role of the
    #: ``benchmark`` schema (published comparison figures only; docs/benchmark.md). Without a
    #: password in production the role cannot log in.
    benchmark_role: str = "egov_benchmark"
    benchmark_password: str = ""
    #: EGOV_TENANT_QUERY_LIMIT_SECONDS: the watchdog ends a tenant's Superset database session whose
    #: statement or transaction has run longer than this (the role's own statement_timeout is 30 s,
    #: but a session can change that). Default 60.
    tenant_query_limit_seconds: int = 60
    #: EGOV_WATCHDOG_INTERVAL_SECONDS: how often the watchdog looks. Default 5.
    watchdog_interval_seconds: float = 5.0
    #: EGOV_BENCHMARK_MIN_GROUP: a comparison group shows its median only with at least this many
    #: contributing tenants (quartiles need three times the contributor threshold). Default 5.
    benchmark_min_group: int = 5
    #: EGOV_LOG_FORMAT: ``json`` (one JSON object a line, with request and job ids; default) or ``text``.
    log_format: str = "json"
    #: EGOV_LOG_LEVEL: the lowest level written (DEBUG, INFO, WARNING, ERROR). Default INFO.
    log_level: str = "INFO"
    #: EGOV_METRICS_PORT: the HTTP port where a background process (worker, scheduler, watchdog) serves
    #: its Prometheus metrics; 0 switches it off. Default: worker 9101, scheduler 9102, watchdog 9103
    #: (``METRICS_PORTS``). The portal serves its metrics at ``/metrics`` on its own port.
    metrics_port: int | None = None
    #: EGOV_METRICS_BIND: the address those servers listen on. Default 127.0.0.1; in containers the
    #: internal network's address (or 0.0.0.0 without publishing the port).
    metrics_bind: str = "127.0.0.1"
    #: EGOV_METRICS_TOKEN: a bearer token that lets a scraper in from any address
    #: (``Authorization: Bearer <token>``). Empty: only the allowed networks.
    metrics_token: str = ""
    #: EGOV_METRICS_ALLOWED_NETWORKS: comma-separated networks (CIDR) whose clients may read the metrics
    #: without a token. Default loopback only. Behind a reverse proxy (EGOV_PROXY_COUNT) the client is
    #: the forwarded one, so the public cannot read them through the proxy.
    metrics_allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    #: EGOV_METRICS_DIR: where the portal's gunicorn processes keep their metric files (Prometheus
    #: multiprocess mode; emptied when gunicorn starts). Default <var>/metrics/portal.
    metrics_dir: str = ""
    #: EGOV_ARCHIVE_DIR: where the offboarding job writes a tenant's archive (ZIP); portal and workers must
    #: share it, like the spool. Default <var>/archives. The purge deletes the tenant's archive too.
    archive_dir: str = ""

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def portal_backchannel_url(self) -> str:
        """Where Superset's server reaches the portal: EGOV_PORTAL_INTERNAL_URL or else the public URL."""
        return self.portal_internal_url or self.portal_url

    @property
    def superset_api_url(self) -> str:
        """Where portal, workers and CLI reach Superset: EGOV_SUPERSET_INTERNAL_URL or else the public URL."""
        return self.superset_internal_url or self.superset_url

    def sqlalchemy_url(self, url: str | None = None) -> str:
        """The given URL with the psycopg 3 driver SQLAlchemy needs."""
        return _with_driver(url or self.database_url)


def _with_driver(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _role_url(admin_url: str, role: str, password: str, database: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    return f"postgresql://{quote(role)}:{quote(password, safe='')}@{host}:{port}/{quote(database)}"


def _generated_secrets(var_dir: Path) -> dict[str, str]:
    """Secrets kept under var/ in development, created on first use."""
    from cryptography.fernet import Fernet

    path = var_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "DB_OWNER_PASSWORD": lambda: secrets.token_urlsafe(24),
        "DB_APP_PASSWORD": lambda: secrets.token_urlsafe(24),
        "ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
        "SUPERSET_SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "SUPERSET_GUEST_SECRET": lambda: secrets.token_urlsafe(48),
        "SUPERSET_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(24),
        "SUPERSET_OIDC_SECRET": lambda: secrets.token_urlsafe(32),
        "SUPERSET_META_PASSWORD": lambda: secrets.token_urlsafe(24),
        "DB_BENCHMARK_PASSWORD": lambda: secrets.token_urlsafe(24),
    }
    if all(name in stored for name in wanted):
        return stored
    with exclusive(path):  # processes starting together must agree on one value of each secret
        stored = json.loads(path.read_text()) if path.exists() else {}
        missing = {name: make() for name, make in wanted.items() if name not in stored}
        if missing:
            stored.update(missing)
            write_private(path, json.dumps(stored, indent=2).encode())
    return stored


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (``<name>.lock``, ``flock``) while creating or updating it.

    Why: on a fresh checkout the portal's workers, the RQ worker and Superset start together and each
    creates what is missing on first use; without the lock each wrote its own secret and the last one won
    on disk, while the others kept using theirs (an ID token signed with a key nobody publishes).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (readers see the old or the new file), owner-only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)
    tmp.replace(path)


def created_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of ``path``; the first process to ask writes ``make()`` there (owner-only), every
    other one, at the same time or later, reads that."""
    if not path.exists():
        with exclusive(path):
            if not path.exists():
                write_private(path, make())
    return path.read_bytes()


def settings_of(app) -> Settings:
    """The settings ``create_app`` gave ``app``: for a process that holds its app outside an app context
    (the worker, scheduler and watchdog commands as they start)."""
    return app.config["EGOV"]


def get_settings() -> Settings:
    """The settings of the running process; the one accessor for code that runs in the app or a job.

    Inside a Flask app context: the app's own (``create_app(settings)``; tests build apps with settings of their
    own). Elsewhere (the CLI before an app exists, a job run outside the worker): the environment's, read once per
    process. Flask is imported here only when asked, so the settings module stays importable without it.
    """
    from flask import current_app, has_app_context

    if has_app_context():
        return settings_of(current_app)
    global _PROCESS_SETTINGS
    if _PROCESS_SETTINGS is None:
        _PROCESS_SETTINGS = load_settings()
    return _PROCESS_SETTINGS


_PROCESS_SETTINGS: Settings | None = None


#: Settings whose variable is not ``EGOV_`` plus the field name in capitals.
ENV_NAMES = {"owner_role": "DB_OWNER_ROLE", "app_role": "DB_APP_ROLE", "owner_password": "DB_OWNER_PASSWORD",
             "app_password": "DB_APP_PASSWORD", "benchmark_role": "DB_BENCHMARK_ROLE",
             "benchmark_password": "DB_BENCHMARK_PASSWORD"}


def _parsed(default, raw: str):
    """A variable's text in the type of the setting's declared default."""
    if isinstance(default, bool):
        return _bool(raw, default)
    if isinstance(default, int | float):
        return type(default)(raw)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _declared(environ) -> dict:
    """Every setting read the plain way: its variable in the declared default's type, or that default."""
    values = {}
    for f in fields(Settings):
        if f.default is MISSING:
            continue
        raw = _env(environ, ENV_NAMES.get(f.name, f.name.upper()))
        values[f.name] = f.default if raw is None else _parsed(f.default, raw)
    return values


def load_settings(environ=None) -> Settings:
    """Read the settings from the environment (``os.environ`` by default).

    Each setting is declared once, in :class:`Settings` (its default and its variable); what is computed
    from others (database URLs, role names in test mode, secrets, defaults that depend on the mode) is here.

    :raise SettingsError: in production when a required secret is missing.
    """
    environ = os.environ if environ is None else environ
    env = _env(environ, "ENV", "development")
    if env not in {"development", "test", "production"}:
        raise SettingsError(f"{PREFIX}ENV must be development, test or production, not {env!r}")
    var_dir = Path(_env(environ, "VAR_DIR", str(PROJECT_ROOT / "var")))

    if env == "production":
        missing = [PREFIX + n for n in REQUIRED_SECRETS if not _env(environ, n)]
        if missing:
            raise SettingsError("Missing required settings in production: " + ", ".join(missing))
        generated: dict[str, str] = {}
    else:
        generated = _generated_secrets(var_dir)

    def secret(name: str) -> str:
        return _env(environ, name) or generated.get(name, "")

    values = _declared(environ)
    admin_url = values["admin_database_url"]
    database = _env(environ, "DATABASE_NAME", "egovsad_test" if env == "test" else "egovsad")
    role_default = (lambda suffix, name: f"{database}_{suffix}") if env == "test" else (lambda suffix, name: name)
    owner_role = _env(environ, "DB_OWNER_ROLE", role_default("owner", Settings.owner_role))
    app_role = _env(environ, "DB_APP_ROLE", role_default("app", Settings.app_role))
    owner_pw, app_pw = secret("DB_OWNER_PASSWORD"), secret("DB_APP_PASSWORD")
    values.update(
        env=env,
        var_dir=var_dir,
        secret_key=secret("SECRET_KEY"),
        database_name=database,
        owner_role=owner_role,
        app_role=app_role,
        owner_password=owner_pw,
        app_password=app_pw,
        database_url=_env(environ, "DATABASE_URL") or _role_url(admin_url, app_role, app_pw, database),
        migration_database_url=_env(environ, "MIGRATION_DATABASE_URL")
        or _role_url(admin_url, owner_role, owner_pw, database),
        encryption_keys=tuple(k.strip() for k in secret("ENCRYPTION_KEYS").split(",") if k.strip()),
        portal_url=values["portal_url"].rstrip("/"),
        portal_internal_url=values["portal_internal_url"].rstrip("/"),
        secure_cookies=_bool(_env(environ, "SECURE_COOKIES"), env == "production"),
        **_identity_settings(environ, env),
        superset_url=values["superset_url"].rstrip("/"),
        superset_internal_url=values["superset_internal_url"].rstrip("/"),
        superset_meta_database=_env(environ, "SUPERSET_META_DATABASE", database + "_superset"),
        superset_secret_key=secret("SUPERSET_SECRET_KEY"),
        superset_guest_secret=secret("SUPERSET_GUEST_SECRET"),
        superset_admin_password=secret("SUPERSET_ADMIN_PASSWORD"),
        superset_oidc_secret=secret("SUPERSET_OIDC_SECRET"),
        superset_meta_password=secret("SUPERSET_META_PASSWORD"),
        oidc_signing_key_file=_env(environ, "OIDC_SIGNING_KEY_FILE", str(var_dir / "oidc-signing-key.pem")),
        benchmark_role=_env(environ, "DB_BENCHMARK_ROLE", role_default("benchmark", Settings.benchmark_role)),
        benchmark_password=secret("DB_BENCHMARK_PASSWORD"),
        archive_dir=_env(environ, "ARCHIVE_DIR", str(var_dir / "archives")),
        **_observability_settings(environ, var_dir),
    )
    return Settings(**values)


#: The default metrics port of each background process (EGOV_METRICS_PORT overrides it).
METRICS_PORTS = {"worker": 9101, "scheduler": 9102, "watchdog": 9103}


def _networks(environ, name: str, default: str) -> tuple[str, ...]:
    """A comma-separated list of networks (CIDR), each checked.

    :raise SettingsError: an entry is not a network.
    """
    networks = tuple(n.strip() for n in (_env(environ, name, default) or "").split(",") if n.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}{name}: {network!r} is not a network (CIDR)") from exc
    return networks


def _observability_settings(environ, var_dir: Path) -> dict:
    """Logs and metrics."""
    log_format = _env(environ, "LOG_FORMAT", Settings.log_format)
    if log_format not in ("json", "text"):
        raise SettingsError(f"{PREFIX}LOG_FORMAT must be json or text, not {log_format!r}")
    port = _env(environ, "METRICS_PORT")
    return {
        "log_format": log_format,
        "log_level": _env(environ, "LOG_LEVEL", Settings.log_level).upper(),
        "metrics_port": int(port) if port is not None else None,
        "metrics_allowed_networks": _networks(environ, "METRICS_ALLOWED_NETWORKS",
                                              ",".join(Settings.metrics_allowed_networks)),
        "metrics_dir": _env(environ, "METRICS_DIR", str(var_dir / "metrics" / "portal")),
    }


def _identity_settings(environ, env: str) -> dict:
    """The identity and outbound settings whose defaults depend on the mode."""
    dev_idp = _env(environ, "DEV_IDP_URL", Settings.dev_idp_url).rstrip("/")
    dev = env == "development"
    networks = _networks(environ, "OUTBOUND_ALLOWED_NETWORKS", "")
    return {
        "oidc_allow_http": _bool(_env(environ, "OIDC_ALLOW_HTTP"), env != "production"),
        "outbound_allow_private_addresses": _bool(
            _env(environ, "OUTBOUND_ALLOW_PRIVATE_ADDRESSES", _env(environ, "OIDC_ALLOW_PRIVATE_ADDRESSES")),
            env != "production"),
        "outbound_allowed_networks": networks,
        "operator_oidc_discovery_url": _env(
            environ, "OPERATOR_OIDC_DISCOVERY_URL", f"{dev_idp}/.well-known/openid-configuration" if dev else ""),
        "operator_oidc_client_id": _env(environ, "OPERATOR_OIDC_CLIENT_ID", "egovsad-operators" if dev else ""),
        "operator_oidc_client_secret": _env(environ, "OPERATOR_OIDC_CLIENT_SECRET", "dev-secret" if dev else ""),
        "dev_idp_url": dev_idp,
    }
