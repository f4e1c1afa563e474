"""The attacks of issue 14, tried as a reader would: with nothing but the public downloads.

Each test first does what the attacker did (plain arithmetic on the CSV files, no access to the
code), then hands the same downloads to the independent audit (tenants/opendata/audit.py).
"""

from __future__ import annotations

import csv
import io

import pytest

from tenants.opendata.audit import TenantData, audit

from .conftest import month_day, publish

MARBURG = "06534014"
MONTH = month_day(1).strftime("%Y-%m")
GRAB, HUND, GEWERBE, WOHNSITZ, KFZ, SPERR = ("99017004012000", "99102013104000", "99050012104000",
                                             "99115005104000", "99108001001000", "99001001001000")


def _csv(client, dataset: str) -> list[dict]:
    response = client.get(f"/opendata/{MARBURG}/{dataset}.csv")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _count(value: str) -> int | None:
    return None if value == "" else int(value)


def _load(rollups, tenant_id: int, usage: list[tuple], payments: list[tuple] = ()) -> TenantData:
    """Rollups of one day last month: usage (service, started, submitted, aborted), payments (service,
    method, count). Returns the truth the audit compares the downloads with."""
    rollups(tenant_id, "services", [{"service_key": s, "name": f"Dienst {s}"} for s, *_ in usage])
    rollups(tenant_id, "rollup_service_daily", [
        {"service_key": s, "day": month_day(1), "started": st, "submitted": su, "aborted": ab}
        for s, st, su, ab in usage])
    rollups(tenant_id, "rollup_payment_daily", [
        {"service_key": s, "day": month_day(1), "payment_method": m, "payments": n} for s, m, n in payments])
    return TenantData(usage=[(s, MONTH, st, su, ab) for s, st, su, ab in usage],
                      breakdowns={"payment": [(s, MONTH, m, n) for s, m, n in payments]})


def _downloads(client) -> dict[str, list[dict]]:
    return {dataset: [{k: (_count(v) if k in COUNTS and v != "" else (None if v == "" else v))
                       for k, v in row.items()} for row in _csv(client, dataset)]
            for dataset in ("usage", "completion", "payment")}


COUNTS = {"started", "submitted", "aborted", "payments"}


def test_totals_do_not_pin_a_small_aborted_count(client, two_tenants, staff, rollups):
    """Issue 14, finding 1: started = submitted + aborted in every row, so the month's totals show that
    no process is open; one withheld submitted count follows from the total, the aborted count from it."""
    truth = _load(rollups, two_tenants.a.id, [
        (GRAB, 10, 9, 1), (HUND, 40, 30, 10), (GEWERBE, 25, 20, 5), (WOHNSITZ, 60, 45, 15), (KFZ, 12, 8, 4),
        (SPERR, 30, 24, 6)])
    publish(staff(two_tenants.a), MARBURG, ["usage", "completion", "payment"])
    rows = {r["service_key"]: r for r in _csv(client, "usage") if r["month"] == MONTH}
    total = rows.pop("total")
    grab = rows[GRAB]
    assert grab["aborted"] == ""  # 1 abandonment: withheld ...

    # ... but can the attacker compute it? Open processes are never negative, so when the totals add
    # up exactly, every row's open count is 0 and aborted = started - submitted.
    recovered = None
    nobody_open = all(total[m] != "" for m in ("started", "submitted", "aborted")) and (
        int(total["started"]) == int(total["submitted"]) + int(total["aborted"]))
    hidden_submitted = [s for s, r in rows.items() if r["submitted"] == ""]
    if nobody_open and hidden_submitted == [GRAB] and grab["started"] != "":
        submitted = int(total["submitted"]) - sum(int(r["submitted"]) for r in rows.values() if r["submitted"])
        recovered = int(grab["started"]) - submitted
    assert recovered is None, f"aborted count {recovered} recovered from the totals"
    report = audit(truth, _downloads(client), 3)
    assert report.ok, [str(f) for f in report.findings]


def test_payments_do_not_reveal_a_withheld_submitted_count(client, two_tenants, staff, rollups):
    """Issue 14, finding 2: usage withholds two submitted counts (1 and 12); the payment table shows the
    second one's payments (a fee service: one payment per application); total - shown - 12 = 1."""
    truth = _load(rollups, two_tenants.a.id,
                  [(GEWERBE, 7, 1, 3), (KFZ, 25, 12, 8), (HUND, 40, 30, 8), (WOHNSITZ, 60, 45, 12)],
                  [(KFZ, "paypal", 8), (KFZ, "credit_card", 4), (HUND, "paypal", 30)])
    publish(staff(two_tenants.a), MARBURG, ["usage", "completion", "payment"])
    usage = {r["service_key"]: r for r in _csv(client, "usage") if r["month"] == MONTH}
    payments = {(r["service_key"], r["payment_method"]): r["payments"] for r in _csv(client, "payment")}
    assert usage[GEWERBE]["submitted"] == ""

    recovered = None
    hidden = [s for s, r in usage.items() if s != "total" and r["submitted"] == ""]
    if usage["total"]["submitted"] != "" and len(hidden) == 2 and GEWERBE in hidden:
        (fee_service,) = set(hidden) - {GEWERBE}
        paid = payments.get((fee_service, "total"), "")
        if paid != "":
            shown = sum(int(r["submitted"]) for s, r in usage.items() if s != "total" and r["submitted"] != "")
            recovered = int(usage["total"]["submitted"]) - shown - int(paid)
    assert recovered is None, f"submitted count {recovered} recovered through the payment table"
    report = audit(truth, _downloads(client), 3)
    assert report.ok, [str(f) for f in report.findings]


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://evil.example\",\"Hundesteuer\")", "+1+cmd|' /C calc'!A0",
                                  "-2+3", "@SUM(1+1)", "\tTabulator", "\rWagenrücklauf"])
def test_public_csv_neutralises_formulas(client, two_tenants, staff, rollups, name):
    """Issue 14, finding 5: a service name is the tenant's free text; a spreadsheet must show it, not run it."""
    tenant = two_tenants.a.id
    rollups(tenant, "services", [{"service_key": HUND, "name": name}])
    rollups(tenant, "rollup_service_daily", [
        {"service_key": HUND, "day": month_day(1), "started": 40, "submitted": 30, "aborted": 10}])
    publish(staff(two_tenants.a), MARBURG, ["usage"])
    body = client.get(f"/opendata/{MARBURG}/usage.csv").get_data(as_text=True)
    row = next(r for r in csv.DictReader(io.StringIO(body, newline="")) if r["service_key"] == HUND)
    assert row["service_name"] == "'" + name  # shown as text, the name still readable
    for record in csv.reader(io.StringIO(body, newline="")):
        for cell in record:
            assert not cell or cell[0] not in "=+-@\t\r", record
    # JSON is not opened by spreadsheets: the name stays as the tenant wrote it.
    rows = client.get(f"/opendata/{MARBURG}/usage.json").get_json()["rows"]
    assert next(r for r in rows if r["service_key"] == HUND)["service_name"] == name
