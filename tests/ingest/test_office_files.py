"""Files as municipal offices save them (Excel, LibreOffice, DOS-era exports), and errors in their own terms."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tenants.ingest.loader import UNKNOWN_VALUE_NAMED
from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, rows, sign_in

CIVENTO_HEADER = ["Datum", "Leistungsschlüssel", "Onlinedienst", "Kanal", "Anträge gestartet", "Anträge abgeschickt",
                  "Anträge abgebrochen"]
CIVENTO_ROWS = [["01.03.2026", HUNDESTEUER, "Hundesteuer Anmeldung", "Web", "1.204", "987", "217"],
                ["02.03.2026", HUNDESTEUER, "Grünschnitt-Abholung", "iOS", "12", "9", "3"]]
EXPECTED = [("2026-03-01", 1204, 987, 217), ("2026-03-02", 12, 9, 3)]


def _text(lines, sep=";", newline="\r\n") -> str:
    return "".join(sep.join(line) + newline for line in lines)


def _service_days(app, tenant_id):
    return rows(app, tenant_id, "SELECT day::text, started, submitted, aborted FROM analytics.rollup_service_daily "
                                "ORDER BY day")


def _errors(app, tenant_id):
    return rows(app, tenant_id, "SELECT row_no, column_name, reason FROM portal.ingest_errors ORDER BY row_no")


def _load(app, tenant_id, source, path):
    with app.app_context():
        return load_file(tenant_id, source, Path(path))


DIALECTS = {
    # Excel's delimiter hint: the line is not a row of the sheet Excel shows.
    "sep= hint": (b"sep=;\r\n" + _text([CIVENTO_HEADER, *CIVENTO_ROWS]).encode("cp1252"), 2),
    "Excel 'CSV (MS-DOS)' in cp850": (_text([CIVENTO_HEADER, *CIVENTO_ROWS]).encode("cp850"), 2),
    "Excel 'Unicode-Text' (UTF-16, tabs)": (_text([CIVENTO_HEADER, *CIVENTO_ROWS], sep="\t").encode("utf-16"), 2),
    "LibreOffice UTF-8, comma, quoted": (_text([[f'"{c}"' for c in row] for row in [
        CIVENTO_HEADER, [*CIVENTO_ROWS[0][:4], "1204", "987", "217"], CIVENTO_ROWS[1]]], sep=",", newline="\n")
        .encode("utf-8"), 2),
    "Mac (CR only)": (_text([CIVENTO_HEADER, *CIVENTO_ROWS], newline="\r").encode("mac_roman"), 2),
    "title rows above the header": (_text([["Statistik Onlinedienste März 2026"], [""], CIVENTO_HEADER,
                                           *CIVENTO_ROWS]).encode("cp1252"), 4),
    "empty trailing columns and rows": (_text([[*r, "", ""] for r in [CIVENTO_HEADER, *CIVENTO_ROWS]] + [[""] * 9,
                                                                                                  [""] * 9])
                                        .encode("utf-8-sig"), 2),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_civento_exports_in_every_dialect_offices_save(app, sources, two_tenants, tmp_path, dialect):
    content, first_data_row = DIALECTS[dialect]
    path = tmp_path / "civento.csv"
    path.write_bytes(content)
    run, outcome = _load(app, two_tenants.a.id, sources.civento, path)
    assert outcome["status"] == "succeeded", run.error
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (2, 2, 0)
    assert _service_days(app, two_tenants.a.id) == EXPECTED


def test_row_numbers_count_as_the_spreadsheet_shows_them(app, sources, two_tenants, tmp_path):
    bad = ["31.02.2026", HUNDESTEUER, "Mehrzeilig\r\nbeschrieben", "Web", "1", "1", "0"]
    content = "sep=;\r\nStatistik\r\n\r\n" + _text([CIVENTO_HEADER, *CIVENTO_ROWS]).replace(
        "Grünschnitt-Abholung", '"Grün-\r\nschnitt"') + _text([[f'"{c}"' if "\r" in c else c for c in bad]])
    path = tmp_path / "civento.csv"
    path.write_bytes(content.encode("cp1252"))
    run, _ = _load(app, two_tenants.a.id, sources.civento, path)
    assert (run.rows_accepted, run.rows_rejected) == (2, 1)
    # sep= is no row; title (1), empty row (2), header (3), data 4, 5 (with a line break in a cell), 6.
    assert _errors(app, two_tenants.a.id) == [(6, "Datum", "no such date")]


def test_excel_workbook_with_title_empty_rows_numbers_as_text_and_numeric_keys(app, sources, two_tenants, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Statistik Onlinedienste"])
    sheet.append([])
    sheet.append([*CIVENTO_HEADER, None, None])
    # LeiKa key as a number (Excel's default for digits), counts as text cells, a real date cell.
    sheet.append([datetime(2026, 3, 1), int(HUNDESTEUER), "Hundesteuer", "Web", "1.204", "987", 217.0])
    sheet.append(["02.03.2026", float(HUNDESTEUER), "Grünschnitt", "iOS", 12, "9", "3", None, None])
    sheet.append(["1.3.26", HUNDESTEUER, "Hund", "Web", 1, 1, 0])
    sheet.append([None] * 9)
    path = tmp_path / "civento.xlsx"
    book.save(path)
    run, outcome = _load(app, two_tenants.a.id, sources.civento, path)
    assert outcome["status"] == "succeeded", run.error
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (3, 2, 1)
    assert _service_days(app, two_tenants.a.id) == EXPECTED
    assert _errors(app, two_tenants.a.id) == [(6, "Datum", "not a date in the format %(format)s")]


def test_canonical_csv_with_trailing_delimiters_loads(app, sources, two_tenants, tmp_path):
    body = EVENT_HEADER.replace(",", ";") + ";;\r\n" + \
        f";2026-03-02T09:00:00+01:00;{HUNDESTEUER};s1;started;;;web;;;;;;\r\n" \
        f";2026-03-02T09:04:00+01:00;{HUNDESTEUER};s1;submitted;;;web;;;;;;\r\n"
    path = tmp_path / "events.csv"
    path.write_bytes(body.encode("utf-8"))
    run, outcome = _load(app, two_tenants.a.id, sources.a, path)
    assert outcome["status"] == "succeeded", run.error
    assert (run.rows_accepted, run.rows_rejected) == (2, 0)


def test_a_short_or_overlong_line_in_a_canonical_file_is_one_rejected_row(app, sources, two_tenants, tmp_path):
    body = EVENT_HEADER + "\n" + \
        f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,\n" \
        f",2026-03-02T09:04:00+01:00,{HUNDESTEUER},s1,submitted\n" \
        f",2026-03-02T09:05:00+01:00,{HUNDESTEUER},s2,started,,,web,,,,,,Notiz\n" \
        f",2026-03-02T09:06:00+01:00,{HUNDESTEUER},s3,started,,,web,,,,\n"
    path = tmp_path / "events.csv"
    path.write_bytes(body.encode("utf-8"))
    run, outcome = _load(app, two_tenants.a.id, sources.a, path)
    assert outcome["status"] == "succeeded", run.error
    # A line with fewer cells means "not given"; a value in a column the header does not name is rejected.
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (4, 3, 1)
    assert _errors(app, two_tenants.a.id) == [(4, "N", "a value in a column without a header")]


def test_rejected_rows_name_the_files_own_columns_and_the_profiles_format(app, sources, two_tenants, tmp_path):
    lines = [CIVENTO_HEADER,
             ["31.02.2026", HUNDESTEUER, "Hund", "Web", "1", "1", "0"],
             ["2026-03-01", HUNDESTEUER, "Hund", "Web", "1", "1", "0"],
             ["01.03.2026", HUNDESTEUER, "Hund", "Fax", "1", "1", "0"],
             ["01.03.2026", HUNDESTEUER, "Hund", "Web", "1", "eins", "0"],
             ["01.03.2026", "9,91020E+13", "Hund", "Web", "1", "1", "0"]]
    path = tmp_path / "civento.csv"
    path.write_bytes(_text(lines).encode("cp1252"))
    run, _ = _load(app, two_tenants.a.id, sources.civento, path)
    assert _errors(app, two_tenants.a.id) == [
        (2, "Datum", "no such date"),
        (3, "Datum", "not a date in the format %(format)s"),
        (4, "Kanal", UNKNOWN_VALUE_NAMED),  # the file's own words: no list of codes
        (5, "Anträge abgeschickt", "not a whole number of 0 or more"),
        (6, "Leistungsschlüssel", "a number shortened by the spreadsheet (format the column as text)"),
    ]
    admin = sign_in(app, two_tenants.a.id, "admin")
    page = admin.get(f"/t/{two_tenants.a.ags}/data/runs/{run.id}").get_data(as_text=True)
    assert "kein Datum im Format TT.MM.JJJJ" in page and "Anträge abgeschickt" in page
    csv = admin.get(f"/t/{two_tenants.a.ags}/data/runs/{run.id}/errors.csv").get_data(as_text=True)
    assert "3;Datum;kein Datum im Format TT.MM.JJJJ" in csv.splitlines()


def test_a_file_that_cannot_be_read_says_in_german_what_was_found_and_expected(app, sources, two_tenants, tmp_path):
    path = tmp_path / "falsch.csv"
    path.write_bytes("Tag;Dienst;Anzahl\r\n01.03.2026;Hund;4\r\n".encode("cp1252"))
    run, outcome = _load(app, two_tenants.a.id, sources.civento, path)
    assert outcome["status"] == "failed"
    admin = sign_in(app, two_tenants.a.id, "admin")
    page = admin.get(f"/t/{two_tenants.a.ags}/data/runs/{run.id}").get_data(as_text=True)
    assert "Missing" not in page
    assert "Es fehlen die Spalten: Datum, Leistungsschlüssel" in page
    assert "Gefunden: Tag, Dienst, Anzahl" in page
    unknown = tmp_path / "unbekannt.csv"
    unknown.write_text(f"{EVENT_HEADER},email\n,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,,,,,,a@b.de\n")
    run, _ = _load(app, two_tenants.a.id, sources.a, unknown)
    page = admin.get(f"/t/{two_tenants.a.ags}/data/runs/{run.id}").get_data(as_text=True)
    assert "Unknown" not in page and "Spalten, die das Format nicht kennt: email" in page


def test_a_nul_byte_rejects_its_row_only(app, sources, two_tenants, tmp_path):
    body = (EVENT_HEADER + "\n" + f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,\n"
            f",2026-03-02T09:01:00+01:00,{HUNDESTEUER},s\x002,started,,,web,,,,\n").encode()
    path = tmp_path / "nul.csv"
    path.write_bytes(body)
    run, outcome = _load(app, two_tenants.a.id, sources.a, path)
    assert outcome["status"] == "succeeded", run.error
    assert (run.rows_accepted, run.rows_rejected) == (1, 1)
    assert _errors(app, two_tenants.a.id) == [(3, "session_id", "contains a NUL character")]
