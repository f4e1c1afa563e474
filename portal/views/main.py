from flask import Blueprint, redirect, render_template, session, url_for

from tenants.models import TenantStatus
from tenants.registry import list_tenants

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """The public landing page: what the platform is and who takes part.

    Back from signing out at the identity provider (marked in the session by ``auth.logout``) it
    forwards to the confirmation page, which also drops the provider's ``?state=``.
    """
    from portal.views.auth import SIGNED_OUT

    if session.get(SIGNED_OUT):
        return redirect(url_for("auth.signed_out"))
    return render_template("index.html", tenants=list_tenants(status=TenantStatus.ACTIVE))


@bp.get("/start")
def start():
    """The signed-in person's own start page (the public one otherwise): where Superset's logo leads back."""
    from portal.error_pages import home_url

    return redirect(home_url())
