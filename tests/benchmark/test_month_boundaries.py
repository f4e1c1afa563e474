"""The comparison's satisfaction metric counts a rating in its German month (issue 19): the first hour of
the 1st belongs to the new month, which is running and not compared yet."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from tenants.benchmark.metrics import tenant_values
from tenants.context import platform_transaction, tenant_transaction
from tests.benchmark.conftest import HUNDESTEUER

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("moments", "today", "expected"), [
    (["2026-10-31T23:30", "2026-11-01T00:30"], date(2026, 11, 15), {date(2026, 10, 1): 3}),
    (["2026-03-31T23:59", "2026-04-01T00:30"], date(2026, 5, 4), {date(2026, 3, 1): 3, date(2026, 4, 1): 3}),
    (["2026-12-31T23:30", "2027-01-01T00:30"], date(2027, 1, 20), {date(2026, 12, 1): 3}),
])
def test_ratings_are_compared_in_their_german_month(app, clean_db, insert_rows, moments, today, expected):
    from tenants.registry import create_tenant

    with app.app_context(), platform_transaction():
        tenant_id = create_tenant("06534014", status="active").id
    insert_rows(tenant_id, "services", [{"service_key": HUNDESTEUER, "name": "Hundesteuer"}])
    insert_rows(tenant_id, "feedback", [
        {"service_key": HUNDESTEUER, "received_at": datetime.fromisoformat(m).replace(tzinfo=BERLIN), "rating": 4}
        for m in moments for _ in range(3)])
    with app.app_context(), tenant_transaction(tenant_id) as session:
        values = tenant_values(session, tenant_id, 70000, today, ("satisfaction",)).values
    assert {month: v.base for (_, month, metric), v in values.items() if metric == "satisfaction"} == expected
