"""Open Data at Hessen's scale. Suppression: one tenant's usage table of 50 services × 36 months (5,400
counts, 108 monthly totals) through `tenants/confidentiality.py` and the disclosure audit, in memory:
the first computation (every month audited) and a repeated one (the audited decisions kept). Download:
the same from PostgreSQL as the public CSV is built (query, suppression with the kept decisions, rows).
Catalogue: all 443 possible tenants active, each publishing all five datasets (2,215 datasets); the
platform catalogue's first page of 100 in Turtle, including one tenant transaction per tenant to read
the publication state.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import text

from tenants.context import apply_tenant
from tests.bench.common import fresh_database, timed

TITLE = "Open Data: suppression, downloads and the catalogue"
SERVICES, MONTHS = 50, 36
TODAY = date(2026, 11, 22)


def _usage_data(rng):
    data = []
    for s in range(SERVICES):
        for m in range(MONTHS):
            started = rng.choice([0, 1, 2, 3, 5, 8, 20, 60, 200])
            submitted = rng.randint(0, started)
            aborted = rng.randint(0, started - submitted)
            data.append((f"99{s:012d}", f"{2023 + (10 + m) // 12}-{(10 + m) % 12 + 1:02d}", started, submitted,
                         aborted))
    return data


def _seed(owner, app_engine, rng) -> int:
    with owner.begin() as conn:
        conn.execute(text("INSERT INTO portal.tenants (ags, ars, name, status, contact_email) "
                          "SELECT ags, ars, name, 'active', 'opendata@example.de' FROM portal.regions"))
        ids = conn.execute(text("SELECT id FROM portal.tenants ORDER BY id")).scalars().all()
    with app_engine.begin() as conn:
        for tenant_id in ids:
            apply_tenant(conn, tenant_id)
            conn.execute(text(
                "INSERT INTO portal.open_data_publications (tenant_id, dataset, contact_email, attribution) "
                "SELECT :t, d, 'opendata@example.de', 'Kommune' "
                "FROM unnest(ARRAY['usage','completion','payment','authentication','satisfaction']) d"),
                {"t": tenant_id})
        first = ids[0]
        apply_tenant(conn, first)
        rows = [{"t": first, "s": f"99{s:012d}", "d": date(2023, 11, 1) + timedelta(days=d),
                 "st": (st := rng.choice([0, 1, 2, 5, 20])), "su": rng.randint(0, st)}
                for s in range(SERVICES) for d in range(0, 36 * 30, 3)]
        conn.execute(text("INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, "
                          "submitted, aborted) VALUES (:t, :s, :d, :st, :su, 0)"), rows)
    return ids[0]


def run(settings) -> list[dict]:
    from portal import create_app
    from tenants.confidentiality import Rules
    from tenants.context import tenant_transaction
    from tenants.opendata import catalogue
    from tenants.opendata.audit import TenantData
    from tenants.opendata.datasets import MonthStore, dataset_rows, protect_release
    from tenants.opendata.publication import all_published_entries

    rng = random.Random(7)
    data = TenantData(usage=_usage_data(rng))
    results = [{"what": f"suppression and audit, usage table {SERVICES} services × {MONTHS} months, first time",
                **timed(lambda: protect_release(data, {}, Rules()), runs=1, warmup=0)}]
    store = MonthStore()
    protect_release(data, {}, Rules(), store)
    results.append({"what": "the same with the audited decisions kept", **timed(
        lambda: protect_release(data, {}, Rules(), store), runs=5)})

    owner, app_engine = fresh_database(settings)
    first = _seed(owner, app_engine, rng)
    app = create_app({"TESTING": True}, settings=settings)
    with app.app_context():
        def download():
            with tenant_transaction(first) as session:
                dataset_rows(session, first, "usage", Rules(), TODAY)

        results.append({"what": "usage dataset of one tenant from PostgreSQL", **timed(download, runs=5)})
        spec = catalogue.CatalogueSpec("https://egovsad.example", "/catalog", "Katalog", "Beschreibung",
                                       "Betrieb", "https://egovsad.example/#op", "", 100)

        def first_page():
            graph = catalogue.build_catalogue(spec, all_published_entries(), 1, "ttl")
            catalogue.serialise(graph, "ttl")

        results.append({"what": "platform catalogue, page 1 of 23 (443 tenants, 2,215 datasets), Turtle",
                        **timed(first_page, runs=5)})
    owner.dispose()
    app_engine.dispose()
    return results
