"""Templates and examples a clerk downloads from the formats page load through the real upload path."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from ingest_workers.worker import run_worker
from tenants.ingest.file_templates import headers
from tenants.ingest.profiles import PROFILE_DIR, shipped_profiles
from tests.ingest.conftest import HUNDESTEUER, add_source, rows, sign_in

ROOT = Path(__file__).resolve().parents[2]

PROFILES = sorted(shipped_profiles())


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("profile", PROFILES)
def test_every_example_loads_without_a_rejected_row(app, two_tenants, profile, fmt):
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Quelle", profile=profile)
    editor = sign_in(app, a.id, "editor")
    page = editor.get(f"/t/{a.ags}/data/formats").get_data(as_text=True)
    link = f"/t/{a.ags}/data/formats/{profile}-example.{fmt}"
    assert f'href="{link}"' in page
    example = editor.get(link)
    assert example.status_code == 200 and "attachment" in example.headers["Content-Disposition"]
    response = editor.post(f"/t/{a.ags}/data/upload", content_type="multipart/form-data",
                           data={"source_id": source, "file": (io.BytesIO(example.data), f"beispiel.{fmt}")})
    assert response.status_code == 302
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)
    [(status, accepted, rejected)] = rows(app, a.id,
                                          "SELECT status, rows_accepted, rows_rejected FROM portal.ingest_runs")
    assert (status, rejected) == ("succeeded", 0) and accepted > 0


@pytest.mark.parametrize("profile", PROFILES)
def test_a_template_has_the_columns_the_page_lists_and_opens_in_german_excel(app, two_tenants, profile):
    editor = sign_in(app, two_tenants.a.id, "editor")
    expected = headers(shipped_profiles()[profile])
    page = editor.get(f"/t/{two_tenants.a.ags}/data/formats").get_data(as_text=True)
    table = page.split(f'data-profile="{profile}"')[1].split("</table>")[0]
    assert re.findall(r'<th scope="row"[^>]*><code>([^<]*)</code>', table) == expected
    body = editor.get(f"/t/{two_tenants.a.ags}/data/formats/{profile}-template.csv").data
    # UTF-8 with BOM and semicolons: German Excel opens it in columns with umlauts intact.
    assert body.startswith(b"\xef\xbb\xbf") and next(csv.reader(io.StringIO(body.decode("utf-8-sig")),
                                                              delimiter=";")) == expected
    xlsx = editor.get(f"/t/{two_tenants.a.ags}/data/formats/{profile}-template.xlsx").data
    workbook = load_workbook(io.BytesIO(xlsx))
    assert [c.value for c in next(workbook.active.iter_rows(max_row=1))] == expected


def test_a_viewer_gets_no_templates(app, two_tenants):
    viewer = sign_in(app, two_tenants.a.id, "viewer")
    assert viewer.get(f"/t/{two_tenants.a.ags}/data/formats").status_code == 403
    assert viewer.get(f"/t/{two_tenants.a.ags}/data/formats/civento-template.csv").status_code == 403


def test_profile_titles_and_descriptions_are_in_the_catalogues():
    from portal.views.ingest import PROFILE_TEXTS

    for path in PROFILE_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        assert {data["title"], data["description"]} <= set(PROFILE_TEXTS), path.name


def test_the_upload_form_preselects_the_source_of_the_latest_load_or_the_newest_source(app, two_tenants):
    a = two_tenants.a
    with app.app_context():
        first = add_source(a.id, "A-Formulare")
        newest = add_source(a.id, "Z-Neu", profile="civento")
    editor = sign_in(app, a.id, "editor")
    page = editor.get(f"/t/{a.ags}/data/").get_data(as_text=True)
    assert f'<option value="{newest}" selected>' in page
    page = editor.get(f"/t/{a.ags}/data/?source={first}").get_data(as_text=True)
    assert f'<option value="{first}" selected>' in page


def test_an_admin_assigns_columns_without_json_and_the_file_loads(app, two_tenants):
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Fachverfahren")
    admin = sign_in(app, a.id, "admin")
    page = admin.get(f"/t/{a.ags}/data/sources/{source}").get_data(as_text=True)
    assert 'id="column-mapping"' in page and 'name="col_occurred_at"' in page
    response = admin.post(f"/t/{a.ags}/data/sources/{source}/mapping", data={
        "payload": "events", "col_occurred_at": "Zeitpunkt", "col_service_key": "Leistung",
        "col_event_type": "Vorgang", "col_session_id": "", "date_format": "%Y-%m-%d",
        "datetime_format": "%d.%m.%Y %H:%M"})
    assert response.status_code == 302
    page = admin.get(f"/t/{a.ags}/data/sources/{source}").get_data(as_text=True)
    assert 'value="Zeitpunkt"' in page and "eigener Spaltenzuordnung" in page
    from tenants.ingest.loader import berlin_today
    from tenants.overview import month_start

    day = month_start(berlin_today(), 1).strftime("%d.%m.%Y")
    content = f"Leistung;Vorgang;Zeitpunkt\n{HUNDESTEUER};started;{day} 10:00\n{HUNDESTEUER};submitted;{day} 10:05\n"
    admin.post(f"/t/{a.ags}/data/upload", content_type="multipart/form-data",
               data={"source_id": source, "file": (io.BytesIO(content.encode()), "export.csv")})
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)
    assert rows(app, a.id, "SELECT status, rows_accepted, rows_rejected FROM portal.ingest_runs") == [
        ("succeeded", 2, 0)]


def test_one_column_of_the_file_cannot_stand_for_two_fields(app, two_tenants):
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Fachverfahren")
    admin = sign_in(app, a.id, "admin")
    admin.post(f"/t/{a.ags}/data/sources/{source}/mapping", data={
        "payload": "events", "col_occurred_at": "Zeit", "col_service_key": "Zeit", "col_event_type": "Art",
        "date_format": "%Y-%m-%d", "datetime_format": ""})
    page = admin.get(f"/t/{a.ags}/data/sources/{source}").get_data(as_text=True)
    assert "nur für ein Feld stehen" in page
    assert rows(app, a.id, "SELECT config FROM portal.data_sources") == [({},)]


def test_the_format_documentation_is_a_page_of_the_portal_reached_from_the_upload_form(app, two_tenants):
    a = two_tenants.a
    editor = sign_in(app, a.id, "editor")
    link = f"/t/{a.ags}/data/format-documentation"
    for page in (f"/t/{a.ags}/data/", f"/t/{a.ags}/data/formats"):
        assert f'href="{link}"' in editor.get(page).get_data(as_text=True), page
    response = editor.get(link)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    doc = page.split('id="format-documentation"')[1]
    # Rendered, not shown as Markdown: headings with anchors, the key table as a table, code as code; in German.
    assert '<h3 class="kern-heading-small" id="mapping-profiles">Zuordnungsprofile</h3>' in doc
    assert "<td><code>values</code></td>" in doc and '<table class="kern-table' in doc
    assert "<pre><code" in doc and "```" not in doc and "| --- |" not in doc and "## " not in doc
    assert 'lang="de"' in page.split('id="format-documentation"')[0].rsplit("<", 1)[1]
    assert 'href="schemas/' not in doc  # repository links have no page here
    assert "<h1 class=\"kern-heading-large\">Datenformat: die technische Beschreibung</h1>" in page
    # English mode reads the English original, marked as English.
    english = editor.get(link + "?lang=en").get_data(as_text=True)
    assert '<h3 class="kern-heading-small" id="mapping-profiles">Mapping profiles</h3>' in english
    assert 'lang="en"' in english.split('id="format-documentation"')[0].rsplit("<", 1)[1]

    viewer = sign_in(app, a.id, "viewer")
    assert viewer.get(link).status_code == 403


def test_the_german_format_documentation_keeps_step_with_the_english_one():
    """docs/data-format.de.md translates docs/data-format.md: the same headings and every code span, so a
    changed rule cannot stay behind in the German page."""
    english, german = (ROOT / "docs/data-format.md").read_text(), (ROOT / "docs/data-format.de.md").read_text()

    def headings(text):
        return [line.split(" ")[0] for line in text.splitlines() if line.startswith("#")]

    def spans(text):  # inline code, outside the fenced blocks
        return set(re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)))

    assert headings(german) == headings(english)
    assert spans(english) <= spans(german), sorted(spans(english) - spans(german))


def _value_rows(*rows: tuple[str, str]) -> dict[str, str]:
    """The value list form as a browser sends it: every row, filled or spare ("value in the file", "field:code")."""
    padded = [*rows, ("", ""), ("", "")]
    return {k: v for n, (found, meaning) in enumerate(padded)
            for k, v in ((f"value_from_{n}", found), (f"value_to_{n}", meaning))}


def test_an_admin_lists_the_words_of_her_file_in_form_rows_and_the_file_loads(app, two_tenants):
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Fachverfahren")
    admin = sign_in(app, a.id, "admin")
    admin.post(f"/t/{a.ags}/data/sources/{source}/mapping", data={
        "payload": "events", "col_occurred_at": "Zeitpunkt", "col_service_key": "Leistung",
        "col_event_type": "Vorgang", "col_channel": "Kanal", "date_format": "%Y-%m-%d",
        "datetime_format": "%d.%m.%Y %H:%M"})
    page = admin.get(f"/t/{a.ags}/data/sources/{source}").get_data(as_text=True)
    form = page.split('id="value-mapping"')[1].split("</form>")[0]
    assert 'name="value_from_0"' in form and '<optgroup label="Kanal">' in form
    assert '<option value="event_type:started">Antrag begonnen (started)</option>' in form

    response = admin.post(f"/t/{a.ags}/data/sources/{source}/values", data=_value_rows(
        ("Antrag gestartet", "event_type:started"), ("Antrag abgeschickt", "event_type:submitted"),
        ("Webportal", "channel:web")))
    assert response.status_code == 302
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Die Wertelisten wurden gespeichert" in page
    form = page.split('id="value-mapping"')[1].split("</form>")[0]
    assert 'value="Antrag gestartet"' in form and '<option value="channel:web" selected>' in form
    [(config,)] = rows(app, a.id, "SELECT config FROM portal.data_sources")
    assert config["mapping"]["columns"]["event_type"] == "Vorgang"  # the column assignment stays
    assert config["mapping"]["values"] == {"event_type": {"Antrag gestartet": "started",
                                                          "Antrag abgeschickt": "submitted"},
                                           "channel": {"Webportal": "web"}}

    from tenants.ingest.loader import berlin_today
    from tenants.overview import month_start

    day = month_start(berlin_today(), 1).strftime("%d.%m.%Y")
    content = (f"Leistung;Vorgang;Zeitpunkt;Kanal\n{HUNDESTEUER};antrag gestartet;{day} 10:00;Webportal\n"
               f"{HUNDESTEUER};Antrag abgeschickt;{day} 10:05;WEBPORTAL\n")
    admin.post(f"/t/{a.ags}/data/upload", content_type="multipart/form-data",
               data={"source_id": source, "file": (io.BytesIO(content.encode()), "export.csv")})
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)
    assert rows(app, a.id, "SELECT status, rows_accepted, rows_rejected FROM portal.ingest_runs") == [
        ("succeeded", 2, 0)]


@pytest.mark.parametrize(("value_rows", "message"), [
    ((("Webportal", ""),), "braucht den Wert"),
    ((("Webportal", "channel:web"), ("webportal", "channel:ios")), "zweimal"),
    ((("Webportal", "channel:fax"),), "aus der Liste"),
    ((("Webportal", "measure:started"),), "aus der Liste"),  # a field events do not have
])
def test_value_lists_with_a_gap_or_a_contradiction_are_refused_in_german(app, two_tenants, value_rows, message):
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Fachverfahren")
    admin = sign_in(app, a.id, "admin")
    response = admin.post(f"/t/{a.ags}/data/sources/{source}/values", data=_value_rows(*value_rows))
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert message in page
    assert rows(app, a.id, "SELECT config FROM portal.data_sources") == [({},)]


def test_a_shipped_profiles_value_lists_show_as_rows_and_an_added_row_keeps_them(app, two_tenants):
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Mängelmelder", profile="maengelmelder")
    admin = sign_in(app, a.id, "admin")
    form = admin.get(f"/t/{a.ags}/data/sources/{source}").get_data(as_text=True).split('id="value-mapping"')[1]
    assert 'value="Webportal"' in form.split("</form>")[0]
    shipped = shipped_profiles()["maengelmelder"]
    kept = [(found, f"{field}:{meaning}") for field, pairs in shipped.values.items()
            for found, meaning in pairs.items()]
    admin.post(f"/t/{a.ags}/data/sources/{source}/values", data=_value_rows(*kept))
    assert rows(app, a.id, "SELECT config FROM portal.data_sources") == [({},)]  # unchanged: no own mapping
    admin.post(f"/t/{a.ags}/data/sources/{source}/values", data=_value_rows(*kept, ("Tablet-App", "channel:ios")))
    [(config,)] = rows(app, a.id, "SELECT config FROM portal.data_sources")
    assert config["mapping"]["values"]["channel"] == {**shipped.values["channel"], "Tablet-App": "ios"}
    assert config["mapping"]["columns"] == shipped.columns and config["mapping"]["constants"] == shipped.constants


def test_in_chromium_the_value_lists_are_filled_by_keyboard_and_mouse_and_both_pages_pass_axe(
        app, two_tenants, live_server, browser):
    from playwright.sync_api import expect

    from tests.auth.test_role_journeys import axe_violations

    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Fachverfahren")
    client = sign_in(app, a.id, "admin")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    context = browser.new_context(locale="de-DE", bypass_csp=True)  # axe is injected as a script
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "domain": "127.0.0.1", "path": "/"}])
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/t/{a.ags}/data/sources/{source}")
        assert axe_violations(page) == []
        page.get_by_label("Wert in Ihrer Datei, Zeile 1").fill("Internet")
        page.get_by_label("Bedeutet, Zeile 1").select_option(label="Web (web)")
        page.get_by_role("button", name="Wertelisten speichern").click()
        expect(page.get_by_text("Die Wertelisten wurden gespeichert")).to_be_visible()  # waits for the new page
        expect(page.get_by_label("Wert in Ihrer Datei, Zeile 1")).to_have_value("Internet")
        [(config,)] = rows(app, a.id, "SELECT config FROM portal.data_sources")
        assert config["mapping"]["values"] == {"channel": {"Internet": "web"}}

        page.goto(f"{live_server.url}/t/{a.ags}/data/")
        page.get_by_role("link", name="Technische Beschreibung des Datenformats").click()
        expect(page.get_by_role("heading", name="Zuordnungsprofile")).to_be_visible()
        assert axe_violations(page) == []
    finally:
        context.close()


def test_an_empty_template_uploaded_as_it_is_says_that_nothing_was_loaded(app, two_tenants):
    """A clerk who sends the template back without filling it in is told so, not just "erfolgreich"."""
    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Quelle", profile=PROFILES[0])
    editor = sign_in(app, a.id, "editor")
    template = editor.get(f"/t/{a.ags}/data/formats/{PROFILES[0]}-template.xlsx").data
    response = editor.post(f"/t/{a.ags}/data/upload", content_type="multipart/form-data",
                           data={"source_id": source, "file": (io.BytesIO(template), "vorlage.xlsx")})
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)
    page = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert "Es wurde nichts geladen" in page and "nur die Kopfzeile" in page
    example = editor.get(f"/t/{a.ags}/data/formats/{PROFILES[0]}-example.xlsx").data
    response = editor.post(f"/t/{a.ags}/data/upload", content_type="multipart/form-data",
                           data={"source_id": source, "file": (io.BytesIO(example), "beispiel.xlsx")})
    run_worker(app, ["default", "low"], burst=True, with_scheduler=False)
    assert "Es wurde nichts geladen" not in editor.get(response.headers["Location"]).get_data(as_text=True)
