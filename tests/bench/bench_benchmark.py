"""The comparison refresh at Hessen's full scale: all 443 municipalities and districts active and opted into
every metric family, 50 LeiKa services each, 37 months of data; 40 tenants have a peer group of 12. Rollups
hold one row per tenant, service and month (the refresh sums by month, so daily rows change only the SQL part),
with 2 steps, 2 payment methods and 2 authentication methods per row, and 4 ratings per month for 10 services:
about 6.4 million rollup rows. Runs in its own database (`egovsad_bench_comparisons`). Phases: reading every
tenant's values through one tenant transaction each (RLS), computing the protected window quartiles in memory,
writing the new figures.

Three refreshes, as the nightly job meets them: the first one ever (nothing published: all 36 months compared,
a one-time backfill), the night a month settles (the 4th: that month for every tenant, the oldest month
dropped), and any other night (no month due: nothing read).
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

import psycopg
from sqlalchemy import text

from tests.bench.common import fresh_database

TITLE = "Comparisons: refresh of the benchmark figures"
SERVICES, MONTHS, PEER_OWNERS, PEERS = 50, 36, 40, 12
TODAY = date(2026, 11, 22)
SETTLES = date(2026, 12, 4)  # November 2026 (seeded as the 37th month) is compared
DATABASE = "egovsad_bench_comparisons"

_SEED = """
INSERT INTO analytics.services (tenant_id, service_key, name)
SELECT t.id, '99' || lpad((102013104000 + s)::text, 12, '0'), 'Dienst ' || s
FROM portal.tenants t, generate_series(0, {services} - 1) s;

CREATE TEMP TABLE cells AS
SELECT s.tenant_id, s.service_key, (DATE '{first}' + make_interval(months => m))::date + 9 AS day,
       (20 + random() * 300)::int AS started
FROM analytics.services s, generate_series(0, {months}) m;

INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, submitted, aborted)
SELECT tenant_id, service_key, day, started, (started * (0.4 + random() * 0.5))::int, 0 FROM cells;
UPDATE analytics.rollup_service_daily SET aborted = started - submitted;

INSERT INTO analytics.rollup_step_daily (tenant_id, service_key, day, step_no, step_name, reached, aborted)
SELECT tenant_id, service_key, day, n, 'Schritt ' || n, started, (random() * started * 0.2)::int
FROM cells, generate_series(1, 2) n;

INSERT INTO analytics.rollup_payment_daily (tenant_id, service_key, day, payment_method, payments)
SELECT tenant_id, service_key, day, p, (random() * started * 0.5)::int
FROM cells, unnest(ARRAY['paypal', 'sepa_direct_debit']) p;

INSERT INTO analytics.rollup_auth_daily (tenant_id, service_key, day, auth_method, trust_level, authentications)
SELECT tenant_id, service_key, day, a, CASE a WHEN 'bundid_eid' THEN 'hoch' ELSE 'basis' END,
       (random() * started * 0.5)::int
FROM cells, unnest(ARRAY['bundid_eid', 'bundid_basis']) a;

INSERT INTO analytics.feedback (tenant_id, service_key, received_at, rating)
SELECT tenant_id, service_key, day + time '12:00', 1 + (random() * 4)::int
FROM cells, generate_series(1, 4) r WHERE service_key < '99102013104010';

INSERT INTO portal.tenant_settings (tenant_id, key, value)
SELECT id, 'benchmark', jsonb_build_object(
    'families', jsonb_build_object('usage', '{{"opted_in": true}}'::jsonb, 'payment', '{{"opted_in": true}}'::jsonb,
                                   'authentication', '{{"opted_in": true}}'::jsonb,
                                   'satisfaction', '{{"opted_in": true}}'::jsonb),
    'peers', CASE WHEN id <= {peer_owners} THEN (
        SELECT jsonb_agg(p.ags) FROM (SELECT ags FROM portal.tenants o WHERE o.id <> t.id
                                      ORDER BY md5(o.ags || t.id) LIMIT {peers}) p) ELSE '[]'::jsonb END)
FROM portal.tenants t;
ANALYZE;
"""


def _bench_settings(settings):
    from tenants.settings import load_settings

    return load_settings({**os.environ, "EGOV_ENV": settings.env, "EGOV_DATABASE_NAME": DATABASE})


def _seed(settings, owner) -> int:
    with owner.begin() as conn:
        conn.execute(text("INSERT INTO portal.tenants (ags, ars, name, status) "
                          "SELECT ags, ars, name, 'active' FROM portal.regions"))
    index = TODAY.year * 12 + TODAY.month - 1 - MONTHS
    first = date(index // 12, index % 12 + 1, 1)
    # Seeding bypasses RLS as the superuser: generating data is not what is measured.
    with psycopg.connect(settings.admin_database_url.rsplit("/", 1)[0] + "/" + settings.database_name) as conn:
        conn.execute(_SEED.format(services=SERVICES, months=MONTHS, first=first, peer_owners=PEER_OWNERS,
                                  peers=PEERS))
        rows = sum(conn.execute(f"SELECT count(*) FROM analytics.{t}").fetchone()[0]  # noqa: S608 - fixed names
                   for t in ("rollup_service_daily", "rollup_step_daily", "rollup_payment_daily",
                             "rollup_auth_daily", "feedback"))
    return rows


def run(settings) -> list[dict]:
    from portal import create_app
    from tenants.benchmark import rules_from
    from tenants.benchmark.refresh import months_due, refresh

    settings = _bench_settings(settings)
    owner, app_engine = fresh_database(settings)
    rollup_rows = _seed(settings, owner)
    app = create_app({"TESTING": True}, settings=settings)
    brules = rules_from(settings)
    results = []
    nights = [(f"first refresh (nothing published yet; {rollup_rows:,} rollup rows)", TODAY),
              ("a month settles (the 4th)", SETTLES), ("any other night (no month due)", SETTLES + timedelta(days=1))]
    for what, today in nights:
        with owner.connect() as conn:
            due = months_due(today, set(conn.execute(text("SELECT DISTINCT month FROM benchmark.figures")).scalars()))
        with app.app_context():
            started = time.perf_counter()
            summary = refresh(brules, today)
            total_s = time.perf_counter() - started
        with owner.connect() as conn:
            published = conn.execute(text(
                "SELECT count(*) FILTER (WHERE median IS NOT NULL), count(*) FROM benchmark.figures "
                "WHERE mode_label IS NULL AND metric <> 'abandon_step' AND month = ANY(:months)"),
                {"months": due}).one()
        results.append({
            "refresh": what, "date": today.strftime("%d.%m.%Y"), "months computed": summary["months"],
            "read (s)": round(summary["seconds"]["read"], 1), "compute (s)": round(summary["seconds"]["compute"], 1),
            "write (s)": round(summary["seconds"]["write"], 1), "whole refresh (s)": round(total_s, 1),
            "new figure rows": f"{summary['figures']:,}",
            "medians published": f"{published[0] / published[1]:.0%}" if published[1] else "–",
            "target": "< 60 s",
        })
    owner.dispose()
    app_engine.dispose()
    return results
