"""Tenant A never reads tenant B's own figures: pages, JSON, the benchmark schema, the read-only role."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from tenants.benchmark.metrics import tenant_values
from tenants.context import tenant_transaction
from tests.benchmark.conftest import HUNDESTEUER, MARBURG, opt_in, run_refresh

FULDA = "06631009"


@pytest.fixture
def refreshed(app, hessen):
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id, families=("usage", "payment"))
    run_refresh(app)
    return hessen


def _own_values(app, hessen):
    """Every tenant's own values, read as each tenant (the test's knowledge, not the portal's)."""
    from datetime import date

    from tenants.models import Region

    found = {}
    with app.app_context():
        for ags, tenant_id in hessen.ids.items():
            with tenant_transaction(tenant_id) as session:
                population = session.get(Region, ags).population
                found[ags] = {k: v.value for k, v in tenant_values(session, tenant_id, population,
                                                                    date.today()).values.items()}
    return found


def test_other_tenants_pages_and_json_answer_404(refreshed, signed_in):
    fulda = signed_in(refreshed.ids[FULDA], "admin")
    for path in ("", HUNDESTEUER, f"{HUNDESTEUER}.json", "teilnahme"):
        assert fulda.get(f"/t/{MARBURG}/vergleich/{path}").status_code == 404


def test_the_page_shows_no_other_tenants_own_value(app, refreshed, signed_in):
    data = signed_in(refreshed.marburg).get(f"/t/{MARBURG}/vergleich/{HUNDESTEUER}.json").get_json()
    own = _own_values(app, refreshed)
    others = {v for ags, values in own.items() if ags != MARBURG for v in values.values()}
    shown = [cell[q] for m in data["metrics"] for cell in m["groups"].values() if cell
             for q in ("q1", "median", "q3") if cell[q] is not None]
    assert len(shown) >= 5  # the comparison has content
    assert not [v for v in shown if any(abs(v - o) < 1e-12 for o in others)]
    # Marburg's own value is Marburg's.
    completion = next(m for m in data["metrics"] if m["metric"] == "completion_rate")
    counts = refreshed.counts[MARBURG]
    assert completion["own"] == pytest.approx(counts["submitted"] / counts["started"])
    paypal = next(m for m in data["metrics"] if m["metric"] == "payment:paypal")
    assert paypal["own"] == pytest.approx(counts["paypal"] / counts["submitted"])
    assert "rank" not in str(data).replace("rank_band", "")


def test_the_benchmark_schema_holds_group_figures_only(app, refreshed, owner_engine):
    with owner_engine.connect() as conn:
        columns = conn.execute(text("SELECT table_name, column_name FROM information_schema.columns "
                                    "WHERE table_schema = 'benchmark'")).all()
        rows = conn.execute(text("SELECT group_key, q1, median, q3 FROM benchmark.figures")).all()
    assert not [c for c in columns if "tenant" in c[1]]
    tenant_ids = {str(t) for t in refreshed.ids.values()} | set(refreshed.ids)
    assert not [r for r in rows if r.group_key.split(":")[-1] in tenant_ids]
    own = _own_values(app, refreshed)
    everyone = {v for values in own.values() for v in values.values()}
    published = [v for r in rows for v in (r.q1, r.median, r.q3) if v is not None]
    assert len(published) > 20
    assert not [v for v in published if any(abs(v - o) < 1e-12 for o in everyone)]


def test_the_read_only_role_reads_the_benchmark_schema_and_nothing_else(refreshed, settings):
    from tenants.settings import _role_url

    url = _role_url(settings.admin_database_url, settings.benchmark_role, settings.benchmark_password,
                    settings.database_name)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM benchmark.figures").fetchone()[0] > 0
        for forbidden in ("SELECT * FROM analytics.rollup_service_daily", "SELECT * FROM portal.tenant_settings",
                          "SELECT * FROM analytics.service_usage_monthly", "SELECT * FROM portal.users",
                          "DELETE FROM benchmark.figures", "INSERT INTO benchmark.groups VALUES ('x', 'peer', 'x')",
                          "CREATE TABLE benchmark.leak (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(forbidden)


def test_the_app_role_reads_no_other_tenants_opt_in_or_peers(app, refreshed, app_engine):
    from tenants.context import apply_tenant

    with app_engine.begin() as conn:
        apply_tenant(conn, refreshed.ids[FULDA])
        keys = conn.execute(text("SELECT tenant_id FROM portal.tenant_settings WHERE key = 'benchmark'")).scalars()
        assert set(keys) == {refreshed.ids[FULDA]}
