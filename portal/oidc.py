"""The portal as OpenID Connect provider for Superset ("Eigene Auswertungen erstellen").

Authorization code flow with PKCE (S256 only, required here even for this
confidential client: Authlib enforces it only for public clients, and accepts
``plain`` unless told otherwise) and a
required nonce; ID tokens are RS256. The only client is Superset, configured
from the settings (``EGOV_SUPERSET_OIDC_SECRET``, redirect
``<superset>/oauth-authorized/portal``). Codes and access tokens are
short-lived and live in Redis, so nothing here needs a table.

Only editors (and tenant admins) are let through: viewers read the embedded
dashboards and have no business in Superset. The ID token carries the
tenant's AGS and the role; superset_config/portal_security.py maps them to
the tenant's Superset roles.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask
from joserfc.jwk import RSAKey

from tenants.settings import created_once, get_settings

CLIENT_ID = "superset"
SCOPES = ("openid", "email", "profile")
CODE_TTL, TOKEN_TTL = 300, 3600

server = AuthorizationServer()


def _redis():
    from tenants.jobs import redis_connection

    return redis_connection()


def _put(kind: str, key: str, value: dict, ttl: int) -> None:
    _redis().set(f"oidc:{kind}:{key}", json.dumps(value), ex=ttl)


def _get(kind: str, key: str) -> dict | None:
    raw = _redis().get(f"oidc:{kind}:{key}")
    return json.loads(raw) if raw else None


def signing_key() -> RSAKey:
    """The RS256 key, kept in EGOV_OIDC_SIGNING_KEY_FILE (generated once outside production)."""
    settings = get_settings()
    path = Path(settings.oidc_signing_key_file)
    if not path.exists() and settings.is_production:
        raise RuntimeError(f"The OIDC signing key {path} is missing (EGOV_OIDC_SIGNING_KEY_FILE).")
    pem = created_once(path, lambda: RSAKey.generate_key(2048).as_pem(private=True))
    return RSAKey.import_key(pem, parameters={"use": "sig", "alg": "RS256"})


def public_jwks() -> dict:
    """``{"keys": [JWK, ...]}``: the signing key first, then every key of EGOV_OIDC_PUBLISHED_KEY_FILES.

    Publishing the next key before it signs lets every portal process and Superset's cached key set know it
    when the first token signed with it arrives; keeping the previous one published covers codes issued just
    before the switch. Superset's own sessions do not depend on the key, so nobody is signed out.

    :raise RuntimeError: a published key file is missing (a key set without it would break sign-ins later).
    """
    keys = [signing_key()]
    for name in get_settings().oidc_published_key_files:
        path = Path(name)
        if not path.exists():
            raise RuntimeError(f"The published OIDC key {path} is missing (EGOV_OIDC_PUBLISHED_KEY_FILES).")
        keys.append(RSAKey.import_key(path.read_bytes(), parameters={"use": "sig", "alg": "RS256"}))
    seen, published = set(), []
    for key in keys:
        if key.thumbprint() not in seen:
            seen.add(key.thumbprint())
            published.append({**key.as_dict(private=False), "kid": key.thumbprint(), "use": "sig", "alg": "RS256"})
    return {"keys": published}


@dataclass
class SupersetClient(ClientMixin):
    client_id: str
    secret: str
    redirect_uri: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uri

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret or "", self.secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


def query_client(client_id: str) -> SupersetClient | None:
    settings = get_settings()
    if client_id != CLIENT_ID:
        return None
    return SupersetClient(CLIENT_ID, settings.superset_oidc_secret, settings.superset_url + "/oauth-authorized/portal")


@dataclass
class Grant:
    """A stored authorization code with what the token needs."""

    code: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    claims: dict = field(default_factory=dict)
    auth_time: int = 0

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_authorization_request(self):
        from authlib.oauth2.rfc6749.errors import InvalidRequestError

        data = self.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'")
        # RFC 7636 4.3: no method means "plain". The discovery document advertises S256 only, and
        # plain would let whoever sees the authorization request redeem the code.
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE must use code_challenge_method=S256")
        return super().validate_authorization_request()

    def save_authorization_code(self, code, request):
        data = request.payload.data
        if data.get("nonce"):
            _redis().set(f"oidc:nonce:{data['nonce']}", "1", ex=CODE_TTL)
        _put("code", code, {
            "code": code, "redirect_uri": request.payload.redirect_uri, "scope": request.payload.scope,
            "nonce": data.get("nonce"), "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method"), "claims": request.user,
            "auth_time": int(time.time())}, CODE_TTL)

    def query_authorization_code(self, code, client):
        stored = _get("code", code)
        return Grant(**stored) if stored else None

    def delete_authorization_code(self, authorization_code):
        _redis().delete(f"oidc:code:{authorization_code.code}")

    def authenticate_user(self, authorization_code):
        return authorization_code.claims


class S256Only(CodeChallenge):
    """PKCE with SHA-256 only, also when the code is redeemed (a stored ``plain`` challenge cannot verify)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}


class PortalOpenIDCode(OpenIDCode):
    def exists_nonce(self, nonce, request):
        # A nonce may be used once: save_authorization_code records it.
        return bool(_redis().exists(f"oidc:nonce:{nonce}"))

    def resolve_client_private_key(self, client):
        return signing_key()

    def get_client_algorithm(self, client):
        return "RS256"

    def get_client_claims(self, client):
        return {"iss": get_settings().portal_url, "aud": [client.get_client_id()],
                "exp": int(time.time()) + TOKEN_TTL}

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": signing_key().thumbprint()}

    def generate_user_info(self, user, scope):
        return UserInfo(user)


def save_token(token, request) -> None:
    _put("token", token["access_token"], request.user, int(token.get("expires_in", TOKEN_TTL)))


def userinfo_for(access_token: str) -> dict | None:
    return _get("token", access_token)


def claims_for(principal, tenant) -> dict:
    """What Superset learns about a member of staff: who, which tenant, which access level."""
    user = principal.user
    return {"sub": f"{tenant.ags}:{user.id}", "tenant": tenant.ags, "email": user.email,
            "name": user.display_name or user.email, "preferred_username": f"{tenant.ags}:{user.id}",
            "roles": ["editor" if principal.has_role("editor") else "viewer"]}


def new_access_token(client, grant_type, user, scope) -> str:
    return secrets.token_urlsafe(32)


def init_app(app: Flask) -> None:
    app.config.setdefault("OAUTH2_ACCESS_TOKEN_GENERATOR", True)
    app.config.setdefault("OAUTH2_TOKEN_EXPIRES_IN", {"authorization_code": TOKEN_TTL})
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True), PortalOpenIDCode(require_nonce=True)])
