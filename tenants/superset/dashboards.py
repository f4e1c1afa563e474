"""The tenant's ready-made dashboards in Superset: embedding and removal.

The dashboards themselves, with their charts, come from the tenant's import bundle
(:mod:`tenants.superset.bundle`), found again by their slug ``t<AGS>-<template key>``.
"""

from __future__ import annotations

from tenants.settings import get_settings
from tenants.superset.client import SupersetClient


def _portal_origins() -> list[str]:
    return [get_settings().portal_url]


def ensure_embedded(api: SupersetClient, dashboard_id: int, new: bool = False) -> str:
    """The dashboard's embedding UUID, embedding allowed for the portal's origin only (written when it differs;
    ``new``: the dashboard was just created, so it has none yet)."""
    origins = _portal_origins()
    response = None if new else api.request("GET", f"/api/v1/dashboard/{dashboard_id}/embedded", expect=(200, 404))
    if response is not None and response.status_code == 200:
        current = response.json()["result"]
        if sorted(current.get("allowed_domains") or []) == sorted(origins):
            return current["uuid"]
    return api.post(f"/api/v1/dashboard/{dashboard_id}/embedded", {"allowed_domains": origins})["result"]["uuid"]


def remove_dashboard(api: SupersetClient, dashboard_id: int) -> None:
    """One dashboard with its charts and its embedding."""
    for chart in api.get(f"/api/v1/dashboard/{dashboard_id}/charts")["result"]:
        api.delete(f"/api/v1/chart/{chart['id']}")
    api.request("DELETE", f"/api/v1/dashboard/{dashboard_id}/embedded", expect=(200, 204, 404))
    api.delete(f"/api/v1/dashboard/{dashboard_id}")
