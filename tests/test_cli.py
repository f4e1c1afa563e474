"""The operator CLI: create, list and show tenants by AGS."""

import json
import threading

import pytest
from click.testing import CliRunner

from portal.cli import main


@pytest.fixture
def run(database, clean_db):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_create_list_show(run):
    created = run("tenants", "create", "06534014", "--active", "--contact-name", "Digitalisierung")
    assert created.exit_code == 0, created.output
    assert "Marburg" in created.output and "065340014014" in created.output
    run("tenants", "create", "06439")

    listed = json.loads(run("tenants", "list", "--json").output)
    assert [(t["ags"], t["status"]) for t in listed] == [("06439", "pending"), ("06534014", "active")]
    assert run("tenants", "list", "--status", "pending").output.count("Rheingau-Taunus-Kreis") == 1

    shown = run("tenants", "show", "06534014")
    assert shown.exit_code == 0
    assert "Marburg-Biedenkopf (06534)" in shown.output and "active" in shown.output


def test_second_tenant_for_same_ags_is_refused(run):
    run("tenants", "create", "06534014")
    again = run("tenants", "create", "06534014")
    assert again.exit_code == 1
    assert "bereits" in again.output
    assert len(json.loads(run("tenants", "list", "--json").output)) == 1


@pytest.mark.parametrize("ags", ["99999999", "123", "0653401x"])
def test_unknown_or_malformed_ags_is_refused_clearly(run, ags):
    result = run("tenants", "create", ags)
    assert result.exit_code == 1
    assert ags in result.output


def test_show_unknown_tenant(run):
    result = run("tenants", "show", "06411000")
    assert result.exit_code == 1 and "06411000" in result.output


# `egov demo seed` (run twice, as `make up` again would): tests/test_demo_seed.py


def test_probe_answers_as_the_containers_health_checks_need(run, redis_conn):
    """`egov probe`: healthy while this host's worker is registered in Redis, unhealthy once it is gone."""
    from rq import Worker

    assert run("probe", "database").exit_code == 0
    assert run("probe", "worker").exit_code == 1
    worker = Worker(["default"], connection=redis_conn)
    worker.register_birth()
    try:
        assert run("probe", "worker").exit_code == 0
        assert run("probe", "scheduler").exit_code == 1
    finally:
        worker.register_death()
    assert run("probe", "worker").exit_code == 1


def test_provision_does_tenants_that_failed_side_by_side_again_one_at_a_time(run, monkeypatch):
    """Superset answers 422 now and then when two tenants create their objects at the same moment (seen in
    ``make up``); such a tenant is provisioned again alone, and the command succeeds. Superset itself is
    replaced here: the race cannot be produced on demand, the command's handling of it can."""
    import tenants.provisioning
    import tenants.superset.provision
    import tenants.superset.roles
    from portal import superset_cli

    for ags in ("06534014", "06631009"):
        assert run("tenants", "create", ags, "--active").exit_code == 0
    monkeypatch.setattr(superset_cli, "_wait_for_superset", lambda url, seconds=120: None)
    monkeypatch.setattr(tenants.superset.provision, "client", lambda *a, **k: None)
    monkeypatch.setattr(tenants.superset.roles, "ensure_base_roles", lambda api: None)
    calls: list[int] = []
    lock, failed_once = threading.Lock(), set()

    def provision_tenant(tenant_id):
        with lock:  # exactly one call fails, whichever thread comes first
            calls.append(tenant_id)
            fail = not failed_once
            failed_once.add(tenant_id)
        if fail:
            raise RuntimeError("Superset POST /api/v1/dataset/ answered 422")
        return {"status": "succeeded"}

    monkeypatch.setattr(tenants.provisioning, "provision_tenant", provision_tenant)
    result = run("superset", "provision", "--parallel", "2")
    assert result.exit_code == 0, result.output
    assert "Again, one at a time: 1 tenant(s)." in result.output
    assert len(calls) == 3 and result.output.count(": succeeded") == 2

    # A tenant that fails alone too makes the command fail.
    monkeypatch.setattr(tenants.provisioning, "provision_tenant", lambda tenant_id: 1 / 0)
    failed = run("superset", "provision", "--parallel", "2")
    assert failed.exit_code == 1 and failed.output.count("failed: ZeroDivisionError") == 4
