"""The sign-up's contact person becomes admin only while the tenant has no active admin (docs/architecture.md).

A deactivated admin does not count: a tenant whose only admin left must not be locked out of its own
administration. An active admin does: then the contact person needs a role like everyone else.
"""

from __future__ import annotations

from sqlalchemy import text

from tenants.context import platform_transaction, tenant_transaction
from tests.auth.conftest import login


def _users(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return dict(session.execute(text("SELECT email, role FROM portal.users WHERE active")).all())


def _contact_and_admin(app, tenant_id: int, admin_active: bool) -> None:
    from tenants.models import Tenant, User

    with app.app_context(), platform_transaction() as session:
        session.get(Tenant, tenant_id).contact_email = "norole@marburg.de"
    with app.app_context(), tenant_transaction(tenant_id) as session:
        session.add(User(tenant_id=tenant_id, subject="old-admin", email="chefin@marburg.de", role="admin",
                         active=admin_active))


def test_with_only_a_deactivated_admin_the_contact_person_becomes_admin(sso_app, sso_client, sso_tenants):
    _contact_and_admin(sso_app, sso_tenants.a.id, admin_active=False)
    assert login(sso_client, f"/t/{sso_tenants.a.ags}/login", "norole@marburg.de").status_code == 302
    assert _users(sso_app, sso_tenants.a.id) == {"norole@marburg.de": "admin"}


def test_with_an_active_admin_the_contact_person_gets_no_role_of_its_own(sso_app, sso_client, sso_tenants):
    _contact_and_admin(sso_app, sso_tenants.a.id, admin_active=True)
    assert login(sso_client, f"/t/{sso_tenants.a.ags}/login", "norole@marburg.de").status_code == 403
    assert _users(sso_app, sso_tenants.a.id) == {"chefin@marburg.de": "admin"}
