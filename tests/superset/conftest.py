"""Fixtures for the Superset tests: a real Superset, a portal on a fixed port, two provisioned tenants.

Superset answers on EGOV_TEST_SUPERSET_PORT (default 8098). When nothing
answers there, the set-up installs Superset into .venv-superset (about a
minute, once), initialises its metadata database (about 20 s, once) and
starts gunicorn, which it stops again at the end of the session.

The portal runs on EGOV_TEST_PORTAL_PORT (default 5051): embedded
dashboards check the Referer against the allowed origins, so the origin
must be known when the dashboards are provisioned.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.conftest import FULDA, MARBURG

SUPERSET_PORT = int(os.environ.get("EGOV_TEST_SUPERSET_PORT", "8098"))
PORTAL_PORT = int(os.environ.get("EGOV_TEST_PORTAL_PORT", "5051"))
_REDIS_BASE = os.environ["EGOV_TEST_REDIS_URL"].rsplit("/", 1)[0]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def superset_settings(database):
    return dataclasses.replace(
        database,
        portal_url=f"http://127.0.0.1:{PORTAL_PORT}",
        superset_url=f"http://127.0.0.1:{SUPERSET_PORT}",
        superset_redis_url=os.environ.get("EGOV_TEST_SUPERSET_REDIS_URL", _REDIS_BASE + "/9"),
        superset_limits_url=os.environ.get("EGOV_TEST_SUPERSET_LIMITS_URL", _REDIS_BASE + "/10"),
    )


@pytest.fixture(scope="session")
def superset(superset_settings):
    """A running Superset; started (and installed) here when none answers. Its cache Redis starts empty: each
    run provisions its tenants anew, and cached charts, stored answers and the warm-up's record of earlier
    runs' dashboards would otherwise pile up (the record once filled up that way)."""
    import redis

    from tenants.superset import server

    redis.Redis.from_url(superset_settings.superset_redis_url).flushdb()

    if server.answers(superset_settings.superset_url):
        server.initialise(superset_settings)  # converges the service account's password
        yield superset_settings.superset_url
        return
    log = superset_settings.var_dir / "log" / f"superset-test-{SUPERSET_PORT}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        server.install(log=out)
        server.initialise(superset_settings, log=out)
    process = server.start(superset_settings, SUPERSET_PORT, log, portal_url=superset_settings.portal_url)
    yield superset_settings.superset_url
    server.stop(process)


@pytest.fixture(scope="session")
def ss_app(superset_settings, redis_conn, superset):
    from portal import create_app

    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, settings=superset_settings)


@pytest.fixture(scope="session")
def ss_live_server(ss_app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", PORTAL_PORT, ss_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{PORTAL_PORT}")
    server.shutdown()


def _drop_stale_login_roles(settings) -> None:
    """Login roles left by an earlier run against a database of the same name."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        names = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                             (settings.database_name.replace("_", r"\_") + r"\_ss\_t%",)).fetchall()
        for (name,) in names:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def create_tenant_with_data(app, ags: str, scale: int, days: int = 120):
    from demo.superset import seed_rollups
    from tenants.context import platform_transaction, tenant_transaction
    from tenants.registry import create_tenant

    with app.app_context():
        with platform_transaction():
            tenant = create_tenant(ags, status="active")
            tenant_id, name = tenant.id, tenant.name
        with tenant_transaction(tenant_id) as session:
            seed_rollups(session, tenant_id, days=days, scale=scale, seed=tenant_id)
    return SimpleNamespace(id=tenant_id, ags=ags, name=name)


def remove_tenant(app, owner_engine, tenant) -> None:
    """Deprovision the tenant and delete all its rows (as offboarding's purge does), then its record."""
    from tenants.archive import purge
    from tenants.provisioning import deprovision_tenant

    with app.app_context():
        deprovision_tenant(tenant.id)
    with owner_engine.begin() as conn:
        purge(conn, tenant.id)
        conn.execute(text("SELECT set_config('app.tenant_id', '', true)"))
        conn.execute(text("DELETE FROM portal.tenants WHERE id = :t"), {"t": tenant.id})


@pytest.fixture(scope="package")
def tenants_ab(ss_app, owner_engine, superset_settings):
    """Marburg (a, small figures) and Fulda (b, a hundred times larger), both provisioned."""
    from tenants.provisioning import provision_tenant

    with owner_engine.begin() as conn:  # an earlier module's clean-up may have left rows
        conn.execute(text("TRUNCATE portal.tenants, portal.tenant_settings, portal.users, analytics.services, "
                          "analytics.rollup_service_daily RESTART IDENTITY CASCADE"))
    _drop_stale_login_roles(superset_settings)
    with ss_app.app_context():  # people (and what they made) of an earlier run against this Superset
        from tenants.superset.access import remove_people
        from tenants.superset.provision import client

        for ags in (MARBURG, FULDA):
            remove_people(client(), superset_settings, ags)
    a = create_tenant_with_data(ss_app, MARBURG, scale=1)
    b = create_tenant_with_data(ss_app, FULDA, scale=100)
    with ss_app.app_context():
        for tenant in (a, b):
            provision_tenant(tenant.id)
    yield SimpleNamespace(a=a, b=b)
    for tenant in (a, b):
        remove_tenant(ss_app, owner_engine, tenant)


def add_user(app, tenant, role: str, subject: str | None = None) -> str:
    """A portal user of the tenant; returns the Flask-Login identity ``u:<tenant>:<user>``."""
    from tenants.context import tenant_transaction
    from tenants.models import User

    with app.app_context(), tenant_transaction(tenant.id) as session:
        # Superset keeps its users across test runs and wants unique e-mail addresses.
        user = User(tenant_id=tenant.id, subject=subject or f"{role}-{tenant.ags}", role=role,
                    email=f"{role}-{secrets.token_hex(4)}@{tenant.ags}.example",
                    display_name=f"{role.title()} {tenant.name}")
        session.add(user)
        session.flush()
        return f"u:{tenant.id}:{user.id}"


def without_row_rules(settings, token: str) -> str:
    """The same guest token with its row rules replaced by one that restricts nothing.

    The portal never mints such a token, and Superset refuses one without any rule; this shows
    what the layers underneath (tenant boundary, database login role) hold on their own.
    """
    from joserfc import jwt
    from joserfc.jwk import OctKey

    key = OctKey.import_key(settings.superset_guest_secret)
    claims = jwt.decode(token, key).claims
    claims["rls_rules"] = [{"clause": "1 = 1"}]
    return jwt.encode({"alg": "HS256"}, claims, key)
