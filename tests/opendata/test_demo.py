"""`egov demo seed` publishes demo Open Data once and respects a later withdrawal."""

from click.testing import CliRunner

from portal.cli import main

from .conftest import withdraw


def test_demo_seed_publishes_once(client, clean_db, staff):
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "seed"], catch_exceptions=False)
    assert "Open Data published by: Marburg, Universitätsstadt, Fulda" in first.output
    overview = client.get("/opendata/").get_data(as_text=True)
    assert "Marburg, Universitätsstadt" in overview and "Fulda" in overview
    assert client.get("/opendata/06534014/completion.csv").status_code == 200

    from types import SimpleNamespace

    from tenants.registry import get_tenant_by_ags

    with client.application.app_context():
        marburg = get_tenant_by_ags("06534014")
        marburg = SimpleNamespace(id=marburg.id, ags=marburg.ags)
    withdraw(staff(marburg), "06534014", "completion")
    again = runner.invoke(main, ["demo", "seed"], catch_exceptions=False)
    assert "Open Data published by: nobody new" in again.output
    assert client.get("/opendata/06534014/completion.csv").status_code == 410
