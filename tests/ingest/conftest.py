"""Fixtures of the ingest tests: data sources, signed-in staff, files written like German offices write them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text

from tenants.context import tenant_transaction
from tenants.models import DataSource, User
from tests.conftest import sign_in as register_session

EVENT_HEADER = "event_id,occurred_at,service_key,session_id,event_type,step_no,step_name,channel,payment_method," \
               "payment_provider,auth_method,trust_level"
HUNDESTEUER = "99102013104000"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    from tenants.ingest import runs

    monkeypatch.setattr(runs, "RETRY_DELAYS", [0, 0, 0])


def add_source(tenant_id: int, name: str, kind: str = "upload", profile: str = "canonical", config=None) -> int:
    with tenant_transaction(tenant_id) as session:
        source = DataSource(tenant_id=tenant_id, name=name, kind=kind, mapping_profile=profile, config=config or {})
        session.add(source)
        session.flush()
        return source.id


@pytest.fixture
def sources(app, two_tenants):
    with app.app_context():
        return SimpleNamespace(
            a=add_source(two_tenants.a.id, "Formulardienst"),
            civento=add_source(two_tenants.a.id, "civento", profile="civento"),
            maengel=add_source(two_tenants.a.id, "Mängelmelder", profile="maengelmelder"),
            b=add_source(two_tenants.b.id, "Formulardienst"),
        )


def sign_in(app, tenant_id: int, role: str = "admin"):
    """A test client whose session belongs to the tenant's member of staff with ``role`` (created on first use)."""
    with app.app_context(), tenant_transaction(tenant_id) as session:
        subject = f"{role}-{tenant_id}"
        user = session.query(User).filter_by(tenant_id=tenant_id, subject=subject).one_or_none()
        if user is None:
            user = User(tenant_id=tenant_id, subject=subject, email=f"{role}@example.org", role=role)
            session.add(user)
            session.flush()
        identity = f"u:{tenant_id}:{user.id}"
    return client_for(app, identity)


def client_for(app, identity: str):
    """A test client signed in as ``identity`` that sends a valid CSRF token with every request."""
    client = app.test_client()
    register_session(client, identity)
    with client.session_transaction() as flask_session:
        flask_session["csrf_token"] = "raw-test-csrf"
    # The signed form of the session's CSRF token, sent as Flask-WTF's header.
    signed = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps("raw-test-csrf")
    client.environ_base["HTTP_X_CSRFTOKEN"] = signed
    return client


def rows(app, tenant_id: int, sql: str, **params):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return [tuple(r) for r in session.execute(text(sql), params).all()]


def write(path, content: str, encoding: str = "utf-8") -> str:
    path.write_bytes(content.encode(encoding))
    return str(path)
