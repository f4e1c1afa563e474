"""Row accounting (docs/data-format.md, "Row accounting"): a source row is loaded whole or rejected whole.

Every row of a file is counted as accepted or listed as rejected; only accepted rows change stored
figures; a row sent again replaces what the same source sent for the same key, zero included.
"""

from __future__ import annotations

from pathlib import Path

from tenants.ingest.runs import load_file
from tests.ingest.conftest import rows

CIVENTO_HEADER = ("Datum;Leistungsschlüssel;Onlinedienst;Kanal;Anträge gestartet;Anträge abgeschickt;"
                  "Anträge abgebrochen\r\n")


def _civento(tmp_path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_bytes((CIVENTO_HEADER + "".join(line + "\r\n" for line in lines)).encode("cp1252"))
    return path


def _day(app, tenant_id: int, service: str = "local:x"):
    return rows(app, tenant_id, "SELECT started, submitted, aborted FROM analytics.rollup_service_daily "
                                "WHERE service_key = :s AND day = '2026-10-15'", s=service)


def test_a_rejected_wide_row_changes_no_stored_figure(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    with app.app_context():
        load_file(a, sources.civento, _civento(tmp_path, "a.csv", "15.10.2026;local:x;T;Web;10;7;3"))
        run, _ = load_file(a, sources.civento, _civento(tmp_path, "b.csv", "15.10.2026;local:x;T;Web;k.A.;1;2"))
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (1, 0, 1)
    assert _day(app, a) == [(10, 7, 3)]
    # The error names the count column as the file calls it.
    assert rows(app, a, "SELECT row_no, column_name, reason FROM portal.ingest_errors WHERE run_id = :r",
                r=run.id) == [(2, "Anträge gestartet", "not a whole number of 0 or more")]


def test_a_partly_bad_row_of_a_fresh_day_adds_none_of_its_columns(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    with app.app_context():
        run, _ = load_file(a, sources.civento, _civento(tmp_path, "a.csv", "15.10.2026;local:x;T;Web;4;-1;2",
                                                        "15.10.2026;local:y;T;Web;1;1;0"))
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (2, 1, 1)
    assert _day(app, a) == []
    assert rows(app, a, "SELECT count(*) FROM analytics.daily_aggregates WHERE service_key = 'local:x'") == [(0,)]
    assert _day(app, a, "local:y") == [(1, 1, 0)]


def test_a_correction_to_zero_in_a_wide_export_replaces_the_count(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    with app.app_context():
        load_file(a, sources.civento, _civento(tmp_path, "a.csv", "15.10.2026;local:x;T;Web;10;7;3"))
        run, _ = load_file(a, sources.civento, _civento(tmp_path, "b.csv", "15.10.2026;local:x;T;Web;10;7;0"))
    assert (run.rows_accepted, run.rows_rejected) == (1, 0)
    assert _day(app, a) == [(10, 7, 0)]


def test_a_wide_row_without_any_count_is_listed_as_rejected_not_dropped(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    with app.app_context():
        run, _ = load_file(a, sources.civento, _civento(tmp_path, "a.csv", "15.10.2026;local:x;T;Web;;;",
                                                        "15.10.2026;local:y;T;Web;1;;"))
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (2, 1, 1)
    assert rows(app, a, "SELECT row_no, column_name, reason FROM portal.ingest_errors") == [
        (2, "Anträge gestartet, Anträge abgeschickt, Anträge abgebrochen", "no count given")]
    # An empty cell is "not given": the other counts of local:y stay as they were (none).
    assert _day(app, a, "local:y") == [(1, 0, 0)]
