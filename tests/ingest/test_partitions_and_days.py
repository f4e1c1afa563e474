"""Monthly partitions only for plausible months of accepted rows; days and months are Europe/Berlin's.

docs/data-format.md: timestamps without an offset are Europe/Berlin; a day in every figure is a German
calendar day. Partitions of ``analytics.process_events`` are an internal detail (bounded in UTC) that
must never make a valid batch fail, and a rejected row must leave none behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, rows


def _partitions(owner_engine) -> set[str]:
    with owner_engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'analytics.process_events'::regclass")).scalars())


@pytest.fixture
def no_partitions(owner_engine, clean_db):
    """Start without any partition (they outlive the per-test truncation)."""
    for name in _partitions(owner_engine):
        with owner_engine.begin() as conn:
            conn.execute(text(f'DROP TABLE analytics."{name}"'))  # names read from the catalogue
    yield


def _events(tmp_path, *lines: str) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_HEADER + "\n" + "".join(f",{ts},{HUNDESTEUER},s{n},{kind},,,web,,,,\n"
                                                  for n, (ts, kind) in enumerate(lines)), encoding="utf-8")
    return path


def test_rejected_rows_create_no_partitions(app, sources, two_tenants, tmp_path, owner_engine, no_partitions):
    path = tmp_path / "events.csv"
    path.write_text(EVENT_HEADER + "\n"
                    f",2095-05-02T09:00:00+02:00,{HUNDESTEUER},s1,started,,,web,,,,\n"  # outside the period
                    f",2019-05-02T09:00:00+02:00,99123,s1,started,,,web,,,,\n"  # a plausible month, bad service
                    f",2019-07-02T09:00:00+02:00,{HUNDESTEUER},s1,gestartet,,,web,,,,\n", encoding="utf-8")
    with app.app_context():
        run, outcome = load_file(two_tenants.a.id, sources.a, path)
    assert (outcome["status"], run.rows_accepted, run.rows_rejected) == ("succeeded", 0, 3)
    assert _partitions(owner_engine) == set()


def test_pushed_event_far_in_the_future_leaves_no_partition(app, two_tenants, owner_engine, no_partitions):
    from tests.ingest.test_upload_and_api import _push_source, sign_in, work

    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    response = app.test_client().post(
        f"/api/v1/t/{two_tenants.a.ags}/sources/{source_id}/batches", headers={"Authorization": f"Bearer {token}"},
        json={"batch_id": "2095", "events": [{"occurred_at": "2095-05-14T10:00:00+02:00", "service_key": HUNDESTEUER,
                                              "event_type": "started"}]})
    assert response.status_code == 202
    work(app)
    assert rows(app, two_tenants.a.id, "SELECT status, rows_rejected FROM portal.ingest_runs") == [("succeeded", 1)]
    assert _partitions(owner_engine) == set()


def test_the_database_refuses_partitions_for_implausible_months(app_engine, no_partitions):
    import psycopg
    import sqlalchemy

    with pytest.raises(sqlalchemy.exc.DBAPIError) as refused, app_engine.begin() as conn:
        conn.execute(text("SELECT analytics.ensure_event_partition(DATE '2095-05-01')"))
    assert isinstance(refused.value.orig, psycopg.errors.RaiseException)


def test_an_event_in_the_first_hour_of_a_german_month_loads_into_an_empty_store(
        app, sources, two_tenants, tmp_path, no_partitions):
    """Issue 19: 2025-09-01T00:30+02:00 is still August in UTC, whose partition did not exist."""
    with app.app_context():
        path = _events(tmp_path, ("2025-09-01T00:30:00+02:00", "started"))
        run, outcome = load_file(two_tenants.a.id, sources.a, path)
    assert (outcome["status"], run.rows_accepted) == ("succeeded", 1), run.error
    assert rows(app, two_tenants.a.id, "SELECT day::text, started FROM analytics.rollup_service_daily") == [
        ("2025-09-01", 1)]


# (timestamp as a source sends it, the German day it counts for)
BOUNDARIES = [
    ("2026-03-29T01:59:00+01:00", "2026-03-29"),  # the night clocks go forward: last minute of winter time
    ("2026-03-29T03:00:00+02:00", "2026-03-29"),  # first minute of summer time
    ("2026-03-28T23:30:00Z", "2026-03-29"),        # 00:30 German time
    ("2026-10-25T02:30:00+02:00", "2026-10-25"),  # the night clocks go back: 02:30 happens twice
    ("2026-10-25T02:30:00+01:00", "2026-10-25"),
    ("2026-10-24T22:30:00Z", "2026-10-25"),        # 00:30 summer time on the 25th
    ("2026-10-25T23:30:00Z", "2026-10-26"),        # 00:30 winter time on the 26th
    ("2025-12-31T23:30:00+01:00", "2025-12-31"),  # New Year's Eve, late
    ("2025-12-31T23:30:00Z", "2026-01-01"),        # already 00:30 on New Year's Day in Germany
    ("2026-01-01 00:30", "2026-01-01"),            # no offset: German time
    ("2024-02-29T23:59:00+01:00", "2024-02-29"),  # leap day
    ("2024-02-29T23:30:00Z", "2024-03-01"),
    ("2025-02-28T23:30:00Z", "2025-03-01"),        # last day of February in a common year
    ("2025-02-28T22:59:00Z", "2025-02-28"),
]


def test_events_count_for_the_german_day_at_every_boundary(app, sources, two_tenants, tmp_path, no_partitions):
    with app.app_context():
        run, outcome = load_file(two_tenants.a.id, sources.a,
                                 _events(tmp_path, *[(ts, "started") for ts, _ in BOUNDARIES]))
    assert (outcome["status"], run.rows_accepted) == ("succeeded", len(BOUNDARIES)), run.error
    expected: dict[str, int] = {}
    for _, day in BOUNDARIES:
        expected[day] = expected.get(day, 0) + 1
    assert dict(rows(app, two_tenants.a.id, "SELECT day::text, started FROM analytics.rollup_service_daily")) == \
        expected


def test_aggregates_of_a_boundary_day_keep_their_day(app, two_tenants, tmp_path, no_partitions):
    from tests.ingest.conftest import add_source

    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "Zähler", profile="canonical-aggregates")
        path = tmp_path / "agg.csv"
        path.write_text(f"day,service_key,measure,value\n2026-03-29,{HUNDESTEUER},started,5\n"
                        f"2025-12-31,{HUNDESTEUER},started,6\n2024-02-29,{HUNDESTEUER},started,7\n")
        load_file(a, source, path)
    assert rows(app, a, "SELECT day::text, started FROM analytics.rollup_service_daily ORDER BY day") == [
        ("2024-02-29", 7), ("2025-12-31", 6), ("2026-03-29", 5)]
