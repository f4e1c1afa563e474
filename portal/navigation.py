"""The main menu: every page a signed-in person may use, one click from every page.

One list per kind of principal; each entry names its endpoint and the lowest role that may open it
(the same role its view declares with ``role_required``). tests/test_start_page.py checks the lists
against the routes, so a new page without a menu entry fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user


@dataclass(frozen=True)
class Entry:
    endpoint: str
    label: object  # a lazy string: rendered in the request's language
    role: str  # viewer, editor, admin or operator
    group: object


_WORK, _DATA, _ADMIN, _OPERATE = _l("Evaluate"), _l("Data"), _l("Administration"), _l("Operation")

TENANT_MENU = (
    Entry("tenant_home.index", _l("Start"), "viewer", _WORK),
    Entry("tenant_dashboards.show", _l("Dashboards"), "viewer", _WORK),
    Entry("tenant_benchmark.overview", _l("Comparison"), "viewer", _WORK),
    Entry("tenant_dashboards.self_service", _l("Build your own charts"), "editor", _WORK),
    Entry("tenant_ingest.index", _l("Uploads and data sources"), "editor", _DATA),
    Entry("tenant_ingest.formats", _l("File formats"), "editor", _DATA),
    Entry("tenant_ingest.format_documentation", _l("Data format (technical)"), "editor", _DATA),
    Entry("tenant_ingest.health", _l("Ingest health"), "admin", _DATA),
    Entry("tenant_ingest.services", _l("Service names"), "admin", _DATA),
    Entry("tenant_opendata.overview", _l("Open Data"), "admin", _DATA),
    Entry("tenant_benchmark.settings", _l("Comparison participation"), "admin", _ADMIN),
    Entry("tenant_admin.users", _l("Users"), "admin", _ADMIN),
    Entry("tenant_admin.identity_provider", _l("Identity provider"), "admin", _ADMIN),
    Entry("tenant_admin.audit_log", _l("Audit log"), "admin", _ADMIN),
)

OPERATOR_MENU = (
    Entry("operator.index", _l("Tenants"), "operator", _OPERATE),
    Entry("operator_benchmark.operator_overview", _l("Comparison refreshes"), "operator", _OPERATE),
    Entry("operator.platform_audit", _l("Platform audit log"), "operator", _OPERATE),
)


def menu() -> list[tuple[object, list[dict]]]:
    """The signed-in principal's menu as ``[(group label, [{"label", "url", "current"}])]``; empty when
    nobody is signed in. The current page's entry has ``current`` set (``aria-current``)."""
    if not current_user.is_authenticated:
        return []
    if current_user.is_operator:
        entries = OPERATOR_MENU
    else:
        entries = [e for e in TENANT_MENU if current_user.has_role(e.role)]
    groups: dict[object, list[dict]] = {}
    for entry in entries:
        current = request.endpoint == entry.endpoint
        groups.setdefault(entry.group, []).append(
            {"label": entry.label, "url": url_for(entry.endpoint), "current": current})
    return list(groups.items())


def init_app(app: Flask) -> None:
    app.jinja_env.globals["main_menu"] = menu
