"""The landing page and /healthz as a user and an operator's monitoring see them."""

import dataclasses

from portal import create_app


def test_landing_page_is_german_and_lists_active_tenants(client, two_tenants):
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="de"' in html
    assert "Teilnehmende Kommunen und Landkreise" in html
    assert "Marburg, Universitätsstadt" in html and "77.129" in html
    assert 'href="#main"' in html and 'id="main"' in html  # skip link for keyboard users
    assert html.count("<h1") == 1


def test_english_is_available(client, two_tenants):
    html = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en"' in html and "Participating municipalities and districts" in html
    # The choice sticks for the session.
    assert "Participating" in client.get("/").get_data(as_text=True)


def test_pending_tenants_are_not_listed(client, app):
    from tenants.context import platform_transaction
    from tenants.registry import create_tenant

    with app.app_context(), platform_transaction():
        create_tenant("06439", status="pending")
    assert "Rheingau-Taunus-Kreis" not in client.get("/").get_data(as_text=True)


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_kern_design_system_is_served_locally(client):
    html = client.get("/").get_data(as_text=True)
    assert "https://" not in html.split("<body")[0]  # nothing from a CDN
    css = client.get("/static/vendor/kern/kern.min.css")
    assert css.status_code == 200 and b".kern-btn" in css.data
    assert client.get("/static/vendor/kern/fonts/fira-sans.css").status_code == 200


def test_static_files_are_kept_by_the_browser_until_they_change(client, tmp_path):
    """A page's stylesheets and scripts carry their content's digest: kept for a year, asked for again only
    after a deploy changed them (a link from before it gets no long lifetime)."""
    import re

    html = client.get("/").get_data(as_text=True)
    links = re.findall(r'(/static/portal\.css)\?v=([0-9a-f]{16})', html)
    assert links, html[:500]
    path, version = links[0]
    kept = client.get(f"{path}?v={version}")
    assert kept.status_code == 200 and kept.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = client.get(f"{path}?v={'0' * 16}")
    assert stale.status_code == 200 and "immutable" not in stale.headers.get("Cache-Control", "")
    assert "immutable" not in client.get(path).headers.get("Cache-Control", "")
    assert client.get("/static/../pyproject.toml?v=x").status_code == 404


def test_healthz_green_with_real_services(client):
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok"
    settings = client.application.config["EGOV"]
    # The portal connects as the application role, never as the schema owner.
    assert body["checks"]["database"]["role"] == settings.app_role != settings.owner_role
    assert body["checks"]["database"]["migration"]
    assert set(body["checks"]["queues"]["queues"]) == {"high", "default", "low"}


def test_the_footers_system_status_is_a_page_in_words(client):
    """The footer's "Systemstatus" opened raw JSON for citizens (a walk-through); it is a page with the menu,
    each part in words, and no internal detail (roles, versions, addresses). Monitoring keeps /healthz."""
    home = client.get("/").get_data(as_text=True)
    assert 'href="/status"' in home and 'href="/healthz"' not in home
    page = client.get("/status")
    html = page.get_data(as_text=True)
    assert page.mimetype == "text/html" and "Systemstatus" in html and "Datenbank" in html and "arbeitet" in html
    assert "Zurück zur Startseite" in html
    settings = client.application.config["EGOV"]
    assert settings.app_role not in html and '"checks"' not in html


def test_healthz_names_the_broken_part(database, clean_db):
    broken = dataclasses.replace(database, redis_url="redis://127.0.0.1:1/0")
    response = create_app({"TESTING": True, "RATELIMIT_STORAGE_URI": "memory://"}, settings=broken) \
        .test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]


def test_start_leads_each_person_to_their_own_start_page(app, client, two_tenants):
    """Superset's logo points at /start: staff come back to their municipality's start page, operators to the
    console, anyone else to the public page."""
    from tests.conftest import add_operator, client_as
    from tests.ingest.conftest import sign_in

    assert client.get("/start").headers["Location"].endswith("/")
    staff = sign_in(app, two_tenants.a.id, "viewer").get("/start")
    assert staff.status_code == 302 and staff.headers["Location"].endswith(f"/t/{two_tenants.a.ags}/")
    operator = client_as(app, add_operator(app)).get("/start")
    assert operator.headers["Location"].endswith("/operator/")
