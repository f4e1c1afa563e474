"""What the municipality's IT must configure at its provider is shown where they set up the connection;
"Verbindung testen" has a rate limit of its own that never loses the filled form."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.auth.conftest import login

SIGNUP = "/signup/06434001"  # Bad Homburg v. d. Höhe
CALLBACK = "http://localhost/t/06434001/auth/callback"


def _copyable(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*value="([^"]*)"', page) or \
        re.search(rf'value="([^"]*)"[^>]*id="{element_id}"', page)
    assert match, f"no copyable field {element_id}"
    return match.group(1)


def _signup_form(idp, **changes):
    return {"contact_name": "Erika Muster", "contact_email": "erika@bad-homburg.de", "domains": "bad-homburg.de",
            "discovery_url": idp.discovery, "client_id": "bad-homburg", "client_secret": "s3cret",
            "role_claim": "realm_access.roles", "role_mapping": "egov-admin = admin", "email_claim": "email",
            "extra_scopes": "groups", "action": "test", **changes}


def test_sign_up_shows_redirect_uri_scopes_and_claims_before_and_after(sso_app, clean_db, idp):
    client = sso_app.test_client()
    page = client.get(SIGNUP).get_data(as_text=True)
    assert _copyable(page, "redirect-uri") == CALLBACK
    assert _copyable(page, "scopes") == "openid email profile"
    tested = client.post(SIGNUP, data=_signup_form(idp)).get_data(as_text=True)
    assert _copyable(tested, "redirect-uri") == CALLBACK
    assert _copyable(tested, "scopes") == "openid email profile groups"
    assert "realm_access.roles" in _copyable(tested, "claims") and "email" in _copyable(tested, "claims")
    done = client.post(SIGNUP, data=_signup_form(idp, action="submit")).get_data(as_text=True)
    assert "Registrierung eingegangen" in done
    assert _copyable(done, "redirect-uri") == CALLBACK
    assert _copyable(done, "scopes") == "openid email profile groups"
    assert "realm_access.roles" in _copyable(done, "claims")


def test_identity_provider_page_shows_what_the_provider_must_know(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302
    page = sso_client.get(f"/t/{a.ags}/admin/identity-provider").get_data(as_text=True)
    assert _copyable(page, "redirect-uri") == f"http://localhost/t/{a.ags}/auth/callback"
    assert _copyable(page, "scopes") == "openid email profile"
    assert "roles" in _copyable(page, "claims") and "email_verified" in _copyable(page, "claims")
    assert _copyable(page, "post-logout-uri") == "http://localhost/"


@pytest.fixture
def limited_app(database, redis_conn, idp):
    from portal import create_app

    settings = dataclasses.replace(database, signup_rate_limit="1/hour", connection_test_rate_limit="2/hour")
    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, settings=settings)


def test_connection_test_has_its_own_limit_and_a_429_keeps_the_form(limited_app, clean_db, idp):
    client = limited_app.test_client()
    form = _signup_form(idp, role_claim="roles", extra_scopes="")
    assert [client.post(SIGNUP, data=form).status_code for _ in range(2)] == [200, 200]
    limited = client.post(SIGNUP, data=form)
    page = limited.get_data(as_text=True)
    assert limited.status_code == 429 and "Verbindungstests" in page
    for value in ("Erika Muster", "erika@bad-homburg.de", idp.discovery, "bad-homburg"):
        assert value in page, value
    # The tests did not use up the sign-up's own limit ...
    assert "Registrierung eingegangen" in client.post(SIGNUP, data={**form, "action": "submit"}).get_data(as_text=True)
    # ... and a sign-up over its limit keeps the form too.
    again = client.post("/signup/06434002", data={**form, "action": "submit", "contact_name": "Max Muster"})
    assert again.status_code == 429 and "Max Muster" in again.get_data(as_text=True)
