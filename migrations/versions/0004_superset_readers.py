"""Superset reads tenant data through one PostgreSQL login role per tenant.

Each tenant gets a login role ``<database>_ss_t<tenant_id>`` (created by
provisioning through :func:`portal.superset_login_ensure`), member of the
group ``<database>_superset``. The group may read the ``analytics`` schema
and nothing else. Its rows are bound to ``current_user``:

* a permissive policy lets the role see rows of the tenant its name carries;
* a RESTRICTIVE policy ANDs the same condition onto every other policy, so
  setting the tenant GUC (which satisfies the app's ``tenant_isolation``
  policy) cannot widen what a Superset user sees;
* ``SET ROLE <group>`` makes ``current_user`` the group, whose name carries
  no tenant: it sees nothing.

Role names carry the database name because roles are cluster-wide while
tenant ids are per database. Roles are created by ``<owner>_roles`` (NOLOGIN,
CREATEROLE, made by ``egov db bootstrap``), which owns the two SECURITY
DEFINER functions that create and drop login roles; the app reaches that
power only through them, and they take a tenant id and build every name
themselves.

Revision ID: 0004
Revises: 0001
"""

from alembic import op

from migrations.rls import app_role

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The tenant a Superset login role stands for, read from its own name.
SUPERSET_MATCH = "tenant_id = NULLIF(substring(current_user::text from '_ss_t([0-9]+)$'), '')::integer"

FUNCTIONS = r"""
CREATE FUNCTION portal.superset_group() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog
RETURN current_database() || '_ss_readers';

CREATE FUNCTION portal.superset_login_name(tenant integer) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog
RETURN current_database() || '_ss_t' || tenant::text;

-- Grants and policies for every analytics table and view that lacks them.
-- Provisioning calls it each run, so tables added by later migrations are
-- covered before any Superset user can reach them (without the grant a
-- table is simply unreadable for the group).
CREATE FUNCTION portal.superset_protect_analytics() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    grp text := portal.superset_group();
    rel record;
    changed integer := 0;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA analytics TO %I', grp);
    FOR rel IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
    LOOP
        IF rel.relkind <> 'v' AND NOT EXISTS (
            SELECT 1 FROM pg_policies WHERE schemaname = 'analytics' AND tablename = rel.relname
              AND policyname = 'superset_bound') THEN
            EXECUTE format('CREATE POLICY superset_read ON analytics.%I FOR SELECT TO %I USING (%s)',
                           rel.relname, grp, %(match)L);
            EXECUTE format('CREATE POLICY superset_bound ON analytics.%I AS RESTRICTIVE FOR ALL TO %I USING (%s)',
                           rel.relname, grp, %(match)L);
            changed := changed + 1;
        END IF;
        -- Views are security_invoker (a test checks it): the tables' policies apply.
        EXECUTE format('GRANT SELECT ON analytics.%I TO %I', rel.relname, grp);
    END LOOP;
    RETURN changed;
END $$;

CREATE FUNCTION portal.superset_login_ensure(tenant integer, secret text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    login text := portal.superset_login_name(tenant);
    -- ALTER may not name SUPERUSER, REPLICATION or BYPASSRLS without being superuser; CREATE sets all.
    -- 10 connections: a dashboard fires its chart queries at once (gunicorn's 2 workers x 4
    -- threads); more than that from one tenant is a runaway.
    attributes text := 'LOGIN INHERIT CONNECTION LIMIT 10';
    safe text := ' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';
BEGIN
    IF tenant IS NULL OR tenant <= 0 OR length(login) > 63 THEN
        RAISE EXCEPTION 'cannot derive a Superset login role for tenant % in this database', tenant;
    END IF;
    IF length(coalesce(secret, '')) < 24 THEN
        RAISE EXCEPTION 'the password of a Superset login role must have at least 24 characters';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) THEN
        EXECUTE format('ALTER ROLE %I %s PASSWORD %L', login, attributes, secret);
    ELSE
        EXECUTE format('CREATE ROLE %I %s PASSWORD %L', login, attributes || safe, secret);
    END IF;
    EXECUTE format('GRANT %I TO %I', portal.superset_group(), login);
    -- Defaults for every session; SQL Lab has its own timeout on top.
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', login, '30s');
    EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', login, '60s');
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', login);
    RETURN login;
END $$;

CREATE FUNCTION portal.superset_login_drop(tenant integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    login text := portal.superset_login_name(tenant);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP ROLE %I', login);
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION portal.superset_protect_analytics() FROM PUBLIC;
REVOKE ALL ON FUNCTION portal.superset_login_ensure(integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION portal.superset_login_drop(integer) FROM PUBLIC;
"""

GROUP = """
DO $$
DECLARE
    admin text := current_user || '_roles';
BEGIN
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA portal TO %I', admin);
    EXECUTE format('ALTER FUNCTION portal.superset_login_ensure(integer, text) OWNER TO %I', admin);
    EXECUTE format('ALTER FUNCTION portal.superset_login_drop(integer) OWNER TO %I', admin);
    EXECUTE format('REVOKE CREATE ON SCHEMA portal FROM %I', admin);
    EXECUTE format('SET LOCAL ROLE %I', admin);
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = portal.superset_group()) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', portal.superset_group());
    END IF;
    -- Whatever an earlier run or a person did to it: nobody logs in as the group.
    EXECUTE format('ALTER ROLE %I NOLOGIN NOINHERIT PASSWORD NULL', portal.superset_group());
    RESET ROLE;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), portal.superset_group());
END $$;
"""


def upgrade() -> None:
    app = app_role()
    op.execute(FUNCTIONS.replace("%(match)L", "'" + SUPERSET_MATCH.replace("'", "''") + "'"))
    op.execute(GROUP)
    op.execute("SELECT portal.superset_protect_analytics()")
    for signature in ("superset_protect_analytics()", "superset_login_ensure(integer, text)",
                      "superset_login_drop(integer)", "superset_login_name(integer)", "superset_group()"):
        op.execute(f"GRANT EXECUTE ON FUNCTION portal.{signature} TO {app}")


def downgrade() -> None:
    op.execute("""
DO $$
DECLARE
    grp text := portal.superset_group();
    rel record;
BEGIN
    FOR rel IN SELECT tablename FROM pg_policies WHERE schemaname = 'analytics' AND policyname = 'superset_bound'
    LOOP
        EXECUTE format('DROP POLICY superset_bound ON analytics.%I', rel.tablename);
        EXECUTE format('DROP POLICY IF EXISTS superset_read ON analytics.%I', rel.tablename);
    END LOOP;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA analytics FROM %I', grp);
    EXECUTE format('REVOKE ALL ON SCHEMA analytics FROM %I', grp);
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), grp);
END $$;
""")
    op.execute("DROP FUNCTION portal.superset_login_drop(integer)")
    op.execute("DROP FUNCTION portal.superset_login_ensure(integer, text)")
    op.execute("DROP FUNCTION portal.superset_protect_analytics()")
    op.execute("DROP FUNCTION portal.superset_login_name(integer)")
    # The group stays while tenant login roles may still be members; offboarding drops those.
    op.execute("DROP FUNCTION portal.superset_group()")
