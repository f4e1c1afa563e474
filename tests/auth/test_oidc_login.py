"""Sign-in through a real OpenID Connect provider: what is admitted and everything that must be refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests
from sqlalchemy import text

from portal.sessions import KEY, SID
from tenants.context import platform_transaction, tenant_transaction
from tests.auth.conftest import authorize, configure_provider, login, start_login


def _forwarded_to(response) -> str:
    """Where a forwarding page (auth/forward.html) sends the browser."""
    import html
    import re

    match = re.search(r'id="forward-link" href="([^"]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return html.unescape(match.group(1))


def _users(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return {row.email: row.role for row in session.execute(text("SELECT email, role FROM portal.users"))}


def _refused(response, fragment: str = "") -> bool:
    body = response.get_data(as_text=True)
    return response.status_code == 403 and 'id="refusal-reason"' in body and fragment in body


def _audit_actions(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return list(session.execute(text("SELECT action FROM portal.audit_log ORDER BY id")).scalars())


def test_staff_sign_in_with_role_from_the_claim(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    response = login(sso_client, f"/t/{a.ags}/login", "editor@marburg.de")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/t/{a.ags}/")
    page = sso_client.get(f"/t/{a.ags}/")
    assert page.status_code == 200 and "editor@marburg.de" in page.get_data(as_text=True)
    assert _users(sso_app, a.id) == {"editor@marburg.de": "editor"}
    assert "login" in _audit_actions(sso_app, a.id)
    # An editor is not an admin.
    assert sso_client.get(f"/t/{a.ags}/admin/users").status_code == 403


def test_the_authorization_request_uses_pkce_state_and_nonce(sso_client, sso_tenants):
    query = parse_qs(urlsplit(start_login(sso_client, f"/t/{sso_tenants.a.ags}/login")).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0] and query["response_type"] == ["code"]
    assert "openid" in query["scope"][0].split()


def test_sign_in_by_e_mail_domain_discovery(sso_client, sso_tenants):
    response = sso_client.post("/login", data={"email": "Viewer@Marburg.de"})
    assert response.status_code == 200
    assert urlsplit(_forwarded_to(response)).path == f"/t/{sso_tenants.a.ags}/login"
    unknown = sso_client.post("/login", data={"email": "someone@unknown-town.de"})
    assert unknown.status_code == 200 and "kein" in unknown.get_data(as_text=True).lower()


def test_a_new_session_is_issued_at_sign_in(sso_app, sso_client, sso_tenants):
    with sso_client.session_transaction() as session:
        session["planted"] = "by an attacker before sign-in"
    login(sso_client, f"/t/{sso_tenants.a.ags}/login", "viewer@marburg.de")
    with sso_client.session_transaction() as session:
        assert "planted" not in session and session.get(SID)
        assert session["_user_id"].startswith(f"u:{sso_tenants.a.id}:")


def test_idle_sessions_and_signed_out_sessions_are_dead(sso_app, sso_client, sso_tenants, redis_conn):
    a = sso_tenants.a
    login(sso_client, f"/t/{a.ags}/login", "viewer@marburg.de")
    with sso_client.session_transaction() as session:
        saved = dict(session)
    assert redis_conn.ttl(KEY.format(saved[SID])) <= sso_app.config["EGOV"].session_idle_minutes * 60
    redis_conn.delete(KEY.format(saved[SID]))  # what the idle timeout does
    assert sso_client.get(f"/t/{a.ags}/").status_code == 302
    # A copy of the cookie taken before sign-out does not come back to life.
    login(sso_client, f"/t/{a.ags}/login", "viewer@marburg.de")
    with sso_client.session_transaction() as session:
        copy = dict(session)
    sso_client.post("/logout")
    thief = sso_app.test_client()
    with thief.session_transaction() as session:
        session.update(copy)
    assert thief.get(f"/t/{a.ags}/").status_code == 302


def test_rp_initiated_logout_goes_to_the_providers_end_session_endpoint(sso_client, sso_tenants, idp):
    login(sso_client, f"/t/{sso_tenants.a.ags}/login", "viewer@marburg.de")
    response = sso_client.post("/logout")
    location = urlsplit(_forwarded_to(response))
    assert f"{location.scheme}://{location.netloc}" == idp.url
    query = parse_qs(location.query)
    assert query["id_token_hint"][0].count(".") == 2 and query["post_logout_redirect_uri"]
    assert sso_client.get(f"/t/{sso_tenants.a.ags}/").status_code == 302


def test_contact_person_becomes_the_first_admin(sso_app, sso_client, sso_tenants):
    from tenants.models import Tenant

    with sso_app.app_context(), platform_transaction() as session:
        session.get(Tenant, sso_tenants.a.id).contact_email = "norole@marburg.de"
    login(sso_client, f"/t/{sso_tenants.a.ags}/login", "norole@marburg.de")
    assert _users(sso_app, sso_tenants.a.id) == {"norole@marburg.de": "admin"}


# --- refused ------------------------------------------------------------------


def test_replayed_callback_is_refused(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    callback = authorize(start_login(sso_client, f"/t/{a.ags}/login"), "viewer@marburg.de")
    with sso_client.session_transaction() as session:
        before = dict(session)  # an attacker's copy of the cookie before the callback
    assert sso_client.get(callback).status_code == 302
    # Same browser: the state was used up.
    assert _refused(sso_client.get(callback))
    # Replayed with the old cookie: the provider does not take the code twice.
    replay = sso_app.test_client()
    with replay.session_transaction() as session:
        session.update(before)
    assert _refused(replay.get(callback))
    assert "login.refused" in _audit_actions(sso_app, a.id)


def test_wrong_state_is_refused(sso_app, sso_client, sso_tenants):
    callback = authorize(start_login(sso_client, f"/t/{sso_tenants.a.ags}/login"), "admin@marburg.de")
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    query["state"] = ["forged-" + query["state"][0]]
    assert _refused(sso_client.get(urlunsplit(parts._replace(query=urlencode(query, doseq=True)))))
    assert _users(sso_app, sso_tenants.a.id) == {}


def test_wrong_nonce_is_refused(sso_app, sso_client, sso_tenants):
    authorization = urlsplit(start_login(sso_client, f"/t/{sso_tenants.a.ags}/login"))
    query = parse_qs(authorization.query)
    query["nonce"] = ["a-nonce-the-portal-never-issued"]
    tampered = urlunsplit(authorization._replace(query=urlencode(query, doseq=True)))
    assert _refused(sso_client.get(authorize(tampered, "admin@marburg.de")))
    assert _users(sso_app, sso_tenants.a.id) == {}


def test_expired_id_token_is_refused(sso_app, sso_client, sso_tenants, expired_idp):
    configure_provider(sso_app, sso_tenants.a.id, expired_idp, ["marburg.de"])
    assert _refused(login(sso_client, f"/t/{sso_tenants.a.ags}/login", "admin@marburg.de"), "ExpiredTokenError")
    assert _users(sso_app, sso_tenants.a.id) == {}


def _pin_issuer(app, tenant_id, issuer):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        session.execute(text("UPDATE portal.identity_providers SET issuer = :i"), {"i": issuer})


def test_provider_answering_as_a_foreign_issuer_is_refused(sso_app, sso_client, sso_tenants, other_idp):
    # The settings pinned another issuer than the one that now answers at the discovery URL.
    _pin_issuer(sso_app, sso_tenants.a.id, other_idp.issuer)
    assert _refused(sso_client.get(f"/t/{sso_tenants.a.ags}/login"))


def test_id_token_from_a_foreign_issuer_is_refused(sso_app, sso_client, sso_tenants, other_idp):
    callback = authorize(start_login(sso_client, f"/t/{sso_tenants.a.ags}/login"), "admin@marburg.de")
    # While the person was at the provider, the tenant's trusted issuer became another one:
    # the ID token (iss = the first provider) no longer fits and must not be accepted.
    _pin_issuer(sso_app, sso_tenants.a.id, other_idp.issuer)
    assert _refused(sso_client.get(callback), "InvalidClaimError")
    assert _users(sso_app, sso_tenants.a.id) == {}


def test_provider_of_a_cannot_vouch_for_a_user_of_b(sso_app, sso_client, sso_tenants):
    response = login(sso_client, f"/t/{sso_tenants.a.ags}/login", "intruder@fulda.de")
    assert _refused(response, "intruder@fulda.de")
    assert _users(sso_app, sso_tenants.a.id) == {} and _users(sso_app, sso_tenants.b.id) == {}


def test_user_without_a_role_claim_is_refused(sso_app, sso_client, sso_tenants):
    assert _refused(login(sso_client, f"/t/{sso_tenants.a.ags}/login", "norole@marburg.de"))
    assert _users(sso_app, sso_tenants.a.id) == {}


def test_settings_change_takes_effect_at_once(sso_app, sso_client, sso_tenants, other_idp):
    a = sso_tenants.a
    assert start_login(sso_client, f"/t/{a.ags}/login").startswith(sso_app.config["EGOV"].operator_oidc_discovery_url
                                                                   .split("/.well-known")[0])
    configure_provider(sso_app, a.id, other_idp, ["marburg.de"])
    assert start_login(sso_client, f"/t/{a.ags}/login").startswith(other_idp.url)
    assert login(sso_client, f"/t/{a.ags}/login", "viewer@marburg.de").status_code == 302


def test_deactivated_user_cannot_sign_in_and_loses_the_session(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    login(sso_client, f"/t/{a.ags}/login", "viewer@marburg.de")
    with sso_app.app_context(), tenant_transaction(a.id) as session:
        session.execute(text("UPDATE portal.users SET active = false"))
    assert sso_client.get(f"/t/{a.ags}/").status_code == 302
    assert _refused(login(sso_client, f"/t/{a.ags}/login", "viewer@marburg.de"), "deaktiviert")


# --- operators ------------------------------------------------------------------


def test_operator_signs_in_through_the_platform_provider(sso_app, sso_client, sso_tenants):
    response = login(sso_client, "/operator/login", "operator@egovsad.example")
    assert response.status_code == 302 and response.headers["Location"].endswith("/operator/")
    assert sso_client.get("/operator/").status_code == 200
    # Operators belong to no tenant: tenant pages are not theirs.
    assert sso_client.get(f"/t/{sso_tenants.a.ags}/").status_code == 403


def test_person_without_the_operator_claim_is_refused(sso_app, sso_client, sso_tenants):
    assert _refused(login(sso_client, "/operator/login", "staff@egovsad.example"))
    assert sso_client.get("/operator/").status_code == 302


def test_discovery_check_before_saving(sso_app, sso_tenants, idp):
    from tenants.identity import IdentityError, check_provider

    settings = sso_app.config["EGOV"]
    check = check_provider(idp.discovery, settings)
    assert check.issuer == idp.issuer and check.key_count >= 1
    for broken in (idp.url + "/nothing-here", "http://127.0.0.1:9/.well-known/openid-configuration"):
        try:
            check_provider(broken, settings)
        except IdentityError:
            continue
        raise AssertionError(f"{broken} passed the connection test")
    assert requests.get(idp.discovery, timeout=5).status_code == 200


def test_production_refuses_providers_on_private_addresses(sso_app, idp):
    import dataclasses

    from tenants.identity import IdentityError, check_provider

    strict = dataclasses.replace(sso_app.config["EGOV"], oidc_allow_http=True, outbound_allow_private_addresses=False)
    for url in (idp.discovery, "http://10.1.2.3/.well-known/openid-configuration"):
        try:
            check_provider(url, strict)
        except IdentityError as exc:
            assert "öffentlich" in str(exc) or "public" in str(exc)
            continue
        raise AssertionError(f"{url} was accepted")


def test_sign_in_requests_follow_the_outbound_rules(sso_settings, redis_conn, sso_tenants):
    """Authlib's requests to the provider go through tenants/outbound.py: production refuses a loopback provider."""
    import dataclasses

    from portal import create_app

    strict = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False},
                        settings=dataclasses.replace(sso_settings, outbound_allow_private_addresses=False))
    response = strict.test_client().get(f"/t/{sso_tenants.a.ags}/login")
    assert _refused(response, "nicht öffentliche Adresse")
