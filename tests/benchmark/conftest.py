"""Fixtures for comparisons: many Hessian tenants with rollups, opt-ins, signed-in staff."""

from __future__ import annotations

import random
from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tenants.context import apply_tenant, platform_transaction, tenant_transaction
from tenants.models import User
from tenants.months import berlin_today
from tests.conftest import add_operator, client_as

HUNDESTEUER = "99102013104000"
MARBURG = "06534014"
#: Marburg-Biedenkopf municipalities, cities of Marburg's size class (50,000–100,000) and others.
KREIS_MR = ["06534001", "06534002", "06534003", "06534004", "06534005", "06534006", "06534007", "06534008",
            "06534010", "06534011", "06534018"]
SIZE_50K = ["06531005", "06631009", "06532023", "06433012", "06434001", "06435014"]
OTHERS = ["06411000", "06414000", "06611000", "06413000", "06533009", "06431002"]


def last_month(day: int = 10, back: int = 1) -> date:
    today = berlin_today()  # the code's "today": the running month is the German one
    index = today.year * 12 + today.month - 1 - back
    return date(index // 12, index % 12 + 1, day)


@pytest.fixture
def insert_rows(app_engine):
    """insert(tenant_id, table, rows) as the app role with the tenant set (RLS applies)."""

    def insert(tenant_id: int, table: str, rows: list[dict]) -> None:
        assert table in {"services", "rollup_service_daily", "rollup_step_daily", "rollup_payment_daily",
                         "rollup_auth_daily", "feedback"}
        with app_engine.begin() as conn:
            apply_tenant(conn, tenant_id)
            for row in rows:
                row = {"tenant_id": tenant_id, **row}
                conn.execute(text(f"INSERT INTO analytics.{table} ({', '.join(row)}) "  # noqa: S608 - fixed names
                                  f"VALUES ({', '.join(':' + c for c in row)})"), row)

    return insert


def seed_service(insert_rows, tenant_id: int, rng: random.Random, started: int | None = None,
                 submitted: int | None = None) -> dict:
    """Hundesteuer-Anmeldung last month with steps, payments, logins and ratings; returns the counts."""
    started = rng.randint(20, 400) if started is None else started
    submitted = rng.randint(started // 3, started) if submitted is None else submitted
    aborted = started - submitted
    insert_rows(tenant_id, "services", [{"service_key": HUNDESTEUER, "name": "Hundesteuer-Anmeldung"}])
    insert_rows(tenant_id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": last_month(), "started": started, "submitted": submitted,
         "aborted": aborted}])
    first = rng.randint(0, aborted)
    insert_rows(tenant_id, "rollup_step_daily", [
        {"service_key": HUNDESTEUER, "day": last_month(), "step_no": 1, "step_name": "Angaben zum Hund",
         "reached": started, "aborted": first},
        {"service_key": HUNDESTEUER, "day": last_month(), "step_no": 2, "step_name": "Bezahlen",
         "reached": started - first, "aborted": aborted - first}])
    paypal = rng.randint(0, submitted)
    insert_rows(tenant_id, "rollup_payment_daily", [
        {"service_key": HUNDESTEUER, "day": last_month(), "payment_method": "paypal", "payments": paypal},
        {"service_key": HUNDESTEUER, "day": last_month(), "payment_method": "sepa_direct_debit",
         "payments": submitted - paypal}])
    return {"started": started, "submitted": submitted, "aborted": aborted, "paypal": paypal}


@pytest.fixture
def hessen(app, clean_db, insert_rows):
    """Marburg and 23 further active tenants, all with Hundesteuer data last month; nobody opted in yet."""
    from tenants.registry import create_tenant

    rng = random.Random(6)
    ids = {}
    with app.app_context(), platform_transaction():
        for ags in [MARBURG] + KREIS_MR + SIZE_50K + OTHERS:
            ids[ags] = create_tenant(ags, status="active").id
    counts = {ags: seed_service(insert_rows, tid, rng) for ags, tid in ids.items()}
    return SimpleNamespace(ids=ids, counts=counts, marburg=ids[MARBURG])


def opt_in(app, tenant_id: int, families=("usage", "payment"), peers=()):
    from tenants.benchmark import participation

    with app.app_context(), tenant_transaction(tenant_id) as session:
        participation.set_families(session, tenant_id, set(families), "test")
        if peers:
            participation.set_peers(session, tenant_id, list(peers), "test")


def settled_today() -> date:
    """Today, or the first day of this month on which last month is compared (refresh.SETTLE_DAYS)."""
    from tenants.benchmark.refresh import SETTLE_DAYS

    today = berlin_today()
    return today if today.day > SETTLE_DAYS else today.replace(day=SETTLE_DAYS + 1)


def run_refresh(app, today: date | None = None):
    from tenants.benchmark import rules_from
    from tenants.benchmark.refresh import refresh

    with app.app_context():
        return refresh(rules_from(app.config["EGOV"]), today or settled_today())


def forget_published(owner_engine) -> None:
    """Empty the published figures, so that the next refresh computes every month again (tests only)."""
    with owner_engine.begin() as conn:
        conn.execute(text("TRUNCATE benchmark.figures, benchmark.groups"))


def staff_identity(app, tenant_id: int, role: str) -> str:
    """Create a member of staff with ``role`` and return their session identity."""
    with app.app_context(), tenant_transaction(tenant_id) as session:
        user = User(tenant_id=tenant_id, subject=f"{role}-{tenant_id}", email=f"{role}@t{tenant_id}.de", role=role)
        session.add(user)
        session.flush()
        return f"u:{tenant_id}:{user.id}"


@pytest.fixture
def signed_in(app):
    """signed_in(tenant_id, role) -> a test client signed in as that tenant's member of staff."""
    return lambda tenant_id, role="editor": client_as(app, staff_identity(app, tenant_id, role))


@pytest.fixture
def operator(app, clean_db):
    return client_as(app, add_operator(app))
