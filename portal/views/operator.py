"""The operator console: review sign-ups, run the tenant lifecycle, watch provisioning.

Operators belong to no tenant. Pages about one tenant carry its AGS in the
URL, so ``portal.tenancy`` binds that tenant for the request and the tenant's
own rows (audit log, provisioning progress, the archive) are read under its
row-level security.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import operator_required
from portal.tenancy import current_tenant
from portal.views import commit_or_show_error
from tenants import archive, audit, break_glass, offboarding
from tenants.db import after_commit, db
from tenants.identity import IdentityError, find_identity_provider, format_role_mapping, tenant_domains
from tenants.lifecycle import (
    NEEDS_REASON,
    TRANSITIONS,
    LifecycleError,
    change_status,
    provisioning_job_error,
    provisioning_progress,
    start_provisioning,
)
from tenants.models import TenantStatus
from tenants.registry import list_tenants
from tenants.staff import list_users

bp = Blueprint("operator", __name__, url_prefix="/operator")

STATUS_ORDER = tuple(TenantStatus)


@bp.app_template_global()
def status_label(status: str) -> str:
    return {"pending": _("Pending review"), "active": _("Active"), "suspended": _("Suspended"),
            "offboarded": _("Offboarded"), "rejected": _("Rejected")}.get(status, status)


@bp.app_template_global()
def action_label(action: str) -> str:
    return {"approve": _("Approve"), "reject": _("Reject"), "suspend": _("Suspend"),
            "reactivate": _("Reactivate"), "offboard": _("Offboard")}.get(action, action)


@bp.app_template_global()
def provisioning_text(progress: dict | None) -> str:
    """The last provisioning run in words, with German local times."""
    from datetime import datetime

    from flask_babel import format_datetime

    if not progress:
        return _("Not run yet.")

    def when(value):
        try:
            return format_datetime(datetime.fromisoformat(value), "short") if value else ""
        except (TypeError, ValueError):
            return str(value)

    status = progress.get("status")
    started, finished = when(progress.get("started_at")), when(progress.get("finished_at"))
    if progress.get("action") == "deprovision":
        return {"succeeded": _("Dashboards and database access removed on %(when)s.", when=finished),
                "failed": _("Removing dashboards and database access failed on %(when)s.", when=finished)}.get(
            status, _("Removing dashboards and database access since %(when)s.", when=started))
    return {"succeeded": _("Set up completely on %(when)s.", when=finished),
            "failed": _("Set-up failed on %(when)s.", when=finished)}.get(
        status, _("Set-up running since %(when)s.", when=started))


@bp.app_template_global()
def state_text(status: str) -> str:
    """The state of a run or one of its steps (provisioning steps, comparison refreshes) in words."""
    return {"done": _("done"), "succeeded": _("succeeded"), "failed": _("failed"), "running": _("running"),
            "pending": _("waiting")}.get(status, status)


@bp.app_template_global()
def step_text(name: str) -> str:
    return {"superset_db_role": _("Database access for the dashboards"),
            "superset_objects": _("Dashboards and datasets in Superset")}.get(name, name)


def _actor() -> str:
    return audit.actor_of(current_user)


def _audit(action: str, **details) -> None:
    """An entry in the request tenant's audit log, by the signed-in operator."""
    tenant = current_tenant()
    audit.record(action, actor=_actor(), tenant_id=tenant.id, target=tenant.ags, details=details,
                 remote_addr=request.remote_addr)


def _tenant_page() -> str:
    return url_for("operator.tenant", ags=current_tenant().ags)


def _back(message: str, category: str):
    """Flash and return to the tenant's page."""
    flash(message, category)
    return redirect(_tenant_page())


PER_PAGE = 50


def _size_key(region) -> str:
    from tenants.benchmark.groups import Member, size_class

    return size_class(Member(0, region.ags, region.kind, region.kreis_ags, region.kreis_name, region.population))[0]


@bp.get("/")
@operator_required
def index():
    """All tenants, searchable by name or AGS and filtered by status, Landkreis and size class; 50 a page.

    At most 443 tenants (Hessen): filtering the list in memory is simpler than SQL and as fast.
    """
    from tenants.benchmark.groups import DISTRICTS, SIZE_CLASSES

    args = request.args
    wanted = {k: args.get(k, "").strip()[:100] for k in ("q", "status", "kreis", "size")}
    tenants = list_tenants()
    counts = {status: sum(t.status == status for t in tenants) for status in STATUS_ORDER}
    districts = sorted({(t.region.kreis_ags, t.region.kreis_name if t.region.kind != "landkreis" else t.name)
                        for t in tenants if t.region.kind != "kreisfreie_stadt"}, key=lambda d: d[1])
    q = wanted["q"].lower()
    shown = [t for t in tenants
             if (not q or q in t.name.lower() or t.ags.startswith(q))
             and (not wanted["status"] or t.status == wanted["status"])
             and (not wanted["kreis"] or t.region.kreis_ags == wanted["kreis"] or t.ags == wanted["kreis"])
             and (not wanted["size"] or _size_key(t.region) == wanted["size"])]
    shown.sort(key=lambda t: (STATUS_ORDER.index(t.status), t.name))
    page = max(args.get("page", 1, type=int) or 1, 1)
    return render_template("operator/index.html", tenants=shown[(page - 1) * PER_PAGE:page * PER_PAGE],
                           total=len(shown), page=page, has_next=len(shown) > page * PER_PAGE, wanted=wanted,
                           counts=counts, statuses=STATUS_ORDER, districts=districts,
                           sizes=[(key, label) for key, _lo, _hi, label in SIZE_CLASSES] + [DISTRICTS],
                           size_label=dict([(key, label) for key, _lo, _hi, label in SIZE_CLASSES] + [DISTRICTS]),
                           size_key=_size_key)


@bp.get("/tenants/<ags>")
@operator_required
def tenant():
    tenant = current_tenant()
    actions = [a for a, (sources, _target) in TRANSITIONS.items() if tenant.status in sources]
    offboarded = tenant.status == TenantStatus.OFFBOARDED
    counts = archive.row_counts(db.session.connection(), tenant.id) if offboarded else None
    return render_template(
        "operator/tenant.html", tenant=tenant, actions=actions, needs_reason=NEEDS_REASON,
        provider=find_identity_provider(db.session, tenant.id), domains=tenant_domains(tenant.id),
        progress=provisioning_progress(tenant.id), job_error=provisioning_job_error(tenant.id),
        events=audit.recent_events(tenant.id, limit=50), counts=counts,
        offboarding=offboarding.offboarding_state(tenant) if offboarded else None,
    )


@bp.post("/tenants/<ags>/status")
@operator_required
def change():
    tenant = current_tenant()
    action = request.form.get("action", "")
    tenant_id, actor = tenant.id, _actor()

    def apply():
        change_status(tenant, action, actor=actor, reason=request.form.get("reason", ""),
                      remote_addr=request.remote_addr)
        if tenant.is_active:
            after_commit(db.session, lambda: start_provisioning(tenant_id))
        elif tenant.status == TenantStatus.OFFBOARDED:
            after_commit(db.session, lambda: offboarding.start_archive(tenant_id, actor))

    return commit_or_show_error(
        apply, LifecycleError,
        lambda _changed: _("%(name)s is now %(status)s.", name=tenant.name, status=status_label(tenant.status)),
        _tenant_page())


@bp.post("/tenants/<ags>/provision")
@operator_required
def provision():
    tenant = current_tenant()
    if not tenant.is_active:
        abort(409)
    _audit("tenant.provisioning_started")
    tenant_id = tenant.id
    after_commit(db.session, lambda: start_provisioning(tenant_id))
    db.session.commit()
    return _back(_("Provisioning has been queued."), "success")


@bp.get("/tenants/<ags>/archive.zip")
@operator_required
def download_archive():
    """The archive the offboarding job wrote: every row of the tenant, as CSV files in a ZIP."""
    tenant = current_tenant()
    path = offboarding.archive_path(tenant.id, tenant.ags)
    if tenant.status != TenantStatus.OFFBOARDED or not path.exists():
        abort(409)
    state = offboarding.offboarding_state(tenant)
    _audit("tenant.archive_downloaded", rows=state["archive"]["rows"])
    db.session.commit()
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=path.name)


@bp.post("/tenants/<ags>/archive")
@operator_required
def make_archive():
    """Write the archive (again): a job; its progress shows on the tenant's page."""
    tenant = current_tenant()
    if tenant.status != TenantStatus.OFFBOARDED:
        abort(409)
    offboarding.start_archive(tenant.id, _actor())
    return _back(_("The archive is being written; this page shows its progress."), "success")


@bp.get("/tenants/<ags>/offboarding")
@operator_required
def offboarding_status():
    """The archive's and the purge's state as JSON, polled by the tenant's page while a job works."""
    tenant = current_tenant()
    if tenant.status != TenantStatus.OFFBOARDED:
        abort(409)
    state = offboarding.offboarding_state(tenant)
    response = jsonify(state)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tenants/<ags>/purge")
@operator_required
def purge():
    """Queue the purge of the offboarded tenant's data after the second confirmation (its AGS typed in)."""
    tenant = current_tenant()
    tenant_id, actor, remote_addr = tenant.id, _actor(), request.remote_addr

    def request_it():
        offboarding.request_purge(tenant, request.form.get("confirmation", ""), actor=actor, remote_addr=remote_addr)
        after_commit(db.session, lambda: offboarding.start_purge(tenant_id, actor, remote_addr))

    return commit_or_show_error(
        request_it, LifecycleError,
        _("The data of %(name)s is being deleted; this page shows the progress.", name=tenant.name), _tenant_page())


@bp.get("/tenants/<ags>/access")
@operator_required
def access():
    """Break-glass: the tenant's accounts and saved identity settings, to restore an admin or a working version."""
    tenant = current_tenant()
    return render_template("operator/access.html", tenant=tenant, users=list_users(db.session, tenant.id),
                           provider=find_identity_provider(db.session, tenant.id), domains=tenant_domains(tenant.id),
                           versions=break_glass.versions(tenant.id), format_role_mapping=format_role_mapping)


def _access_page() -> str:
    return url_for("operator.access", ags=current_tenant().ags)


@bp.post("/tenants/<ags>/access/admin")
@operator_required
def grant_admin():
    tenant = current_tenant()
    return commit_or_show_error(
        lambda: break_glass.grant_admin(tenant, request.form.get("email", ""), actor=_actor(),
                                        reason=request.form.get("reason", ""), remote_addr=request.remote_addr),
        IdentityError,
        lambda user: _("%(email)s is an administrator of %(name)s now (role fixed in the portal).",
                       email=user.email, name=tenant.name),
        _access_page())


@bp.post("/tenants/<ags>/access/restore")
@operator_required
def restore_identity():
    tenant = current_tenant()
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        flash(_("Choose a version."), "danger")
        return redirect(_access_page())
    return commit_or_show_error(
        lambda: break_glass.restore_identity(tenant, version, actor=_actor(), reason=request.form.get("reason", ""),
                                             remote_addr=request.remote_addr),
        IdentityError,
        lambda provider: _("Version %(version)s is restored as version %(new)s and applies to the next sign-in.",
                           version=version, new=provider.config_version),
        _access_page())


@bp.get("/audit")
@operator_required
def platform_audit():
    from portal.audit_pages import audit_page
    from tenants.models import PlatformAuditEvent

    return audit_page("operator/audit.html", PlatformAuditEvent)
