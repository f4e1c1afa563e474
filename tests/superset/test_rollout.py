"""A new template version reaches every tenant, and the operator sees which tenants differed."""

from __future__ import annotations

import copy

from click.testing import CliRunner

from tenants.superset import templates


def test_rollout_reports_and_updates_differing_tenants(ss_app, tenants_ab, monkeypatch):
    from tenants.superset.provision import client, load_state
    from tenants.superset.rollout import differences, rollout

    tenants = [tenants_ab.a, tenants_ab.b]
    original = templates.dashboards()
    newer = copy.deepcopy(original)
    newer["overview"]["version"] += 1
    newer["overview"]["charts"][0]["name"] = "Begonnene Vorgänge insgesamt"
    with ss_app.app_context():
        assert [differences(t.id) for t in tenants] == [[], []]
        assert _check(ss_app).exit_code == 0

        monkeypatch.setattr(templates, "dashboards", lambda: newer)
        report = _check(ss_app)
        assert report.exit_code == 1
        assert f"{tenants_ab.a.ags} " in report.output and f"{tenants_ab.b.ags} " in report.output
        assert "2 of 2 tenant(s) differ" in report.output

        result = rollout(tenants)
        assert [r.error for r in result] == [None, None] and all(r.differences for r in result)
        assert [differences(t.id) for t in tenants] == [[], []]
        chart_id = load_state(tenants_ab.a.id)["dashboards"]["overview"]["charts"]["started_total"]
        assert client().get(f"/api/v1/chart/{chart_id}")["result"]["slice_name"] == "Begonnene Vorgänge insgesamt"

        monkeypatch.setattr(templates, "dashboards", lambda: original)  # and back, for the other tests
        rollout(tenants)
        assert client().get(f"/api/v1/chart/{chart_id}")["result"]["slice_name"] == "Begonnene Vorgänge"


def _check(app):
    """``egov superset rollout --check``; the command builds its app from the environment, the test's stands in."""
    import portal
    from portal.cli import main

    original = portal.create_app
    portal.create_app = lambda *a, **k: app
    try:
        return CliRunner().invoke(main, ["superset", "rollout", "--check"])
    finally:
        portal.create_app = original


def test_rollout_gives_tenants_provisioned_before_it_the_vergleich_dashboard(ss_app, tenants_ab, monkeypatch):
    from tenants.superset.provision import load_state, provision_objects
    from tenants.superset.rollout import differences, rollout

    a = tenants_ab.a
    current = templates.dashboards()
    before = {key: template for key, template in current.items() if key != "benchmark"}
    with ss_app.app_context():
        monkeypatch.setattr(templates, "dashboards", lambda: before)
        provision_objects(a.id)  # as provisioned before the template existed: the dashboard goes
        assert "benchmark" not in load_state(a.id)["dashboards"]

        monkeypatch.setattr(templates, "dashboards", lambda: current)
        assert [d.split(":")[0] for d in differences(a.id)] == ["benchmark"]
        assert "benchmark: missing" in _check(ss_app).output
        assert [r.error for r in rollout([a])] == [None]
        assert differences(a.id) == []
        assert load_state(a.id)["dashboards"]["benchmark"]["embedded_uuid"]


def test_rollout_removes_a_chart_the_newer_template_dropped(ss_app, tenants_ab, monkeypatch):
    """The import overwrites what the bundle has; a chart a template no longer has goes from Superset too."""
    from tenants.superset.provision import client, load_state
    from tenants.superset.rollout import differences, rollout

    a = tenants_ab.a
    original = templates.dashboards()
    newer = copy.deepcopy(original)
    newer["overview"]["version"] += 1
    dropped = newer["overview"]["charts"].pop()["key"]
    newer["overview"]["rows"] = [[k for k in row if k != dropped] for row in newer["overview"]["rows"]]
    newer["overview"]["rows"] = [row for row in newer["overview"]["rows"] if row]
    with ss_app.app_context():
        before = load_state(a.id)["dashboards"]["overview"]
        chart_id = before["charts"][dropped]
        monkeypatch.setattr(templates, "dashboards", lambda: newer)
        assert [r.error for r in rollout([a])] == [None]
        api = client()
        assert api.request("GET", f"/api/v1/chart/{chart_id}", expect=(200, 404)).status_code == 404
        on_dashboard = {c["id"] for c in api.get(f"/api/v1/dashboard/{before['id']}/charts")["result"]}
        assert on_dashboard == set(load_state(a.id)["dashboards"]["overview"]["charts"].values())
        assert len(on_dashboard) == len(original["overview"]["charts"]) - 1

        monkeypatch.setattr(templates, "dashboards", lambda: original)  # and back, for the other tests
        rollout([a])
        assert differences(a.id) == []
        assert len(api.get(f"/api/v1/dashboard/{before['id']}/charts")["result"]) == len(original["overview"]["charts"])
