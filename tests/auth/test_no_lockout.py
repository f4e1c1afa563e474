"""A tenant can never be left without an administrator who can sign in, and an operator can always restore one.

Every step runs through the real forms and a real OpenID Connect provider on loopback.
"""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import text

from demo.dev_idp import DEMO_ROLE_MAPPING
from portal.cli import main
from tenants.context import platform_transaction, tenant_transaction
from tests.auth.conftest import configure_provider, configure_shaped, login
from tests.conftest import add_operator, client_as

FORM = {"domains": "marburg.de", "client_secret": "", "role_claim": "roles",
        "email_claim": "email", "extra_scopes": "", "default_role": "", "action": "save"}
ADMIN_LINES = "egovsad-admin = admin\negovsad-editor = editor\negovsad-viewer = viewer"


def _users(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return {row.email: (row.role, row.role_pinned)
                for row in session.execute(text("SELECT email, role, role_pinned FROM portal.users"))}


def _provider_row(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return session.execute(text("SELECT role_claim, role_mapping, default_role, config_version, client_id "
                                    "FROM portal.identity_providers")).one()


def _audit(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return list(session.execute(text("SELECT actor, action, details FROM portal.audit_log ORDER BY id")))


def _platform_audit(app):
    with app.app_context(), platform_transaction() as session:
        return list(session.execute(text("SELECT actor, action, target, details FROM portal.platform_audit_log "
                                         "ORDER BY id")))


def _signed_in_admin(sso_client, tenants):
    assert login(sso_client, f"/t/{tenants.a.ags}/login", "admin@marburg.de").status_code == 302
    return sso_client


def _save(client, tenants, idp, **changes):
    data = {**FORM, "discovery_url": idp.discovery, "client_id": f"client-{tenants.a.id}", "role_mapping": ADMIN_LINES,
            **changes}
    return client.post(f"/t/{tenants.a.ags}/admin/identity-provider", data=data, follow_redirects=True)


def test_a_mapping_that_leaves_no_admin_is_refused_with_the_reason(sso_app, sso_client, sso_tenants, idp):
    client = _signed_in_admin(sso_client, sso_tenants)
    before = _provider_row(sso_app, sso_tenants.a.id)
    for change in ({"role_mapping": "egovsad-editor = editor\negovsad-viewer = viewer"},
                   {"role_mapping": "egovsad-admin = editor", "default_role": "viewer"},
                   {"role_claim": "groups"},
                   {"domains": "stadt-marburg.de"},
                   {"email_claim": "upn"}):
        page = _save(client, sso_tenants, idp, **change).get_data(as_text=True)
        assert "keine Administratorin und keinen Administrator" in page, change
        assert "admin@marburg.de" in page  # who would lose it, and why
    assert _provider_row(sso_app, sso_tenants.a.id) == before
    # She signs in again and is still the administrator.
    assert login(sso_client, f"/t/{sso_tenants.a.ags}/login", "admin@marburg.de").status_code == 302
    assert client.get(f"/t/{sso_tenants.a.ags}/admin/identity-provider").status_code == 200


def test_a_mapping_that_keeps_an_admin_is_saved(sso_app, sso_client, sso_tenants, idp):
    client = _signed_in_admin(sso_client, sso_tenants)
    page = _save(client, sso_tenants, idp, role_mapping="egovsad-admin = admin\negovsad-editor = viewer")
    assert "gespeichert" in page.get_data(as_text=True)
    assert _provider_row(sso_app, sso_tenants.a.id).role_mapping == {"egovsad-admin": "admin",
                                                                     "egovsad-editor": "viewer"}


def test_an_admin_whose_role_is_fixed_in_the_portal_keeps_the_tenant_manageable(sso_app, sso_client, sso_tenants,
                                                                                idp):
    client = _signed_in_admin(sso_client, sso_tenants)
    assert login(sso_app.test_client(), f"/t/{sso_tenants.a.ags}/login", "viewer@marburg.de").status_code == 302
    with sso_app.app_context(), tenant_transaction(sso_tenants.a.id) as session:
        viewer_id = session.execute(text("SELECT id FROM portal.users WHERE email = 'viewer@marburg.de'")).scalar()
    client.post(f"/t/{sso_tenants.a.ags}/admin/users/{viewer_id}", data={"action": "role", "role": "admin"})
    # Now the claims may stop making anyone admin: the fixed role still does.
    page = _save(client, sso_tenants, idp, role_mapping="egovsad-viewer = viewer")
    assert "gespeichert" in page.get_data(as_text=True)


def test_contact_person_stays_admin_although_a_default_role_is_set(sso_app, sso_client, two_tenants, idp):
    a = two_tenants.a
    _make_contact(sso_app, a.id, "norole@marburg.de")
    configure_provider(sso_app, a.id, idp, ["marburg.de"], default_role="viewer")
    assert login(sso_client, f"/t/{a.ags}/login", "norole@marburg.de").status_code == 302
    assert _users(sso_app, a.id)["norole@marburg.de"][0] == "admin"
    # The second sign-in (no role claim at all, and a default role) keeps it.
    assert login(sso_client, f"/t/{a.ags}/login", "norole@marburg.de").status_code == 302
    assert _users(sso_app, a.id)["norole@marburg.de"][0] == "admin"
    assert sso_client.get(f"/t/{a.ags}/admin/users").status_code == 200


def test_contact_person_keeps_admin_without_any_role_claim(sso_app, sso_client, two_tenants, idp):
    a = two_tenants.a
    _make_contact(sso_app, a.id, "norole@marburg.de")
    configure_provider(sso_app, a.id, idp, ["marburg.de"])
    for _ in range(2):
        assert login(sso_client, f"/t/{a.ags}/login", "norole@marburg.de").status_code == 302
    assert _users(sso_app, a.id)["norole@marburg.de"][0] == "admin"


def _make_contact(app, tenant_id, email):
    from tenants.models import Tenant

    with app.app_context(), platform_transaction() as session:
        session.get(Tenant, tenant_id).contact_email = email


# --- the client secret --------------------------------------------------------------


PEOPLE = {"admin-1": {"email": "admin@marburg.de", "email_verified": True, "roles": ["egovsad-admin"]}}


def test_a_wrong_client_secret_fails_the_connection_test_and_is_not_saved(sso_app, sso_client, two_tenants,
                                                                          shaped_idp):
    idp = shaped_idp(PEOPLE)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"])
    assert login(sso_client, f"/t/{a.ags}/login", "admin-1").status_code == 302
    data = {**FORM, "discovery_url": idp.discovery, "client_id": "egovsad", "role_mapping": ADMIN_LINES}
    url = f"/t/{a.ags}/admin/identity-provider"
    for action in ("test", "save"):
        page = sso_client.post(url, data={**data, "client_secret": "wrong", "action": action}).get_data(as_text=True)
        assert "invalid_client" in page and "Client-Geheimnis" in page, action
    passed = sso_client.post(url, data={**data, "action": "test"}).get_data(as_text=True)  # the stored secret
    assert "Client-ID und Client-Geheimnis werden angenommen" in passed
    # The wrong secret never reached the settings: the admin still signs in.
    assert login(sso_client, f"/t/{a.ags}/login", "admin-1").status_code == 302


def test_connection_test_tells_an_unknown_client_from_a_wrong_secret_on_sign_up(sso_app, two_tenants, shaped_idp):
    idp = shaped_idp(PEOPLE)
    form = {"contact_name": "Erika", "contact_email": "erika@bad-homburg.de", "domains": "bad-homburg.de",
            "discovery_url": idp.discovery, "client_id": "egovsad", "client_secret": "wrong", "role_claim": "roles",
            "action": "test"}
    client = sso_app.test_client()
    page = client.post("/signup/06434001", data=form).get_data(as_text=True)
    assert "invalid_client" in page
    page = client.post("/signup/06434001", data={**form, "client_secret": "municipal-secret"}).get_data(as_text=True)
    assert "Client-ID und Client-Geheimnis werden angenommen" in page


# --- break-glass: operators -------------------------------------------------------------


def _lock_out(app, tenant_id):
    """What a provider-side change does: the admin's group is gone, her next sign-in makes her a viewer."""
    with app.app_context(), tenant_transaction(tenant_id) as session:
        session.execute(text("UPDATE portal.users SET role = 'viewer'"))
        session.execute(text("UPDATE portal.identity_providers SET role_mapping = '{}'::jsonb, default_role = NULL"))


def test_operator_restores_an_admin_in_the_console(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302
    _lock_out(sso_app, a.id)
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 403
    operator = client_as(sso_app, add_operator(sso_app, "op@egovsad.example"))
    page = operator.get(f"/operator/tenants/{a.ags}/access")
    assert page.status_code == 200 and "admin@marburg.de" in page.get_data(as_text=True)
    done = operator.post(f"/operator/tenants/{a.ags}/access/admin", data={"email": "admin@marburg.de",
                                                                          "reason": "Ticket 4711"})
    assert done.status_code == 302
    assert _users(sso_app, a.id)["admin@marburg.de"] == ("admin", True)
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302
    assert sso_client.get(f"/t/{a.ags}/admin/users").status_code == 200
    tenant_entry = [e for e in _audit(sso_app, a.id) if e.action == "break_glass.admin_granted"]
    platform_entry = [e for e in _platform_audit(sso_app) if e.action == "break_glass.admin_granted"]
    assert tenant_entry and tenant_entry[0].actor.startswith("operator:") and \
        tenant_entry[0].details["reason"] == "Ticket 4711"
    assert platform_entry and platform_entry[0].target == a.ags


def test_operator_grants_admin_to_someone_who_never_signed_in(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    operator = client_as(sso_app, add_operator(sso_app, "op@egovsad.example"))
    operator.post(f"/operator/tenants/{a.ags}/access/admin", data={"email": "norole@marburg.de", "reason": "neu"})
    assert login(sso_client, f"/t/{a.ags}/login", "norole@marburg.de").status_code == 302
    assert _users(sso_app, a.id)["norole@marburg.de"] == ("admin", True)
    # Only an address of the tenant's domains.
    refused = operator.post(f"/operator/tenants/{a.ags}/access/admin", data={"email": "x@fulda.de", "reason": "-"},
                            follow_redirects=True)
    assert "fulda.de" in refused.get_data(as_text=True) and "x@fulda.de" not in _users(sso_app, a.id)


def test_operator_restores_earlier_identity_settings(sso_app, sso_client, sso_tenants, other_idp):
    a = sso_tenants.a
    first = _provider_row(sso_app, a.id)
    configure_provider(sso_app, a.id, other_idp, ["marburg.de"], role_mapping={"nobody": "admin"})
    operator = client_as(sso_app, add_operator(sso_app, "op@egovsad.example"))
    page = operator.get(f"/operator/tenants/{a.ags}/access").get_data(as_text=True)
    assert other_idp.issuer in page
    operator.post(f"/operator/tenants/{a.ags}/access/restore", data={"version": str(first.config_version),
                                                                     "reason": "Fehlkonfiguration"})
    restored = _provider_row(sso_app, a.id)
    assert restored.role_mapping == DEMO_ROLE_MAPPING and restored.config_version > first.config_version + 1
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302
    assert any(e.action == "break_glass.identity_restored" for e in _audit(sso_app, a.id))
    assert any(e.action == "break_glass.identity_restored" for e in _platform_audit(sso_app))


def test_operators_still_get_403_on_the_tenant_admins_own_pages(sso_app, sso_tenants):
    operator = client_as(sso_app, add_operator(sso_app, "op@egovsad.example"))
    assert operator.get(f"/t/{sso_tenants.a.ags}/admin/identity-provider").status_code == 403


# --- break-glass: the command line ---------------------------------------------------------


def test_cli_restores_an_admin_and_identity_settings(sso_app, sso_client, sso_tenants, other_idp):
    a = sso_tenants.a
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302
    first = _provider_row(sso_app, a.id)
    configure_provider(sso_app, a.id, other_idp, ["marburg.de"], role_mapping={"nobody": "admin"})
    _lock_out(sso_app, a.id)
    runner = CliRunner()
    shown = runner.invoke(main, ["tenants", "identity", a.ags], catch_exceptions=False)
    assert shown.exit_code == 0 and other_idp.issuer in shown.output and f"v{first.config_version}" in shown.output
    restored = runner.invoke(main, ["tenants", "identity", a.ags, "--restore", str(first.config_version),
                                    "--reason", "Ticket 4712"], catch_exceptions=False)
    assert restored.exit_code == 0, restored.output
    granted = runner.invoke(main, ["tenants", "grant-admin", a.ags, "admin@marburg.de", "--reason", "Ticket 4712"],
                            catch_exceptions=False)
    assert granted.exit_code == 0, granted.output
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302
    assert _users(sso_app, a.id)["admin@marburg.de"] == ("admin", True)
    actions = [(e.actor, e.action) for e in _audit(sso_app, a.id)]
    assert ("cli", "break_glass.identity_restored") in actions and ("cli", "break_glass.admin_granted") in actions
    assert {e.action for e in _platform_audit(sso_app)} >= {"break_glass.identity_restored",
                                                            "break_glass.admin_granted"}


def test_moving_to_another_provider_keeps_the_acting_admin(sso_app, sso_client, sso_tenants, idp, other_idp):
    """Subjects differ at another provider: she is found again by her address, with her role fixed."""
    client = _signed_in_admin(sso_client, sso_tenants)
    page = _save(client, sso_tenants, other_idp, client_id="new-client",
                 role_mapping="egovsad-viewer = viewer").get_data(as_text=True)
    assert "gespeichert" in page
    assert login(sso_client, f"/t/{sso_tenants.a.ags}/login", "admin@marburg.de").status_code == 302
    assert _users(sso_app, sso_tenants.a.id) == {"admin@marburg.de": ("admin", True)}
    assert client.get(f"/t/{sso_tenants.a.ags}/admin/users").status_code == 200


def test_an_admin_cannot_step_down_for_one_whose_claims_no_longer_make_them_admin(sso_app, sso_client, sso_tenants):
    """Another admin row counts only if that person would still be admin at their next sign-in."""
    a = sso_tenants.a
    client = _signed_in_admin(sso_client, sso_tenants)
    assert login(sso_app.test_client(), f"/t/{a.ags}/login", "editor@marburg.de").status_code == 302
    with sso_app.app_context(), tenant_transaction(a.id) as session:
        # An admin in the database whose provider says editor: the next sign-in makes them an editor.
        session.execute(text("UPDATE portal.users SET role = 'admin' WHERE email = 'editor@marburg.de'"))
        own = session.execute(text("SELECT id FROM portal.users WHERE email = 'admin@marburg.de'")).scalar()
    page = client.post(f"/t/{a.ags}/admin/users/{own}", data={"action": "role", "role": "viewer"},
                       follow_redirects=True).get_data(as_text=True)
    assert "mindestens eine aktive Administration" in page
    assert _users(sso_app, a.id)["admin@marburg.de"] == ("admin", False)
