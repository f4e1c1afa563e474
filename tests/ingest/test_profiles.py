"""Vendor exports the way German offices produce them, connected by mapping profiles alone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tenants.ingest.runs import load_file
from tests.ingest.conftest import HUNDESTEUER, rows

CIVENTO = (
    "Datum;Leistungsschlüssel;Onlinedienst;Kanal;Anträge gestartet;Anträge abgeschickt;Anträge abgebrochen\r\n"
    f"01.03.2026;{HUNDESTEUER};Hundesteuer Anmeldung;Web;1.204;987;217\r\n"
    f"02.03.2026;{HUNDESTEUER};Hundesteuer Anmeldung;iOS;12;9;3\r\n"
    f"31.02.2026;{HUNDESTEUER};Hundesteuer Anmeldung;Web;5;4;1\r\n"
)


def test_civento_export_in_windows_1252_with_german_numbers_and_dates(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    path = tmp_path / "civento-märz.csv"
    path.write_bytes(CIVENTO.encode("cp1252"))
    with app.app_context():
        run, outcome = load_file(a, sources.civento, path)
    assert outcome["status"] == "succeeded", outcome
    assert rows(app, a, "SELECT day::text, started, submitted, aborted FROM analytics.rollup_service_daily "
                        "ORDER BY day") == [("2026-03-01", 1204, 987, 217), ("2026-03-02", 12, 9, 3)]
    assert rows(app, a, "SELECT channel, started FROM analytics.rollup_channel_daily ORDER BY channel") == [
        ("ios", 12), ("web", 1204)]
    # 31.02. does not exist: its three measures are one rejected source row (row 4 of the file),
    # named as the file names the column.
    assert rows(app, a, "SELECT row_no, column_name, reason FROM portal.ingest_errors") == [
        (4, "Datum", "no such date")]


def test_civento_export_as_utf8_with_bom(app, sources, two_tenants, tmp_path):
    path = tmp_path / "civento.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CIVENTO.encode("utf-8"))
    with app.app_context():
        run, _ = load_file(two_tenants.a.id, sources.civento, path)
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (3, 2, 1)


MAENGEL = (
    "Meldungs-ID;Zeitpunkt;Herkunft;Status;Schritt;Schrittbezeichnung\n"
    "M-1;02.03.2026 08:15;iOS-App;begonnen;;\n"
    "M-1;02.03.2026 08:16;iOS-App;Schritt erreicht;1;Ort wählen\n"
    "M-1;02.03.2026 08:17;iOS-App;abgebrochen;2;Foto hochladen\n"
    "M-2;02.03.2026 09:00;Webportal;begonnen;;\n"
    "M-2;02.03.2026 09:04;Webportal;abgeschickt;;\n"
    "M-3;02.03.2026 10:00;Android-App;begonnen;;\n"
)


def test_maengelmelder_export_gives_channels_and_drop_off_steps(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    path = tmp_path / "maengelmelder.csv"
    path.write_text(MAENGEL, encoding="utf-8")
    with app.app_context():
        run, _ = load_file(a, sources.maengel, path)
    assert run.rows_accepted == 6
    assert rows(app, a, "SELECT channel, started, submitted, aborted FROM analytics.rollup_channel_daily "
                        "ORDER BY channel") == [("android", 1, 0, 0), ("ios", 1, 0, 1), ("web", 1, 1, 0)]
    assert rows(app, a, "SELECT step_no, step_name, reached, aborted FROM analytics.rollup_step_daily "
                        "ORDER BY step_no") == [(1, "Ort wählen", 1, 0), (2, "Foto hochladen", 0, 1)]
    assert rows(app, a, "SELECT DISTINCT service_key FROM analytics.process_events") == [("local:maengelmelder",)]


def test_excel_file(app, sources, two_tenants, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Meldungs-ID", "Zeitpunkt", "Herkunft", "Status", "Schritt", "Schrittbezeichnung"])
    sheet.append(["M-1", datetime(2026, 3, 2, 8, 15), "Android-App", "begonnen", None, None])
    sheet.append(["M-1", datetime(2026, 3, 2, 8, 20), "Android-App", "abgeschickt", None, None])
    sheet.append(["M-2", "kein Datum", "Android-App", "begonnen", None, None])
    path = tmp_path / "maengel.xlsx"
    book.save(path)
    with app.app_context():
        run, _ = load_file(two_tenants.a.id, sources.maengel, Path(path))
    assert (run.rows_accepted, run.rows_rejected) == (2, 1)
    assert rows(app, two_tenants.a.id, "SELECT row_no, column_name FROM portal.ingest_errors") == [(4, "Zeitpunkt")]


def test_a_file_missing_a_column_fails_as_a_whole_with_a_message(app, sources, two_tenants, tmp_path):
    path = tmp_path / "falsch.csv"
    path.write_text("Datum;Onlinedienst\n01.03.2026;Hund\n", encoding="utf-8")
    with app.app_context():
        run, outcome = load_file(two_tenants.a.id, sources.civento, path)
    assert run.status == "failed" and run.error.startswith("Columns are missing")
    assert run.error_args["missing"] == ("Leistungsschlüssel, Anträge gestartet, Anträge abgeschickt, "
                                         "Anträge abgebrochen")
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.daily_aggregates") == [(0,)]


def test_a_new_vendor_export_is_connected_with_a_mapping_only(app, two_tenants, tmp_path):
    """An admin pastes a mapping for an unknown vendor's export; no code changes."""
    from tests.ingest.conftest import add_source, sign_in

    a = two_tenants.a
    with app.app_context():
        source = add_source(a.id, "Formularsystem XY", profile="canonical")
    admin = sign_in(app, a.id, "admin")
    mapping = {
        "payload": "events", "delimiter": "|", "datetime_format": "%d.%m.%Y %H:%M:%S",
        "columns": {"occurred_at": "Zeit", "service_key": "LeiKa", "session_id": "Vorgang", "event_type": "Ereignis",
                    "auth_method": "Login"},
        "values": {"event_type": {"Start": "started", "Ende": "submitted"},
                   "auth_method": {"BundID (Basis)": "bundid_basis", "Ausweis": "bundid_eid"}},
    }
    import json

    assert admin.post(f"/t/{a.ags}/data/sources/{source}/mapping", data={"mapping": "{kein json"}).status_code == 302
    assert "kein gültiges Profil" in admin.get(f"/t/{a.ags}/data/sources/{source}").get_data(as_text=True)
    admin.post(f"/t/{a.ags}/data/sources/{source}/mapping", data={"mapping": json.dumps(mapping)})
    path = tmp_path / "xy.txt"
    path.write_text("Vorgang|Zeit|LeiKa|Ereignis|Login\n"
                    f"7|02.03.2026 10:00:00|{HUNDESTEUER}|Start|\n"
                    f"7|02.03.2026 10:05:00|{HUNDESTEUER}|Ende|Ausweis\n", encoding="utf-8")
    with app.app_context():
        run, _ = load_file(a.id, source, path)
    assert run.rows_accepted == 2
    assert rows(app, a.id, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]
