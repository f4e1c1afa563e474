"""The isolation matrix: built from the database catalogue, not from a list.

Every table in ``analytics`` and every portal table with a ``tenant_id`` is
found in ``pg_catalog``; a new table is covered the moment a migration
creates it. For each one, through the application role:

* RLS is enabled and forced, with a policy; partitions likewise;
* with no tenant set it sees no row and cannot insert one;
* with tenant A set it sees only A's rows, cannot insert B's, cannot move a
  row of A's to B, and updates and deletes of B's rows change nothing.

Rows are generated from the column types, with valid vocabulary values where
a CHECK constraint asks for them; foreign keys are followed by seeding the
referenced tenant table first.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from tenants.context import apply_tenant

#: Control-plane tables that carry a tenant_id but must be read before a
#: tenant is known; each is documented in its table comment.
CONTROL_PLANE_WITH_TENANT_ID = {"portal.tenant_domains"}

#: Values that satisfy the CHECK constraints of the vocabulary columns.
COLUMN_VALUES = {
    "service_key": "99102013104000",
    "leika_key": "99102013104000",
    "event_type": "started",
    "measure": "started",
    "channel": "web",
    "trust_level": "basis",
    "payment_method": "paypal",
    "payment_provider": "epaybl",
    "auth_method": "bundid_eid",
    "payload_format": "csv",
    "rating": 3,
    "role": "viewer",
    "kind": "upload",
    "status": "queued",
    "session_hash": b"a" * 32,
    "occurred_at": datetime(2026, 1, 15, 10, tzinfo=UTC),
    "dataset": "usage",
    "licence": "cc-by/4.0",
    "contact_email": "opendata@example.de",
}

TYPE_VALUES = {
    "integer": 1, "smallint": 1, "bigint": 1, "numeric": 1, "double precision": 1.0,
    "text": "x", "character varying": "x", "character": "x",
    "boolean": True, "date": date(2026, 1, 15), "timestamp with time zone": datetime(2026, 1, 15, tzinfo=UTC),
    "jsonb": "{}", "inet": "192.0.2.1",
}

CATALOGUE = text(
    """
    SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind, c.relispartition,
           c.relrowsecurity, c.relforcerowsecurity,
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                   AND NOT a.attisdropped) AS has_tenant_id
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('portal', 'analytics') AND c.relkind IN ('r', 'p')
    ORDER BY 1
    """
)


def q(name: str) -> str:
    schema, table = name.split(".")
    return f'"{schema}"."{table}"'


#: Months whose partitions the matrix creates itself (through the function the loaders use), so
#: that the partition checks never depend on other tests having loaded events before.
PARTITION_MONTHS = ("2026-01-01", "2026-02-01")


@pytest.fixture(scope="module")
def catalogue(owner_engine, app_engine):
    with app_engine.begin() as conn:
        for month in PARTITION_MONTHS:
            conn.execute(text("SELECT analytics.ensure_event_partition(CAST(:m AS date))"), {"m": month})
    with owner_engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(CATALOGUE)]


@pytest.fixture(scope="module")
def tenant_tables(catalogue):
    """Tables whose rows belong to a tenant, parents before partitions excluded."""
    return [
        t["name"] for t in catalogue
        if not t["relispartition"]
        and (t["name"].startswith("analytics.") or t["has_tenant_id"])
        and t["name"] not in CONTROL_PLANE_WITH_TENANT_ID
    ]


def test_catalogue_finds_the_canonical_model(tenant_tables):
    # Guards against a vacuous matrix: the tables of the data model are there.
    for expected in ("analytics.process_events", "analytics.rollup_service_daily", "analytics.feedback",
                     "analytics.web_pages_daily", "analytics.services", "portal.users", "portal.audit_log",
                     "portal.identity_providers", "portal.data_sources", "portal.ingest_runs"):
        assert expected in tenant_tables


def test_every_analytics_table_is_tenant_keyed(catalogue):
    missing = [t["name"] for t in catalogue if t["name"].startswith("analytics.") and not t["has_tenant_id"]]
    assert missing == []


def test_every_tenant_table_has_rls_enabled_forced_and_a_policy(catalogue, tenant_tables):
    partitions = {t["name"] for t in catalogue if t["relispartition"]}
    # Guards against a vacuous check: the partitions this module created are among those checked.
    assert {f"analytics.process_events_{m[:4]}_{m[5:7]}" for m in PARTITION_MONTHS} <= partitions
    protected = set(tenant_tables) | partitions
    failures = [
        t["name"] for t in catalogue
        if t["name"] in protected and not (t["relrowsecurity"] and t["relforcerowsecurity"] and t["policies"] > 0)
    ]
    assert failures == []


def test_tenant_id_leads_every_key_of_tenant_tables(owner_engine, tenant_tables):
    with owner_engine.connect() as conn:
        rows = conn.execute(text(
            """
            SELECT format('%I.%I', n.nspname, c.relname), con.conname, a.attname
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1]
            WHERE con.contype IN ('p', 'u') AND n.nspname IN ('portal', 'analytics')
            """
        )).all()
    offending = [(table, con, first) for table, con, first in rows if table in tenant_tables and first != "tenant_id"]
    assert offending == []


def test_views_run_with_the_callers_rights(owner_engine):
    with owner_engine.connect() as conn:
        views = conn.execute(text(
            "SELECT format('%I.%I', n.nspname, c.relname), coalesce(c.reloptions, '{}') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('portal', 'analytics') AND c.relkind = 'v'"
        )).all()
    assert views, "expected at least one view"
    assert [name for name, options in views if "security_invoker=true" not in options] == []


def test_partitions_are_not_directly_reachable_by_the_app(app_engine, owner_engine, settings):
    with app_engine.begin() as conn:
        part = conn.execute(text("SELECT analytics.ensure_event_partition(DATE '2026-01-01')")).scalar()
    with app_engine.connect() as conn:
        allowed = conn.execute(
            text("SELECT has_table_privilege(current_user, :t, 'SELECT')"), {"t": f"analytics.{part}"}
        ).scalar()
    assert allowed is False


# --- behaviour -----------------------------------------------------------------


def _columns(conn, table: str):
    schema, name = table.split(".")
    return conn.execute(text(
        """
        SELECT column_name, data_type, is_nullable = 'YES' AS nullable,
               column_default IS NOT NULL OR is_identity = 'YES' AS defaulted
        FROM information_schema.columns WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position
        """
    ), {"s": schema, "t": name}).all()


def _foreign_keys(conn, table: str) -> dict[str, tuple[str, str]]:
    """column -> (referenced table, referenced column), for tenant-table references."""
    rows = conn.execute(text(
        """
        SELECT a.attname, format('%I.%I', rn.nspname, rc.relname), ra.attname
        FROM pg_constraint con
        JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(col, refcol)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
        JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refcol
        WHERE con.contype = 'f' AND con.conrelid = CAST(:t AS regclass)
        """
    ), {"t": table}).all()
    return {col: (ref_table, ref_col) for col, ref_table, ref_col in rows if col != "tenant_id"}


def _sample_row(conn, table: str, tenant_id: int, seeded: dict) -> dict:
    row = {"tenant_id": tenant_id}
    fks = _foreign_keys(conn, table)
    for name, data_type, nullable, defaulted in _columns(conn, table):
        if name == "tenant_id":
            continue
        if name in fks:
            ref_table, ref_col = fks[name]
            row[name] = seeded[(ref_table, tenant_id)][ref_col]
        elif name in COLUMN_VALUES:
            row[name] = COLUMN_VALUES[name]
        elif not nullable and not defaulted:
            row[name] = uuid.uuid4() if data_type == "uuid" else TYPE_VALUES[data_type]
    return row


def _insert(conn, table: str, row: dict) -> dict:
    cols = ", ".join(f'"{c}"' for c in row)
    params = ", ".join(f":{c}" for c in row)
    return dict(conn.execute(text(f"INSERT INTO {q(table)} ({cols}) VALUES ({params}) RETURNING *"), row)
                .one()._mapping)


def _ordered(conn, tables: list[str]) -> list[str]:
    """Referenced tables first, so foreign keys can be satisfied."""
    ordered: list[str] = []

    def visit(table: str) -> None:
        if table in ordered:
            return
        for ref_table, _ in _foreign_keys(conn, table).values():
            if ref_table in tables:
                visit(ref_table)
        ordered.append(table)

    for table in tables:
        visit(table)
    return ordered


@pytest.fixture
def seeded(app_engine, two_tenants, tenant_tables):
    """One row per tenant in every tenant table, inserted through the app role."""
    rows: dict = {}
    with app_engine.connect() as conn:
        order = _ordered(conn, tenant_tables)
    for tenant in (two_tenants.a, two_tenants.b):
        with app_engine.begin() as conn:
            conn.execute(text("SELECT analytics.ensure_event_partition(DATE '2026-01-01')"))
            apply_tenant(conn, tenant.id)
            for table in order:
                rows[(table, tenant.id)] = _insert(conn, table, _sample_row(conn, table, tenant.id, rows))
    return rows


def _raises_rls(conn, statement, params) -> bool:
    nested = conn.begin_nested()
    try:
        conn.execute(statement, params)
    except (ProgrammingError, DBAPIError) as exc:
        nested.rollback()
        return "row-level security" in str(exc.orig)
    nested.rollback()
    return False


def test_without_a_tenant_nothing_is_visible_or_writable(app_engine, two_tenants, seeded, tenant_tables):
    failures = []
    with app_engine.connect() as conn:
        order = _ordered(conn, tenant_tables)
    with app_engine.begin() as conn:
        apply_tenant(conn, None)
        for table in order:
            if conn.execute(text(f"SELECT count(*) FROM {q(table)}")).scalar() != 0:
                failures.append(f"{table}: rows visible without a tenant")
            row = _sample_row(conn, table, two_tenants.a.id, seeded)
            cols = ", ".join(f'"{c}"' for c in row)
            insert = text(f"INSERT INTO {q(table)} ({cols}) VALUES ({', '.join(':' + c for c in row)})")
            if not _raises_rls(conn, insert, row):
                failures.append(f"{table}: insert accepted without a tenant")
    assert failures == []


def test_tenant_a_sees_only_its_rows_and_cannot_touch_b(app_engine, two_tenants, seeded, tenant_tables):
    a, b = two_tenants.a.id, two_tenants.b.id
    failures = []
    with app_engine.connect() as conn:
        order = _ordered(conn, tenant_tables)
    with app_engine.begin() as conn:
        apply_tenant(conn, a)
        for table in order:
            seen = set(conn.execute(text(f"SELECT DISTINCT tenant_id FROM {q(table)}")).scalars())
            if seen != {a}:
                failures.append(f"{table}: tenant A sees {seen}")
            row_b = _sample_row(conn, table, b, seeded)
            cols = ", ".join(f'"{c}"' for c in row_b)
            insert = text(f"INSERT INTO {q(table)} ({cols}) VALUES ({', '.join(':' + c for c in row_b)})")
            if not _raises_rls(conn, insert, row_b):
                failures.append(f"{table}: A inserted a row of B")
            move = text(f"UPDATE {q(table)} SET tenant_id = :b WHERE tenant_id = :a")
            if not _raises_rls(conn, move, {"a": a, "b": b}):
                failures.append(f"{table}: A moved its row to B")
            touched = conn.execute(text(f"UPDATE {q(table)} SET tenant_id = tenant_id WHERE tenant_id = :b"),
                                   {"b": b}).rowcount
            touched += conn.execute(text(f"DELETE FROM {q(table)} WHERE tenant_id = :b"), {"b": b}).rowcount
            if touched:
                failures.append(f"{table}: A updated or deleted {touched} row(s) of B")
    with app_engine.begin() as conn:
        apply_tenant(conn, b)
        for table in order:
            if conn.execute(text(f"SELECT count(*) FROM {q(table)}")).scalar() != 1:
                failures.append(f"{table}: B's row did not survive A's attempts")
    assert failures == []
