"""Fixtures for Open Data: rollup rows inserted as the app role, signed-in admins and operators."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from tenants.context import apply_tenant, tenant_transaction
from tenants.models import User
from tenants.months import berlin_today
from tests.conftest import add_operator, sign_in

CONTRIBUTOR = "http://dcat-ap.de/def/contributors/eGovSADTest"
#: Small pages, so a handful of datasets spans several.
PAGE_SIZE = 2

HUNDESTEUER, GEWERBE, WOHNSITZ = "99102013104000", "99050012104000", "99115005104000"
LOCAL = "local:veranstaltung"


@pytest.fixture(scope="session")
def app(database, redis_conn):
    """The portal with a contributor ID and small catalogue pages (overrides the project-wide ``app``)."""
    from dataclasses import replace

    from portal import create_app

    settings = replace(database, dcat_contributor_id=CONTRIBUTOR, dcat_page_size=PAGE_SIZE)
    return create_app({"TESTING": True}, settings=settings)


@pytest.fixture
def rollups(app_engine):
    """insert(tenant_id, table, rows): rows of an analytics table, written with the tenant set."""

    def insert(tenant_id: int, table: str, rows: list[dict]) -> None:
        assert table in {"services", "rollup_service_daily", "rollup_payment_daily", "rollup_auth_daily", "feedback"}
        with app_engine.begin() as conn:
            apply_tenant(conn, tenant_id)
            for row in rows:
                row = {"tenant_id": tenant_id, **row}
                cols = ", ".join(row)
                conn.execute(text(f"INSERT INTO analytics.{table} ({cols}) "  # noqa: S608 - fixed names
                                  f"VALUES ({', '.join(':' + c for c in row)})"), row)

    return insert


def month_day(months_ago: int, day: int = 10) -> date:
    today = berlin_today()  # the code's "today": the running month is the German one
    index = today.year * 12 + today.month - 1 - months_ago
    return date(index // 12, index % 12 + 1, day)


@pytest.fixture
def marburg_data(two_tenants, rollups):
    """Three services over the last two complete months, with a small cell (2 submissions)."""
    t = two_tenants.a.id
    rollups(t, "services", [
        {"service_key": HUNDESTEUER, "name": "Hundesteuer Anmeldung"},
        {"service_key": GEWERBE, "name": "Gewerbe anmelden"},
        {"service_key": WOHNSITZ, "name": "Wohnsitz anmelden"},
        {"service_key": LOCAL, "name": "Veranstaltung anmelden"},
    ])
    rollups(t, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1), "started": 40, "submitted": 30, "aborted": 8},
        {"service_key": GEWERBE, "day": month_day(1), "started": 9, "submitted": 2, "aborted": 6},
        {"service_key": WOHNSITZ, "day": month_day(1), "started": 120, "submitted": 100, "aborted": 15},
        {"service_key": LOCAL, "day": month_day(1), "started": 12, "submitted": 11, "aborted": 1},
        {"service_key": HUNDESTEUER, "day": month_day(2), "started": 35, "submitted": 25, "aborted": 10},
        {"service_key": HUNDESTEUER, "day": month_day(2, 20), "started": 5, "submitted": 5, "aborted": 0},
        # the running month is never published
        {"service_key": HUNDESTEUER, "day": month_day(0, 1), "started": 77, "submitted": 77, "aborted": 0},
    ])
    rollups(t, "rollup_payment_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1), "payment_method": "paypal", "payments": 20},
        {"service_key": HUNDESTEUER, "day": month_day(1), "payment_method": "credit_card", "payments": 9},
        {"service_key": HUNDESTEUER, "day": month_day(1), "payment_method": "sepa_direct_debit", "payments": 1},
    ])
    rollups(t, "rollup_auth_daily", [
        {"service_key": WOHNSITZ, "day": month_day(1), "auth_method": "bundid_eid", "authentications": 60},
        {"service_key": WOHNSITZ, "day": month_day(1), "auth_method": "bundid_elster", "authentications": 40},
    ])
    rollups(t, "feedback", [{"service_key": HUNDESTEUER, "received_at": month_day(1), "rating": r}
                            for r in (5, 4, 4, 3)] +
                           [{"service_key": GEWERBE, "received_at": month_day(1), "rating": 1}])
    return two_tenants


def _sign_in(client, identity: str):
    sign_in(client, identity)
    return client


@pytest.fixture
def staff(app, two_tenants):
    """staff(tenant, role) -> a test client signed in as that tenant's member of staff."""

    identities = {}

    def make(tenant, role="admin"):
        if (tenant.id, role) not in identities:
            with app.app_context(), tenant_transaction(tenant.id) as session:
                user = User(tenant_id=tenant.id, subject=f"{role}-{tenant.ags}", email=f"{role}@{tenant.ags}.de",
                            role=role)
                session.add(user)
                session.flush()
                identities[(tenant.id, role)] = f"u:{tenant.id}:{user.id}"
        return _sign_in(app.test_client(), identities[(tenant.id, role)])

    return make


@pytest.fixture
def operator_client(app, clean_db):
    return _sign_in(app.test_client(), add_operator(app))


def csrf_token(client, path: str) -> str:
    import re

    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def publish(client, ags: str, datasets, licence="dl-by-de/2.0", email="opendata@marburg.de"):
    token = csrf_token(client, f"/t/{ags}/opendata/")
    return client.post(f"/t/{ags}/opendata/publish", data={
        "csrf_token": token, "dataset": list(datasets), "licence": licence, "contact_email": email})


def withdraw(client, ags: str, dataset: str):
    token = csrf_token(client, f"/t/{ags}/opendata/")
    return client.post(f"/t/{ags}/opendata/{dataset}/withdraw", data={"csrf_token": token})
