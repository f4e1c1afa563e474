"""The loader makes the monthly partitions its events need, whatever their offset (docs/architecture.md,
"Partitions": "loaders call the function on demand"), and rejects a malformed event id on its own.

Uses months no other test loads (2015 to 2017) and drops their partitions before and after, so the
test shows the loader creating them even on a database that is kept between runs (make mutation).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, add_source, rows, write

MONTHS = ("2015_01", "2015_02", "2016_05", "2016_06", "2016_07", "2016_12", "2017_01", "2017_02")


def _drop(owner_engine) -> None:
    with owner_engine.begin() as conn:
        for month in MONTHS:
            conn.execute(text(f"DROP TABLE IF EXISTS analytics.process_events_{month}"))  # names of this module


def _partitions(owner_engine) -> set[str]:
    with owner_engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'analytics.process_events'::regclass")).scalars())


@pytest.fixture
def fresh_months(owner_engine):
    _drop(owner_engine)
    yield
    _drop(owner_engine)


def test_events_load_into_months_without_a_partition_yet(app, two_tenants, tmp_path, owner_engine, fresh_months):
    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "Formulardienst")
    lines = [EVENT_HEADER,
             f",15.05.2016 12:00,{HUNDESTEUER},s0,started,,,web,,,,",  # not ISO: rejected, the rest loads
             f",2016-05-15T12:00:00+02:00,{HUNDESTEUER},s1,started,,,web,,,,",
             # West of UTC: 31 December local time is 1 January 2017 in UTC.
             f",2016-12-31T23:30:00-02:00,{HUNDESTEUER},s2,started,,,web,,,,",
             f"not-a-uuid,2016-05-16T12:00:00+02:00,{HUNDESTEUER},s3,started,,,web,,,,",
             # The first month of the accepted period (2015 on).
             f",2015-01-01T12:00:00+01:00,{HUNDESTEUER},s4,started,,,web,,,,"]
    with app.app_context():
        run, _ = load_file(a, source, Path(write(tmp_path / "alt.csv", "\n".join(lines) + "\n")))
    assert (run.status, run.rows_accepted, run.rows_rejected) == ("succeeded", 3, 2), run.error
    assert rows(app, a, "SELECT row_no, column_name, reason FROM portal.ingest_errors ORDER BY row_no") == [
        (2, "occurred_at", "not an ISO 8601 date and time"), (5, "event_id", "not a UUID")]
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(3,)]
    assert {"process_events_2015_01", "process_events_2016_05", "process_events_2017_01"} <= _partitions(owner_engine)
