"""Claims as real providers send them, each from a real OpenID Connect server on loopback.

The shapes follow the providers' documentation: Keycloak (roles nested under ``realm_access`` and
``resource_access.<client>``), Microsoft Entra ID and ADFS (no ``email`` for accounts without a
mailbox, ``upn`` instead; group object ids; ``_claim_names`` instead of ``groups`` for a user in more
than 200 groups; ADFS sends one group as a plain string), Authentik (group names with spaces), and
providers that type values as strings (Amazon Cognito's ``"email_verified": "false"``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from tenants.context import tenant_transaction
from tests.auth.conftest import configure_shaped, login, start_login

ADMIN_GROUP = "6c2f3a1e-8b4d-4f0e-9a57-2b1d7c9e0f11"  # an Entra group's object id

KEYCLOAK = {
    "f3b2c1d0-erika": {"email": "erika@marburg.de", "email_verified": True, "preferred_username": "erika",
                       "realm_access": {"roles": ["default-roles-marburg", "offline_access", "egov-admin"]},
                       "resource_access": {"egov-portal": {"roles": ["redaktion"]},
                                           "account": {"roles": ["manage-account"]}}},
    "a7e9d8c6-max": {"email": "max@marburg.de", "email_verified": True,
                     "realm_access": {"roles": ["default-roles-marburg", "offline_access"]},
                     "resource_access": {"egov-portal": {"roles": ["redaktion"]}}},
}

ENTRA = {
    # Pairwise subjects, as Entra ID issues them; no e-mail claim (no mailbox attribute).
    "Jm4bXhZ0pE-erika": {"oid": "0a1b2c3d-0000-4000-8000-000000000001", "tid": "9f8e7d6c-0000-4000-8000-0000000000aa",
                         "upn": "erika@marburg.de", "preferred_username": "erika@marburg.de", "name": "Erika Muster",
                         "groups": [ADMIN_GROUP, "0d1e2f3a-0000-4000-8000-000000000002"]},
    "Kq9cYw1rT-intruder": {"upn": "erika@fulda.de", "preferred_username": "erika@fulda.de",
                           "groups": [ADMIN_GROUP]},
    # More than 200 groups: Entra leaves out ``groups`` and points at Microsoft Graph instead.
    "Lp2dZx3sU-overage": {"upn": "viele.gruppen@marburg.de", "name": "Viele Gruppen",
                          "_claim_names": {"groups": "src1"},
                          "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/9f8e7d6c/users/"
                                                                  "0a1b/getMemberObjects"}}},
}

ADFS = {
    "adfs-erika": {"upn": "erika@marburg.de", "unique_name": "MARBURG\\erika", "group": "eGov-Admins"},
    "adfs-max": {"upn": "max@marburg.de", "unique_name": "MARBURG\\max", "group": ["Domain Users", "eGov-Leser"]},
}

AUTHENTIK = {
    "5f1c0e7b9a": {"email": "erika@marburg.de", "email_verified": True, "preferred_username": "erika",
                   "nickname": "erika", "name": "Erika Muster", "groups": ["authentik Admins", "eGov Redaktion"]},
}


def _users(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return {row.email: row.role for row in session.execute(text("SELECT email, role FROM portal.users"))}


def _refusal(response) -> str:
    assert response.status_code == 403, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_keycloak_realm_roles_by_path(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(KEYCLOAK)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="realm_access.roles",
                     role_mapping={"egov-admin": "admin"})
    assert login(sso_client, f"/t/{a.ags}/login", "f3b2c1d0-erika").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "admin"}


def test_keycloak_client_roles_under_a_client_id_with_a_hyphen(sso_app, sso_client, two_tenants, shaped_idp):
    # As the admin would type it (dotted), and as JMESPath wants it (quoted): both work.
    idp = shaped_idp(KEYCLOAK)
    a = two_tenants.a
    for path in ("resource_access.egov-portal.roles", 'resource_access."egov-portal".roles'):
        configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim=path, role_mapping={"redaktion": "editor"})
        assert login(sso_client, f"/t/{a.ags}/login", "a7e9d8c6-max").status_code == 302
        assert _users(sso_app, a.id)["max@marburg.de"] == "editor"


def test_claims_only_at_the_userinfo_endpoint_are_read_by_path(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(KEYCLOAK, claims_in_id_token=False)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="realm_access.roles",
                     role_mapping={"egov-admin": "admin"})
    assert login(sso_client, f"/t/{a.ags}/login", "f3b2c1d0-erika").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "admin"}


def test_entra_account_without_mailbox_signs_in_by_upn(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(ENTRA)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups", role_mapping={ADMIN_GROUP: "admin"})
    # With the default (the e-mail claim), the account is refused with a message naming the claim ...
    assert "email" in _refusal(login(sso_client, f"/t/{a.ags}/login", "Jm4bXhZ0pE-erika"))
    # ... and the setting for another claim lets it in.
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups", role_mapping={ADMIN_GROUP: "admin"},
                     email_claim="upn")
    assert login(sso_client, f"/t/{a.ags}/login", "Jm4bXhZ0pE-erika").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "admin"}


def test_the_configured_claim_is_checked_against_the_tenants_domains(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(ENTRA)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups", role_mapping={ADMIN_GROUP: "admin"},
                     email_claim="upn")
    assert "erika@fulda.de" in _refusal(login(sso_client, f"/t/{a.ags}/login", "Kq9cYw1rT-intruder"))
    assert _users(sso_app, a.id) == {}


def test_entra_group_overage_gets_a_message_that_says_what_to_do(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(ENTRA)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups", role_mapping={ADMIN_GROUP: "admin"},
                     email_claim="upn", default_role="viewer")
    body = _refusal(login(sso_client, f"/t/{a.ags}/login", "Lp2dZx3sU-overage"))
    assert "200 Gruppen" in body and "App-Rollen" in body
    # Not silently made a viewer by the default role: the groups are unknown, not absent.
    assert _users(sso_app, a.id) == {}


def test_adfs_single_group_as_a_string_and_group_names_with_spaces(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(ADFS)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="group", email_claim="upn",
                     role_mapping={"eGov-Admins": "admin", "eGov-Leser": "viewer", "Domain Users Marburg": "editor"})
    assert login(sso_client, f"/t/{a.ags}/login", "adfs-erika").status_code == 302
    assert login(sso_client, f"/t/{a.ags}/login", "adfs-max").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "admin", "max@marburg.de": "viewer"}


def test_authentik_group_names_with_spaces(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(AUTHENTIK)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups",
                     role_mapping={"eGov Redaktion": "editor"})
    assert login(sso_client, f"/t/{a.ags}/login", "5f1c0e7b9a").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "editor"}


def test_groups_released_only_for_an_extra_scope(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(AUTHENTIK, scope_claims={"groups": ["groups"]})
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups",
                     role_mapping={"eGov Redaktion": "editor"})
    assert "keine Rolle" in _refusal(login(sso_client, f"/t/{a.ags}/login", "5f1c0e7b9a"))
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups",
                     role_mapping={"eGov Redaktion": "editor"}, scopes="openid email profile groups")
    requested = parse_qs(urlsplit(start_login(sso_client, f"/t/{a.ags}/login")).query)["scope"][0].split()
    assert "groups" in requested
    assert login(sso_client, f"/t/{a.ags}/login", "5f1c0e7b9a").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "editor"}


def test_typed_claim_values(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp({
        "cognito-1": {"email": "erika@marburg.de", "email_verified": "true", "custom:egov_admin": True},
        "cognito-2": {"email": "max@marburg.de", "email_verified": "false", "custom:egov_admin": True},
        "level-3": {"email": "moritz@marburg.de", "email_verified": True, "custom:egov_admin": 1.0},
        "spaces": {"email": "lena@marburg.de", "email_verified": True, "custom:egov_admin": "leser  egov-admin"},
    })
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="custom:egov_admin",
                     role_mapping={"true": "admin", "1": "editor", "egov-admin": "admin"})
    assert login(sso_client, f"/t/{a.ags}/login", "cognito-1").status_code == 302
    assert "nicht bestätigt" in _refusal(login(sso_client, f"/t/{a.ags}/login", "cognito-2"))
    assert login(sso_client, f"/t/{a.ags}/login", "level-3").status_code == 302
    assert login(sso_client, f"/t/{a.ags}/login", "spaces").status_code == 302
    assert _users(sso_app, a.id) == {"erika@marburg.de": "admin", "moritz@marburg.de": "editor",
                                     "lena@marburg.de": "admin"}


def test_token_request_uses_an_auth_method_the_provider_supports(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(AUTHENTIK, auth_methods=("client_secret_post",))
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"], role_claim="groups",
                     role_mapping={"eGov Redaktion": "editor"})
    assert login(sso_client, f"/t/{a.ags}/login", "5f1c0e7b9a").status_code == 302
    assert idp.server.token_requests[-1].get("client_secret")
