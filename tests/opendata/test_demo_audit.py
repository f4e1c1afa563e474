"""The audit over the demo's Open Data: the two publishers of `egov demo seed` with the demo's year of data.

Seeded once for this module through the demo's own generator and ingest paths (``seed_tenant``, about
ten seconds), not with a second full `egov demo seed`. The issue found its pinned counts in exactly
this data; the last test shows the audit finding them again when the suppression is weakened.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

import tenants.opendata.datasets as datasets
from demo.opendata import DEMO_PUBLISHERS
from tenants.confidentiality import Rules
from tenants.context import platform_transaction, tenant_transaction
from tenants.months import berlin_today
from tenants.opendata.audit import NARROW, audit
from tenants.opendata.datasets import DATASETS, MonthStore, protect_release, tenant_data, tenant_release
from tests.conftest import empty_all_tables as empty_tables

COUNTS = ("started", "submitted", "aborted", "payments", "authentications", "ratings")


@pytest.fixture(scope="module")
def demo(app, owner_engine, redis_conn):
    """{AGS: tenant id} of the demo's Open Data publishers, with the demo data, datasets published."""
    from demo.data import seed_tenant
    from demo.opendata import publish_demo_datasets
    from tenants.registry import create_tenant

    with app.app_context():
        with platform_transaction():
            ids = {ags: create_tenant(ags, status="active").id for ags in DEMO_PUBLISHERS}
        for tenant_id in ids.values():
            assert not seed_tenant(tenant_id).get("skipped")
        assert len(publish_demo_datasets()) == len(DEMO_PUBLISHERS)
    yield ids
    empty_tables(owner_engine, redis_conn)


def _truth(app, tenant_id: int):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return tenant_data(session, tenant_id, berlin_today())


def test_every_published_demo_dataset_passes_the_audit(app, demo):
    client = app.test_client()
    for ags, published in DEMO_PUBLISHERS.items():
        downloads = {}
        for dataset in published:
            response = client.get(f"/opendata/{ags}/{dataset}.json")
            assert response.status_code == 200, (ags, dataset)
            downloads[dataset] = response.get_json()["rows"]
        report = audit(_truth(app, demo[ags]), downloads, Rules().min_cases)
        assert report.ok, [str(f) for f in report.findings]
        assert report.checked > 20  # there are small counts to protect, and each was checked
        # Protection that withheld everything would pass as well; most counts stay visible, in every
        # month: one small count must not cost a month all its submitted and aborted counts (it did, 2026-11-30).
        by_month = defaultdict(list)
        for row in downloads["usage"]:
            by_month[row["month"]] += [row[c] is not None for c in ("started", "submitted", "aborted")]
        shown = [v for month in by_month.values() for v in month]
        assert sum(shown) > 0.75 * len(shown)
        first, *whole = sorted(by_month)  # the first month holds a few days only
        assert all(sum(by_month[m]) > 0.5 * len(by_month[m]) for m in whole), {
            m: f"{sum(by_month[m])}/{len(by_month[m])}" for m in whole}


def test_all_five_datasets_of_every_demo_publisher_pass_the_audit_together(app, demo):
    """Also the datasets not published yet: publishing one later must not make another one unsafe."""
    for tenant_id in demo.values():
        with app.app_context(), tenant_transaction(tenant_id) as session:
            release = tenant_release(session, tenant_id, Rules(), berlin_today())
            data = tenant_data(session, tenant_id, berlin_today())
        assert release.report.ok
        tables = release.tables()
        assert set(tables) == set(DATASETS)
        assert audit(data, tables, Rules().min_cases).ok
        for rows in tables.values():
            assert all(not 0 < (row.get(c) or 0) < Rules().min_cases for row in rows for c in COUNTS)


def test_weakened_suppression_pins_counts_of_the_demo_again(app, demo, monkeypatch):
    """Without the audit-driven step, the primary and secondary suppression alone leave counts below 3
    that a reader pins exactly, as the issue found in the live demo."""
    monkeypatch.setattr(datasets, "_widen", lambda release, auditor, finding: None)
    for tenant_id in demo.values():
        data = _truth(app, tenant_id)
        tables = protect_release(data, {}, Rules(), MonthStore()).tables()
        pinned = [f for f in audit(data, tables, Rules().min_cases).findings if f.kind == NARROW and f.low == f.high]
        assert pinned, tenant_id


def test_downloads_reuse_the_audited_decisions_of_unchanged_months(app, demo, app_engine, monkeypatch):
    from sqlalchemy import text

    from tenants.context import apply_tenant

    client = app.test_client()
    fulda = next(ags for ags in DEMO_PUBLISHERS if ags != "06534014")
    first = client.get(f"/opendata/{fulda}/usage.csv")
    assert first.status_code == 200, first.data
    with app_engine.connect() as conn:
        apply_tenant(conn, demo[fulda])
        kept = conn.execute(text("SELECT count(*), min(checked) FROM portal.open_data_months WHERE tenant_id = :t"),
                            {"t": demo[fulda]}).one()
    assert kept[0] >= 12 and kept[1] >= 0  # a year of complete months, each audited once

    def no_audit(*args, **kwargs):
        raise AssertionError("an unchanged month was audited again")

    monkeypatch.setattr(datasets.Auditor, "audit", no_audit)
    again = client.get(f"/opendata/{fulda}/usage.csv")
    assert again.status_code == 200 and again.data == first.data
