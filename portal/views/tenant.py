"""Tenant pages under ``/t/<ags>/``: the staff start page and the tenant admin's pages.

``portal.tenancy`` has bound the tenant (404 for another tenant's staff);
objects are fetched through helpers that answer 404 for missing and foreign
ones alike.
"""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import role_required
from portal.error_pages import error_page
from portal.tenancy import current_tenant
from portal.views import commit_or_show_error
from portal.views.signup import connection_test_limited, setup_values
from tenants import audit
from tenants.db import db
from tenants.identity import (
    IdentityError,
    ProviderSettings,
    check_provider,
    extra_scopes,
    find_identity_provider,
    format_role_mapping,
    parse_domains,
    parse_role_mapping,
    save_identity_provider,
    scopes_with,
    set_domains,
    stored_secret,
    tenant_domains,
)
from tenants.settings import get_settings
from tenants.staff import change_role, get_user, list_users, set_active

home_bp = Blueprint("tenant_home", __name__, url_prefix="/t/<ags>")
admin_bp = Blueprint("tenant_admin", __name__, url_prefix="/t/<ags>/admin")


@home_bp.app_template_global()
def role_label(role: str) -> str:
    return {"viewer": _("Viewer"), "editor": _("Editor"), "admin": _("Administrator")}.get(role, role)


@home_bp.app_template_global()
def first_step_label(key: str) -> str:
    return {"identity_provider": _("Set up the identity provider so that colleagues get their role"),
            "data_source": _("Create the first data source"),
            "upload": _("Upload the first file"),
            "dashboards": _("Look at the dashboards")}.get(key, key)


@home_bp.app_template_global()
def freshness_label(state: str, active: bool = True) -> str:
    if not active:
        return _("paused")
    return {"fresh": _("up to date (last 7 days)"), "stale": _("older than 7 days"),
            "never": _("no data loaded yet")}.get(state, state)


def _audit(action: str, target: str | None = None, **details) -> None:
    audit.record(action, actor=audit.actor_of(current_user), tenant_id=current_tenant().id, target=target,
                 details=details, remote_addr=request.remote_addr)


@home_bp.get("/")
@role_required("viewer")
def index():
    """The start page of a tenant's staff: last month at a glance, where people abandon, how fresh
    the data is, and for a new tenant the "Erste Schritte" checklist (all from its own rows)."""
    from datetime import datetime

    from tenants import overview
    from tenants.ingest.loader import berlin_today
    from tenants.superset.embedding import list_dashboards

    tenant = current_tenant()
    today = berlin_today()
    last, before = overview.main_figures(db.session, tenant.id, today)
    sources = overview.freshness(db.session, tenant.id, datetime.now(UTC))
    provider = find_identity_provider(db.session, tenant.id)
    steps = overview.first_steps(
        db.session, tenant.id, sources=sources, has_dashboards=bool(list_dashboards(db.session, tenant.id)),
        # Signed in means a provider exists; the step is done when colleagues get a role by it too.
        has_identity_provider=provider is not None and bool(provider.role_mapping or provider.default_role))
    return render_template("tenant/home.html", tenant=tenant, last=last, before=before, steps=steps,
                           abandonment=overview.highest_abandonment(db.session, tenant.id, today), sources=sources,
                           min_starts=overview.MIN_STARTS_FOR_RANKING)


@admin_bp.get("/users")
@role_required("admin")
def users():
    tenant = current_tenant()
    return render_template("tenant/users.html", tenant=tenant, users=list_users(db.session, tenant.id))


@admin_bp.post("/users/<int:user_id>")
@role_required("admin")
def update_user(user_id: int):
    """Change a member's role, or deactivate or reactivate them."""
    user = get_user(db.session, current_tenant().id, user_id)
    action = request.form.get("action")
    if action == "role":
        def change():
            change_role(user, request.form.get("role", ""))
            _audit("user.role_changed", user.email, role=user.role)
    elif action in ("deactivate", "reactivate"):
        def change():
            set_active(user, action == "reactivate")
            _audit(f"user.{action}d", user.email)
    else:
        abort(400)
    return commit_or_show_error(change, IdentityError, _("Saved."), url_for("tenant_admin.users"))


def _provider_form(form) -> tuple[ProviderSettings, str]:
    role = form.get("default_role") or None
    wanted = ProviderSettings(
        discovery_url=form.get("discovery_url", "").strip(), client_id=form.get("client_id", ""),
        client_secret=form.get("client_secret") or None, role_claim=form.get("role_claim", "roles"),
        role_mapping=parse_role_mapping(form.get("role_mapping", "")), default_role=role,
        scopes=scopes_with(form.get("extra_scopes", "")), email_claim=form.get("email_claim") or "email",
    )
    return wanted, form.get("domains", "")


def _identity_page(form, check=None, status=200):
    tenant = current_tenant()
    return render_template("tenant/identity_provider.html", tenant=tenant, form=form, check=check,
                           has_secret=find_identity_provider(db.session, tenant.id) is not None,
                           setup=setup_values(tenant.ags, form)), status


@admin_bp.route("/identity-provider", methods=["GET", "POST"])
@role_required("admin")
@connection_test_limited
def identity_provider():
    """The tenant's identity provider and e-mail domains, with "Verbindung testen".

    Saving refuses settings under which no administrator could sign in any more
    (``tenants.identity.ensure_an_admin_remains``) and says who would lose it and why.
    """
    tenant = current_tenant()
    settings = get_settings()
    if request.method == "GET":
        return _identity_page(_current_values(find_identity_provider(db.session, tenant.id), tenant.id))
    redirect_uri = url_for("tenant_auth.callback", _external=True)
    check = None
    try:
        wanted, domains = _provider_form(request.form)
        if request.form.get("action") == "test":
            secret = wanted.client_secret or stored_secret(tenant.id, settings)
            check = check_provider(wanted.discovery_url, settings, client_id=wanted.client_id.strip(),
                                   client_secret=secret, redirect_uri=redirect_uri)
        else:
            set_domains(tenant.id, parse_domains(domains))
            save_identity_provider(tenant.id, wanted, settings, redirect_uri=redirect_uri, keep_an_admin=True,
                                   acting_user_id=current_user.user.id, saved_by=audit.actor_of(current_user))
            _audit("identity_provider.saved", wanted.discovery_url, client_id=wanted.client_id,
                   secret_changed=bool(wanted.client_secret), role_claim=wanted.role_claim,
                   email_claim=wanted.email_claim, scopes=wanted.scopes)
            db.session.commit()
            flash(_("The identity provider settings are saved and apply to the next sign-in."), "success")
            return redirect(url_for("tenant_admin.identity_provider"))
    except IdentityError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    return _identity_page(request.form, check)


@admin_bp.errorhandler(429)
def too_many(exc):
    """Over the connection tests' limit: the form comes back as it was filled in."""
    if request.endpoint != "tenant_admin.identity_provider":
        return error_page(exc)
    flash(_("Too many connection tests from your address. Your entries are kept; try again later."), "danger")
    return _identity_page(request.form, status=429)


def _current_values(provider, tenant_id: int) -> dict:
    values = {"domains": ", ".join(tenant_domains(tenant_id)), "role_claim": "roles", "email_claim": "email"}
    if provider is not None:
        values.update(discovery_url=provider.discovery_url, client_id=provider.client_id,
                      role_claim=provider.role_claim, role_mapping=format_role_mapping(provider.role_mapping or {}),
                      default_role=provider.default_role or "", email_claim=provider.email_claim,
                      extra_scopes=extra_scopes(provider.scopes))
    return values


@admin_bp.get("/audit")
@role_required("admin")
def audit_log():
    from portal.audit_pages import audit_page
    from tenants.models import AuditEvent

    return audit_page("tenant/audit.html", AuditEvent, current_tenant().id, tenant=current_tenant())
