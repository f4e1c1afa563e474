"""Sign-in in a real headless Chromium through a real OpenID Connect server, CSRF and CSP switched on.

The last test is the newcomer's journey from the issue: sign up a municipality,
approve it as operator, set its identity provider, and sign in as its staff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import MARBURG

BAD_HOMBURG = "06434001"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def portal(sso_settings, serve, redis_conn):
    from portal import create_app

    app = create_app({"TESTING": True}, settings=sso_settings)
    return serve(app)


def _at_provider_choose(page, subject: str) -> None:
    """On the provider's page: click a predefined person, or type another subject."""
    expect(page.get_by_text("eGovSAD development identity provider")).to_be_visible()
    button = page.get_by_role("button", name=subject, exact=True)
    if button.count():
        button.click()
    else:
        page.locator("input[name=sub]").fill(subject)
        page.get_by_role("button", name="Authorize").click()


def _sign_in_by_email(page, portal: str, email: str) -> None:
    page.goto(portal + "/login")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_role("button", name="Weiter").click()
    _at_provider_choose(page, email)


def _sign_out(page, portal: str) -> None:
    page.get_by_role("button", name="Abmelden").click()
    page.get_by_role("button", name="End session").click()
    # Back from the provider: a confirmation, without the provider's ?state= in the address.
    expect(page).to_have_url(f"{portal}/signed-out")
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()


def test_tenant_admin_signs_in_and_out(page, portal, sso_tenants):
    _sign_in_by_email(page, portal, "admin@marburg.de")
    expect(page).to_have_url(f"{portal}/t/{MARBURG}/")
    expect(page.locator("#welcome")).to_contain_text("Angemeldet als")
    expect(page.locator("#welcome")).to_contain_text("Administration")
    cookie = next(c for c in page.context.cookies() if c["name"] == "egov_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_role("link", name="Benutzerinnen und Benutzer").first.click()
    expect(page.locator("tr[data-user='admin@marburg.de']")).to_be_visible()
    _sign_out(page, portal)
    page.goto(f"{portal}/t/{MARBURG}/")
    expect(page).not_to_have_url(f"{portal}/t/{MARBURG}/")


def test_operator_signs_in(page, portal, sso_tenants):
    page.goto(portal + "/login")
    page.get_by_role("link", name="Anmeldung für den Betrieb").click()
    _at_provider_choose(page, "operator@egovsad.example")
    expect(page.get_by_role("heading", name="Betriebskonsole")).to_be_visible()
    expect(page.locator("#signed-in-as")).to_have_text("operator@egovsad.example")


def test_a_foreign_domain_is_refused_with_a_clear_page(page, portal, sso_tenants):
    page.goto(f"{portal}/t/{MARBURG}/login")
    _at_provider_choose(page, "intruder@fulda.de")
    expect(page.locator("#refusal-reason")).to_have_text(re.compile("gehört nicht zu Marburg"))


def test_newcomer_signs_up_is_approved_and_signs_in(browser, portal, idp, clean_db):
    signup = browser.new_context(locale="de-DE").new_page()
    signup.goto(portal + "/")
    signup.get_by_role("link", name="Registrieren").click()
    signup.get_by_label("Name, AGS oder Postleitzahl").fill("Bad Homburg")
    signup.get_by_role("button", name="Suchen").click()
    signup.get_by_role("link", name=re.compile("Bad Homburg .* registrieren")).click()
    signup.get_by_label("Name", exact=True).fill("Erika Muster")
    signup.get_by_label("E-Mail-Adresse").fill("erika@bad-homburg.de")
    signup.get_by_label("E-Mail-Domains").fill("bad-homburg.de")
    signup.get_by_label("Discovery-URL").fill(idp.discovery)
    signup.get_by_label("Client-ID").fill("egovsad-bad-homburg")
    signup.get_by_label("Client-Secret").fill("geheim")
    signup.get_by_role("button", name="Verbindung testen").click()
    expect(signup.get_by_text("Verbindungstest erfolgreich")).to_be_visible()
    _shot(signup, "signup-form")
    signup.get_by_role("button", name="Registrierung absenden").click()
    expect(signup.locator("#signup-done")).to_be_visible()

    operator = browser.new_context(locale="de-DE").new_page()
    operator.goto(portal + "/operator/login")
    _at_provider_choose(operator, "operator@egovsad.example")
    operator.get_by_role("link", name=re.compile("Bad Homburg")).click()
    operator.get_by_role("button", name="Freischalten").click()
    expect(operator.locator("#tenant-status")).to_have_text("Aktiv")
    _shot(operator, "operator-tenant")

    # The contact person signs in and becomes the first admin.
    signup.goto(portal + "/login")
    signup.get_by_label("E-Mail-Adresse").fill("erika@bad-homburg.de")
    signup.get_by_role("button", name="Weiter").click()
    _at_provider_choose(signup, "erika@bad-homburg.de")
    expect(signup).to_have_url(f"{portal}/t/{BAD_HOMBURG}/")
    expect(signup.locator("#welcome")).to_contain_text("Administration")

    # She lets every colleague in as a viewer.
    signup.get_by_role("link", name="Identitätsanbieter", exact=True).click()
    signup.get_by_label("Rolle für Personen ohne passende Angabe").select_option("viewer")
    signup.get_by_role("button", name="Speichern").click()
    expect(signup.get_by_text("gelten ab der nächsten Anmeldung")).to_be_visible()
    _shot(signup, "tenant-identity-provider")

    colleague = browser.new_context(locale="de-DE").new_page()
    _sign_in_by_email(colleague, portal, "kollege@bad-homburg.de")
    expect(colleague.locator("#welcome")).to_contain_text("Lesend")
    signup.get_by_role("link", name="Benutzerinnen und Benutzer").first.click()
    _shot(signup, "tenant-users")
    for context in (signup.context, operator.context, colleague.context):
        context.close()
