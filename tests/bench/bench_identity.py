"""Sign-in through a real OpenID Connect provider (the development IdP in a thread, portal via the Flask test
client: discovery and keys cached, i.e. every sign-in but the first), and offboarding a tenant with
500,000 process events and 73,000 rollup rows next to a second tenant of the same size: writing the
archive (CSV files in a ZIP) and purging its rows."""

from __future__ import annotations

import dataclasses
import io
import logging
import threading
import time

import psycopg
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.bench.common import fresh_database, timed

TITLE = "Sign-in and offboarding"
EVENTS, SERVICES, DAYS = 500_000, 200, 365


def _tenants(owner) -> list[int]:
    with owner.begin() as conn:
        conn.execute(text("INSERT INTO portal.tenants (ags, ars, name, status) SELECT ags, ars, name, 'active' "
                          "FROM portal.regions WHERE ags IN ('06534014', '06631009')"))
        return list(conn.execute(text("SELECT id FROM portal.tenants ORDER BY id")).scalars())


def _load(settings, ids) -> None:
    # Seeding bypasses RLS as the superuser: generating data is not what is measured.
    with psycopg.connect(settings.admin_database_url.rsplit("/", 1)[0] + "/" + settings.database_name) as conn:
        conn.execute("SELECT analytics.ensure_event_partition((DATE '2026-01-01' + m * interval '1 month')::date) "
                     "FROM generate_series(0, 11) m")
        conn.execute(
            """
            INSERT INTO analytics.process_events (tenant_id, occurred_at, event_id, data_source_id, service_key,
                                                  event_type, channel)
            SELECT t, TIMESTAMPTZ '2026-01-01' + (i %% 365) * interval '1 day' + (i %% 86400) * interval '1 second',
                   gen_random_uuid(), 1, '99102013104000', 'started', 'web'
            FROM unnest(%s::int[]) t, generate_series(1, %s) i
            """, (ids, EVENTS))
        conn.execute(
            """
            INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, submitted, aborted)
            SELECT t, '99' || lpad((102013104000 + s)::text, 12, '0'), DATE '2026-01-01' + d, 10, 8, 2
            FROM unnest(%s::int[]) t, generate_series(0, %s) s, generate_series(0, %s) d
            """, (ids, SERVICES - 1, DAYS - 1))


def _sign_in_times(settings, tenant_id: int) -> dict:
    from demo.dev_idp import DEMO_ROLE_MAPPING, build_app, person
    from portal import create_app
    from tenants.context import platform_transaction
    from tenants.identity import ProviderSettings, save_identity_provider, set_domains
    from tests.auth.conftest import login

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = make_server("127.0.0.1", 0, build_app([person("viewer@marburg.de", ["egovsad-viewer"])]),
                         threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app({"TESTING": True}, settings=dataclasses.replace(settings, login_rate_limit="10000/minute"))
    with app.app_context(), platform_transaction():
        set_domains(tenant_id, ["marburg.de"])
        save_identity_provider(tenant_id, ProviderSettings(
            discovery_url=f"{url}/.well-known/openid-configuration", client_id="bench", client_secret="s",
            role_mapping=DEMO_ROLE_MAPPING), app.config["EGOV"])

    def sign_in():
        response = login(app.test_client(), "/t/06534014/login", "viewer@marburg.de")
        assert response.status_code == 302, response.status_code

    try:
        return timed(sign_in, runs=21, warmup=2)
    finally:
        server.shutdown()


def _offboarding(settings, tenant_id: int) -> list[dict]:
    from portal import create_app
    from tenants import archive
    from tenants.db import db

    app = create_app({"TESTING": True}, settings=settings)
    rows = []
    with app.app_context():
        out = io.BytesIO()
        started = time.perf_counter()
        counts = archive.write_archive(db.session.connection(), tenant_id, "06534014", out)
        seconds = time.perf_counter() - started
        db.session.rollback()
        total = sum(counts.values())
        rows.append({"what": "write the archive", "rows": total, "seconds": round(seconds, 2),
                     "rows_per_s": round(total / seconds), "zip_MiB": round(len(out.getvalue()) / 2**20, 1)})
        started = time.perf_counter()
        deleted = archive.purge(db.session.connection(), tenant_id)
        db.session.commit()
        seconds = time.perf_counter() - started
        total = sum(deleted.values())
        rows.append({"what": "purge the tenant's rows", "rows": total, "seconds": round(seconds, 2),
                     "rows_per_s": round(total / seconds), "zip_MiB": ""})
    return rows


def run(settings) -> list[dict]:
    owner, app_engine = fresh_database(settings)
    ids = _tenants(owner)
    _load(settings, ids)
    sign_in = _sign_in_times(settings, ids[0])
    rows = [{"what": "full sign-in (authorize, callback, token, ID token check, user upsert)", "rows": "",
             "seconds": f"median {sign_in['median_ms']} ms, p95 {sign_in['p95_ms']} ms", "rows_per_s": "",
             "zip_MiB": ""}]
    rows += _offboarding(settings, ids[0])
    owner.dispose()
    app_engine.dispose()
    return rows
