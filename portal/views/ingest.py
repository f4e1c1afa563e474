"""Tenant pages for data: upload with live progress, run results, data sources, ingest health.

Editors and admins upload; admins manage data sources (push tokens, Matomo, feedback keys),
see the health page and retry failed runs. Logic lives in ``ingest_workers``; these views only
translate between HTTP and those functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import operator_required, role_required
from portal.tenancy import current_tenant
from portal.views import commit_or_show_error
from tenants.db import db
from tenants.ingest import catalogue, matomo, runs
from tenants.ingest.health import health_in_session
from tenants.ingest.profiles import shipped_profiles
from tenants.ingest.sources import (
    SourceError,
    create_source,
    delete_source,
    errors_csv,
    get_run,
    get_source,
    issue_token,
    list_sources,
    recent_runs,
    revoke_token,
    run_errors,
    set_mapping,
    update_source,
)
from tenants.settings import get_settings

bp = Blueprint("tenant_ingest", __name__, url_prefix="/t/<ags>/data")

UPLOAD_KINDS = ("upload", "push")
SUFFIXES = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx"}


def _source_or_404(source_id: int, kinds=("upload", "push", "matomo", "feedback")):
    """The tenant's data source (404 for missing and foreign ones); 400 when it is of another kind."""
    source = get_source(db.session, current_tenant().id, source_id)
    if source.kind not in kinds:
        abort(400)
    return source


def _run_or_404(run_id: int):
    return get_run(db.session, current_tenant().id, run_id)


@bp.get("/")
@role_required("editor")
def index():
    sources = list_sources(db.session)
    return render_template("ingest/index.html", sources=sources, runs=recent_runs(db.session),
                           upload_sources=[s for s in sources if s.kind in UPLOAD_KINDS and s.active],
                           profiles=shipped_profiles(), is_admin=current_user.has_role("admin"))


@bp.post("/upload")
@role_required("editor")
def upload():
    tenant = current_tenant()
    source_id = request.form.get("source_id", type=int)
    file = request.files.get("file")
    suffix = "." + (file.filename.rsplit(".", 1)[-1].lower() if file and "." in file.filename else "")
    if not file or suffix not in SUFFIXES or source_id is None:
        flash(_("Choose a CSV or Excel (.xlsx) file."), "danger")
        return redirect(url_for(".index"))
    source = _source_or_404(source_id, UPLOAD_KINDS)
    path, key = runs.spool_bytes(tenant.id, iter(lambda: file.stream.read(1 << 20), b""), suffix)
    try:
        # The name is shown and stored as text: no control characters, valid Unicode.
        filename = "".join(ch for ch in file.filename if ch.isprintable())[:255]
        run, new = runs.accept_batch(db.session, tenant, source, key, path, SUFFIXES[suffix], filename,
                                     current_user.get_id())
    except runs.IngestRefused as exc:
        path.unlink(missing_ok=True)
        flash(_(str(exc)), "danger")
        return redirect(url_for(".index"))
    run_id, status = run.id, run.status
    if new:
        runs.enqueue_after_commit(db.session, run)
    db.session.commit()
    if not new and status == "succeeded":
        flash(_("This file was loaded before; nothing was changed."), "info")
    elif not new:
        flash(_("This file is being loaded already; this page shows how far it is."), "info")
    return redirect(url_for(".run_page", run_id=run_id))


def _settled_run_or_404(run_id: int):
    """The run, settled first when nobody works on it any more (its page then shows the truth)."""
    run = _run_or_404(run_id)
    if runs.settle_runs(db.session, [run]):
        runs.enqueue_after_commit(db.session, run)
        db.session.commit()
    return run


@bp.get("/runs/<int:run_id>")
@role_required("editor")
def run_page(run_id: int):
    run = _settled_run_or_404(run_id)
    source = _source_or_404(run.data_source_id)
    errors = [(e.row_no, e.column_name, runs.error_text(e.reason, e.args)) for e in run_errors(db.session, run.id, 100)]
    return render_template("ingest/run.html", run=run, source=source, errors=errors,
                           error=runs.error_text(run.error, run.error_args))


@bp.get("/runs/<int:run_id>/status")
@role_required("editor")
def run_status(run_id: int):
    return jsonify(runs.run_status(_settled_run_or_404(run_id)))


@bp.get("/runs/<int:run_id>/errors.csv")
@role_required("editor")
def run_errors_csv(run_id: int):
    run = _run_or_404(run_id)
    header = [_("Row"), _("Column"), _("Reason")]
    lines = [(e.row_no, e.column_name, runs.error_text(e.reason, e.args)) for e in run_errors(db.session, run.id)]
    return Response(errors_csv(header, lines), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=fehler-lauf-{run.id}.csv"})


# -- administration --------------------------------------------------------------------------------

@bp.post("/sources")
@role_required("admin")
def create():
    form = request.form
    try:
        source = create_source(db.session, current_tenant().id, get_settings(), form.get("name", ""),
                               form.get("kind", ""), form.get("profile", "canonical"),
                               matomo={k: form.get(k, "") for k in ("url", "site_id", "token", "pages")},
                               origins=form.get("origins", ""))
    except SourceError as exc:
        db.session.rollback()
        flash(_(str(exc)), "danger")
        return redirect(url_for(".index"))
    db.session.commit()
    flash(_("Data source %(name)s created.", name=source.name), "success")
    return redirect(url_for(".source_page", source_id=source.id))


@bp.get("/sources/<int:source_id>")
@role_required("admin")
def source_page(source_id: int):
    source = _source_or_404(source_id)
    return render_template("ingest/source.html", source=source, token=None,
                           portal_url=get_settings().portal_url)


def _change_source(source_id: int, change: Callable[[], object], confirm: Callable[[], str],
                   done: str | None = None) -> Response:
    """Apply a change to a data source: commit and confirm it, or undo it and show the user's error."""
    page = url_for(".source_page", source_id=source_id)
    return commit_or_show_error(change, SourceError, confirm, done or page, failed_back=page,
                                error_text=lambda exc: _(str(exc)))


@bp.post("/sources/<int:source_id>/settings")
@role_required("admin")
def settings(source_id: int):
    source = _source_or_404(source_id)
    return _change_source(
        source_id, lambda: update_source(db.session, source, request.form.get("name", ""),
                                         request.form.get("active") == "on"),
        lambda: _("The data source was saved.") if source.active else
        _("The data source is paused: it accepts nothing until it is switched on again."))


@bp.post("/sources/<int:source_id>/delete")
@role_required("admin")
def delete(source_id: int):
    source = _source_or_404(source_id)
    name = source.name
    return _change_source(source_id, lambda: delete_source(db.session, source),
                          lambda: _("Data source %(name)s deleted.", name=name), url_for(".index"))


@bp.post("/sources/<int:source_id>/token")
@role_required("admin")
def new_token(source_id: int):
    source = _source_or_404(source_id, ("push",))
    token = issue_token(source)
    db.session.commit()
    # Shown once, in this response only; it is not stored in clear anywhere.
    response = Response(render_template("ingest/source.html", source=source, token=token,
                                        portal_url=get_settings().portal_url))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/sources/<int:source_id>/token/revoke")
@role_required("admin")
def revoke(source_id: int):
    source = _source_or_404(source_id, ("push",))
    revoke_token(source)
    db.session.commit()
    flash(_("The token was revoked; requests with it are refused from now on."), "success")
    return redirect(url_for(".source_page", source_id=source.id))


@bp.post("/sources/<int:source_id>/mapping")
@role_required("admin")
def mapping(source_id: int):
    source = _source_or_404(source_id, UPLOAD_KINDS)
    return _change_source(source_id, lambda: set_mapping(source, request.form.get("mapping", "")),
                          lambda: _("The mapping was saved; it applies to the next file or batch."))


@bp.post("/sources/<int:source_id>/backfill")
@role_required("admin")
def backfill(source_id: int):
    source = _source_or_404(source_id, ("matomo",))
    try:
        start, end = (date.fromisoformat(request.form.get(k, "")) for k in ("start", "end"))
        matomo.check_range(start, end)
    except ValueError:
        flash(_("Give a valid period of at most one year."), "danger")
        return redirect(url_for(".source_page", source_id=source.id))
    matomo.enqueue_pull(db.session, current_tenant().id, source.id, start, end)
    db.session.commit()
    flash(_("The Matomo data of the period is being fetched."), "success")
    return redirect(url_for(".health"))


@bp.get("/services")
@role_required("admin")
def services():
    return render_template("ingest/services.html", services=catalogue.list_services(db.session))


@bp.post("/services")
@role_required("admin")
def save_service():
    form = request.form
    if not form.get("service_key"):
        flash(_("Choose a service."), "danger")
        return redirect(url_for(".services"))
    try:
        service = catalogue.update_service(db.session, form.get("service_key", ""), form.get("name", ""),
                                           form.get("leika_key", ""))
    except catalogue.ServiceError as exc:
        db.session.rollback()
        flash(_(str(exc)), "danger")
        return redirect(url_for(".services"))
    db.session.commit()
    flash(_("Service %(name)s saved.", name=service.name), "success")
    return redirect(url_for(".services"))


def _health_page(retry_endpoint: str, back_url: str | None):
    """The health report; runs it settled are committed and queued before the page is shown."""
    report = health_in_session(db.session)
    db.session.commit()
    return render_template("ingest/health.html", report=report, retry_endpoint=retry_endpoint, back_url=back_url)


@bp.get("/health")
@role_required("admin")
def health():
    return _health_page("tenant_ingest.retry", url_for(".index"))


def _retry(run_id: int):
    run = _run_or_404(run_id)
    try:
        runs.retry_run(db.session, run)
    except runs.IngestRefused as exc:
        db.session.rollback()
        flash(_(str(exc)), "danger")
        return
    db.session.commit()
    flash(_("The run was queued again."), "success")


@bp.post("/runs/<int:run_id>/retry")
@role_required("admin")
def retry(run_id: int):
    _retry(run_id)
    return redirect(url_for(".health"))


# -- operators: the same health page for any tenant ------------------------------------------------

ops = Blueprint("tenant_ops_ingest", __name__, url_prefix="/ops/t/<ags>/ingest")


@ops.get("/")
@operator_required
def ops_health():
    return _health_page("tenant_ops_ingest.ops_retry", None)


@ops.post("/runs/<int:run_id>/retry")
@operator_required
def ops_retry(run_id: int):
    _retry(run_id)
    return redirect(url_for(".ops_health"))
