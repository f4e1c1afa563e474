"""Fixtures on real services: PostgreSQL and Redis (started by `make test` if missing).

Side-effect fixtures: ``database`` (fresh test database, migrated, reference
data loaded, once per session), ``clean_db`` (empties every tenant and
control-plane table after a test). Value fixtures: ``settings``, ``app``,
``client``, ``two_tenants`` (Marburg and Fulda, so a cross-tenant test is
one line), ``owner_engine`` and ``app_engine``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

os.environ["EGOV_ENV"] = "test"
# Redis database 15 keeps test queues away from a running `make up`.
_redis = os.environ.get("EGOV_REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("EGOV_TEST_REDIS_URL", _redis.rsplit("/", 1)[0] + "/15")
os.environ["EGOV_REDIS_URL"] = os.environ["EGOV_TEST_REDIS_URL"]

from sqlalchemy import create_engine, text  # noqa: E402

from tenants.settings import load_settings  # noqa: E402

MARBURG, FULDA = "06534014", "06631009"
# tests/prod/ (the TLS proxy with its own Superset) runs with `make prod-test`, which sets EGOV_PROD_TESTS=1.
collect_ignore = [] if os.environ.get("EGOV_PROD_TESTS") == "1" else ["prod"]


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def database(settings):
    """The test database, rebuilt from the migrations once per run.

    ``EGOV_TEST_KEEP_DATABASE=1`` keeps a database that is already at the current schema (it is
    emptied as usual): ``make mutation`` runs the tests once per mutant and rebuilds only once.
    """
    from tenants.database import rebuild

    if not (os.environ.get("EGOV_TEST_KEEP_DATABASE") == "1" and _database_at_head(settings)):
        rebuild(settings)
    return settings


def _database_at_head(settings) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tenants.settings import PROJECT_ROOT

    heads = set(ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini"))).get_heads())
    engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT version_num FROM public.alembic_version")).scalars()) == heads
    except Exception:  # no database, no roles, no schema yet: build it
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def owner_engine(database):
    engine = create_engine(database.sqlalchemy_url(database.migration_database_url), pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app_engine(database):
    """A plain engine as the application role, outside Flask."""
    # Pinged on checkout: the restore drill drops and restores the databases, ending every open connection.
    engine = create_engine(database.sqlalchemy_url(), pool_size=2, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_conn(settings):
    from tenants.jobs import redis_connection

    conn = redis_connection(settings.redis_url)
    conn.flushdb()
    return conn


@pytest.fixture(scope="session")
def app(database, redis_conn):
    from portal import create_app

    app = create_app({"TESTING": True}, settings=database)
    return app


@pytest.fixture
def client(app, clean_db):
    return app.test_client()


TRUNCATE_EXCEPT = {"portal.regions"}


def empty_all_tables(owner_engine, redis_conn) -> None:
    """Empty every tenant and control-plane table (TRUNCATE is not subject to RLS), the published comparison
    figures (a refresh keeps them once published) and the test Redis database."""
    with owner_engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('portal', 'analytics', 'benchmark') AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition"
        )).scalars().all()
        wanted = [t for t in tables if t not in TRUNCATE_EXCEPT]
        conn.execute(text(f"TRUNCATE {', '.join(wanted)} RESTART IDENTITY CASCADE"))
    redis_conn.flushdb()


@pytest.fixture
def clean_db(owner_engine, redis_conn):
    """Empty every table after the test."""
    yield
    empty_all_tables(owner_engine, redis_conn)


@pytest.fixture(scope="session")
def rls_bypass_settings(database):
    """The settings of a portal whose database connection bypasses row-level security.

    A test-only role ``<database>_rls_bypass`` (LOGIN, BYPASSRLS, member of the application
    role, so it holds exactly the app's grants) is created here with the superuser URL and
    dropped afterwards; product code never creates such a role. A portal on it keeps
    tenants apart only by its own checks, which is what tests/auth/test_route_matrix.py
    proves in its second run.
    """
    import dataclasses
    import secrets

    import psycopg
    from psycopg import sql

    from tenants.settings import _role_url

    role, password = f"{database.database_name}_rls_bypass", secrets.token_urlsafe(24)
    with psycopg.connect(database.admin_database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        conn.execute(sql.SQL("{} ROLE {} LOGIN BYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD {}")
                     .format(sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(database.app_role), sql.Identifier(role)))
    yield dataclasses.replace(
        database, database_url=_role_url(database.admin_database_url, role, password, database.database_name))
    with psycopg.connect(database.admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def two_tenants(app, clean_db):
    """Marburg (a) and Fulda (b), both active."""
    from tenants.context import platform_transaction
    from tenants.registry import create_tenant

    with app.app_context(), platform_transaction():
        a = create_tenant(MARBURG, status="active")
        b = create_tenant(FULDA, status="active")
        return SimpleNamespace(a=SimpleNamespace(id=a.id, ags=a.ags), b=SimpleNamespace(id=b.id, ags=b.ags))


# --- a live portal and a real browser ---------------------------------------------

@pytest.fixture(scope="session")
def live_server(app):
    """The portal served over HTTP on a free loopback port, in a thread."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", port=server.server_port)
    server.shutdown()


CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium")) if p and os.path.exists(p)),
                      None)
    if executable is None:
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test; a screenshot lands in test-artifacts/ when the test fails."""
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        from pathlib import Path

        out = Path(__file__).resolve().parents[1] / "test-artifacts"
        out.mkdir(exist_ok=True)
        page.screenshot(path=str(out / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --- signed-in sessions without an identity provider ---------------------------------

def sign_in(client, identity: str) -> None:
    """Give the test client a signed-in session for ``identity`` ("u:<tenant>:<user>" or "o:<id>").

    Registers the session id in Redis exactly as a real sign-in does (portal/sessions.py); the
    OpenID Connect flow itself is tested against a real provider in tests/auth/.
    """
    import secrets

    from portal.sessions import KEY, SID, record
    from tenants.jobs import redis_connection

    sid = secrets.token_urlsafe(16)
    redis_connection(client.application.config["EGOV"].redis_url).set(KEY.format(sid), record(identity), ex=600)
    with client.session_transaction() as session:
        session["_user_id"] = identity
        session[SID] = sid


def sign_in_browser(app, page, base_url: str, identity: str) -> None:
    """The browser counterpart of :func:`sign_in`: a registered session in the page's cookie jar."""
    from urllib.parse import urlsplit

    client = app.test_client()
    sign_in(client, identity)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value,
                               "domain": urlsplit(base_url).hostname, "path": "/"}])


def add_operator(app, email: str = "op@betrieb.example") -> str:
    """A platform operator; returns the session identity for :func:`sign_in`."""
    from tenants.context import platform_transaction
    from tenants.models import Operator

    with app.app_context(), platform_transaction() as session:
        operator = Operator(subject=email, email=email)
        session.add(operator)
        session.flush()
        return f"o:{operator.id}"


def client_as(app, identity: str):
    """A new test client signed in as ``identity`` (see :func:`sign_in`)."""
    client = app.test_client()
    sign_in(client, identity)
    return client


def scheduled_jobs(redis_conn) -> dict:
    """The schedule as ``rq cron ingest_workers.cron`` loads it: {"module.function": rq.cron.CronJob}.

    Uses RQ's public loader (``CronScheduler.load_config_from_file``), not its module-level registry.
    """
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=redis_conn)
    scheduler.load_config_from_file("ingest_workers.cron")
    return {job.func_name: job for job in scheduler.get_jobs()}
