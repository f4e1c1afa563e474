"""Admins keep their data sources and service names in order: rename, pause, delete, name services."""

from __future__ import annotations

from pathlib import Path

from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, rows, sign_in, write
from tests.ingest.test_upload_and_api import CSV, upload, work

LOCAL = "local:sperrmuell"
EVENTS = f"""{EVENT_HEADER}
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,2026-03-02T09:05:00+01:00,{LOCAL},s2,started,,,web,,,,
"""


def _source(two_tenants, sources):
    return f"/t/{two_tenants.a.ags}/data/sources/{sources.a}"


def test_a_paused_source_refuses_uploads_until_it_is_switched_on_again(app, sources, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    url = _source(two_tenants, sources)
    admin.post(url + "/settings", data={"name": "Formularserver alt"})  # no "active": switched off
    page = admin.get(url).get_data(as_text=True)
    assert "Formularserver alt" in page and "Die Datenquelle ist pausiert" in page
    refused = upload(admin, two_tenants.a.ags, sources.a, CSV.encode())
    assert "Die Datenquelle ist abgeschaltet." in admin.get(refused.headers["Location"]).get_data(as_text=True)
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM portal.ingest_runs") == [(0,)]

    admin.post(url + "/settings", data={"name": "Formularserver alt", "active": "on"})
    run_url = upload(admin, two_tenants.a.ags, sources.a, CSV.encode()).headers["Location"]
    work(app)
    assert admin.get(run_url + "/status").get_json()["status"] == "succeeded"


def test_the_column_assignment_marks_mandatory_fields_without_calling_them_missing(app, sources, two_tenants):
    """The form said "(Pflichtangabe fehlt)" next to every mandatory field, filled or not (the loader's error
    text for an empty value shared its message id)."""
    import re

    page = sign_in(app, two_tenants.a.id, "admin").get(_source(two_tenants, sources)).get_data(as_text=True)
    form = page.split('id="column-mapping"')[1].split("</form>")[0]
    assert re.search(r"</label> <span[^>]*>\(Pflichtangabe\)</span>", form) and "fehlt" not in form


def test_renaming_to_a_taken_name_is_refused_and_changes_nothing(app, sources, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    url = _source(two_tenants, sources)
    page = admin.post(url + "/settings", data={"name": "civento", "active": "on"}, follow_redirects=True)
    assert "Eine Datenquelle mit diesem Namen gibt es bereits." in page.get_data(as_text=True)
    assert rows(app, two_tenants.a.id, "SELECT name, active FROM portal.data_sources WHERE id = :i",
                i=sources.a) == [("Formulardienst", True)]


def test_a_source_that_delivered_data_cannot_be_deleted_one_created_by_mistake_can(app, sources, two_tenants, tmp_path):
    with app.app_context():
        load_file(two_tenants.a.id, sources.a, Path(write(tmp_path / "e.csv", EVENTS)))
    admin = sign_in(app, two_tenants.a.id, "admin")
    page = admin.post(_source(two_tenants, sources) + "/delete", follow_redirects=True).get_data(as_text=True)
    assert "kann nicht gelöscht werden" in page
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.process_events") == [(2,)]

    unused = f"/t/{two_tenants.a.ags}/data/sources/{sources.maengel}"
    page = admin.post(unused + "/delete", follow_redirects=True).get_data(as_text=True)
    assert "Datenquelle Mängelmelder gelöscht." in page
    assert admin.get(unused).status_code == 404
    # Another tenant's admin cannot delete A's source through B's own URL.
    admin_b = sign_in(app, two_tenants.b.id, "admin")
    assert admin_b.post(f"/t/{two_tenants.b.ags}/data/sources/{sources.civento}/delete").status_code == 404
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM portal.data_sources WHERE id = :i",
                i=sources.civento) == [(1,)]


def test_services_arrive_named_from_leika_and_admins_name_local_ones(app, sources, two_tenants, tmp_path):
    with app.app_context():
        load_file(two_tenants.a.id, sources.a, Path(write(tmp_path / "e.csv", EVENTS)))
    assert rows(app, two_tenants.a.id, "SELECT service_key, name, leika_key FROM analytics.services "
                                       "ORDER BY service_key") == [
        (HUNDESTEUER, "Hundesteuer Anmeldung", HUNDESTEUER), (LOCAL, LOCAL, None)]

    admin = sign_in(app, two_tenants.a.id, "admin")
    page = f"/t/{two_tenants.a.ags}/data/services"
    assert LOCAL in admin.get(page).get_data(as_text=True)
    bad = admin.post(page, data={"service_key": LOCAL, "name": "Sperrmüll", "leika_key": "12345"},
                     follow_redirects=True)
    assert "Ein LeiKa-Schlüssel hat 14 Ziffern" in bad.get_data(as_text=True)
    admin.post(page, data={"service_key": LOCAL, "name": "  Sperrmüll   anmelden ", "leika_key": "99050012104000"})
    # A LeiKa service keeps its own key whatever the form says.
    admin.post(page, data={"service_key": HUNDESTEUER, "name": "Hund anmelden", "leika_key": "99000000000000"})
    assert rows(app, two_tenants.a.id, "SELECT service_key, name, leika_key FROM analytics.services "
                                       "ORDER BY service_key") == [
        (HUNDESTEUER, "Hund anmelden", HUNDESTEUER), (LOCAL, "Sperrmüll anmelden", "99050012104000")]

    editor = sign_in(app, two_tenants.a.id, "editor")
    assert editor.post(page, data={"service_key": LOCAL, "name": "x"}).status_code == 403
    admin_b = sign_in(app, two_tenants.b.id, "admin")
    assert admin_b.post(f"/t/{two_tenants.b.ags}/data/services",
                        data={"service_key": LOCAL, "name": "gekapert"}).status_code == 404
    assert rows(app, two_tenants.a.id, "SELECT name FROM analytics.services WHERE service_key = :k",
                k=LOCAL) == [("Sperrmüll anmelden",)]
