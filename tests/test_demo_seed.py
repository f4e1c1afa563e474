"""`egov demo seed`, run twice as `make up` does when run again: what the second run must leave alone.

The two runs happen once for this module (they used to happen in three tests, six runs with a year
of data each, most of the suite's wall time). The data generator is the real one with a few days
instead of a year: these tests are about what the command sets up once (tenants, sign-in through
the development IdP, Open Data, comparisons), not about the data (tests/ingest/test_demo_data.py).
Between the runs a tenant admin withdraws a demo dataset, which the second run must respect.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from portal.cli import main
from tenants.context import platform_transaction, tenant_transaction
from tests.conftest import empty_all_tables

MARBURG = "06534014"
DEMO_DAYS = 3


@pytest.fixture(scope="module")
def seeded_twice(app, owner_engine, redis_conn):
    from demo import data as demo_data
    from tenants.models import Tenant
    from tenants.opendata.publication import withdraw
    from tenants.registry import get_tenant_by_ags

    empty_all_tables(owner_engine, redis_conn)
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_data, "seed_tenant", partial(demo_data.seed_tenant, days=DEMO_DAYS))
        first = runner.invoke(main, ["demo", "seed"], catch_exceptions=False)
        with app.app_context():
            with platform_transaction():
                marburg = get_tenant_by_ags(MARBURG).id
            with tenant_transaction(marburg) as session:
                withdraw(session, session.get(Tenant, marburg), "completion", "admin@marburg.de")
        second = runner.invoke(main, ["demo", "seed"], catch_exceptions=False)
    yield SimpleNamespace(first=first, second=second, marburg=marburg)
    empty_all_tables(owner_engine, redis_conn)


def test_both_runs_succeed_and_create_the_demo_tenants_once(seeded_twice):
    from demo.comparison import COMPARISON_MEMBERS

    assert (seeded_twice.first.exit_code, seeded_twice.second.exit_code) == (0, 0)
    listed = json.loads(CliRunner().invoke(main, ["tenants", "list", "--json"], catch_exceptions=False).output)
    # The nine GoDonu members and the further municipalities that give the comparisons content.
    assert len(listed) == 9 + len(COMPARISON_MEMBERS) and {t["status"] for t in listed} == {"active"}
    assert {"06534014", "06439", "06412000"} <= {t["ags"] for t in listed}
    assert "Comparisons: 0 further municipalities" in seeded_twice.second.output


def test_the_second_run_loads_no_demo_data_again(seeded_twice):
    assert seeded_twice.first.output.count("demo data present") == 0
    assert seeded_twice.second.output.count("demo data present") == 9


def test_demo_seed_configures_the_development_idp_once(app, seeded_twice):
    assert "9 demo tenant(s) now sign in" in seeded_twice.first.output
    assert "now sign in" not in seeded_twice.second.output  # admins' later changes are not overwritten
    with app.app_context(), platform_transaction() as session:
        domains = session.execute(text("SELECT domain FROM portal.tenant_domains WHERE tenant_id = :t"),
                                  {"t": seeded_twice.marburg}).scalars().all()
    with app.app_context(), tenant_transaction(seeded_twice.marburg) as session:
        issuer, mapping = session.execute(text("SELECT issuer, role_mapping FROM portal.identity_providers")).one()
    assert domains == ["marburg.de"] and issuer == "http://127.0.0.1:9400"
    assert mapping["egovsad-admin"] == "admin"


def test_demo_seed_publishes_open_data_once_and_respects_a_withdrawal(app, seeded_twice):
    assert "Open Data published by: Marburg, Universitätsstadt, Fulda" in seeded_twice.first.output
    assert "Open Data published by: nobody new" in seeded_twice.second.output
    client = app.test_client()
    overview = client.get("/opendata/").get_data(as_text=True)
    assert "Marburg, Universitätsstadt" in overview and "Fulda" in overview
    assert client.get(f"/opendata/{MARBURG}/usage.csv").status_code == 200
    assert client.get(f"/opendata/{MARBURG}/completion.csv").status_code == 410  # withdrawn stays withdrawn


def test_the_readmes_onboarding_town_is_not_one_make_up_creates():
    """The README walks a newcomer through registering a town; `make up` must not have registered it already
    (a walk-through found "bereits registriert" for Bad Homburg, a comparison demo town)."""
    import csv
    import re

    from demo.comparison import COMPARISON_MEMBERS
    from demo.tenants import GODONU_MEMBERS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    town = re.search(r'"Registrieren" → search "([^"]+)"', readme).group(1)
    regions = Path(__file__).resolve().parents[1] / "tenants/data/hessen_gebietskoerperschaften.csv"
    with regions.open(encoding="utf-8") as fh:
        ags = [row["ags"] for row in csv.DictReader(fh) if row["name"].startswith(town)]
    assert len(ags) == 1, (town, ags)
    assert ags[0] not in {*COMPARISON_MEMBERS, *GODONU_MEMBERS}
