"""Limits a tenant's Superset sessions cannot lift: a watchdog and a switch for suspended tenants.

A tenant's Superset login role (migration 0004) starts every session with ``statement_timeout``
30 s and read-only transactions, but those are defaults the session may change with ``SET``
(PostgreSQL lets every role set its own ``statement_timeout``). So the platform enforces the
limits from outside the session, where the session cannot undo them:

* ``portal.superset_end_overrunning(limit_seconds)`` ends (``pg_terminate_backend``) every backend of
  this database's Superset login roles whose statement, transaction or idle transaction has run
  longer than the limit. The portal's watchdog (``egov watchdog``) calls it every few seconds, so
  a query that switched its timeout off cannot hold locks the nightly refresh or other tenants
  wait for. Returns the number of sessions ended.
* ``portal.superset_login_enable(tenant, enabled)`` turns a tenant's login role's LOGIN on or off
  and, when off, ends its sessions at once: a suspended or offboarded tenant's running SQL Lab
  queries stop, and no new one starts.

Both are SECURITY DEFINER functions owned by ``<owner>_roles``, to which ``egov db bootstrap``
grants ``pg_signal_backend`` and ``pg_read_all_stats`` (the superuser's part); they take only a
number and a tenant id, and touch only roles named ``<database>_ss_t<number>``. Writes, temporary
tables and advisory locks are out of the login roles' reach through privileges (migration 0004,
``egov db bootstrap``), which no ``SET`` changes either.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from migrations.rls import app_role

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FUNCTIONS = r"""
CREATE FUNCTION portal.superset_login_pattern() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog
RETURN '^' || regexp_replace(current_database(), '([^a-zA-Z0-9_])', '\\\1', 'g') || '_ss_t[0-9]+$';

CREATE FUNCTION portal.superset_end_overrunning(limit_seconds integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    ended integer := 0;
    overrun interval;
    session record;
BEGIN
    IF limit_seconds IS NULL OR limit_seconds < 1 THEN
        RAISE EXCEPTION 'the limit must be at least one second, not %', limit_seconds;
    END IF;
    overrun := make_interval(secs => limit_seconds);
    FOR session IN
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND usename ~ portal.superset_login_pattern()
          AND pid <> pg_backend_pid()
          AND ((state = 'active' AND now() - query_start > overrun)
               OR (state LIKE 'idle in transaction%' AND now() - state_change > overrun)
               OR (xact_start IS NOT NULL AND now() - xact_start > overrun))
    LOOP
        IF pg_terminate_backend(session.pid) THEN
            ended := ended + 1;
        END IF;
    END LOOP;
    RETURN ended;
END $$;

CREATE FUNCTION portal.superset_login_enable(tenant integer, enabled boolean) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    login text := portal.superset_login_name(tenant);
    ended integer := 0;
    session record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) THEN
        RETURN 0;
    END IF;
    EXECUTE format('ALTER ROLE %I %s', login, CASE WHEN enabled THEN 'LOGIN' ELSE 'NOLOGIN' END);
    IF NOT enabled THEN
        FOR session IN SELECT pid FROM pg_stat_activity WHERE usename = login LOOP
            IF pg_terminate_backend(session.pid) THEN
                ended := ended + 1;
            END IF;
        END LOOP;
    END IF;
    RETURN ended;
END $$;

REVOKE ALL ON FUNCTION portal.superset_end_overrunning(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION portal.superset_login_enable(integer, boolean) FROM PUBLIC;
"""

OWNERSHIP = """
DO $$
DECLARE
    admin text := current_user || '_roles';
BEGIN
    -- A new owner needs CREATE on the schema for the moment of the transfer (as in 0004).
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA portal TO %I', admin);
    EXECUTE format('ALTER FUNCTION portal.superset_end_overrunning(integer) OWNER TO %I', admin);
    EXECUTE format('ALTER FUNCTION portal.superset_login_enable(integer, boolean) OWNER TO %I', admin);
    EXECUTE format('REVOKE CREATE ON SCHEMA portal FROM %I', admin);
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute(OWNERSHIP)
    for signature in ("superset_end_overrunning(integer)", "superset_login_enable(integer, boolean)",
                      "superset_login_pattern()"):
        op.execute(f"GRANT EXECUTE ON FUNCTION portal.{signature} TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION portal.superset_login_enable(integer, boolean)")
    op.execute("DROP FUNCTION portal.superset_end_overrunning(integer)")
    op.execute("DROP FUNCTION portal.superset_login_pattern()")
