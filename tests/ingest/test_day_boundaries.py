"""Days and months are German days and months, at the edges a user meets.

The rules (docs/data-format.md, docs/architecture.md "Ingest" and "Partitions"): an event counts
on the Europe/Berlin day it happened (a time without offset is Berlin time); a delivered day of
aggregates replaces that day's figures, recomputed from everything stored for it; the scheduler
creates this month's and the next months' partitions in advance.

Boundary values: the nights of the change to summer time (29 March 2026, 02:00 → 03:00) and back
(25 October 2026, 03:00 → 02:00, the hour 02:00–03:00 happens twice), New Year's Eve, the last day
of February in a leap year and in a common year, and a municipality's first and last day on the
platform (00:00:00 and 23:59:59 German time). An event in the first hour of a German day is still
in the previous UTC day; one late in the evening is in the same UTC day in winter and summer alike.

The partitions these events need are created before loading: the partition fault of issue 19
(an event in the first hour of a month without the previous UTC month's partition) is another
test's business, and this one must not depend on it.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import text

from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, add_source, rows, write

BERLIN_DAYS = [
    # (timestamp as the source sends it, the German day it belongs to)
    # Spring forward: 29 March 2026 has 23 hours.
    ("2026-03-28T23:30:00+01:00", "2026-03-28"),
    ("2026-03-29T00:30:00+01:00", "2026-03-29"),  # 28 March in UTC
    ("2026-03-29T00:45:00", "2026-03-29"),  # no offset: Berlin time, still winter time
    ("2026-03-29T03:30:00+02:00", "2026-03-29"),
    ("2026-03-29T23:30:00+02:00", "2026-03-29"),
    ("2026-03-30T00:30:00+02:00", "2026-03-30"),  # 29 March in UTC
    # Fall back: 25 October 2026 has 25 hours, 02:00-03:00 twice.
    ("2026-10-25T00:30:00+02:00", "2026-10-25"),  # 24 October in UTC
    ("2026-10-25T02:30:00+02:00", "2026-10-25"),
    ("2026-10-25T02:30:00+01:00", "2026-10-25"),
    ("2026-10-25T23:30:00+01:00", "2026-10-25"),
    ("2026-10-26T00:30:00+01:00", "2026-10-26"),  # 25 October in UTC
    ("2026-10-26T00:15:00", "2026-10-26"),  # no offset: Berlin time
    # New Year's Eve.
    ("2025-12-31T23:59:59+01:00", "2025-12-31"),
    ("2026-01-01T00:30:00+01:00", "2026-01-01"),  # 31 December in UTC
    ("2026-01-01T00:10:00", "2026-01-01"),  # no offset: Berlin time
    # The last day of February, leap year and common year.
    ("2024-02-29T00:30:00+01:00", "2024-02-29"),  # 28 February in UTC
    ("2024-02-29T23:30:00+01:00", "2024-02-29"),
    ("2024-03-01T00:30:00+01:00", "2024-03-01"),  # 29 February in UTC
    ("2025-02-28T23:59:00+01:00", "2025-02-28"),
    ("2025-03-01T00:30:00+01:00", "2025-03-01"),  # 28 February in UTC
    # In summer, too, the German day starts two hours before the UTC one.
    ("2026-07-01T01:30:00+02:00", "2026-07-01"),  # 30 June in UTC
]


def _utc_and_local_months(stamp: str) -> set[date]:
    """First days of the months a timestamp touches in UTC and in German time."""
    from zoneinfo import ZoneInfo

    parsed = datetime.fromisoformat(stamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo("Europe/Berlin"))
    utc = parsed.astimezone(ZoneInfo("UTC"))
    return {date(utc.year, utc.month, 1), date(parsed.year, parsed.month, 1)}


@pytest.fixture
def partitions_for(app_engine):
    def create(stamps) -> None:
        months = set().union(*(_utc_and_local_months(s) for s in stamps))
        with app_engine.begin() as conn:
            for month in sorted(months):
                conn.execute(text("SELECT analytics.ensure_event_partition(CAST(:m AS date))"), {"m": month})
    return create


def _events_csv(tmp_path, stamps, name="ereignisse.csv", event_type="started") -> str:
    lines = [EVENT_HEADER] + [f",{stamp},{HUNDESTEUER},s{n},{event_type},,,web,,,,"
                              for n, stamp in enumerate(stamps)]
    return write(tmp_path / name, "\n".join(lines) + "\n")


def _load(app, tenant_id: int, source_id: int, path: str) -> tuple[str, int, int]:
    from pathlib import Path

    with app.app_context():
        run, _ = load_file(tenant_id, source_id, Path(path))
    return run.status, run.rows_accepted, run.rows_rejected


def _expected_days(pairs) -> list[tuple[str, int]]:
    counted: dict[str, int] = {}
    for _, day in pairs:
        counted[day] = counted.get(day, 0) + 1
    return sorted(counted.items())


def _started_per_day(app, tenant_id: int) -> list[tuple[str, int]]:
    return rows(app, tenant_id, "SELECT day::text, started FROM analytics.rollup_service_daily ORDER BY day")


def test_events_count_on_their_german_day(app, two_tenants, tmp_path, partitions_for):
    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "Formulardienst")
    partitions_for(s for s, _ in BERLIN_DAYS)
    assert _load(app, a, source, _events_csv(tmp_path, [s for s, _ in BERLIN_DAYS])) == (
        "succeeded", len(BERLIN_DAYS), 0)
    assert _started_per_day(app, a) == _expected_days(BERLIN_DAYS)


def test_a_municipalitys_first_and_last_day_hold_exactly_their_own_events(app, two_tenants, tmp_path, partitions_for):
    """Joined on 1 March 2025 (the first event at 00:00:00), left after 31 January 2026 (the last at 23:59:59)."""
    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "Formulardienst")
    stamps = ["2025-03-01T00:00:00+01:00", "2025-03-01T00:00:00", "2025-06-15T12:00:00+02:00",
              "2026-01-31T23:59:59+01:00", "2026-01-31T23:59:59"]
    partitions_for(stamps)
    assert _load(app, a, source, _events_csv(tmp_path, stamps))[0] == "succeeded"
    assert _started_per_day(app, a) == [("2025-03-01", 2), ("2025-06-15", 1), ("2026-01-31", 2)]
    assert rows(app, a, "SELECT month::text, started FROM analytics.service_usage_monthly ORDER BY month") == [
        ("2025-03-01", 2), ("2025-06-01", 1), ("2026-01-01", 2)]


@pytest.mark.parametrize("first, last", [("2026-03-28", "2026-03-30"), ("2026-10-24", "2026-10-26"),
                                         ("2025-12-30", "2026-01-01"), ("2024-02-28", "2024-03-01")])
def test_delivered_days_are_recomputed_from_everything_stored_first_day_to_last(app, two_tenants, tmp_path,
                                                                              partitions_for, first, last):
    """Events first, then a source of daily counts for the same days: each day adds both, the last one too.

    The events lie at the edges of the German days: 00:30 on the first day (the previous day in
    UTC) and 23:30 on the last (in UTC still that day in winter, in summer too).
    """
    a = two_tenants.a.id
    with app.app_context():
        events_source = add_source(a, "Formulardienst")
        counts_source = add_source(a, "civento Statistik", profile="canonical-aggregates")
    days = [first, _next(first), last]
    stamps = [f"{first}T00:30:00", f"{first}T12:00:00", f"{_next(first)}T12:00:00", f"{last}T12:00:00",
              f"{last}T23:30:00"]
    partitions_for(stamps)
    assert _load(app, a, events_source, _events_csv(tmp_path, stamps))[0] == "succeeded"
    assert _started_per_day(app, a) == [(first, 2), (_next(first), 1), (last, 2)]
    aggregates = "day,service_key,measure,value\n" + "".join(f"{d},{HUNDESTEUER},started,10\n" for d in days)
    assert _load(app, a, counts_source, write(tmp_path / "zaehlung.csv", aggregates)) == ("succeeded", 3, 0)
    assert _started_per_day(app, a) == [(first, 12), (_next(first), 11), (last, 12)]
    # A correction of the counts replaces them, and the events stay counted on every day.
    corrected = aggregates.replace(",10\n", ",4\n")
    assert _load(app, a, counts_source, write(tmp_path / "korrektur.csv", corrected))[0] == "succeeded"
    assert _started_per_day(app, a) == [(first, 6), (_next(first), 5), (last, 6)]


def _next(day: str) -> str:
    from datetime import timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


# -- partitions made in advance -------------------------------------------------------------------

def _partitions(owner_engine) -> set[str]:
    with owner_engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'analytics.process_events'::regclass")).scalars())


@pytest.mark.parametrize("today, months", [
    (date(2030, 12, 31), (date(2030, 12, 1), date(2031, 1, 1))),
    (date(2032, 2, 29), (date(2032, 2, 1), date(2032, 3, 1))),
    (date(2033, 2, 28), (date(2033, 2, 1), date(2033, 3, 1))),
    (date(2034, 10, 31), (date(2034, 10, 1), date(2034, 11, 1))),
])
def test_the_nightly_job_prepares_this_and_next_month(today, months):
    """On the last day of a month (31 December, end of February, the night summer time ends) the job
    already prepares the month that starts tomorrow."""
    from ingest_workers.maintenance import months_to_prepare

    assert set(months) <= set(months_to_prepare(today))


def test_the_nightly_job_creates_next_months_partition_in_advance(app, owner_engine, clean_db):
    """The scheduled job as cron runs it (no arguments): next month's partition exists after it, even when
    it did not before (the database refuses partitions for months that are not yet plausible, so the
    job runs on the real date here; the boundary days are the test above)."""
    from datetime import UTC, datetime

    from ingest_workers.maintenance import ensure_partitions, months_to_prepare

    following = months_to_prepare(datetime.now(UTC).date())[1]
    name = f"process_events_{following:%Y_%m}"
    with owner_engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS analytics.{name}"))  # noqa: S608 - a name built from a date
    assert name not in _partitions(owner_engine)
    with app.app_context():
        ensure_partitions()
    assert name in _partitions(owner_engine)
