"""Signing in and out: e-mail-domain discovery, tenant sign-in, operator sign-in, logout.

The flows themselves live in ``portal/sso.py`` (Authlib) and the decisions in
``tenants/identity.py``; these views only connect them to the request.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import sessions, sso
from portal.access import not_active_page, public
from portal.extensions import limiter
from portal.principals import OperatorPrincipal, StaffPrincipal
from portal.tenancy import current_tenant
from tenants import audit, metrics
from tenants.db import db
from tenants.identity import (
    IdentityError,
    admit_operator,
    admit_user,
    email_domain,
    find_identity_provider,
    tenant_for_domain,
)
from tenants.models import Tenant
from tenants.settings import get_settings

bp = Blueprint("auth", __name__)
SIGNED_OUT = "signed_out"
tenant_bp = Blueprint("tenant_auth", __name__, url_prefix="/t/<ags>")


def _login_limit() -> str:
    return get_settings().login_rate_limit


def refused(reason, *, why: str, kind: str = "tenant", tenant_id: int | None = None, status: int = 403):
    """The clear page for a refused sign-in; the refusal is audited with who tried, where known, and counted.

    ``attempted`` is an address (or the subject) from the validated claims (``verified``) or,
    when the token itself was refused, read from it unverified, so the admin sees who failed.

    :param why: the reason's metric label (``tenants.metrics.SIGN_IN_REASONS``).
    :param kind: ``tenant`` or ``operator``.
    """
    metrics.sign_in(kind, why)
    _record_refusal(reason, tenant_id)
    return render_template("auth/refused.html", reason=reason), status


def _record_refusal(reason, tenant_id: int | None) -> None:
    db.session.rollback()
    attempted = getattr(reason, "attempted", None) or {}
    actor = f"attempt {attempted['attempted']}" if attempted.get("attempted") else "anonymous"
    audit.record("login.refused", actor=actor, tenant_id=tenant_id, details={"reason": str(reason), **attempted},
                 remote_addr=request.remote_addr)
    db.session.commit()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def login():
    """Find the municipality by the e-mail address and send the person to its sign-in."""
    error = None
    email = request.form.get("email", "").strip().lower()
    if request.method == "POST":
        tenant_id = tenant_for_domain(email_domain(email)) if email_domain(email) else None
        tenant = db.session.get(Tenant, tenant_id) if tenant_id else None
        if tenant is not None:
            return _forward(url_for("tenant_auth.login", ags=tenant.ags, login_hint=email),
                            _("Sign in"), _("Continue to the sign-in of %(name)s", name=tenant.name))
        error = _("No municipality has registered this e-mail domain. Check the address or sign up your "
                  "municipality.")
    return render_template("auth/login.html", email=email, error=error,
                           operator_login=sso.operator_client() is not None)


@bp.post("/logout")
@public
def logout():
    """Sign out here and, where the provider supports it, at the identity provider as well."""
    if not current_user.is_authenticated:
        return redirect(url_for("main.index"))
    client = _client_of_session()
    id_token = sessions.session_value("id_token")
    audit.record("logout", actor=audit.actor_of(current_user), tenant_id=current_user.tenant_id,
                 remote_addr=request.remote_addr)
    db.session.commit()
    sessions.end_session()
    # The provider sends the browser back to the start page (the address tenants registered there, with
    # its ``?state=``); this mark turns that return into the confirmation page.
    session[SIGNED_OUT] = True
    target = url_for("main.index", _external=True)
    url = sso.end_session_url(client, id_token, target) if client is not None else None
    if url is None:
        return redirect(url_for("auth.signed_out"))
    return _forward(url, _("Signed out"), _("Sign out at your identity provider as well"))


@bp.get("/signed-out")
@public
def signed_out():
    """The confirmation after signing out; where to sign in again."""
    session.pop(SIGNED_OUT, None)
    return render_template("auth/signed_out.html")


@bp.errorhandler(429)
def too_many(exc):
    """Too many sign-in attempts: the form comes back with the address typed, and says when to retry."""
    from portal.error_pages import error_page

    if request.endpoint != "auth.login" or request.method != "POST":
        return error_page(exc)
    return render_template("auth/login.html", email=request.form.get("email", "").strip(),
                           error=_("Too many sign-in attempts from your address. Your entry is kept; try again "
                                   "in a minute."), operator_login=sso.operator_client() is not None), 429


def _forward(target: str, title: str, link_text: str):
    """A page that moves on to ``target`` by itself (see auth/forward.html for why not a redirect)."""
    return render_template("auth/forward.html", target=target, title=title, link_text=link_text)


def _client_of_session():
    if current_user.is_operator:
        return sso.operator_client()
    provider = find_identity_provider(db.session, current_user.tenant_id)
    return sso.tenant_client(provider) if provider is not None else None


@bp.get("/operator/login")
@limiter.limit(_login_limit)
@public
def operator_login():
    client = sso.operator_client()
    if client is None:
        abort(404)
    try:
        return sso.begin(client, url_for("auth.operator_callback", _external=True), None)
    except IdentityError as exc:
        return refused(exc, why="provider_unreachable", kind="operator", status=503)


@bp.get("/operator/auth/callback")
@limiter.limit(_login_limit)
@public
def operator_callback():
    client = sso.operator_client()
    if client is None:
        abort(404)
    settings = get_settings()
    why = "token_refused"
    try:
        claims, id_token = sso.finish(client, None, needed=("email", settings.operator_role_claim))
        why = "not_admitted"
        operator = admit_operator(claims, settings)
    except IdentityError as exc:
        return refused(exc, why=why, kind="operator")
    metrics.sign_in("operator")
    audit.record("login", actor=f"operator:{operator.id} {operator.email}", remote_addr=request.remote_addr)
    db.session.commit()
    sessions.start_session(OperatorPrincipal(operator), id_token=id_token)
    return redirect(url_for("operator.index"))


@tenant_bp.get("/login", endpoint="login")
@limiter.limit(_login_limit)
@public
def login_tenant():
    """Start the sign-in at the tenant's own identity provider."""
    tenant = current_tenant()
    if not tenant.is_active:
        metrics.sign_in("tenant", "tenant_inactive")
        _record_refusal(_("%(name)s cannot sign in at the moment.", name=tenant.name), tenant.id)
        return not_active_page(tenant)
    provider = find_identity_provider(db.session, tenant.id)
    if provider is None:
        return refused(_("%(name)s has no identity provider yet.", name=tenant.name), why="no_provider",
                       tenant_id=tenant.id)
    hint = request.args.get("login_hint", "")[:254]
    try:
        return sso.begin(sso.tenant_client(provider), url_for("tenant_auth.callback", _external=True),
                         provider.issuer, **({"login_hint": hint} if hint else {}))
    except IdentityError as exc:
        return refused(exc, why="provider_unreachable", tenant_id=tenant.id)


@tenant_bp.get("/auth/callback")
@limiter.limit(_login_limit)
@public
def callback():
    """Back from the identity provider: validate, admit, and start a fresh session."""
    tenant = current_tenant()
    provider = find_identity_provider(db.session, tenant.id)
    if provider is None:
        return refused(_("%(name)s has no identity provider yet.", name=tenant.name), why="no_provider",
                       tenant_id=tenant.id)
    why = "token_refused"
    try:
        claims, id_token = sso.finish(sso.tenant_client(provider), provider.issuer,
                                      needed=(provider.email_claim, provider.role_claim))
        why = "not_admitted"
        user = admit_user(tenant, provider, claims)
    except IdentityError as exc:
        return refused(exc, why=why, tenant_id=tenant.id)
    metrics.sign_in("tenant")
    audit.record("login", actor=f"user:{user.id} {user.email}", tenant_id=tenant.id,
                 details={"role": user.role}, remote_addr=request.remote_addr)
    db.session.commit()
    sessions.start_session(StaffPrincipal(user), id_token=id_token)
    return redirect(url_for("tenant_home.index"))
