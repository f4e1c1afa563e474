"""Open Data's months hold every day of the month, the last one too, and only complete months.

docs/open-data.md and tenants/opendata/datasets.py: monthly figures per service for complete months
only. Days are the German days the rollups hold (the loader's side is tests/ingest/test_day_boundaries.py).
Boundary values: 31 December, the last day of February (leap and common year), the first day of
the next month, and a municipality's first and last day on the platform. The expected sums are
added up by hand here, each day's count a different power of ten so that a missing day shows.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from tenants.context import tenant_transaction
from tenants.opendata.datasets import dataset_rows
from tenants.opendata.publication import Rules

from .conftest import HUNDESTEUER, publish

MARBURG = "06534014"


def _usage(app, tenant_id: int, today: date) -> dict[str, int]:
    """month -> started of the service's row, as the usage dataset would publish it on ``today``."""
    with app.app_context(), tenant_transaction(tenant_id) as session:
        published = dataset_rows(session, tenant_id, "usage", Rules(), today)
    return {r["month"]: r["started"] for r in published if r["service_key"] == HUNDESTEUER}


def _days(rollups, tenant_id: int, counts: dict[date, int]) -> None:
    rollups(tenant_id, "services", [{"service_key": HUNDESTEUER, "name": "Hundesteuer"}])
    rollups(tenant_id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": day, "started": n, "submitted": n, "aborted": 0}
        for day, n in counts.items()])


@pytest.mark.parametrize("last_day", [date(2025, 12, 31), date(2024, 2, 29), date(2025, 2, 28),
                                      date(2026, 3, 31), date(2026, 10, 31)])
def test_a_month_holds_its_last_day_and_is_published_once_it_is_over(app, two_tenants, rollups, last_day):
    first_day = last_day.replace(day=1)
    next_first = last_day + timedelta(days=1)
    _days(rollups, two_tenants.a.id, {first_day: 100, last_day - timedelta(days=1): 10, last_day: 1000,
                                      next_first: 10000})
    month = f"{last_day:%Y-%m}"
    # On the month's last day it is still running: not published.
    assert month not in _usage(app, two_tenants.a.id, today=last_day)
    # From the first of the next month on it is complete: every day of it, the last one included.
    assert _usage(app, two_tenants.a.id, today=next_first)[month] == 1110
    # The next month's first day belongs to the next month, which is still running.
    assert f"{next_first:%Y-%m}" not in _usage(app, two_tenants.a.id, today=next_first)
    assert _usage(app, two_tenants.a.id, today=(next_first + timedelta(days=31)).replace(day=1))[
        f"{next_first:%Y-%m}"] == 10000


def test_a_municipalitys_first_and_last_day_on_the_platform(app, two_tenants, rollups):
    """Data from 31 March 2025 (the last day of a month) to 1 February 2026 (the first day of one)."""
    _days(rollups, two_tenants.a.id, {date(2025, 3, 31): 3, date(2025, 4, 1): 40, date(2026, 1, 31): 500,
                                      date(2026, 2, 1): 6000})
    assert _usage(app, two_tenants.a.id, today=date(2026, 3, 1)) == {
        "2025-03": 3, "2025-04": 40, "2026-01": 500, "2026-02": 6000}


def test_the_public_download_holds_the_last_day_of_the_last_complete_month(client, app, two_tenants, rollups,
                                                                           staff):
    """The same through the published CSV, for the months before today (whatever today is)."""
    running = date.today().replace(day=1)
    last_day = running - timedelta(days=1)
    _days(rollups, two_tenants.a.id, {last_day.replace(day=1): 100, last_day: 1000, running: 10000})
    assert publish(staff(two_tenants.a), MARBURG, ["usage"]).status_code == 302
    body = client.get(f"/opendata/{MARBURG}/usage.csv").get_data(as_text=True)
    published = {r["month"]: r["started"] for r in csv.DictReader(io.StringIO(body))
                 if r["service_key"] == HUNDESTEUER}
    assert published == {f"{last_day:%Y-%m}": "1100"}


def test_the_datasets_reach_back_36_complete_months(app, two_tenants, rollups):
    """On 15 March 2026: from March 2023 on (36 months before the running month), not February 2023."""
    _days(rollups, two_tenants.a.id, {date(2023, 2, 28): 7, date(2023, 3, 1): 3, date(2026, 2, 28): 5})
    assert _usage(app, two_tenants.a.id, today=date(2026, 3, 15)) == {"2023-03": 3, "2026-02": 5}
