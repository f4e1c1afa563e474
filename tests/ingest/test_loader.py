"""Canonical files end to end through the loader: accepted rows reach the tables and rollups."""

from __future__ import annotations

from pathlib import Path

from ingest_workers.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, rows, write

GOOD = f"""{EVENT_HEADER}
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,2026-03-02T09:01:00+01:00,{HUNDESTEUER},s1,step_reached,1,Angaben zum Hund,web,,,,
,2026-03-02T09:02:00+01:00,{HUNDESTEUER},s1,authentication,2,Anmelden,web,,,eid,hoch
,2026-03-02T09:03:00+01:00,{HUNDESTEUER},s1,payment,3,Bezahlen,web,paypal,epaybl,,
,2026-03-02T09:04:00+01:00,{HUNDESTEUER},s1,submitted,,,web,,,,
,2026-03-02T23:30:00+01:00,{HUNDESTEUER},s2,started,,,ios,,,,
,2026-03-02T23:40:00+01:00,{HUNDESTEUER},s2,aborted,1,Angaben zum Hund,ios,,,,
"""


def test_canonical_events_reach_rollups(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    with app.app_context():
        run, outcome = load_file(a, sources.a, Path(write(tmp_path / "events.csv", GOOD)))
    assert outcome["status"] == "succeeded"
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (7, 7, 0)
    assert rows(app, a, "SELECT day::text, started, submitted, aborted FROM analytics.rollup_service_daily") == [
        ("2026-03-02", 2, 1, 1)]
    assert rows(app, a, "SELECT step_no, step_name, reached, aborted FROM analytics.rollup_step_daily "
                        "ORDER BY step_no") == [(1, "Angaben zum Hund", 1, 1)]
    assert rows(app, a, "SELECT payment_method, payment_provider, payments FROM analytics.rollup_payment_daily") == [
        ("paypal", "epaybl", 1)]
    assert rows(app, a, "SELECT auth_method, trust_level, authentications FROM analytics.rollup_auth_daily") == [
        ("eid", "hoch", 1)]
    assert rows(app, a, "SELECT channel, started, submitted, aborted FROM analytics.rollup_channel_daily "
                        "ORDER BY channel") == [("ios", 1, 0, 1), ("web", 1, 1, 0)]
    # Nothing of it is visible to the other tenant.
    assert rows(app, two_tenants.b.id, "SELECT count(*) FROM analytics.process_events") == [(0,)]
