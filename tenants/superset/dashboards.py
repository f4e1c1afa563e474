"""Clone the dashboard templates into one tenant's Superset, idempotently.

A tenant's dashboard is found by its slug ``t<AGS>-<template key>``, its
charts by name among the dashboard's charts. Everything is compared with
what the template renders and written only when it differs, so a second
run changes nothing and a roll-out touches only what a new template
version changed.
"""

from __future__ import annotations

import json
from typing import Any

from tenants.settings import get_settings
from tenants.superset import templates
from tenants.superset.client import SupersetClient, rison


def slug(ags: str, key: str) -> str:
    return f"t{ags}-{key}"


def _portal_origins() -> list[str]:
    return [get_settings().portal_url]


def _ensure_dashboard(api: SupersetClient, ags: str, tenant_name: str, template: dict, roles: list[int]) -> int:
    wanted = {"dashboard_title": f"{template['title']} – {tenant_name}", "slug": slug(ags, template["key"]),
              "published": True}
    found = api.find_one("dashboard", slug=wanted["slug"])
    if found is None:
        return api.post("/api/v1/dashboard/", {**wanted, "roles": roles})["id"]
    current = api.get(f"/api/v1/dashboard/{found['id']}")["result"]
    if (any(current.get(k) != v for k, v in wanted.items())
            or sorted(r["id"] for r in current.get("roles", [])) != sorted(roles)):
        api.put(f"/api/v1/dashboard/{found['id']}", {**wanted, "roles": roles})
    return found["id"]


def _ensure_charts(api: SupersetClient, dashboard_id: int, template: dict, dataset_ids: dict[str, int],
                   known: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``known`` maps chart keys to the ids of the last run, so a renamed chart is updated, not replaced."""
    on_dashboard = {c["id"]: c["slice_name"] for c in api.get(f"/api/v1/dashboard/{dashboard_id}/charts")["result"]}
    existing = {name: chart_id for chart_id, name in on_dashboard.items()}
    for key, chart_id in known.items():
        if chart_id in on_dashboard:
            existing[key] = existing.pop(on_dashboard[chart_id])
    charts = {}
    for chart in template["charts"]:
        dataset_id = dataset_ids[chart["dataset"]]
        params = templates.chart_params(chart, dataset_id)
        payload = {"slice_name": chart["name"], "viz_type": chart["viz_type"], "datasource_id": dataset_id,
                   "datasource_type": "table", "params": json.dumps(params, ensure_ascii=False),
                   "dashboards": [dashboard_id]}
        chart_id = existing.pop(chart["key"], None) or existing.pop(chart["name"], None)
        if chart_id is None:
            chart_id = api.post("/api/v1/chart/", payload)["id"]
            current = api.get(f"/api/v1/chart/{chart_id}")["result"]
        else:
            current = api.get(f"/api/v1/chart/{chart_id}")["result"]
            if (current["slice_name"] != chart["name"] or current["viz_type"] != chart["viz_type"]
                    or json.loads(current["params"] or "{}") != params
                    or current.get("datasource_id", dataset_id) != dataset_id):
                api.put(f"/api/v1/chart/{chart_id}", payload)
        charts[chart["key"]] = {"id": chart_id, "uuid": current["uuid"], "name": chart["name"]}
    for chart_id in existing.values():  # charts a newer template no longer has
        api.delete(f"/api/v1/chart/{chart_id}")
    return charts


def _ensure_layout(api: SupersetClient, dashboard_id: int, template: dict, charts: dict, dataset_ids: dict) -> None:
    position = templates.position(template, charts)
    metadata = templates.json_metadata(template, charts, dataset_ids)
    current = api.get(f"/api/v1/dashboard/{dashboard_id}")["result"]
    current_meta = json.loads(current.get("json_metadata") or "{}")
    # Superset adds keys of its own to the metadata; compare only ours.
    if (json.loads(current.get("position_json") or "{}") != position
            or any(current_meta.get(k) != v for k, v in metadata.items())):
        api.put(f"/api/v1/dashboard/{dashboard_id}", {"position_json": json.dumps(position, ensure_ascii=False),
                                                     "json_metadata": json.dumps(metadata, ensure_ascii=False)})


def _ensure_embedded(api: SupersetClient, dashboard_id: int) -> str:
    origins = _portal_origins()
    response = api.request("GET", f"/api/v1/dashboard/{dashboard_id}/embedded", expect=(200, 404))
    if response.status_code == 200:
        current = response.json()["result"]
        if sorted(current.get("allowed_domains") or []) == sorted(origins):
            return current["uuid"]
    return api.post(f"/api/v1/dashboard/{dashboard_id}/embedded", {"allowed_domains": origins})["result"]["uuid"]


def ensure_dashboards(api: SupersetClient, ags: str, tenant_name: str, dataset_ids: dict[str, int],
                      role_ids: dict[str, int], previous: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``previous`` is what the last run recorded (chart ids by key)."""
    result = {}
    for key, template in templates.dashboards().items():
        dashboard_id = _ensure_dashboard(api, ags, tenant_name, template, sorted(role_ids.values()))
        known = previous.get(key, {}).get("charts", {})
        charts = _ensure_charts(api, dashboard_id, template, dataset_ids, known)
        _ensure_layout(api, dashboard_id, template, charts, dataset_ids)
        result[key] = {"id": dashboard_id, "embedded_uuid": _ensure_embedded(api, dashboard_id),
                       "title": template["title"], "fingerprint": templates.fingerprint(template),
                       "charts": {k: c["id"] for k, c in charts.items()}}
    remove_dashboards(api, ags, keep={slug(ags, key) for key in result})  # templates that were dropped
    return result


def remove_dashboards(api: SupersetClient, ags: str, keep: set[str] | frozenset = frozenset()) -> None:
    """Every dashboard with the tenant's slug prefix (except ``keep``), with its charts and embedding."""
    prefix = f"t{ags}-"
    query = {"filters": [{"col": "slug", "opr": "sw", "value": prefix}], "page": 0, "page_size": 100}
    for dashboard in api.get("/api/v1/dashboard/", params={"q": rison(query)})["result"]:
        if not (dashboard.get("slug") or "").startswith(prefix) or dashboard["slug"] in keep:
            continue
        for chart in api.get(f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]:
            api.delete(f"/api/v1/chart/{chart['id']}")
        api.request("DELETE", f"/api/v1/dashboard/{dashboard['id']}/embedded", expect=(200, 204, 404))
        api.delete(f"/api/v1/dashboard/{dashboard['id']}")
