"""Templates and examples a clerk downloads from the formats page load through the real upload path."""

from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook

from ingest_workers.file_templates import headers
from ingest_workers.profiles import PROFILE_DIR, shipped_profiles
from ingest_workers.worker import run_worker
from tests.ingest.conftest import add_source, rows, sign_in

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
    assert [part.split("</code>")[0] for part in table.split("<code>")[1:]] == expected
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
