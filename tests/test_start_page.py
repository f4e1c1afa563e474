"""The staff start page, the main menu and the portal's own error and status pages.

Figures come through the real upload path (a daily-aggregates CSV loaded by a real worker) or, for
another tenant, straight into the rollups as the app role under RLS; every page is read as a member
of staff with the role in question.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import text

from ingest_workers.worker import run_worker
from portal.navigation import OPERATOR_MENU, TENANT_MENU
from tenants.context import apply_tenant
from tenants.ingest.loader import berlin_today
from tenants.overview import month_start
from tests.conftest import add_operator, client_as
from tests.ingest.conftest import HUNDESTEUER, add_source, sign_in

ROLES = ("viewer", "editor", "admin")
GEWERBE = "99050012104000"


def _aggregates_csv(rows: list[tuple[date, str, str, int]]) -> bytes:
    lines = ["day;service_key;measure;value"] + [f"{d.isoformat()};{k};{m};{v}" for d, k, m, v in rows]
    return ("\n".join(lines) + "\n").encode()


def _upload(client, ags: str, source_id: int, content: bytes):
    return client.post(f"/t/{ags}/data/upload", data={"source_id": source_id, "file": (io.BytesIO(content), "z.csv")},
                       content_type="multipart/form-data")


def _insert(app_engine, tenant_id: int, sql: str, **params) -> None:
    with app_engine.begin() as conn:
        apply_tenant(conn, tenant_id)
        conn.execute(text(sql), params)


def test_start_page_shows_last_month_against_the_month_before_and_ticks_off_first_steps(app, two_tenants,
                                                                                       app_engine):
    a = two_tenants.a
    admin = sign_in(app, a.id, "admin")
    page = admin.get(f"/t/{a.ags}/").get_data(as_text=True)
    # A new tenant: nothing loaded, the checklist with every data step open.
    assert 'id="first-steps"' in page and "Keine Zahlen für die letzten beiden Monate" in page
    assert 'data-step="data_source"' in page and 'checklist__item--done" data-step="data_source"' not in page

    with app.app_context():
        source = add_source(a.id, "Formularserver", profile="canonical-aggregates")
    last, before = month_start(berlin_today(), 1), month_start(berlin_today(), 2)
    content = _aggregates_csv([
        (last, HUNDESTEUER, "started", 200), (last, HUNDESTEUER, "submitted", 150), (last, HUNDESTEUER, "aborted", 50),
        (before, HUNDESTEUER, "started", 100), (before, HUNDESTEUER, "submitted", 90),
        (before, HUNDESTEUER, "aborted", 10),
        (last, GEWERBE, "started", 20), (last, GEWERBE, "submitted", 5), (last, GEWERBE, "aborted", 15),
        # Too few starts to be ranked by abandonment.
        (last, "local:sperrmuell", "started", 4), (last, "local:sperrmuell", "aborted", 4),
    ])
    assert _upload(sign_in(app, a.id, "editor"), a.ags, source, content).status_code == 302
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)
    # Fulda's figures must not reach Marburg's page.
    _insert(app_engine, two_tenants.b.id, "INSERT INTO analytics.rollup_service_daily VALUES "
                                          "(:t, :k, :d, 9000, 9000, 0)", t=two_tenants.b.id, k=HUNDESTEUER, d=last)

    page = admin.get(f"/t/{a.ags}/").get_data(as_text=True)
    figures = page.split('id="main-figures"')[1].split("</table>")[0]
    started = figures.split('data-figure="started"')[1].split("</tr>")[0]
    assert ">224<" in started and ">100<" in started and "+124 %" in started
    completion = figures.split('data-figure="completion"')[1].split("</tr>")[0]
    assert "69,2 %" in completion and "90,0 %" in completion and "-20,8 Prozentpunkte" in completion
    ranking = page.split('id="abandonment"')[1].split("</table>")[0]
    # Highest share first; the service with four starts is not ranked.
    assert ranking.index(GEWERBE if GEWERBE in ranking else "75,0 %") < ranking.index("25,0 %")
    assert "local:sperrmuell" not in ranking and "Sperrm" not in ranking
    freshness = page.split('id="freshness"')[1].split("</table>")[0]
    assert "Formularserver" in freshness and "aktuell" in freshness
    steps = page.split('id="first-steps"')[1].split("</section>")[0]
    for key in ("data_source", "upload"):
        assert f'checklist__item--done" data-step="{key}"' in steps


def test_a_viewer_sees_figures_but_no_checklist_and_no_admin_links(app, two_tenants):
    viewer = sign_in(app, two_tenants.a.id, "viewer")
    page = viewer.get(f"/t/{two_tenants.a.ags}/").get_data(as_text=True)
    assert 'id="first-steps"' not in page and "/admin/users" not in page and "/data/" not in page
    assert f"/t/{two_tenants.a.ags}/dashboards/" in page and f"/t/{two_tenants.a.ags}/vergleich/" in page


def _menu_urls(page: str) -> set[str]:
    menu = page.split('class="main-menu"')[1].split("</nav>")[0]
    return {part.split('"')[0] for part in menu.split('href="')[1:]}


DOWNLOADS = (".json", ".csv", ".zip", "/guest-token")


def _plain_get_rules(app, wanted: set[str]):
    """Every page (GET, no URL parameters but a tenant's own AGS) that a view opens to a role in ``wanted``."""
    own = set() if wanted == {"operator"} else {"ags"}
    for rule in app.url_map.iter_rules():
        role = getattr(app.view_functions[rule.endpoint], "required_role", None)
        if role in wanted and "GET" in rule.methods and set(rule.arguments) - set(rule.defaults or {}) <= own \
                and not rule.rule.endswith(DOWNLOADS):
            yield rule


@pytest.mark.parametrize("role", ROLES)
def test_the_menu_reaches_every_page_of_the_role_in_one_click(app, two_tenants, role):
    """Every page a role may open (without parameters) is one click away, and nothing it may not open."""
    allowed = set(ROLES[:ROLES.index(role) + 1])
    client = sign_in(app, two_tenants.a.id, role)
    ags = two_tenants.a.ags
    urls = _menu_urls(client.get(f"/t/{ags}/").get_data(as_text=True))
    expected = {rule.rule.replace("<ags>", ags) for rule in _plain_get_rules(app, allowed)}
    assert expected <= urls
    for url in urls:
        assert client.get(url).status_code in (200, 302), url
    menu = {e.endpoint for e in TENANT_MENU if e.role in allowed}
    assert menu >= {r.endpoint for r in _plain_get_rules(app, allowed)}


def test_the_operator_menu_reaches_every_operator_page(app, clean_db):
    client = client_as(app, add_operator(app))
    urls = _menu_urls(client.get("/operator/").get_data(as_text=True))
    expected = {rule.rule for rule in _plain_get_rules(app, {"operator"})}
    assert expected <= urls and len(urls) == len(OPERATOR_MENU)


@pytest.mark.parametrize(("lang", "title", "back"), [("de", "Seite nicht gefunden", "Zur Startseite"),
                                                       ("en", "Page not found", "To the start page")])
def test_a_missing_page_is_styled_with_a_way_back(client, lang, title, back):
    response = client.get(f"/gibt-es-nicht?lang={lang}")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and title in page and back in page and 'class="site-header"' in page
    assert f'lang="{lang}"' in page


def test_no_access_page_names_the_reason_and_leads_to_the_own_start_page(app, two_tenants):
    viewer = sign_in(app, two_tenants.a.id, "viewer")
    response = viewer.get(f"/t/{two_tenants.a.ags}/admin/users", headers={"Referer": "http://localhost/t/x"})
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "Kein Zugriff" in page and "Forbidden" not in page
    assert f'href="/t/{two_tenants.a.ags}/"' in page and "Zurück zur vorigen Seite" in page


def test_too_many_sign_in_attempts_keep_the_address_typed(app, clean_db):
    from itsdangerous import URLSafeTimedSerializer

    client = app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = "raw"
    client.environ_base["HTTP_X_CSRFTOKEN"] = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps("raw")
    for _ in range(40):
        response = client.post("/login", data={"email": "erika@nirgendwo.example"})
        if response.status_code == 429:
            break
    page = response.get_data(as_text=True)
    assert response.status_code == 429, "the sign-in limit was never reached"
    assert 'value="erika@nirgendwo.example"' in page and "Zu viele Anmeldeversuche" in page


def test_an_api_url_still_answers_with_a_problem_document(client):
    response = client.get("/api/v1/gibt-es-nicht")
    assert response.status_code == 404 and response.content_type == "application/problem+json"


def test_signing_out_ends_on_a_confirmation_page(app, two_tenants):
    client = sign_in(app, two_tenants.a.id, "viewer")
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/signed-out")
    page = client.get("/signed-out").get_data(as_text=True)
    assert "Sie sind abgemeldet" in page and "Erneut anmelden" in page


def test_returning_from_the_providers_sign_out_drops_its_state(app, two_tenants):
    client = sign_in(app, two_tenants.a.id, "viewer")
    with client.session_transaction() as session:
        session["signed_out"] = True
    response = client.get("/?state=abc123")
    assert response.status_code == 302 and response.headers["Location"] == "/signed-out"
    assert "Sie sind abgemeldet" in client.get("/signed-out").get_data(as_text=True)
    assert client.get("/?state=abc123").status_code == 200  # only once


def test_staff_of_a_suspended_tenant_are_told_that_only_the_operator_can_help(app, two_tenants, owner_engine):
    viewer = sign_in(app, two_tenants.a.id, "viewer")
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE portal.tenants SET status = 'suspended' WHERE id = :id"), {"id": two_tenants.a.id})
    for url in (f"/t/{two_tenants.a.ags}/", f"/t/{two_tenants.a.ags}/login"):
        response = viewer.get(url) if url.endswith("/") else app.test_client().get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 403, url
        assert "Betrieb der Plattform" in page and "Ihre eigene Administration kann" in page


def test_the_start_page_keeps_to_its_tenant_without_rls(rls_bypass_settings, two_tenants, app_engine):
    """On a connection that bypasses row-level security, the queries' own tenant condition still holds."""
    import dataclasses

    from portal import create_app

    bypass = create_app({"TESTING": True}, settings=dataclasses.replace(rls_bypass_settings))
    last = month_start(berlin_today(), 1)
    _insert(app_engine, two_tenants.b.id, "INSERT INTO analytics.rollup_service_daily VALUES "
                                          "(:t, :k, :d, 9000, 9000, 0)", t=two_tenants.b.id, k=HUNDESTEUER, d=last)
    with bypass.app_context():
        fulda_source = add_source(two_tenants.b.id, "Fuldas Quelle")
    page = sign_in(bypass, two_tenants.a.id, "admin").get(f"/t/{two_tenants.a.ags}/").get_data(as_text=True)
    assert "9.000" not in page and "Fuldas Quelle" not in page and fulda_source
    assert "Keine Zahlen für die letzten beiden Monate" in page
