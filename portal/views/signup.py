"""Sign-up of a municipality or district: find it in the official list, then register it.

The registration names a contact person, the e-mail domains and the
OpenID Connect identity provider; "Verbindung testen" checks the provider
before anything is stored. The tenant waits as ``pending`` for an operator.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _

from portal.access import public
from portal.extensions import limiter
from tenants.db import db
from tenants.identity import IdentityError, ProviderSettings, check_provider, parse_role_mapping
from tenants.lifecycle import SignUp, sign_up
from tenants.registry import TenantError, get_region, search_regions

bp = Blueprint("signup", __name__, url_prefix="/signup")


def _signup_limit() -> str:
    return current_app.config["EGOV"].signup_rate_limit


@bp.get("/")
@public
def search():
    """Search by name, AGS or postcode."""
    query = request.args.get("q", "")
    return render_template("signup/search.html", query=query, results=search_regions(query))


@bp.route("/<code>", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"])
@public
def register(code: str):
    try:
        region = get_region(code)
    except TenantError:
        abort(404)
    form = request.form if request.method == "POST" else {"role_claim": "roles"}
    error = check = None
    if request.method == "POST":
        try:
            provider = ProviderSettings(
                discovery_url=form.get("discovery_url", "").strip(), client_id=form.get("client_id", ""),
                client_secret=form.get("client_secret", ""), role_claim=form.get("role_claim") or "roles",
                role_mapping=parse_role_mapping(form.get("role_mapping", "")),
                default_role=form.get("default_role") or None,
            )
            if form.get("action") == "test":
                check = check_provider(provider.discovery_url, current_app.config["EGOV"])
            else:
                tenant = sign_up(SignUp(ags=region.ags, contact_name=form.get("contact_name", ""),
                                        contact_email=form.get("contact_email", ""), domains=form.get("domains", ""),
                                        provider=provider),
                                 current_app.config["EGOV"], remote_addr=request.remote_addr)
                db.session.commit()
                return render_template("signup/done.html", tenant=tenant)
        except (TenantError, IdentityError) as exc:
            db.session.rollback()
            error = str(exc)
    return render_template("signup/form.html", region=region, form=form, error=error, check=check,
                           message=_("Connection test passed.") if check else None)
