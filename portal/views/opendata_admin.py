"""Publishing Open Data (tenant admins) and the ZSK export (tenant admins and operators)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import operator_required, role_required
from portal.tenancy import current_tenant
from portal.views import commit_or_show_error
from tenants import audit
from tenants.db import db
from tenants.months import berlin_today
from tenants.opendata import zsk
from tenants.opendata.datasets import DATASETS, DisclosureRisk, column_names
from tenants.opendata.publication import (
    DEFAULT_LICENCE,
    LICENCES,
    OpenDataError,
    preview,
    publications,
    publish,
    rules_from,
    withdraw,
)
from tenants.settings import get_settings

bp = Blueprint("tenant_opendata", __name__, url_prefix="/t/<ags>")
operator_bp = Blueprint("operator_opendata", __name__, url_prefix="/operator")

#: How many months the ZSK export reaches back.
ZSK_MONTHS = 24


@bp.get("/opendata/")
@role_required("admin")
def overview():
    tenant = current_tenant()
    pubs = publications(db.session, tenant.id)
    current = next((p for p in pubs.values() if p.is_published), None)
    return render_template(
        "opendata/admin.html", tenant=tenant, pubs=pubs, datasets=DATASETS, licences=LICENCES,
        licence=current.licence if current else DEFAULT_LICENCE,
        contact_email=current.contact_email if current else (tenant.contact_email or ""))


@bp.get("/opendata/<dataset>/preview")
@role_required("admin")
def preview_dataset(dataset: str):
    if dataset not in DATASETS:
        abort(404)
    try:
        snapshot = preview(db.session, current_tenant(), dataset, rules_from(get_settings()))
    except DisclosureRisk as risk:
        db.session.rollback()
        current_app.logger.error("Open Data preview of tenant %s blocked by the disclosure audit: %s",
                                 current_tenant().id, risk)
        return render_template("opendata/preview.html", snapshot=None, blocked=True, spec=DATASETS[dataset],
                               columns=column_names(dataset))
    # Keeps the audited decisions of the months just computed, so publishing and downloading need not
    # compute them again; a draft publication is never added to the session, so it is not stored.
    db.session.commit()
    return render_template("opendata/preview.html", snapshot=snapshot, spec=DATASETS[dataset],
                           columns=column_names(dataset))


def _change(action, done_message: str):
    """Run a publishing action, commit, and come back to the overview with a message."""
    return commit_or_show_error(action, OpenDataError, done_message, url_for(".overview"))


@bp.post("/opendata/publish")
@role_required("admin")
def publish_datasets():
    form = request.form
    return _change(lambda: publish(db.session, current_tenant(), form.getlist("dataset"),
                                   form.get("licence", DEFAULT_LICENCE), form.get("contact_email", ""),
                                   current_user.get_id()),
                   _("The selected datasets are public now."))


@bp.post("/opendata/<dataset>/withdraw")
@role_required("admin")
def withdraw_dataset(dataset: str):
    return _change(lambda: withdraw(db.session, current_tenant(), dataset, current_user.get_id()),
                   _("The dataset has been withdrawn. Its addresses now answer “gone” (410)."))


def _zsk_window() -> tuple[date, date]:
    today = berlin_today()
    index = today.year * 12 + today.month - 1 - ZSK_MONTHS
    return date(index // 12, index % 12 + 1, 1), today


def _csv(body: bytes, filename: str) -> Response:
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/zsk.csv")
@role_required("admin")
def tenant_zsk():
    tenant = current_tenant()
    tenant_id, ags = tenant.id, tenant.ags
    audit.record("zsk.export", actor=current_user.get_id(), tenant_id=tenant_id, target="zsk",
                 remote_addr=request.remote_addr)
    db.session.commit()  # the export then opens its own tenant transactions
    return _csv(zsk.to_csv(zsk.tenant_rows(tenant_id, *_zsk_window())), f"zsk-{ags}.csv")


@operator_bp.get("/zsk.csv")
@operator_required
def operator_zsk():
    audit.record("zsk.export", actor=current_user.get_id(), target="all tenants", remote_addr=request.remote_addr)
    db.session.commit()
    return _csv(zsk.to_csv(zsk.operator_rows(*_zsk_window())), "zsk-alle-mandanten.csv")
