"""Each role's journey in a real Chromium: sign in at the real identity provider, then reach every page
of the role by clicking the menu, with axe-core (WCAG 2.1 A and AA) on every page and a screenshot of
each kept under var/artifacts/journeys/.

Superset does not run here: the dashboards page says so (the embedded document is tested with Superset
in tests/superset/), and "Eigene Auswertungen erstellen" leads to Superset, so it is not followed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.auth.test_browser_login import _at_provider_choose, _sign_in_by_email
from tests.conftest import MARBURG

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "var" / "artifacts" / "journeys"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LEADS_OUT = {"Eigene Auswertungen erstellen"}


@pytest.fixture(scope="module")
def portal(sso_settings, serve, redis_conn):
    from portal import create_app

    return serve(create_app({"TESTING": True}, settings=sso_settings))


@pytest.fixture
def journey_page(browser):
    """A page whose context lets the test inject axe-core (the portal's CSP allows no inline script)."""
    context = browser.new_context(locale="de-DE", bypass_csp=True)
    yield context.new_page()
    context.close()


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async (tags) => {
        const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return result.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '));
    }""", WCAG_21_AA)
    return found


def _raw_codes() -> re.Pattern:
    """Codes the platform stores that a clerk must only ever read as words: the vocabularies' codes with an
    underscore (credit_card, bundid_eid), the states of tenants and runs, the comparison's areas."""
    from tenants.benchmark.metrics import FAMILIES
    from tenants.models import TenantStatus
    from tenants.vocabulary import VOCABULARIES

    codes = {code for labels in VOCABULARIES.values() for code in labels if "_" in code}
    codes |= {status.value for status in TenantStatus} | {"succeeded", "failed", "running", "queued"} | set(FAMILIES)
    return re.compile(r"(?<![\w/.:-])(" + "|".join(sorted(map(re.escape, codes))) + r")(?![\w/.:-])")


RAW_CODES = _raw_codes()


def check_page(page, name: str, problems: dict) -> None:
    """German, no raw code in the page's text (a value to type into a file is shown as code), axe-clean;
    a screenshot either way."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.locator("html").get_attribute("lang") == "de"
    violations = axe_violations(page)
    text = page.evaluate("""() => { const main = document.querySelector('main').cloneNode(true);
        main.querySelectorAll('code').forEach(e => e.remove()); return main.textContent; }""")  # typed values
    codes = sorted(set(RAW_CODES.findall(text)))
    if codes:
        violations.append(f"raw codes shown: {codes}")
    if violations:
        problems[f"{name} ({page.url})"] = violations


def walk_menu(page, role: str) -> dict:
    """Click every entry of the main menu once, checking each page."""
    problems: dict = {}
    check_page(page, f"{role}-00-start", problems)
    labels = page.locator("nav.main-menu a").all_inner_texts()
    for number, label in enumerate(labels, start=1):
        if label in LEADS_OUT:
            continue
        page.locator("nav.main-menu").get_by_role("link", name=label, exact=True).click()
        expect(page.locator("nav.main-menu a[aria-current='page']")).to_have_text(label)
        expect(page.locator("h1")).to_be_visible()
        check_page(page, f"{role}-{number:02d}-{re.sub(r'[^a-z0-9]+', '-', label.lower())}", problems)
    return problems


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_staff_reach_every_page_of_their_role_by_clicking(journey_page, portal, sso_tenants, role):
    page = journey_page
    _sign_in_by_email(page, portal, f"{role}@marburg.de")
    expect(page).to_have_url(f"{portal}/t/{MARBURG}/")
    problems = walk_menu(page, role)
    assert problems == {}
    page.get_by_role("button", name="Abmelden").click()
    page.get_by_role("button", name="End session").click()
    expect(page).to_have_url(f"{portal}/signed-out")
    check_page(page, f"{role}-99-signed-out", problems)
    assert problems == {}


def test_the_operator_reaches_every_operator_page_by_clicking(journey_page, portal, sso_tenants):
    page = journey_page
    page.goto(portal + "/login")
    page.get_by_role("link", name="Anmeldung für den Betrieb").click()
    _at_provider_choose(page, "operator@egovsad.example")
    problems = walk_menu(page, "operator")
    # From the console to a tenant and its ingest health, by clicking.
    page.locator("nav.main-menu").get_by_role("link", name="Mandanten", exact=True).click()
    page.get_by_role("link", name="Marburg, Universitätsstadt", exact=True).click()
    check_page(page, "operator-20-tenant", problems)
    page.locator("#ingest-health").click()
    check_page(page, "operator-21-ingest-health", problems)
    assert problems == {}


def test_public_pages_and_error_pages_pass_axe(journey_page, portal, sso_tenants):
    page = journey_page
    problems: dict = {}
    for name, path in (("public-start", "/"), ("public-login", "/login"), ("public-opendata", "/opendata/"),
                       ("public-not-found", "/gibt-es-nicht")):
        page.goto(portal + path)
        check_page(page, name, problems)
    page.goto(portal + "/")
    page.get_by_role("link", name="Zu den offenen Daten").click()
    expect(page).to_have_url(f"{portal}/opendata/")
    assert problems == {}
