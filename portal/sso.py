"""OpenID Connect with Authlib: one client per tenant identity provider, one for operators.

Authlib builds a client once per name and caches it (``create_client`` returns
the cached one even after ``register`` with new settings). The names therefore
carry the tenant's ``config_version`` (and, for operators, a digest of the
settings): a saved change gets a new name and a fresh client at once.

Every flow uses the authorization code with PKCE (S256), ``state`` and
``nonce``. On top of Authlib's checks (state, nonce, signature, audience,
expiry, issuer of the discovery document) the discovery document and the ID
token must name the issuer the tenant's settings pinned when they were saved.

Two things differ from stock Authlib, in :class:`PortalOAuth2App` (our subclass,
nothing patched):

* every request to a provider goes through ``tenants/outbound.py`` (the requests
  session mounts :class:`tenants.outbound.OutboundAdapter`), and the client
  authenticates at the token endpoint the way the provider's discovery document
  offers (Basic, or POST when only that is offered);
* the key set is read again, once, when an ID token's ``kid`` is unknown *or its
  signature does not verify*: a provider that rotates its key and puts no ``kid``
  in its tokens would otherwise be refused until the cached metadata expires.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.flask_client.apps import FlaskOAuth2App
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken, ImplicitIDToken, UserInfo
from flask import Flask, current_app, g
from flask_babel import lazy_gettext as _l
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tenants import claims, crypto, outbound
from tenants.identity import IdentityError, attempted_identity, token_auth_method
from tenants.models import IdentityProvider
from tenants.settings import Settings, get_settings

#: Seconds after which a provider's discovery document (and key set) is fetched again.
METADATA_TTL = 3600
#: Clock skew tolerated when checking the ID token's times.
LEEWAY = 60


class _OutboundSession(OAuth2Session):
    """Authlib's requests session, sending through the one outbound helper."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        adapter = outbound.OutboundAdapter(get_settings())
        self.mount("https://", adapter)
        self.mount("http://", adapter)


def _header(id_token: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    except (ValueError, IndexError):
        return {}


def unverified_claims(id_token: str | None) -> dict[str, Any]:
    """The payload of an ID token that was *not* verified (only to say who tried, in the audit)."""
    try:
        payload = json.loads(base64.urlsafe_b64decode((id_token or "").split(".")[1] + "=="))
        return payload if isinstance(payload, dict) else {}
    except (ValueError, IndexError):
        return {}


class PortalOAuth2App(FlaskOAuth2App):
    client_cls = _OutboundSession

    def _get_oauth_client(self, **metadata):
        if metadata:
            metadata = {**metadata, "token_endpoint_auth_method": token_auth_method(metadata)}
        return super()._get_oauth_client(**metadata)

    def _decode(self, id_token: str, algorithms, force: bool):
        """Verify with the key named by ``kid``; without ``kid``, with each signing key in turn."""
        key_set = KeySet.import_key_set(self.fetch_jwk_set(force=force))
        kid = _header(id_token).get("kid")
        candidates = [k for k in key_set.keys if (kid is None or k.kid == kid) and k.get("use") in (None, "sig")]
        if not candidates:
            raise InvalidKeyIdError(f"No key for kid: '{kid}'")
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        failure: JoseError = BadSignatureError()
        for key in candidates:
            try:
                return jwt.decode(id_token, key=key, registry=registry)
            except JoseError as exc:  # wrong key for this token: try the next one
                failure = exc
        raise failure

    def parse_id_token(self, token, nonce, claims_options=None, claims_cls=None, leeway=120):
        """Authlib's ``parse_id_token`` with the key set read again once on an unknown kid or a bad signature."""
        if "id_token" not in token:
            return None
        g.egov_unverified_id_token = token["id_token"]
        params = {"nonce": nonce, "client_id": self.client_id}
        if claims_cls is None:
            claims_cls = CodeIDToken if "access_token" in token else ImplicitIDToken
            if "access_token" in token:
                params["access_token"] = token["access_token"]
        metadata = self.load_server_metadata()
        if claims_options is None and "issuer" in metadata:
            claims_options = {"iss": {"values": [metadata["issuer"]]}}
        algorithms = metadata.get("id_token_signing_alg_values_supported")
        try:
            decoded = self._decode(token["id_token"], algorithms, force=False)
        except (InvalidKeyIdError, BadSignatureError):
            decoded = self._decode(token["id_token"], algorithms, force=True)
        id_claims = claims_cls(decoded.claims, decoded.header, claims_options, params)
        id_claims.validate(leeway=leeway)
        return UserInfo(id_claims)


class PortalOAuth(OAuth):
    oauth2_client_cls = PortalOAuth2App


def _oauth() -> OAuth:
    return current_app.extensions["egov_oauth"]


def _client(name: str, **config):
    oauth = _oauth()
    client = oauth.create_client(name) or oauth.register(name, **config)
    loaded = client.server_metadata.get("_loaded_at")
    if loaded is not None and time.time() - loaded > METADATA_TTL:
        client.server_metadata.clear()
    return client


def _kwargs(scopes: str, settings: Settings) -> dict[str, Any]:
    # The time limit is the outbound helper's (settings.oidc_timeout, for the whole request).
    return {"scope": scopes, "code_challenge_method": "S256"}


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def tenant_client(provider: IdentityProvider):
    """The Authlib client for this version of the tenant's provider settings.

    The digest of the settings joins the version in the name, so a client can
    never be reused for other settings, even in a database restored from a backup.
    """
    settings: Settings = get_settings()
    digest = _digest(provider.discovery_url, provider.client_id, provider.client_secret_encrypted, provider.scopes)
    return _client(
        f"tenant-{provider.tenant_id}-v{provider.config_version}-{digest}",
        client_id=provider.client_id,
        client_secret=crypto.decrypt(settings, provider.client_secret_encrypted),
        server_metadata_url=provider.discovery_url,
        client_kwargs=_kwargs(provider.scopes, settings),
    )


def operator_client():
    """The client for the platform identity provider, or None when none is configured."""
    settings: Settings = get_settings()
    if not (settings.operator_oidc_discovery_url and settings.operator_oidc_client_id):
        return None
    digest = _digest(settings.operator_oidc_discovery_url, settings.operator_oidc_client_id,
                     settings.operator_oidc_client_secret)
    return _client(
        f"operators-{digest}",
        client_id=settings.operator_oidc_client_id,
        client_secret=settings.operator_oidc_client_secret,
        server_metadata_url=settings.operator_oidc_discovery_url,
        client_kwargs=_kwargs("openid email profile", settings),
    )


def _unreachable(exc: Exception) -> IdentityError:
    if isinstance(exc, outbound.OutboundError):
        return IdentityError(_l("The identity provider cannot be reached: %(error)s", error=str(exc)))
    return IdentityError(_l("The identity provider cannot be reached."))


def _issuer_of(client) -> str:
    try:
        return str(client.load_server_metadata()["issuer"])
    except Exception as exc:  # a provider that is down or answers nonsense: refuse, say why
        raise _unreachable(exc) from exc


def begin(client, redirect_uri: str, expected_issuer: str | None, **params):
    """The redirect to the provider's login page (state, nonce and PKCE kept in the session)."""
    issuer = _issuer_of(client)
    if expected_issuer and issuer != expected_issuer:
        raise IdentityError(_l("The identity provider answers as a different issuer than configured."))
    return client.authorize_redirect(redirect_uri, **params)


def _refusal(exc: Exception) -> IdentityError:
    """The message for a failed token exchange or ID token, with who tried if the token said so."""
    if isinstance(exc, OAuthError) and exc.error == "invalid_client":
        error = IdentityError(_l(
            "The identity provider refuses the portal's client credentials (invalid_client). Nobody can sign in until "
            "the client secret is renewed under Identity provider; the platform's operators can restore the last "
            "working settings."))
    elif isinstance(exc, OAuthError):
        error = IdentityError(_l("The sign-in could not be completed (%(reason)s). Please start again.",
                                 reason=exc.error or "invalid"))
    elif isinstance(exc, outbound.OutboundError):
        error = _unreachable(exc)
    else:  # joserfc's claim and signature errors
        error = IdentityError(_l("The identity provider's answer was refused (%(reason)s). Please start again.",
                                 reason=type(exc).__name__))
    unverified = unverified_claims(g.pop("egov_unverified_id_token", None))
    if unverified:
        error.attempted = attempted_identity(unverified, verified=False)
    return error


def finish(client, expected_issuer: str | None, needed: tuple[str, ...] = ("email",)) -> tuple[dict[str, Any], str]:
    """Check the callback and return the validated claims and the raw ID token.

    Refuses a replayed or forged callback (state is single-use), a wrong
    nonce, an expired or foreign ID token, and a response without ID token.
    ``needed`` are claim paths (``tenants/claims.py``); when one of them finds
    nothing in the ID token, the userinfo endpoint is asked as well.

    :raise IdentityError: with the reason (and, where the token named one, who tried).
    """
    issuer = expected_issuer or _issuer_of(client)
    try:
        token = client.authorize_access_token(
            claims_options={"iss": {"essential": True, "values": [issuer]}}, leeway=LEEWAY)
    except Exception as exc:  # OAuth errors, joserfc's claim and signature errors, network errors
        raise _refusal(exc) from exc
    g.pop("egov_unverified_id_token", None)
    found = token.get("userinfo")
    if not found or not token.get("id_token"):
        raise IdentityError(_l("The identity provider sent no valid ID token."))
    found = dict(found)
    if any(claims.read(found, path) is None for path in needed):
        # Some providers put only the subject in the ID token (node oidc-provider), others keep
        # groups and roles for the userinfo endpoint.
        try:
            extra = client.userinfo(token=token)
        except Exception as exc:
            raise _refusal(exc) from exc
        if extra.get("sub") != found.get("sub"):
            raise IdentityError(_l("The identity provider's answer was refused (%(reason)s). Please start again.",
                                   reason="userinfo"))
        found.update({k: v for k, v in extra.items() if k not in found})
    return found, token["id_token"]


def end_session_url(client, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """Where RP-initiated logout sends the browser, if the provider supports it."""
    try:
        if not client.load_server_metadata().get("end_session_endpoint"):
            return None
        return client.create_logout_url(post_logout_redirect_uri=post_logout_redirect_uri,
                                        id_token_hint=id_token)["url"]
    except Exception:  # the provider is down: sign out locally all the same
        return None


def init_app(app: Flask) -> None:
    app.extensions["egov_oauth"] = PortalOAuth(app)
