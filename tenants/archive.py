"""Offboarding: every row a tenant owns, exported as CSV files in a ZIP, then purged.

The tables are read from the database catalogue (every table in ``portal``
and ``analytics`` with a ``tenant_id`` column, as the isolation matrix finds
them), so a table added by a later migration is archived and purged without
a change here. Both run on one connection inside the tenant's context, with
an explicit ``tenant_id`` filter on top of row-level security.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tenants.context import apply_tenant

TENANT_TABLES = text(
    """
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('portal', 'analytics') AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                  AND NOT a.attisdropped)
    ORDER BY 1, 2
    """
)

REFERENCES = text(
    """
    SELECT format('%I.%I', n.nspname, c.relname), format('%I.%I', rn.nspname, rc.relname)
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE con.contype = 'f' AND n.nspname IN ('portal', 'analytics')
    """
)


def tenant_tables(conn: Connection) -> list[tuple[str, str]]:
    """(schema, table) of every tenant table, referenced tables before those referencing them."""
    tables = [(s, t) for s, t in conn.execute(TENANT_TABLES)]
    names = {f"{s}.{t}": (s, t) for s, t in tables}
    refs: dict[str, set[str]] = {name: set() for name in names}
    for child, parent in conn.execute(REFERENCES):
        if child in names and parent in names and child != parent:
            refs[child].add(parent)
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for parent in sorted(refs[name]):
                visit(parent)
            ordered.append(name)

    for name in sorted(names):
        visit(name)
    return [names[name] for name in ordered]


def _select(schema: str, table: str, tenant_id: int) -> sql.Composed:
    return sql.SQL("SELECT * FROM {}.{} WHERE tenant_id = {}").format(
        sql.Identifier(schema), sql.Identifier(table), sql.Literal(int(tenant_id)))


def row_counts(conn: Connection, tenant_id: int) -> dict[str, int]:
    """Rows the tenant owns per table (zero after the purge)."""
    apply_tenant(conn, tenant_id)
    raw = conn.connection.dbapi_connection
    counts = {}
    with raw.cursor() as cur:
        for schema, table in tenant_tables(conn):
            cur.execute(sql.SQL("SELECT count(*) FROM ({}) AS t").format(_select(schema, table, tenant_id)))
            counts[f"{schema}.{table}"] = cur.fetchone()[0]
    return counts


#: ``progress(tables done, tables in all)``, called before the first table and after each.
Progress = Callable[[int, int], None]


def write_archive(conn: Connection, tenant_id: int, ags: str, out: IO[bytes],
                  progress: Progress | None = None) -> dict[str, int]:
    """Write the ZIP to ``out``: one ``<schema>.<table>.csv`` per table plus ``manifest.json``.

    :return: rows written per table.
    """
    apply_tenant(conn, tenant_id)
    raw = conn.connection.dbapi_connection
    counts: dict[str, int] = {}
    tables = tenant_tables(conn)
    progress = progress or (lambda done, total: None)
    progress(0, len(tables))
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive, raw.cursor() as cur:
        for done, (schema, table) in enumerate(tables, start=1):
            name = f"{schema}.{table}"
            statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(
                _select(schema, table, tenant_id))
            with archive.open(f"{name}.csv", "w") as member, cur.copy(statement) as copy:
                for chunk in copy:
                    member.write(bytes(chunk))
            cur.execute(sql.SQL("SELECT count(*) FROM ({}) AS t").format(_select(schema, table, tenant_id)))
            counts[name] = cur.fetchone()[0]
            progress(done, len(tables))
        manifest = {"ags": ags, "tenant_id": tenant_id, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "format": "CSV (RFC 4180) with a header line, UTF-8", "rows": counts}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
    return counts


def purge(conn: Connection, tenant_id: int, progress: Progress | None = None) -> dict[str, int]:
    """Delete every row of the tenant, referencing tables first. Other tenants are not touched.

    :return: rows deleted per table.
    """
    apply_tenant(conn, tenant_id)
    raw = conn.connection.dbapi_connection
    deleted = {}
    tables = list(reversed(tenant_tables(conn)))
    progress = progress or (lambda done, total: None)
    progress(0, len(tables))
    with raw.cursor() as cur:
        for done, (schema, table) in enumerate(tables, start=1):
            cur.execute(sql.SQL("DELETE FROM {}.{} WHERE tenant_id = {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Literal(int(tenant_id))))
            deleted[f"{schema}.{table}"] = cur.rowcount
            progress(done, len(tables))
    return deleted
