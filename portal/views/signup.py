"""Sign-up of a municipality or district: find it in the official list, then register it.

The registration names a contact person, the e-mail domains and the
OpenID Connect identity provider; "Verbindung testen" checks the provider
(discovery, keys, client credentials) before anything is stored. The tenant
waits as ``pending`` for an operator. The page shows what the municipality's IT
registers at its provider (redirect URI, scopes, claims), before and after.

Rate limits: the sign-up itself (``EGOV_SIGNUP_RATE_LIMIT``) and "Verbindung
testen" (``EGOV_CONNECTION_TEST_RATE_LIMIT``, shared with the tenant admin's
identity-provider page) count apart; over either limit the form comes back
filled in, with a 429.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _

from portal.access import public
from portal.error_pages import error_page
from portal.extensions import limiter
from tenants.db import db
from tenants.identity import (
    IdentityError,
    ProviderSettings,
    check_provider,
    claims_read,
    parse_role_mapping,
    scopes_with,
)
from tenants.lifecycle import SignUp, sign_up
from tenants.registry import TenantError, get_region, search_regions
from tenants.settings import get_settings

bp = Blueprint("signup", __name__, url_prefix="/signup")


def _signup_limit() -> str:
    return get_settings().signup_rate_limit


def connection_test_limit() -> str:
    return get_settings().connection_test_rate_limit


def is_connection_test() -> bool:
    return request.method == "POST" and request.form.get("action") == "test"


#: "Verbindung testen" on the sign-up and the identity-provider page: one budget per address.
connection_test_limited = limiter.shared_limit(connection_test_limit, scope="connection-test", methods=["POST"],
                                               exempt_when=lambda: not is_connection_test())


def setup_values(ags: str, form) -> dict:
    """What the municipality's IT registers at its provider (shown copyable on the setup pages)."""
    try:
        scopes = scopes_with(form.get("extra_scopes", ""))
    except IdentityError:
        scopes = scopes_with("")
    return {"redirect_uri": url_for("tenant_auth.callback", ags=ags, _external=True),
            "post_logout_uri": url_for("main.index", _external=True), "scopes": scopes,
            "claims": claims_read(form.get("role_claim") or "roles", form.get("email_claim") or "email")}


@bp.get("/")
@public
def search():
    """Search by name, AGS or postcode."""
    query = request.args.get("q", "")
    return render_template("signup/search.html", query=query, results=search_regions(query))


def _provider_settings(form) -> ProviderSettings:
    return ProviderSettings(
        discovery_url=form.get("discovery_url", "").strip(), client_id=form.get("client_id", ""),
        client_secret=form.get("client_secret", ""), role_claim=form.get("role_claim") or "roles",
        role_mapping=parse_role_mapping(form.get("role_mapping", "")), default_role=form.get("default_role") or None,
        scopes=scopes_with(form.get("extra_scopes", "")), email_claim=form.get("email_claim") or "email",
    )


def _form_page(region, form, *, error=None, check=None, status=200):
    return render_template("signup/form.html", region=region, form=form, error=error, check=check,
                           setup=setup_values(region.ags, form)), status


@bp.route("/<code>", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"], exempt_when=is_connection_test)
@connection_test_limited
@public
def register(code: str):
    try:
        region = get_region(code)
    except TenantError:
        abort(404)
    form = request.form if request.method == "POST" else {"role_claim": "roles", "email_claim": "email"}
    if request.method == "GET":
        return _form_page(region, form)
    settings = get_settings()
    redirect_uri = url_for("tenant_auth.callback", ags=region.ags, _external=True)
    try:
        provider = _provider_settings(form)
        if form.get("action") == "test":
            check = check_provider(provider.discovery_url, settings, client_id=provider.client_id.strip(),
                                   client_secret=provider.client_secret, redirect_uri=redirect_uri)
            return _form_page(region, form, check=check)
        tenant = sign_up(SignUp(ags=region.ags, contact_name=form.get("contact_name", ""),
                                contact_email=form.get("contact_email", ""), domains=form.get("domains", ""),
                                provider=provider),
                         settings, remote_addr=request.remote_addr, redirect_uri=redirect_uri)
        db.session.commit()
    except (TenantError, IdentityError) as exc:
        db.session.rollback()
        return _form_page(region, form, error=str(exc))
    return render_template("signup/done.html", tenant=tenant, setup=setup_values(region.ags, form))


@bp.errorhandler(429)
def too_many(exc):
    """Over a limit: the form comes back as it was filled in, with the reason."""
    code = (request.view_args or {}).get("code")
    try:
        region = get_region(code) if code else None
    except TenantError:
        region = None
    if region is None:
        return error_page(exc)
    message = (_("Too many connection tests from your address. Your entries are kept; try again later.")
               if is_connection_test() else
               _("Too many sign-ups from your address. Your entries are kept; try again later."))
    return _form_page(region, request.form, error=message, status=429)
