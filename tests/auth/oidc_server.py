"""A small, configurable OpenID Connect provider for tests: real HTTP, real RS256 ID tokens.

Built from Authlib's provider classes (as the portal's own provider in ``portal/oidc.py``), so
a test can shape the provider like the ones municipal IT runs, which oidc-provider-mock (the
development IdP) cannot:

* ``people``: subject -> claims exactly as the provider would send them: Keycloak's nested
  ``realm_access.roles``, Entra ID's ``upn`` and group overage (``_claim_names``), ADFS's single
  ``group`` string, Authentik's ``groups`` names, Cognito's ``"email_verified": "false"`` ...
* ``scope_claims``: claims released only for a scope (``{"groups": ["groups"]}``: no groups
  unless the client asks for the ``groups`` scope, as many Keycloak and Authentik set-ups do).
* ``claims_in_id_token=False``: the ID token carries only ``sub``; the rest comes from the
  userinfo endpoint (node oidc-provider's default).
* one registered client with a secret: a wrong secret is ``invalid_client`` (401), an unknown
  code ``invalid_grant`` (400), as real providers answer.
* ``kid=False`` and :meth:`OidcServer.rotate_key`: a provider that changes its signing key, with
  or without key ids in its tokens and key set.

Sign-in works like the development IdP: POST ``sub`` to the authorization URL.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, abort, jsonify, request
from joserfc.jwk import RSAKey

from portal.oidc import Grant, SupersetClient

CLIENT_ID = "egovsad"
CLIENT_SECRET = "municipal-secret"
STANDARD = {"email": ("email", "email_verified"),
            "profile": ("name", "preferred_username", "given_name", "family_name")}


class _Client(SupersetClient):
    """The portal's own provider's client (portal/oidc.py), with any redirect URI and scope and chosen auth methods."""

    def __init__(self, client_id: str, secret: str, auth_methods: tuple[str, ...]):
        super().__init__(client_id, secret, "")
        self.auth_methods = auth_methods

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return True

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint != "token" or method in self.auth_methods


@dataclass
class _Token:
    access_token: str
    subject: str
    scope: str
    expires_at: float

    def check_client(self, client):
        return True

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return int(self.expires_at - time.time())

    def is_expired(self):
        return time.time() > self.expires_at

    def is_revoked(self):
        return False


class OidcServer:
    """One provider; :meth:`wsgi` is the app to serve (``serve`` fixture in conftest)."""

    def __init__(self, people: dict[str, dict[str, Any]], *, client_id: str = CLIENT_ID,
                 client_secret: str = CLIENT_SECRET, kid: bool = True, claims_in_id_token: bool = True,
                 scope_claims: dict[str, list[str]] | None = None,
                 auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")):
        self.people = people
        self.client = _Client(client_id, client_secret, auth_methods)
        self.kid = kid
        self.claims_in_id_token = claims_in_id_token
        self.scope_claims = scope_claims or {}
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, _Token] = {}
        self.jwks_reads = 0
        self.token_requests: list[dict[str, str]] = []
        self.key = self.signing_key = RSAKey.generate_key(2048)

    def rotate_key(self) -> None:
        """A new signing key; the key set publishes only the new one from now on."""
        self.key = self.signing_key = RSAKey.generate_key(2048)

    def sign_with_unpublished_key(self) -> None:
        """Tokens signed with a key the key set never shows (a forger's, as far as clients can tell)."""
        self.signing_key = RSAKey.generate_key(2048)

    # -- what a person's token carries --------------------------------------------------------

    def released(self, subject: str, scope: str) -> dict[str, Any]:
        scopes = set(scope.split())
        claims = {}
        for name, value in self.people[subject].items():
            needs = [s for s, names in {**STANDARD, **self.scope_claims}.items() if name in names]
            if not needs or scopes & set(needs):
                claims[name] = value
        return {**claims, "sub": subject}

    def public_jwks(self) -> dict:
        key = self.key.as_dict(private=False)
        key.pop("kid", None)
        if self.kid:
            key["kid"] = self.key.thumbprint()
        return {"keys": [{**key, "use": "sig", "alg": "RS256"}]}

    # -- the app ------------------------------------------------------------------------------

    def _authorization_server(self, app: Flask) -> AuthorizationServer:
        """Authlib's server with the code grant, PKCE and ID tokens, storing in this object."""
        provider = self

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = list(provider.client.auth_methods)

            def save_authorization_code(self, code, req):
                data = req.payload.data
                provider.codes[code] = Grant(code, req.payload.redirect_uri, req.payload.scope, data.get("nonce"),
                                             data.get("code_challenge"), data.get("code_challenge_method"),
                                             {"sub": req.user}, int(time.time()))

            def query_authorization_code(self, code, client):
                return provider.codes.get(code)  # one client only

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.claims["sub"]

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce, req):
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client):
                return provider.signing_key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_client_claims(self, client):
                return {"iss": request.host_url.rstrip("/"), "aud": [client.client_id],
                        "exp": int(time.time()) + 600}

            def get_encode_header(self, client):
                return {"alg": "RS256", **({"kid": provider.signing_key.thumbprint()} if provider.kid else {})}

            def generate_user_info(self, subject, scope):
                claims = provider.released(subject, scope)
                return claims if provider.claims_in_id_token else {"sub": subject}

        def save_token(token, req):
            provider.tokens[token["access_token"]] = _Token(token["access_token"], req.user, token.get("scope", ""),
                                                            time.time() + 600)

        app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = lambda *a, **k: secrets.token_urlsafe(24)
        server = AuthorizationServer(app, query_client=lambda cid: provider.client if cid == provider.client.client_id
                                     else None, save_token=save_token)
        server.register_grant(CodeGrant, [CodeChallenge(required=False), IdToken(require_nonce=True)])
        return server

    def wsgi(self) -> Flask:
        app = Flask(__name__)
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 600}
        provider, server = self, self._authorization_server(app)

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                return provider.tokens.get(token_string)

        protect = ResourceProtector()
        protect.register_token_validator(Validator())

        @app.get("/.well-known/openid-configuration")
        def discovery():
            base = request.host_url.rstrip("/")
            return jsonify({
                "issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo", "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": list(provider.client.auth_methods),
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile", *provider.scope_claims],
            })

        @app.get("/jwks")
        def jwks():
            provider.jwks_reads += 1
            return jsonify(provider.public_jwks())

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            if request.method == "GET":
                return "<form method=post><input name=sub><button>Sign in</button></form>"
            subject = request.form.get("sub", "")
            if subject not in provider.people:
                abort(400)
            return server.create_authorization_response(grant_user=subject)

        @app.post("/token")
        def token():
            provider.token_requests.append(dict(request.form))
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        @protect()
        def userinfo():
            return jsonify(provider.released(current_token.subject, current_token.scope))

        return app
