"""The roles around Superset keep to their jobs."""

from __future__ import annotations

import psycopg


def test_superset_metadata_role_is_no_reader_and_readers_hold_no_other_role(superset, superset_settings, tenants_ab):
    with psycopg.connect(superset_settings.admin_database_url) as conn:
        group = superset_settings.database_name + "_ss_readers"
        assert group != superset_settings.superset_meta_database
        group_row = conn.execute("SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = %s", (group,)).fetchone()
        assert group_row == (False, False)
        # Every login role of a tenant is a member of the group and of nothing else.
        memberships = conn.execute(
            "SELECT m.rolname, r.rolname FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid "
            "JOIN pg_roles m ON m.oid = am.member WHERE m.rolname LIKE %s",
            (superset_settings.database_name.replace("_", r"\_") + r"\_ss\_t%",)).fetchall()
        assert sorted(memberships) == sorted(
            (f"{superset_settings.database_name}_ss_t{t.id}", group) for t in (tenants_ab.a, tenants_ab.b))
        # The metadata role reads no tenant data.
        meta = superset_settings.superset_meta_database
        assert conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (meta, group)).fetchone() == (False,)
