"""Role checks on views: anonymous, each staff role and operators."""

import pytest
from flask import Blueprint

from portal.access import operator_required, role_required
from tenants.context import tenant_transaction
from tenants.models import User
from tests.conftest import add_operator, sign_in


@pytest.fixture
def access_app(database, redis_conn):
    from portal import create_app

    app = create_app({"TESTING": True}, settings=database)
    bp = Blueprint("tenant_access_probe", __name__)

    @bp.get("/t/<ags>/_editor")
    @role_required("editor")
    def editor_page():
        return "ok"

    @bp.get("/_operator")
    @operator_required
    def operator_page():
        return "ok"

    app.register_blueprint(bp)
    return app


@pytest.fixture
def people(access_app, two_tenants):
    ids = {}
    with access_app.app_context():
        for role in ("viewer", "editor", "admin"):
            with tenant_transaction(two_tenants.a.id) as session:
                user = User(tenant_id=two_tenants.a.id, subject=role, email=f"{role}@marburg.de", role=role)
                session.add(user)
                session.flush()
                ids[role] = f"u:{two_tenants.a.id}:{user.id}"
    ids["operator"] = add_operator(access_app)
    return ids


def _get(app, identity, path):
    client = app.test_client()
    if identity:
        sign_in(client, identity)
    return client.get(path).status_code


@pytest.mark.parametrize(("who", "expected"), [
    ("viewer", 403), ("editor", 200), ("admin", 200), ("operator", 403), (None, 302),
])
def test_editor_page(access_app, people, two_tenants, who, expected):
    assert _get(access_app, people.get(who), f"/t/{two_tenants.a.ags}/_editor") == expected


@pytest.mark.parametrize(("who", "expected"), [("operator", 200), ("admin", 403), (None, 302)])
def test_operator_page(access_app, people, who, expected):
    assert _get(access_app, people.get(who), "/_operator") == expected


def test_staff_of_a_asking_for_b_get_404(access_app, people, two_tenants):
    assert _get(access_app, people["admin"], f"/t/{two_tenants.b.ags}/_editor") == 404
