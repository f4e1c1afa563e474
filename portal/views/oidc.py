"""OpenID Connect endpoints of the portal (provider for Superset); logic in portal/oidc.py."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, abort, jsonify, request
from flask_login import current_user

from portal import oidc
from portal.extensions import csrf, limiter, login_manager
from portal.tenancy import current_tenant
from tenants.settings import get_settings

bp = Blueprint("oidc", __name__)


@bp.get("/.well-known/openid-configuration")
def discovery():
    issuer = get_settings().portal_url
    return jsonify({
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth/authorize",
        "token_endpoint": issuer + "/oauth/token",
        "userinfo_endpoint": issuer + "/oauth/userinfo",
        "jwks_uri": issuer + "/oauth/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(oidc.SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "tenant", "roles", "email", "name", "preferred_username"],
    })


@bp.get("/oauth/jwks")
def jwks():
    return jsonify(oidc.public_jwks())


@bp.get("/oauth/authorize")
@limiter.limit("30 per minute")
def authorize():
    """Signed-in editors are sent back to Superset at once (first-party client, no consent screen)."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.is_operator or not current_user.has_role("editor"):
        abort(403)
    claims = oidc.claims_for(current_user, current_tenant())
    try:
        grant = oidc.server.get_consent_grant(end_user=claims)
    except OAuth2Error as error:
        return oidc.server.handle_error_response(None, error)
    return oidc.server.create_authorization_response(grant=grant, grant_user=claims)


@bp.post("/oauth/token")
@csrf.exempt
@limiter.limit("60 per minute")
def token():
    return oidc.server.create_token_response()


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    claims = oidc.userinfo_for(value) if scheme.lower() == "bearer" and value else None
    if claims is None:
        response = jsonify(error="invalid_token")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    return jsonify(claims)
