"""The provisioning job runs registered steps in order, records progress, and can be re-run."""

import pytest

from tenants import provisioning


@pytest.fixture
def steps(monkeypatch):
    """A clean step registry for the test, with a step that fails once."""
    monkeypatch.setattr(provisioning, "_STEPS", {})
    calls = []
    flaky = {"fail": True}

    def second(tenant_id):
        calls.append(("second", tenant_id))
        if flaky["fail"]:
            flaky["fail"] = False
            raise RuntimeError("Superset antwortet nicht")

    provisioning.register_step("second", second, lambda t: calls.append(("undo-second", t)), order=20)
    provisioning.register_step("first", lambda t: calls.append(("first", t)), lambda t: calls.append(("undo-first", t)),
                               order=10)
    return calls


def test_failed_step_is_recorded_and_a_rerun_completes(app, two_tenants, steps):
    a = two_tenants.a.id
    with app.app_context():
        with pytest.raises(RuntimeError):
            provisioning.provision_tenant(a)
        state = provisioning.provisioning_state(a)
        assert state["status"] == "failed"
        assert [(s["name"], s["status"]) for s in state["steps"]] == [("first", "done"), ("second", "failed")]
        assert "Superset antwortet nicht" in state["steps"][1]["error"]

        assert provisioning.provision_tenant(a)["status"] == "succeeded"
        assert provisioning.provisioning_state(a)["status"] == "succeeded"
        # Another tenant's progress is its own.
        assert provisioning.provisioning_state(two_tenants.b.id) is None

        provisioning.deprovision_tenant(a)
    assert steps == [("first", a), ("second", a), ("first", a), ("second", a), ("undo-second", a), ("undo-first", a)]
