"""The tenant context: transaction-local, never leaking to the next user of a connection."""

import pytest
from flask import Blueprint, jsonify
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tenants.context import apply_tenant, current_tenant_id, platform_transaction, tenant_transaction


def _add_feedback(conn, tenant_id):
    conn.execute(text("INSERT INTO analytics.feedback (tenant_id, service_key, rating) "
                      "VALUES (:t, '99102013104000', 5)"), {"t": tenant_id})


@pytest.fixture
def one_connection_engine(database):
    """A pool of exactly one connection, so reuse is certain."""
    engine = create_engine(database.sqlalchemy_url(), pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def test_pooled_connection_after_tenant_a_sees_nothing_without_tenant(one_connection_engine, two_tenants):
    """The setting is transaction-local: the next user of the pooled connection finds nothing of A.

    It looks first through a plain connection, which runs no hook and sets no tenant: anything
    that set the tenant for A (a session-level ``SET``, ``set_config(..., false)``) would still be
    there. Only then does it go through the ORM, whose hook sets "no tenant" itself.
    """
    a = two_tenants.a.id
    with Session(one_connection_engine) as session:
        with tenant_transaction(a, session):
            _add_feedback(session.connection(), a)
            pid_a = session.execute(text("SELECT pg_backend_pid()")).scalar()
            assert session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 1
    with one_connection_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid_a
        assert conn.execute(text("SELECT current_setting('app.tenant_id', true)")).scalar() in ("", None)
        assert conn.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 0
    # The same through the ORM, and for a raw connection that set the tenant itself (bulk loads).
    with Session(one_connection_engine) as session:
        with platform_transaction(session):
            assert session.execute(text("SELECT pg_backend_pid()")).scalar() == pid_a
            assert session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 0
    with one_connection_engine.begin() as conn:
        apply_tenant(conn, a)
        assert conn.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 1
    with one_connection_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid_a
        assert conn.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 0


def test_tenant_transaction_rolls_back_and_forgets_the_tenant_on_error(app, two_tenants):
    a = two_tenants.a.id
    with app.app_context():
        with pytest.raises(RuntimeError, match="boom"):
            with tenant_transaction(a) as session:
                _add_feedback(session.connection(), a)
                raise RuntimeError("boom")
        assert current_tenant_id() is None
        with tenant_transaction(a) as session:
            assert session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 0


def test_tenant_transaction_refuses_to_mix_tenants_in_one_transaction(app, two_tenants):
    with app.app_context():
        with tenant_transaction(two_tenants.a.id) as session:
            with pytest.raises(RuntimeError):
                with tenant_transaction(two_tenants.b.id, session):
                    pass


@pytest.fixture
def probe_app(database, redis_conn):
    """A portal with one extra tenant route that reports what the database shows it."""
    from portal import create_app
    from tenants.db import db

    app = create_app({"TESTING": True, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0}},
                     settings=database)
    probe = Blueprint("tenant_probe", __name__)

    @probe.get("/t/<ags>/_probe")
    def tenant_probe():
        count = db.session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar()
        return jsonify(feedback=count)

    @probe.get("/_probe")
    def plain_probe():
        count = db.session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar()
        return jsonify(feedback=count)

    app.register_blueprint(probe)
    return app


def test_a_request_runs_as_the_tenant_in_its_url_and_the_next_request_sees_nothing(
    probe_app, two_tenants, app_engine
):
    from tenants.context import apply_tenant

    with app_engine.begin() as conn:
        apply_tenant(conn, two_tenants.a.id)
        _add_feedback(conn, two_tenants.a.id)
    client = probe_app.test_client()
    assert client.get(f"/t/{two_tenants.a.ags}/_probe").json == {"feedback": 1}
    assert client.get(f"/t/{two_tenants.b.ags}/_probe").json == {"feedback": 0}
    assert client.get("/_probe").json == {"feedback": 0}


def test_unknown_tenant_in_url_is_404(probe_app, two_tenants):
    assert probe_app.test_client().get("/t/06411000/_probe").status_code == 404
    assert probe_app.test_client().get("/t/not-an-ags/_probe").status_code == 404


def test_signed_in_staff_asking_for_another_tenant_get_404(probe_app, two_tenants):
    from tests.conftest import sign_in

    client = probe_app.test_client()
    sign_in(client, f"u:{two_tenants.a.id}:1")
    assert client.get(f"/t/{two_tenants.b.ags}/_probe").status_code == 404
    assert client.get(f"/t/{two_tenants.a.ags}/_probe").status_code == 200


def test_work_for_one_tenant_inside_a_request_gives_the_tenant_back_afterwards(app, two_tenants):
    """``platform_acting_for`` (control-plane work that touches one tenant's rows, e.g. an operator's action):
    after the block, the same open transaction runs for the previous tenant (here: none) again."""
    from tenants.context import platform_acting_for
    from tenants.db import db

    with app.app_context(), platform_transaction() as session:
        with platform_acting_for(two_tenants.a.id):
            _add_feedback(session.connection(), two_tenants.a.id)
            assert session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 1
        assert db.session().in_transaction()
        assert session.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 0
        assert session.execute(text("SELECT current_setting('app.tenant_id', true)")).scalar() in ("", None)
