"""OpenID Connect with Authlib: one client per tenant identity provider, one for operators.

Authlib builds a client once per name and caches it (``create_client`` returns
the cached one even after ``register`` with new settings). The names therefore
carry the tenant's ``config_version`` (and, for operators, a digest of the
settings): a saved change gets a new name and a fresh client at once.

Every flow uses the authorization code with PKCE (S256), ``state`` and
``nonce``. On top of Authlib's checks (state, nonce, signature, audience,
expiry, issuer of the discovery document) the discovery document and the ID
token must name the issuer the tenant's settings pinned when they were saved.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from portal.settings import Settings
from tenants import crypto
from tenants.identity import IdentityError
from tenants.models import IdentityProvider

#: Seconds after which a provider's discovery document is fetched again.
METADATA_TTL = 3600
#: Clock skew tolerated when checking the ID token's times.
LEEWAY = 60


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
    return {"scope": scopes, "code_challenge_method": "S256", "timeout": settings.oidc_timeout}


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def tenant_client(provider: IdentityProvider):
    """The Authlib client for this version of the tenant's provider settings.

    The digest of the settings joins the version in the name, so a client can
    never be reused for other settings, even in a database restored from a backup.
    """
    settings: Settings = current_app.config["EGOV"]
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
    settings: Settings = current_app.config["EGOV"]
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


def _issuer_of(client) -> str:
    try:
        return str(client.load_server_metadata()["issuer"])
    except Exception as exc:  # a provider that is down or answers nonsense: refuse, say why
        raise IdentityError(_l("The identity provider cannot be reached.")) from exc


def begin(client, redirect_uri: str, expected_issuer: str | None, **params):
    """The redirect to the provider's login page (state, nonce and PKCE kept in the session)."""
    issuer = _issuer_of(client)
    if expected_issuer and issuer != expected_issuer:
        raise IdentityError(_l("The identity provider answers as a different issuer than configured."))
    return client.authorize_redirect(redirect_uri, **params)


def finish(client, expected_issuer: str | None, needed: tuple[str, ...] = ("email",)) -> tuple[dict[str, Any], str]:
    """Check the callback and return the validated claims and the raw ID token.

    Refuses a replayed or forged callback (state is single-use), a wrong
    nonce, an expired or foreign ID token, and a response without ID token.

    :raise IdentityError: with the reason.
    """
    issuer = expected_issuer or _issuer_of(client)
    try:
        token = client.authorize_access_token(
            claims_options={"iss": {"essential": True, "values": [issuer]}}, leeway=LEEWAY)
    except OAuthError as exc:
        raise IdentityError(_l("The sign-in could not be completed (%(reason)s). Please start again.",
                               reason=exc.error or "invalid")) from exc
    except Exception as exc:  # joserfc's claim and signature errors, network errors
        raise IdentityError(_l("The identity provider's answer was refused (%(reason)s). Please start again.",
                               reason=type(exc).__name__)) from exc
    claims = token.get("userinfo")
    if not claims or not token.get("id_token"):
        raise IdentityError(_l("The identity provider sent no valid ID token."))
    claims = dict(claims)
    if any(name not in claims for name in needed):
        # Some providers put only the subject in the ID token (node oidc-provider), others keep
        # groups and roles for the userinfo endpoint.
        extra = client.userinfo(token=token)
        if extra.get("sub") != claims.get("sub"):
            raise IdentityError(_l("The identity provider's answer was refused (%(reason)s). Please start again.",
                                   reason="userinfo"))
        claims.update({k: v for k, v in extra.items() if k not in claims})
    return claims, token["id_token"]


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
    app.extensions["egov_oauth"] = OAuth(app)
