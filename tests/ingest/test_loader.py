"""Canonical files end to end through the loader: accepted rows reach the tables and rollups."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenants.context import tenant_transaction
from tenants.ingest.loader import UNKNOWN_VALUE_LISTED
from tenants.ingest.privacy import hash_session, tenant_salt
from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, rows, write

GOOD = f"""{EVENT_HEADER}
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,2026-03-02T09:01:00+01:00,{HUNDESTEUER},s1,step_reached,1,Angaben zum Hund,web,,,,
,2026-03-02T09:02:00+01:00,{HUNDESTEUER},s1,authentication,2,Anmelden,web,,,bundid_eid,hoch
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
        ("bundid_eid", "hoch", 1)]
    assert rows(app, a, "SELECT channel, started, submitted, aborted FROM analytics.rollup_channel_daily "
                        "ORDER BY channel") == [("ios", 1, 0, 1), ("web", 1, 1, 0)]
    # Nothing of it is visible to the other tenant.
    assert rows(app, two_tenants.b.id, "SELECT count(*) FROM analytics.process_events") == [(0,)]


BAD = f"""{EVENT_HEADER}
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,2026-02-30T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,2026-03-02T09:00:00+01:00,99123,s1,started,,,web,,,,
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,fax,,,,
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,step_reached,1,Rückfragen an max@example.org,web,,,,
,2025-06-02T09:00:00+01:00,{HUNDESTEUER},s1,payment,3,Bezahlen,web,giropay,epaybl,,
,2024-06-02T09:00:00+01:00,{HUNDESTEUER},s2,payment,3,Bezahlen,web,giropay,epaybl,,
,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,step_reached,1,Tel. 06421 201-0,web,,,,
,2026-03-02T09:00:00+01:00,,s1,started,,,web,,,,
,1999-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,
,03/04/2026 09:00,{HUNDESTEUER},s1,started,,,web,,,,
,now,{HUNDESTEUER},s1,started,,,web,,,,
"""


def test_bad_rows_are_rejected_with_row_column_and_reason_and_the_rest_is_loaded(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    with app.app_context():
        run, outcome = load_file(a, sources.a, Path(write(tmp_path / "bad.csv", BAD)))
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (12, 2, 10)
    errors = rows(app, a, "SELECT row_no, column_name, reason FROM portal.ingest_errors ORDER BY row_no")
    assert errors == [
        (3, "occurred_at", "no such date"),
        (4, "service_key", "neither a LeiKa key (14 digits, 99…) nor local:<name>"),
        (5, "channel", UNKNOWN_VALUE_LISTED),
        (6, "step_name", "contains an e-mail address"),
        (7, "payment_method", "giropay and paydirekt ended on 2024-12-31"),
        (9, "step_name", "contains a phone number"),
        (10, "service_key", "required"),
        (11, "occurred_at", "outside the accepted period (2015 until tomorrow)"),
        (12, "occurred_at", "not an ISO 8601 date and time"),
        (13, "occurred_at", "not an ISO 8601 date and time"),
    ]
    # giropay before its end is fine; nothing of the rejected rows reached the tables.
    assert rows(app, a, "SELECT payment_method, day::text FROM analytics.rollup_payment_daily") == [
        ("giropay", "2024-06-02")]
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events WHERE step_name LIKE '%@%'") == [(0,)]


# One bad row among good ones, each kind on its own: a batch that casts and passes the table's
# constraints still has every value checked (the clean-batch path must not let any of these through).
ONE_BAD_ROW = {
    "service key": (",2026-03-02T09:00:00+01:00,99123,s9,started,,,web,,,,",
                    ("service_key", "neither a LeiKa key (14 digits, 99…) nor local:<name>")),
    "e-mail in a step name": (f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s9,step_reached,1,an max@example.org,web,,,,",
                              ("step_name", "contains an e-mail address")),
    "giropay in 2025": (f",2025-06-02T09:00:00+01:00,{HUNDESTEUER},s9,payment,3,Bezahlen,web,giropay,epaybl,,",
                        ("payment_method", "giropay and paydirekt ended on 2024-12-31")),
    "unknown channel": (f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s9,started,,,fax,,,,",
                        ("channel", UNKNOWN_VALUE_LISTED)),
    "step 1000": (f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s9,step_reached,1000,Weiter,web,,,,",
                  ("step_no", "not a whole number from 0 to 999")),
    "no event type": (f",2026-03-02T09:00:00+01:00,{HUNDESTEUER},s9,,,,web,,,,", ("event_type", "required")),
}


@pytest.mark.parametrize("kind", ONE_BAD_ROW)
def test_a_single_bad_value_in_an_otherwise_clean_batch_is_found(app, sources, two_tenants, tmp_path, kind):
    line, error = ONE_BAD_ROW[kind]
    a = two_tenants.a.id
    with app.app_context():
        run, _ = load_file(a, sources.a, Path(write(tmp_path / "one.csv", GOOD + line + "\n")))
    assert (run.rows_accepted, run.rows_rejected) == (7, 1)
    assert rows(app, a, "SELECT row_no, column_name, reason FROM portal.ingest_errors") == [(9, *error)]
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(7,)]
    assert rows(app, a, "SELECT started, submitted, aborted FROM analytics.rollup_service_daily") == [(2, 1, 1)]


def test_the_same_file_twice_changes_nothing(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    path = Path(write(tmp_path / "events.csv", GOOD))
    with app.app_context():
        first, _ = load_file(a, sources.a, path)
        second, outcome = load_file(a, sources.a, path)
    assert outcome == {"status": "duplicate"} and second.id == first.id
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(7,)]
    assert rows(app, a, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(2, 1)]


def test_overlapping_batches_count_each_event_once(app, sources, two_tenants, tmp_path):
    a = two_tenants.a.id
    lines = GOOD.splitlines()
    with_ids = [lines[0]] + [f"{n:08d}-0000-4000-8000-000000000000" + line for n, line in enumerate(lines[1:])]
    first = "\n".join(with_ids[:5]) + "\n"  # events 1-4
    second = "\n".join([with_ids[0]] + with_ids[3:]) + "\n"  # events 3-7: 3 and 4 were sent before
    with app.app_context():
        load_file(a, sources.a, Path(write(tmp_path / "a.csv", first)))
        run, _ = load_file(a, sources.a, Path(write(tmp_path / "b.csv", second)))
    # Every row is accounted for: the two sent before are accepted again and change nothing.
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (5, 5, 0)
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(7,)]
    assert rows(app, a, "SELECT started, submitted, aborted FROM analytics.rollup_service_daily") == [(2, 1, 1)]


def test_session_ids_are_stored_only_as_tenant_salted_hashes(app, sources, two_tenants, tmp_path):
    path = Path(write(tmp_path / "events.csv", GOOD))
    with app.app_context():
        load_file(two_tenants.a.id, sources.a, path)
        load_file(two_tenants.b.id, sources.b, path)
    hash_a = rows(app, two_tenants.a.id, "SELECT DISTINCT session_hash FROM analytics.process_events "
                                         "WHERE event_type = 'submitted'")
    hash_b = rows(app, two_tenants.b.id, "SELECT DISTINCT session_hash FROM analytics.process_events "
                                         "WHERE event_type = 'submitted'")
    assert len(hash_a[0][0]) == 32 and b"s1" not in hash_a[0][0]
    with app.app_context(), tenant_transaction(two_tenants.a.id) as session:
        salt = tenant_salt(session, app.config["EGOV"])
    assert hash_a[0][0] == hash_session(salt, "s1")  # the documented rule: sha256(salt ":" session_id)
    assert hash_a != hash_b  # the same session id cannot be linked across municipalities


def test_corrected_aggregates_replace_the_day(app, two_tenants, tmp_path):
    from tests.ingest.conftest import add_source

    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "Zähler", profile="canonical-aggregates")
        body = (f"day,service_key,measure,value\n2026-03-02,{HUNDESTEUER},started,10\n"
                f"2026-03-02,{HUNDESTEUER},submitted,7\n")
        load_file(a, source, Path(write(tmp_path / "a.csv", body)))
        load_file(a, source, Path(write(tmp_path / "b.csv", body.replace(",7", ",8"))))
    assert rows(app, a, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(10, 8)]


def test_new_services_enter_the_catalogue_known_ones_keep_their_name(app, sources, two_tenants, tmp_path):
    from sqlalchemy import text

    from tenants.context import tenant_transaction

    a = two_tenants.a.id
    with app.app_context():
        with tenant_transaction(a) as session:
            session.execute(text("INSERT INTO analytics.services (tenant_id, service_key, name) "
                                 "VALUES (:t, :k, 'Hundesteuer-Anmeldung')"), {"t": a, "k": HUNDESTEUER})
        body = GOOD + ",2026-03-02T10:00:00+01:00,local:fundsache,s9,started,,,web,,,,\n"
        load_file(a, sources.a, Path(write(tmp_path / "events.csv", body)))
    assert rows(app, a, "SELECT service_key, leika_key, name FROM analytics.services ORDER BY 1") == [
        (HUNDESTEUER, None, "Hundesteuer-Anmeldung"), ("local:fundsache", None, "local:fundsache")]
