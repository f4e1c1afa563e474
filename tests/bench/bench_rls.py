"""The price of row-level security on the rollups the dashboards read: 50 tenants × 20 services × 365 days
(365,000 rows in `analytics.rollup_service_daily`). "app + RLS" runs as the application role with the tenant
set transaction-locally (its time includes BEGIN and the `set_config` round trip); "superuser + WHERE" runs
the same query with an explicit `tenant_id` filter and no RLS.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import text

from tenants.context import apply_tenant
from tests.bench.common import fresh_database, timed

TITLE = "Row-level security on dashboard queries"
TENANTS, SERVICES, DAYS = 50, 20, 365

# (label, query under RLS, same query with an explicit filter); {t} is the tenant id.
QUERIES = [
    ("monthly usage of one tenant (GROUP BY service, month)",
     "SELECT service_key, date_trunc('month', day), sum(started), sum(submitted) "
     "FROM analytics.rollup_service_daily {filter} GROUP BY 1, 2"),
    ("one service, one quarter",
     "SELECT day, started, submitted, aborted FROM analytics.rollup_service_daily "
     "WHERE service_key = '99102013104000' AND day BETWEEN '2026-01-01' AND '2026-03-31' {and_filter}"),
    ("row count of one tenant", "SELECT count(*) FROM analytics.rollup_service_daily {filter}"),
]


def _seed(owner) -> list[int]:
    with owner.begin() as conn:
        ags = conn.execute(text(
            "SELECT ags FROM portal.regions WHERE kind <> 'landkreis' ORDER BY ags LIMIT :n"
        ), {"n": TENANTS}).scalars().all()
        conn.execute(text("INSERT INTO portal.tenants (ags, ars, name, status) "
                          "SELECT ags, ars, name, 'active' FROM portal.regions WHERE ags = ANY(:a)"), {"a": ags})
        ids = conn.execute(text("SELECT id FROM portal.tenants ORDER BY id")).scalars().all()
    return ids


def _load(settings, ids) -> None:
    # Seeding bypasses RLS as the superuser: generating data is not what is measured.
    with psycopg.connect(settings.admin_database_url.rsplit("/", 1)[0] + "/" + settings.database_name) as conn:
        conn.execute(
            """
            INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, submitted, aborted)
            SELECT t, '99' || lpad((102013104000 + s)::text, 12, '0'), DATE '2026-01-01' + d,
                   (random() * 100)::int, (random() * 80)::int, (random() * 20)::int
            FROM unnest(%s::int[]) t, generate_series(0, %s) s, generate_series(0, %s) d
            """,
            (ids, SERVICES - 1, DAYS - 1),
        )
        conn.execute("ANALYZE analytics.rollup_service_daily")


def run(settings) -> list[dict]:
    owner, app = fresh_database(settings)
    ids = _seed(owner)
    _load(settings, ids)
    tenant = ids[len(ids) // 2]
    rows = []
    admin_url = settings.admin_database_url.rsplit("/", 1)[0] + "/" + settings.database_name
    with psycopg.connect(admin_url) as admin:
        for label, template in QUERIES:
            rls_sql = template.format(filter="", and_filter="")
            explicit = template.format(filter=f"WHERE tenant_id = {tenant:d}",  # noqa: S608 - an int
                                       and_filter=f"AND tenant_id = {tenant:d}")

            def with_rls(sql=rls_sql):
                with app.begin() as conn:
                    apply_tenant(conn, tenant)
                    conn.execute(text(sql)).all()

            def superuser(sql=explicit):
                admin.execute(sql).fetchall()

            a, b = timed(with_rls), timed(superuser)
            rows.append({"query": label, "app + RLS: median ms": a["median_ms"], "p95 ms": a["p95_ms"],
                         "superuser + WHERE: median ms": b["median_ms"], "p95 ms ": b["p95_ms"],
                         "ratio": round(a["median_ms"] / b["median_ms"], 2)})
    owner.dispose()
    app.dispose()
    return rows
