"""Comparisons ("Vergleich"): staff compare a service with their groups; admins opt in; operators watch.

Every tenant page reads only the request's tenant (RLS, bound by
portal.tenancy) and the ``benchmark`` schema's group figures.
"""

from __future__ import annotations

import re
from datetime import date

from flask import Blueprint, abort, flash, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import text

from portal.access import operator_required, role_required
from portal.tenancy import current_tenant
from portal.views import commit_or_show_error
from tenants.benchmark import participation, rules_from
from tenants.benchmark.comparison import comparison, last_refresh, services
from tenants.benchmark.comparison import overview as overview_lines
from tenants.benchmark.groups import SIZE_CLASSES
from tenants.benchmark.metrics import FAMILIES
from tenants.benchmark.participation import ParticipationError
from tenants.context import platform_transaction, tenant_transaction
from tenants.db import db
from tenants.models import Tenant
from tenants.months import berlin_today
from tenants.settings import get_settings
from tenants.superset.embedding import list_dashboards

bp = Blueprint("tenant_benchmark", __name__, url_prefix="/t/<ags>/vergleich")
operator_bp = Blueprint("operator_benchmark", __name__, url_prefix="/operator")

LEIKA = re.compile(r"99\d{12}")


def _month(value: str | None) -> date | None:
    if value and re.fullmatch(r"\d{4}-\d{2}", value):
        year, month = map(int, value.split("-"))
        if 1 <= month <= 12:
            return date(year, month, 1)
    return None


def _dashboard_url(tenant) -> str | None:
    """The embedded "Vergleich" dashboard, once the tenant's Superset objects are provisioned."""
    if any(dashboard.key == "benchmark" for dashboard in list_dashboards(db.session, tenant.id)):
        return url_for("tenant_dashboards.show", ags=tenant.ags, key="benchmark")
    return None


def _comparison(leika: str):
    if not LEIKA.fullmatch(leika):
        abort(404)
    tenant = current_tenant()
    result = comparison(db.session, tenant, leika, _month(request.args.get("month")), berlin_today())
    if not result.months and leika not in dict(services(db.session, tenant.id)):
        abort(404)
    return tenant, result


@bp.get("/")
@role_required("viewer")
def overview():
    tenant = current_tenant()
    states = participation.families(db.session, tenant.id)
    return render_template("benchmark/overview.html", tenant=tenant, lines=overview_lines(db.session, tenant,
                                                                                        berlin_today()),
                           states=states, refreshed_at=last_refresh(db.session), dashboard_url=_dashboard_url(tenant))


@bp.get("/<leika>")
@role_required("viewer")
def service(leika: str):
    tenant, result = _comparison(leika)
    brules = rules_from(get_settings())
    # The shares of single payment and sign-in methods fold away: the page stays short.
    return render_template("benchmark/service.html", tenant=tenant, c=result, brules=brules,
                           share_keys=[row.key for row in result.rows if ":" in row.key],
                           dashboard_url=_dashboard_url(tenant))


@bp.get("/<leika>.json")
@role_required("viewer")
def service_json(leika: str):
    """The page's content as JSON: the tenant's own values and its groups' published figures only."""
    _, c = _comparison(leika)
    return jsonify({
        "service_key": c.leika, "service_name": c.service_name, "month": c.month.isoformat() if c.month else None,
        "refreshed_at": c.refreshed_at.isoformat() if c.refreshed_at else None,
        "participating": sorted(c.participating),
        "groups": [{"kind": kind, "key": key, "label": label} for kind, key, label in c.groups],
        "metrics": [{
            "metric": row.key, "label": row.label, "own": row.own,
            "groups": {key: {"q1": cell.figure.q1, "median": cell.figure.median, "q3": cell.figure.q3,
                             "contributors_at_least": cell.figure.contributors_band,
                             "suppressed": cell.figure.suppressed, "rank_band": cell.band,
                             "mode": cell.mode_label} if cell.figure else None
                       for key, cell in row.cells.items()},
        } for row in c.rows],
    })


@bp.get("/teilnahme")
@role_required("admin")
def settings():
    tenant = current_tenant()
    # portal.tenants is the public registry (no RLS): names and keys only.
    others = db.session.execute(
        text("SELECT ags, name FROM portal.tenants WHERE status = 'active' AND id <> :id ORDER BY name"),
        {"id": tenant.id}).all()
    return render_template("benchmark/settings.html", tenant=tenant, families=FAMILIES,
                           states=participation.families(db.session, tenant.id),
                           peers=set(participation.peers(db.session, tenant.id)), others=others,
                           refreshed_at=last_refresh(db.session), size_classes=SIZE_CLASSES)


def _change(action, message: str):
    return commit_or_show_error(action, ParticipationError, message, url_for(".settings"))


@bp.post("/teilnahme")
@role_required("admin")
def save_families():
    wanted = set(request.form.getlist("family"))
    outcome = {}

    def act():
        outcome["joined"], outcome["withdrawn"] = participation.set_families(
            db.session, current_tenant().id, wanted, current_user.get_id())

    response = _change(act, _("Your choice has been saved. It applies to the months compared from the next refresh "
                               "on (daily at 4 a.m.)."))
    if outcome.get("withdrawn"):
        flash(_("Months already published keep their comparison figures, with your values; months compared after "
                "the next refresh no longer contain them."), "info")
    return response


@bp.post("/vergleichsgruppe")
@role_required("admin")
def save_peers():
    chosen = [a for a in request.form.getlist("peer") if re.fullmatch(r"\d{5}|\d{8}", a)]
    return _change(lambda: participation.set_peers(db.session, current_tenant().id, chosen, current_user.get_id()),
                   _("Your peer group has been saved. It is shown once it has enough participants."))


@operator_bp.get("/vergleich")
@operator_required
def operator_overview():
    """Which tenants take part in which family, and when the figures were last refreshed."""
    db.session.commit()  # end the sign-in's transaction; each tenant is read in its own below
    with platform_transaction() as session:
        tenants = session.query(Tenant.id, Tenant.ags, Tenant.name).filter(Tenant.is_active) \
            .order_by(Tenant.name).all()
        runs = session.execute(text("SELECT started_at, finished_at, status, participants, figures, months, error "
                                    "FROM benchmark.refresh_runs ORDER BY id DESC LIMIT 10")).all()
    table = []
    for tenant_id, ags, name in tenants:
        with tenant_transaction(tenant_id) as session:
            states = participation.families(session, tenant_id)
            peer_count = len(participation.peers(session, tenant_id))
        table.append((ags, name, states, peer_count))
    return render_template("benchmark/operator.html", table=table, runs=runs, families=FAMILIES)


@bp.app_template_global()
def family_label(family: str) -> str:
    """A comparison area (tenants.benchmark.metrics.FAMILIES) as staff read it."""
    return {"usage": _("Usage, completion and abandonment"), "payment": _("Payment methods"),
            "authentication": _("Authentication methods and trust levels"),
            "satisfaction": _("Satisfaction")}.get(family, family)


@bp.app_template_filter("iso_date")
def iso_date(value: str | None) -> str:
    """An ISO 8601 timestamp as stored in JSON settings (participation changes) as a local date."""
    from datetime import datetime

    from flask_babel import format_date

    return format_date(datetime.fromisoformat(value), "medium") if value else ""


@bp.app_template_filter("benchmark_value")
def format_value(value, unit: str) -> str:
    """A figure as German staff read it: rates in per cent, ratings and per-1,000 figures with decimals."""
    from flask_babel import format_decimal, format_percent

    if value is None:
        return "–"
    if unit == "label":
        return str(value)
    if unit == "rate":
        return format_percent(value, "#,##0.0 %")
    return format_decimal(value, "#,##0.00")
