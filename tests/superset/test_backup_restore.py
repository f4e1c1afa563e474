"""Restore drill: back up, lose both databases and the tenants' login roles, restore, and see the same figures.

The drill runs on this session's own test databases: they are dropped (as a lost server would lose them) and
come back from the backup, so the modules after this one find what they found before.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from tests.conftest import sign_in
from tests.superset.conftest import _drop_stale_login_roles, add_user
from tests.superset.test_embedding import open_dashboard, started_sum


def dashboard_titles(app, identity: str, ags: str) -> list[str]:
    """The dashboards a signed-in viewer is offered on the portal's dashboards page."""
    client = app.test_client()
    sign_in(client, identity)
    response = client.get(f"/t/{ags}/dashboards/")
    assert response.status_code == 200
    return re.findall(r'href="/t/\d+/dashboards/\w+"[^>]*>([^<]+)<', response.get_data(as_text=True))


def figures(chart_data: list[dict]) -> list:
    return sorted(str(row) for body in chart_data for result in body["result"] for row in result["data"])


def lose_everything(settings) -> None:
    """What a new server lacks: both databases and the tenants' Superset login roles and their group."""
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        for name in (settings.database_name, settings.superset_meta_database):
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    _drop_stale_login_roles(settings)
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(settings.database_name + "_ss_readers")))


def test_restore_drill_brings_back_the_same_dashboards_and_figures(ss_app, ss_live_server, tenants_ab, browser,
                                                                   superset_settings, owner_engine, tmp_path):
    from tenants.backup import backup, restore
    from tenants.provisioning import provision_tenant

    a = tenants_ab.a
    viewer = add_user(ss_app, a, "viewer", subject="viewer-restore-drill")
    titles = dashboard_titles(ss_app, viewer, a.ags)
    before = figures(open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, "overview"))
    sums = [started_sum(owner_engine, t.id) for t in (tenants_ab.a, tenants_ab.b)]
    assert len(titles) >= 7 and before and all(sums)

    directory = backup(superset_settings, tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == [
        "keys", "manifest.json", "platform.dump", "secrets.env", "superset.dump"]
    assert directory.stat().st_mode & 0o077 == 0 and (directory / "secrets.env").stat().st_mode & 0o077 == 0
    assert f"EGOV_SUPERSET_SECRET_KEY={superset_settings.superset_secret_key}" in (
        directory / "secrets.env").read_text()

    lose_everything(superset_settings)
    owner_engine.dispose()  # its pooled connections went with the database (the portal's engine pings first)
    report = restore(superset_settings, directory)
    assert report.counts["platform"]["portal.tenants"] == 2
    with ss_app.app_context():  # the runbook's `egov superset provision`: login roles from the restored passwords
        for tenant in (tenants_ab.a, tenants_ab.b):
            assert provision_tenant(tenant.id)["status"] == "succeeded"

    # The same person signs in again (sessions live in Redis, not in the backup) and sees the same.
    assert dashboard_titles(ss_app, viewer, a.ags) == titles
    assert figures(open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, "overview")) == before
    # The schema owner (migrations, nightly jobs) sees each tenant's rows in the tenant's context as before.
    assert [started_sum(owner_engine, t.id) for t in (tenants_ab.a, tenants_ab.b)] == sums


def test_restore_refuses_existing_databases_and_foreign_secrets(superset_settings, tmp_path, database):
    import dataclasses

    import pytest

    from tenants.backup import BackupError, backup, restore

    directory = backup(superset_settings, tmp_path)
    with pytest.raises(BackupError, match="exists"):
        restore(superset_settings, directory)
    foreign = dataclasses.replace(superset_settings, superset_secret_key="another key")
    with pytest.raises(BackupError, match="secrets.env"):
        restore(foreign, directory)
