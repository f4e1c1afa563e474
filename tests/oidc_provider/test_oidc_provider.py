"""The portal's OpenID Connect provider (for Superset): code flow with required PKCE and nonce.

Outside tests/superset on purpose: these tests empty the database after each test (``two_tenants``),
which would pull the tenants from under the Superset tests' package-wide fixture.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tenants.context import tenant_transaction
from tenants.models import User
from tests.conftest import sign_in


@pytest.fixture
def editor(app, two_tenants):
    with app.app_context(), tenant_transaction(two_tenants.a.id) as session:
        user = User(tenant_id=two_tenants.a.id, subject="ed", email="ed@marburg.de", role="editor")
        session.add(user)
        session.flush()
        return f"u:{two_tenants.a.id}:{user.id}"


def _client(app, identity):
    client = app.test_client()
    sign_in(client, identity)
    return client


def _authorize(client, app, **overrides):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": "superset", "scope": "openid email profile", "state": "st",
              "redirect_uri": app.config["EGOV"].superset_url + "/oauth-authorized/portal", "nonce": "n-1",
              "code_challenge": challenge, "code_challenge_method": "S256", **overrides}
    return client.get("/oauth/authorize", query_string={k: v for k, v in params.items() if v is not None}), verifier


def _token(client, app, code, verifier, secret=None):
    settings = app.config["EGOV"]
    return client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": settings.superset_url + "/oauth-authorized/portal", "client_id": "superset",
        "client_secret": secret or settings.superset_oidc_secret})


def test_code_flow_gives_superset_the_tenant_and_role(app, editor, two_tenants):
    client = _client(app, editor)
    response, verifier = _authorize(client, app)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == ["st"]
    code = query["code"][0]
    tokens = _token(app.test_client(), app, code, verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    body = tokens.get_json()
    keys = KeySet.import_key_set(app.test_client().get("/oauth/jwks").get_json())
    claims = jwt.decode(body["id_token"], keys).claims
    assert claims["tenant"] == two_tenants.a.ags and claims["roles"] == ["editor"]
    assert claims["nonce"] == "n-1" and claims["aud"] == ["superset"]
    assert claims["iss"] == app.config["EGOV"].portal_url
    info = app.test_client().get("/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.get_json()["sub"] == claims["sub"]
    # A code works once, and so does a nonce.
    assert _token(app.test_client(), app, code, verifier).status_code == 400
    replayed, _ = _authorize(client, app)
    assert "code=" not in replayed.headers.get("Location", "")


def test_pkce_nonce_secret_and_redirect_are_enforced(app, editor):
    client = _client(app, editor)
    for missing in ({"code_challenge": None, "code_challenge_method": None}, {"nonce": None}):
        refused, _ = _authorize(client, app, **missing)
        location = refused.headers.get("Location", "")
        assert "code=" not in location and (refused.status_code == 400 or "error=invalid_request" in location)
    elsewhere, _ = _authorize(client, app, redirect_uri="https://evil.example/cb")
    assert elsewhere.status_code == 400 and "evil" not in elsewhere.headers.get("Location", "")

    response, verifier = _authorize(client, app)
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    assert _token(app.test_client(), app, code, verifier, secret="wrong").status_code == 401
    assert _token(app.test_client(), app, code, "x" * 50).status_code == 400
    assert app.test_client().get("/oauth/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_anonymous_users_are_sent_to_sign_in(app, two_tenants):
    response, _ = _authorize(app.test_client(), app)
    # Superset sends a person who is not signed in to the portal's sign-in, which brings them back here.
    assert response.status_code == 302
    assert "/login" in response.headers["Location"] and "oauth%2Fauthorize" in response.headers["Location"]


def test_only_s256_is_accepted_for_pkce(app, editor):
    """The discovery document advertises S256 only; ``plain`` (or no method, which means plain) is refused."""
    client = _client(app, editor)
    verifier = secrets.token_urlsafe(48)
    for method in ("plain", None):
        refused, _ = _authorize(client, app, code_challenge=verifier, code_challenge_method=method)
        location = refused.headers.get("Location", "")
        assert "code=" not in location and (refused.status_code == 400 or "error=invalid_request" in location), method
    assert app.test_client().get("/.well-known/openid-configuration").get_json()[
        "code_challenge_methods_supported"] == ["S256"]
