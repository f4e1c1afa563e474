"""The application role is the least-privileged role that can do the work."""

from sqlalchemy import text


def test_app_role_is_not_superuser_not_bypassrls_and_not_owner(app_engine, database):
    with app_engine.connect() as conn:
        me = conn.execute(text(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = current_user"
        )).one()
        owned = conn.execute(text(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('portal', 'analytics') AND c.relowner = (SELECT oid FROM pg_roles "
            "WHERE rolname = current_user)"
        )).scalar()
        member_of_owner = conn.execute(
            text("SELECT pg_has_role(current_user, :owner, 'MEMBER')"), {"owner": database.owner_role}
        ).scalar()
    assert me.current_user == database.app_role
    assert (me.rolsuper, me.rolbypassrls, me.rolcreaterole, me.rolcreatedb) == (False, False, False, False)
    assert owned == 0
    assert member_of_owner is False


def test_owner_is_not_superuser_and_cannot_bypass_rls(owner_engine):
    with owner_engine.connect() as conn:
        row = conn.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
    assert tuple(row) == (False, False)


def test_app_role_cannot_switch_rls_off_or_change_the_schema(app_engine):
    statements = [
        "ALTER TABLE analytics.feedback DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON analytics.feedback",
        "CREATE TABLE analytics.sneaky (tenant_id int)",
        "SET LOCAL row_security = off; SELECT count(*) FROM analytics.feedback",
    ]
    refused = 0
    for statement in statements:
        with app_engine.connect() as conn:
            try:
                for part in statement.split(";"):
                    conn.execute(text(part))
            except Exception:  # noqa: BLE001 - every kind of refusal counts
                refused += 1
            conn.rollback()
    assert refused == len(statements)


def test_owner_sees_no_tenant_rows_by_mistake(owner_engine, app_engine, two_tenants):
    from tenants.context import apply_tenant

    with app_engine.begin() as conn:
        apply_tenant(conn, two_tenants.a.id)
        conn.execute(text("INSERT INTO analytics.feedback (tenant_id, service_key, rating) "
                          "VALUES (:t, '99102013104000', 4)"), {"t": two_tenants.a.id})
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analytics.feedback")).scalar() == 0
