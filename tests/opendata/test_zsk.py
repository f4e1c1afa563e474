"""The export for the federal Zentrale Statistik-Komponente."""

import csv
import io

import pytest

from tenants.opendata.zsk import COLUMNS

from .conftest import GEWERBE, HUNDESTEUER, LOCAL, WOHNSITZ, month_day


def parse(response) -> list[dict]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True)), delimiter=";"))


def test_tenant_admin_exports_monthly_transactions_per_leika_and_ars(marburg_data, staff):
    rows = parse(staff(marburg_data.a).get(f"/t/{marburg_data.a.ags}/zsk.csv"))
    assert rows and list(rows[0]) == list(COLUMNS)
    counts = {(r["berichtsmonat"], r["leistungsschluessel"]): int(r["transaktionen"]) for r in rows}
    last, before = month_day(1).strftime("%Y-%m"), month_day(2).strftime("%Y-%m")
    # Submitted initial applications, notifications and reports; small counts too (not public).
    assert counts == {(last, HUNDESTEUER): 30, (last, GEWERBE): 2, (last, WOHNSITZ): 100, (before, HUNDESTEUER): 30}
    assert all(r["ars"] == "065340014014" for r in rows)
    assert not any(r["leistungsschluessel"] == LOCAL for r in rows)  # no federal key, not reported


def test_operator_export_covers_every_tenant(marburg_data, rollups, operator_client):
    rollups(marburg_data.b.id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1), "started": 8, "submitted": 7, "aborted": 1}])
    rows = parse(operator_client.get("/operator/zsk.csv"))
    by_ars = {}
    for row in rows:
        by_ars.setdefault(row["ars"], []).append(row)
    assert set(by_ars) == {"065340014014", "066310009009"}
    assert [int(r["transaktionen"]) for r in by_ars["066310009009"]] == [7]


def test_a_tenant_admin_sees_only_their_own_export(marburg_data, rollups, staff):
    rollups(marburg_data.b.id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1), "started": 8, "submitted": 7, "aborted": 1}])
    rows = parse(staff(marburg_data.b).get(f"/t/{marburg_data.b.ags}/zsk.csv"))
    assert {r["ars"] for r in rows} == {"066310009009"}
    assert staff(marburg_data.b).get(f"/t/{marburg_data.a.ags}/zsk.csv").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_staff_below_admin_cannot_export(marburg_data, staff, role):
    assert staff(marburg_data.a, role).get(f"/t/{marburg_data.a.ags}/zsk.csv").status_code == 403


def test_the_operator_export_is_for_operators_only(client, marburg_data, staff):
    assert staff(marburg_data.a).get("/operator/zsk.csv").status_code == 403
    anonymous = client.get("/operator/zsk.csv")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_exports_are_audited(app, marburg_data, staff, operator_client):
    from sqlalchemy import select

    from tenants.context import platform_transaction, tenant_transaction
    from tenants.models import AuditEvent, PlatformAuditEvent

    staff(marburg_data.a).get(f"/t/{marburg_data.a.ags}/zsk.csv")
    operator_client.get("/operator/zsk.csv")
    with app.app_context():
        with tenant_transaction(marburg_data.a.id) as session:
            assert list(session.scalars(select(AuditEvent.action))) == ["zsk.export"]
        with platform_transaction() as session:
            assert list(session.scalars(select(PlatformAuditEvent.action))) == ["zsk.export"]


def test_a_service_name_that_looks_like_a_formula_is_exported_as_text(two_tenants, staff, rollups):
    rollups(two_tenants.a.id, "services", [{"service_key": HUNDESTEUER, "name": "=1+1 Hundesteuer"}])
    rollups(two_tenants.a.id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1), "started": 5, "submitted": 4, "aborted": 1}])
    rows = parse(staff(two_tenants.a).get(f"/t/{two_tenants.a.ags}/zsk.csv"))
    assert [r["leistungsname"] for r in rows] == ["'=1+1 Hundesteuer"]
