"""With a guest token of tenant A, no path of Superset's chart-data API returns a row of tenant B.

Two layers keep tenants apart: the RLS clause in the guest token, and
underneath it the tenant's database login role, whose policy binds rows to
``current_user``. The last tests take the first layer away to show that the
second holds on its own.
"""

from __future__ import annotations

import csv
import io

import pytest
import requests

from tenants.superset import guest
from tests.superset.conftest import without_row_rules


@pytest.fixture(scope="module")
def ctx(ss_app, tenants_ab, superset_settings):
    from tenants.superset.provision import load_state

    with ss_app.app_context():
        state_a, state_b = load_state(tenants_ab.a.id), load_state(tenants_ab.b.id)
    return {"a": tenants_ab.a, "b": tenants_ab.b, "state_a": state_a, "state_b": state_b,
            "settings": superset_settings}


def token_of_a(ctx, rls: bool = True) -> str:
    dashboard = ctx["state_a"]["dashboards"]["overview"]
    if rls:
        return guest.mint(ctx["settings"], ctx["a"].id, ctx["a"].ags, dashboard["embedded_uuid"], "test-guest")
    return without_row_rules(ctx["settings"], guest.mint(ctx["settings"], ctx["a"].id, ctx["a"].ags,
                                                         dashboard["embedded_uuid"], "test-guest"))


def chart_data(ctx, token: str, query: dict, *, state: str = "state_a", chart: str | None = "by_service",
               dataset: str = "egov_service_daily", result_type: str = "full", result_format: str = "json",
               dashboard: str = "overview"):
    st = ctx[state]
    dashboard = st["dashboards"][dashboard]
    dataset_id = st["datasets"][dataset]
    form_data = {"dashboardId": dashboard["id"], "viz_type": "table", "datasource": f"{dataset_id}__table"}
    if chart:
        form_data["slice_id"] = dashboard["charts"][chart]
    body = {"datasource": {"id": dataset_id, "type": "table"}, "force": True, "form_data": form_data,
            "queries": [{"filters": [], "extras": {"where": "", "having": ""}, "row_limit": 10000,
                         "time_range": "No filter", **query}],
            "result_format": result_format, "result_type": result_type}
    return requests.post(ctx["settings"].superset_url + "/api/v1/chart/data", json=body, timeout=60,
                         headers={"X-GuestToken": token})


def tenant_ids(response) -> list[int]:
    assert response.status_code == 200, response.text[:500]
    rows = [row for result in response.json()["result"] for row in result["data"]]
    assert rows, "the query returned nothing, so it proves nothing"
    return sorted({int(row["tenant_id"]) for row in rows})


SUM_STARTED = {"expressionType": "SQL", "sqlExpression": "SUM(started)", "label": "Begonnen"}


def test_chart_data_of_the_saved_chart_with_an_added_tenant_column(ctx):
    response = chart_data(ctx, token_of_a(ctx), {"columns": ["tenant_id", "service"], "metrics": [SUM_STARTED]})
    assert tenant_ids(response) == [ctx["a"].id]


def test_samples(ctx):
    response = chart_data(ctx, token_of_a(ctx), {"columns": [], "metrics": []}, result_type="samples")
    assert tenant_ids(response) == [ctx["a"].id]


def test_drill_to_detail(ctx):
    response = chart_data(ctx, token_of_a(ctx), {"columns": [], "metrics": []}, chart=None,
                          result_type="drill_detail")
    assert tenant_ids(response) == [ctx["a"].id]


def test_csv_export(ctx):
    response = chart_data(ctx, token_of_a(ctx), {"columns": ["tenant_id", "day", "started"], "metrics": []},
                          result_format="csv")
    assert response.status_code == 200, response.text[:300]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=","))
    # The export labels columns with their German names ("Interne Mandantennummer" is tenant_id).
    assert len(rows) > 100 and {row["Interne Mandantennummer"] for row in rows} == {str(ctx["a"].id)}


def test_tampered_query_context(ctx):
    b = ctx["b"].id
    query = {"columns": ["tenant_id"],
             "metrics": [{"expressionType": "SQL", "sqlExpression": "COUNT(DISTINCT tenant_id)", "label": "n"}],
             "extras": {"where": f"1 = 1 OR tenant_id = {b}", "having": ""},
             "filters": [{"col": "tenant_id", "op": "IN", "val": [ctx["a"].id, b]}]}
    response = chart_data(ctx, token_of_a(ctx), query)
    assert tenant_ids(response) == [ctx["a"].id]


def test_tampered_context_naming_the_other_tenants_dataset(ctx):
    response = chart_data(ctx, token_of_a(ctx), {"columns": ["tenant_id"], "metrics": [SUM_STARTED]},
                          state="state_b", chart=None)
    assert response.status_code in (403, 404)
    assert "result" not in response.json()


@pytest.mark.parametrize("result_type", ["full", "samples", "drill_detail"])
def test_database_role_alone_keeps_b_out(ctx, result_type):
    """A token without any RLS clause (the portal never mints one): the database role still binds the rows."""
    query = {"columns": ["tenant_id"], "metrics": [SUM_STARTED]} if result_type == "full" else \
        {"columns": [], "metrics": []}
    response = chart_data(ctx, token_of_a(ctx, rls=False), query, result_type=result_type,
                          chart=None if result_type == "drill_detail" else "by_service")
    assert tenant_ids(response) == [ctx["a"].id]
