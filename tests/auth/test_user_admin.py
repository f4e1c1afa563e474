"""A tenant admin manages users and the identity provider; everything lands in the audit log."""

from __future__ import annotations

from sqlalchemy import text

from tenants.context import tenant_transaction
from tests.auth.conftest import login


def _rows(app, tenant_id, sql, **params):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return [tuple(r) for r in session.execute(text(sql), params)]


def _user_id(app, tenant_id, email):
    return _rows(app, tenant_id, "SELECT id FROM portal.users WHERE email = :e", e=email)[0][0]


def test_role_set_by_the_admin_is_kept_and_deactivation_ends_access(sso_app, sso_tenants):
    a = sso_tenants.a
    admin, viewer = sso_app.test_client(), sso_app.test_client()
    login(admin, f"/t/{a.ags}/login", "admin@marburg.de")
    login(viewer, f"/t/{a.ags}/login", "viewer@marburg.de")
    viewer_id = _user_id(sso_app, a.id, "viewer@marburg.de")

    admin.post(f"/t/{a.ags}/admin/users/{viewer_id}", data={"action": "role", "role": "editor"})
    # The provider still says "viewer"; the admin's choice wins at the next sign-in.
    login(viewer, f"/t/{a.ags}/login", "viewer@marburg.de")
    assert _rows(sso_app, a.id, "SELECT role, role_pinned FROM portal.users WHERE email = 'viewer@marburg.de'") \
        == [("editor", True)]

    admin.post(f"/t/{a.ags}/admin/users/{viewer_id}", data={"action": "deactivate"})
    assert viewer.get(f"/t/{a.ags}/").status_code == 302
    assert login(viewer, f"/t/{a.ags}/login", "viewer@marburg.de").status_code == 403
    admin.post(f"/t/{a.ags}/admin/users/{viewer_id}", data={"action": "reactivate"})
    assert login(viewer, f"/t/{a.ags}/login", "viewer@marburg.de").status_code == 302

    actions = _rows(sso_app, a.id, "SELECT action, host(remote_addr) FROM portal.audit_log "
                                   "WHERE action LIKE 'user.%' ORDER BY id")
    assert actions == [("user.role_changed", "127.0.0.1"), ("user.deactivated", "127.0.0.1"),
                       ("user.reactivated", "127.0.0.1")]


def test_the_last_admin_cannot_demote_or_deactivate_themselves(sso_app, sso_tenants):
    a = sso_tenants.a
    admin = sso_app.test_client()
    login(admin, f"/t/{a.ags}/login", "admin@marburg.de")
    admin_id = _user_id(sso_app, a.id, "admin@marburg.de")
    response = admin.post(f"/t/{a.ags}/admin/users/{admin_id}", data={"action": "role", "role": "viewer"},
                          follow_redirects=True)
    assert "mindestens eine aktive Administration" in response.get_data(as_text=True)
    admin.post(f"/t/{a.ags}/admin/users/{admin_id}", data={"action": "deactivate"})
    assert _rows(sso_app, a.id, "SELECT role, active FROM portal.users") == [("admin", True)]


def test_identity_provider_settings_are_tested_encrypted_versioned_and_audited(sso_app, sso_tenants, idp,
                                                                                other_idp, settings):
    from tenants.crypto import decrypt

    a = sso_tenants.a
    admin = sso_app.test_client()
    login(admin, f"/t/{a.ags}/login", "admin@marburg.de")
    form = {"domains": "marburg.de", "discovery_url": other_idp.discovery, "client_id": "neu",
            "client_secret": "neues-geheimnis", "role_claim": "roles",
            "role_mapping": "egovsad-admin = admin", "default_role": "viewer", "action": "test"}
    tested = admin.post(f"/t/{a.ags}/admin/identity-provider", data=form)
    assert "Verbindungstest erfolgreich" in tested.get_data(as_text=True)
    assert _rows(sso_app, a.id, "SELECT client_id, config_version FROM portal.identity_providers")[0][1] == 1

    # Another municipality's domain is refused, and nothing is saved.
    refused = admin.post(f"/t/{a.ags}/admin/identity-provider",
                         data={**form, "domains": "marburg.de, fulda.de", "action": "save"})
    assert "bereits für eine andere Kommune registriert" in refused.get_data(as_text=True)
    # An address that is no OpenID provider is refused by the connection test.
    broken = admin.post(f"/t/{a.ags}/admin/identity-provider",
                        data={**form, "discovery_url": other_idp.url + "/nope", "action": "save"})
    assert "antwortet mit HTTP 404" in broken.get_data(as_text=True)
    assert _rows(sso_app, a.id, "SELECT client_id, config_version FROM portal.identity_providers") == [
        (f"client-{a.id}", 1)]

    admin.post(f"/t/{a.ags}/admin/identity-provider", data={**form, "action": "save"})
    ((client_id, version, issuer, stored, default_role),) = _rows(
        sso_app, a.id, "SELECT client_id, config_version, issuer, client_secret_encrypted, default_role "
                       "FROM portal.identity_providers")
    assert (client_id, version, issuer, default_role) == ("neu", 2, other_idp.issuer, "viewer")
    assert "neues-geheimnis" not in stored and decrypt(settings, stored) == "neues-geheimnis"
    assert ("identity_provider.saved",) in _rows(sso_app, a.id, "SELECT action FROM portal.audit_log")
    # An empty secret keeps the stored one.
    admin.post(f"/t/{a.ags}/admin/identity-provider", data={**form, "client_secret": "", "action": "save"})
    assert _rows(sso_app, a.id, "SELECT client_secret_encrypted FROM portal.identity_providers") == [(stored,)]
