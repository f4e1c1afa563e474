from flask import Blueprint, render_template

from tenants.models import TenantStatus
from tenants.registry import list_tenants

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """The public landing page: what the platform is and who takes part."""
    return render_template("index.html", tenants=list_tenants(status=TenantStatus.ACTIVE))
