"""SQL helpers the migrations share, so every tenant table is protected the same way.

Import them in a migration with ``from migrations.rls import ...`` (alembic
puts the project root on ``sys.path``). They only build SQL text from
identifiers written in the migration itself, never from user input.
"""

from alembic import op

#: The policy expression every tenant table uses. ``NULLIF`` turns the empty
#: string a finished transaction leaves behind into NULL, which matches no row;
#: without it the cast raises. No subquery, so the policy stays valid on Citus.
TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer"


def protect_tenant_table(table: str) -> None:
    """ENABLE + FORCE row-level security with the tenant policy for reads and writes."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT_MATCH}) WITH CHECK ({TENANT_MATCH})")


def app_role() -> str:
    return op.get_context().config.attributes["app_role"]


def grant_app(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    op.execute(f"GRANT {privileges} ON {table} TO {app_role()}")
