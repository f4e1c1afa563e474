"""Months end at midnight German time (issue 19): a rating given in the first hour of the 1st belongs to the
new month, and the running month is never published, whatever time zone the database server runs in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tenants.confidentiality import Rules
from tenants.context import tenant_transaction
from tenants.models import Tenant
from tenants.months import berlin_today
from tenants.opendata.publication import preview

from .conftest import HUNDESTEUER

BERLIN = ZoneInfo("Europe/Berlin")


def _ratings(rollups, tenant_id: int, *moments: str) -> None:
    """Three ratings (of 4 stars) at each moment, given in German local time."""
    rollups(tenant_id, "services", [{"service_key": HUNDESTEUER, "name": "Hundesteuer"}])
    rollups(tenant_id, "feedback", [
        {"service_key": HUNDESTEUER, "received_at": datetime.fromisoformat(moment).replace(tzinfo=BERLIN),
         "rating": 4} for moment in moments for _ in range(3)])


def _satisfaction(app, tenant_id: int, today: date) -> dict[str, int]:
    with app.app_context(), tenant_transaction(tenant_id) as session:
        rows = preview(session, session.get(Tenant, tenant_id), "satisfaction", Rules(), today).rows
    return {r["month"]: r["ratings"] for r in rows if r["service_key"] == HUNDESTEUER}


@pytest.mark.parametrize(("moments", "today", "expected"), [
    # The first hour of November (still 31 October in UTC): November is running, October has no share of it.
    (["2026-10-31T23:30", "2026-11-01T00:30"], date(2026, 11, 15), {"2026-10": 3}),
    (["2026-10-31T23:30", "2026-11-01T00:30"], date(2026, 12, 10), {"2026-10": 3, "2026-11": 3}),
    # Summer time began on 29 March 2026: 1 April 00:30 CEST is 31 March 22:30 UTC.
    (["2026-03-31T23:59", "2026-04-01T00:30"], date(2026, 5, 4), {"2026-03": 3, "2026-04": 3}),
    (["2026-03-31T23:59", "2026-04-01T00:30"], date(2026, 4, 20), {"2026-03": 3}),
    # New Year's Eve: the first half hour of 2027 is running January, not December.
    (["2026-12-31T23:30", "2027-01-01T00:30"], date(2027, 1, 20), {"2026-12": 3}),
])
def test_ratings_count_in_the_german_month(app, two_tenants, rollups, moments, today, expected):
    _ratings(rollups, two_tenants.a.id, *moments)
    assert _satisfaction(app, two_tenants.a.id, today) == expected


@pytest.mark.parametrize(("instant", "expected"), [
    (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), date(2026, 11, 1)),  # 00:30 on 1 November in Berlin
    (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), date(2027, 1, 1)),
    (datetime(2026, 3, 31, 22, 0, tzinfo=UTC), date(2026, 4, 1)),  # summer time: UTC+2
    (datetime(2026, 3, 31, 21, 59, tzinfo=UTC), date(2026, 3, 31)),
])
def test_today_is_the_german_date(instant, expected):
    assert berlin_today(instant) == expected
