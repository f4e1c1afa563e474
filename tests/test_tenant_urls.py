"""Links on a tenant's pages stay on that tenant, and nothing else gets its AGS (portal/tenancy.py).

Inside a request for a tenant, ``url_for`` fills in its AGS for the tenant's own pages when none is
given; an AGS given explicitly (an operator's page linking to a tenant) is kept, and pages that
belong to no tenant (sign-in, static files) get none.
"""

from __future__ import annotations

from flask import g, url_for


def test_links_follow_the_request_tenant_unless_another_is_named(app, two_tenants):
    from tenants.context import platform_transaction
    from tenants.models import Tenant

    with app.app_context(), platform_transaction() as session:
        marburg = session.get(Tenant, two_tenants.a.id)
        with app.test_request_context(f"/t/{two_tenants.a.ags}/"):
            g.tenant = marburg
            assert url_for("tenant_home.index") == f"/t/{two_tenants.a.ags}/"
            assert url_for("tenant_home.index", ags=two_tenants.b.ags) == f"/t/{two_tenants.b.ags}/"
            assert "ags" not in url_for("static", filename="app.css")
            assert "ags" not in url_for("auth.login")


def test_without_a_tenant_links_need_their_ags(app, two_tenants):
    with app.test_request_context("/"):
        assert url_for("tenant_home.index", ags=two_tenants.b.ags) == f"/t/{two_tenants.b.ags}/"
        assert url_for("auth.login") == "/login"
