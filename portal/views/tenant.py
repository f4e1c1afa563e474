"""Tenant pages under ``/t/<ags>/``: the staff start page and the tenant admin's pages.

``portal.tenancy`` has bound the tenant (404 for another tenant's staff);
objects are fetched through helpers that answer 404 for missing and foreign
ones alike.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import role_required
from portal.tenancy import current_tenant
from tenants import audit
from tenants.db import db
from tenants.identity import (
    IdentityError,
    ProviderSettings,
    check_provider,
    format_role_mapping,
    get_identity_provider,
    parse_domains,
    parse_role_mapping,
    save_identity_provider,
    set_domains,
    tenant_domains,
)
from tenants.staff import NotFound, change_role, get_user_for_tenant, list_users, set_active

home_bp = Blueprint("tenant_home", __name__, url_prefix="/t/<ags>")
admin_bp = Blueprint("tenant_admin", __name__, url_prefix="/t/<ags>/admin")


@home_bp.app_template_global()
def role_label(role: str) -> str:
    return {"viewer": _("Viewer"), "editor": _("Editor"), "admin": _("Administrator")}.get(role, role)


def _audit(action: str, target: str | None = None, **details) -> None:
    audit.record(action, actor=audit.actor_of(current_user), tenant_id=current_tenant().id, target=target,
                 details=details, remote_addr=request.remote_addr)


@home_bp.get("/")
@role_required("viewer")
def index():
    """The start page of a tenant's staff."""
    return render_template("tenant/home.html", tenant=current_tenant())


@admin_bp.get("/users")
@role_required("admin")
def users():
    return render_template("tenant/users.html", tenant=current_tenant(), users=list_users(current_tenant().id))


@admin_bp.post("/users/<int:user_id>")
@role_required("admin")
def update_user(user_id: int):
    """Change a member's role, or deactivate or reactivate them."""
    try:
        user = get_user_for_tenant(current_tenant().id, user_id)
    except NotFound:
        abort(404)
    action = request.form.get("action")
    try:
        if action == "role":
            change_role(user, request.form.get("role", ""))
            _audit("user.role_changed", user.email, role=user.role)
        elif action in ("deactivate", "reactivate"):
            set_active(user, action == "reactivate")
            _audit(f"user.{action}d", user.email)
        else:
            abort(400)
    except IdentityError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("tenant_admin.users"))
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("tenant_admin.users"))


def _provider_form(form) -> tuple[ProviderSettings, str]:
    role = form.get("default_role") or None
    wanted = ProviderSettings(
        discovery_url=form.get("discovery_url", "").strip(), client_id=form.get("client_id", ""),
        client_secret=form.get("client_secret") or None, role_claim=form.get("role_claim", "roles"),
        role_mapping=parse_role_mapping(form.get("role_mapping", "")), default_role=role,
    )
    return wanted, form.get("domains", "")


@admin_bp.route("/identity-provider", methods=["GET", "POST"])
@role_required("admin")
def identity_provider():
    """The tenant's identity provider and e-mail domains, with "Verbindung testen"."""
    tenant = current_tenant()
    settings = current_app.config["EGOV"]
    provider = get_identity_provider(tenant.id)
    form = request.form if request.method == "POST" else _current_values(provider, tenant.id)
    check = None
    if request.method == "POST":
        try:
            wanted, domains = _provider_form(request.form)
            if request.form.get("action") == "test":
                check = check_provider(wanted.discovery_url, settings)
            else:
                set_domains(tenant.id, parse_domains(domains))
                save_identity_provider(tenant.id, wanted, settings)
                _audit("identity_provider.saved", wanted.discovery_url, client_id=wanted.client_id,
                       secret_changed=bool(wanted.client_secret))
                db.session.commit()
                flash(_("The identity provider settings are saved and apply to the next sign-in."), "success")
                return redirect(url_for("tenant_admin.identity_provider"))
        except IdentityError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
    return render_template("tenant/identity_provider.html", tenant=tenant, form=form, check=check,
                           has_secret=provider is not None)


def _current_values(provider, tenant_id: int) -> dict:
    values = {"domains": ", ".join(tenant_domains(tenant_id)), "role_claim": "roles"}
    if provider is not None:
        values.update(discovery_url=provider.discovery_url, client_id=provider.client_id,
                      role_claim=provider.role_claim, role_mapping=format_role_mapping(provider.role_mapping or {}),
                      default_role=provider.default_role or "")
    return values


@admin_bp.get("/audit")
@role_required("admin")
def audit_log():
    return render_template("tenant/audit.html", tenant=current_tenant(),
                           events=audit.recent_events(current_tenant().id))
