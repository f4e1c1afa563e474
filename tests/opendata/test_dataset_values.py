"""Values of the Open Data datasets worked out by hand from their documented definitions
(tenants/opendata/datasets.py, docs/open-data.md, docs/confidentiality.md). Added for surviving
mutants of ``make mutation`` (docs/mutation.md).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from tenants.confidentiality import Rules
from tenants.context import tenant_transaction
from tenants.opendata.datasets import dataset_rows

HUNDESTEUER = "99102013104000"
TODAY = date(2026, 2, 15)  # January 2026 is complete


def _published(app, tenant_id: int, dataset: str) -> list[dict]:
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return dataset_rows(session, tenant_id, dataset, Rules(), TODAY)


def _row(rows, service):
    return next(r for r in rows if r["service_key"] == service)


def _usage(rollups, tenant_id: int, started: int, submitted: int, aborted: int, service: str = HUNDESTEUER) -> None:
    rollups(tenant_id, "services", [{"service_key": service, "name": service}])
    rollups(tenant_id, "rollup_service_daily", [{"service_key": service, "day": date(2026, 1, 10),
                                                 "started": started, "submitted": submitted, "aborted": aborted}])


def test_started_equal_to_submitted_plus_aborted_does_not_give_away_a_small_count(app, two_tenants, rollups):
    """12 started, 11 submitted, 1 aborted (none open): with started and submitted public, 12 - 11 would
    be the one abandonment. Readers know started = submitted + aborted + open; so one more is withheld."""
    _usage(rollups, two_tenants.a.id, 12, 11, 1)
    row = _row(_published(app, two_tenants.a.id, "usage"), HUNDESTEUER)
    assert row["aborted"] is None
    assert row["started"] is None or row["submitted"] is None


def test_completion_and_abandonment_rates(app, two_tenants, rollups):
    _usage(rollups, two_tenants.a.id, 40, 30, 10)
    row = _row(_published(app, two_tenants.a.id, "completion"), HUNDESTEUER)
    assert (row["started"], row["completion_rate"], row["abandonment_rate"]) == (40, 0.75, 0.25)


def test_satisfaction_averages_per_service_and_for_the_month(app, two_tenants, rollups):
    """3 ratings summing to 12 and 4 summing to 10: averages 4.0 and 2.5, the month 22 / 7 = 3.14."""
    berlin = ZoneInfo("Europe/Berlin")
    rollups(two_tenants.a.id, "services", [{"service_key": s, "name": s} for s in ("local:a", "local:b")])
    ratings = [("local:a", r) for r in (4, 4, 4)] + [("local:b", r) for r in (1, 2, 3, 4)]
    rollups(two_tenants.a.id, "feedback", [
        {"service_key": s, "received_at": datetime(2026, 1, 10, 12, tzinfo=berlin), "rating": r} for s, r in ratings])
    rows = _published(app, two_tenants.a.id, "satisfaction")
    assert [(r["month"], r["service_key"], r["ratings"], r["average_rating"]) for r in rows] == [
        ("2026-01", "local:a", 3, 4.0), ("2026-01", "local:b", 4, 2.5), ("2026-01", "total", 7, 3.14)]


def test_publishing_again_after_a_withdrawal_is_a_new_publication(app, two_tenants, monkeypatch):
    """Withdrawn, then published again: issued anew and no longer withdrawn; publishing an already
    published dataset again with the same licence changes neither date."""
    from datetime import UTC, datetime

    from tenants.context import tenant_transaction
    from tenants.models import Tenant
    from tenants.opendata import publication

    clock = iter(datetime(2026, 5, day, tzinfo=UTC) for day in range(1, 28))
    monkeypatch.setattr(publication, "_now", lambda: next(clock))
    with app.app_context(), tenant_transaction(two_tenants.a.id) as session:
        tenant = session.get(Tenant, two_tenants.a.id)
        args = ("dl-by-de/2.0", "opendata@marburg.de", "admin")
        (pub,) = publication.publish(session, tenant, ["usage"], *args)
        publication.withdraw(session, tenant, "usage", "admin")
        withdrawn = pub.withdrawn_at
        assert withdrawn is not None and not pub.is_published
        publication.publish(session, tenant, ["usage"], *args)
        issued = pub.published_at
        assert pub.is_published and pub.withdrawn_at is None and issued > withdrawn
        publication.publish(session, tenant, ["usage"], *args)
        assert pub.published_at == issued
