"""The tenant's dashboards: embedded Superset, guest tokens, the way into self-service."""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import urlencode

from flask import Blueprint, abort, g, jsonify, redirect, render_template, session, url_for
from flask_babel import get_locale
from flask_limiter.util import get_remote_address
from flask_login import current_user

from portal.access import role_required
from portal.extensions import limiter
from portal.tenancy import current_tenant
from tenants import metrics
from tenants.db import db
from tenants.settings import get_settings
from tenants.superset import embedding
from tenants.superset.server import answered_recently
from tenants.superset.templates import TEMPLATE_DIR

bp = Blueprint("tenant_dashboards", __name__, url_prefix="/t/<ags>")


@lru_cache(maxsize=4)
def _template_texts(lang: str) -> dict[str, str]:
    """The ready-made dashboards' texts in ``lang``: the catalogue Superset uses for the same texts inside
    the embedded dashboard (superset_config/portal_ui.py), so the page and the dashboard agree."""
    path = TEMPLATE_DIR.parent / "translations" / f"dashboards.{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def dashboard_text(text: str) -> str:
    """A dashboard title or description in the page's language (the templates are written in German)."""
    return _template_texts(str(get_locale() or "de").split("_")[0]).get(text, text)


def _superset_url() -> str:
    return get_settings().superset_url


@bp.get("/dashboards/", defaults={"key": None})
@bp.get("/dashboards/<key>")
@role_required("viewer")
def show(key: str | None):
    tenant = current_tenant()
    dashboards = embedding.list_dashboards(db.session, tenant.id)
    selected = None
    if dashboards:
        selected = next((d for d in dashboards if d.key == (key or dashboards[0].key)), None)
        if selected is None:
            abort(404)
    elif key is not None:
        abort(404)
    available = answered_recently(get_settings().superset_api_url)
    if available:
        g.csp_frame_src = _superset_url()
    without_steps = bool(selected and selected.needs_steps and not embedding.has_step_data(db.session, tenant.id))
    return render_template("dashboards/show.html", tenant=tenant, dashboards=dashboards, selected=selected,
                           superset_available=available, superset_url=_superset_url(), without_steps=without_steps,
                           can_edit=current_user.has_role("editor"), text=dashboard_text)


def _per_user() -> str:
    # Per signed-in user, not per address: a town hall's staff share one public IP.
    return session.get("_user_id") or get_remote_address()


@bp.get("/dashboards/<key>/guest-token")
@role_required("viewer")
@limiter.limit("30 per minute", key_func=_per_user)
def guest_token(key: str):
    tenant = current_tenant()
    try:
        token = embedding.guest_token(db.session, get_settings(), tenant.id, key,
                                      user_label=f"portal-{tenant.ags}-{current_user.user.id}")
    except embedding.DashboardNotFound:
        metrics.GUEST_TOKENS.labels("not_found").inc()
        raise
    except Exception:
        metrics.GUEST_TOKENS.labels("failed").inc()
        raise
    metrics.GUEST_TOKENS.labels("issued").inc()
    response = jsonify(token=token)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/self-service")
@role_required("editor")
def self_service():
    """"Eigene Auswertungen erstellen": into Superset, signed in through the portal (OIDC)."""
    return redirect(f"{_superset_url()}/login/portal?" + urlencode({"next": "/chart/add"}))


def dashboards_url(tenant) -> str:
    return url_for("tenant_dashboards.show", ags=tenant.ags)
