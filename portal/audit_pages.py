"""The audit log pages (a tenant admin's, the operator's view of one tenant, the platform's): German
labels for the action codes, readable subjects, filter and paging.

Codes stay as they are in the database (they are what scripts and the archive read); only the pages
translate them. An unknown code is shown as it is, so a new action is never hidden.
"""

from __future__ import annotations

from datetime import date

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tenants import audit

ACTIONS = {
    "login": _l("Signed in"),
    "login.refused": _l("Sign-in refused"),
    "logout": _l("Signed out"),
    "user.role_changed": _l("Role changed"),
    "user.deactivated": _l("User deactivated"),
    "user.reactivated": _l("User reactivated"),
    "identity_provider.saved": _l("Identity provider settings saved"),
    "open_data.publish": _l("Open Data published"),
    "open_data.withdraw": _l("Open Data withdrawn"),
    "tenant.signed_up": _l("Municipality signed up"),
    "tenant.approve": _l("Tenant approved"),
    "tenant.reject": _l("Sign-up rejected"),
    "tenant.suspend": _l("Tenant suspended"),
    "tenant.reactivate": _l("Tenant reactivated"),
    "tenant.offboard": _l("Tenant taken out of service"),
    "tenant.purged": _l("Tenant's data deleted"),
    "tenant.archive_downloaded": _l("Tenant's data downloaded"),
    "tenant.provisioning_started": _l("Set-up of dashboards started"),
    "break_glass.admin_granted": _l("Emergency access: administrator restored"),
    "break_glass.identity_restored": _l("Emergency access: identity provider settings restored"),
    "operator.deactivated": _l("Operator deactivated"),
    "operator.reactivated": _l("Operator reactivated"),
    "tenant.archive_created": _l("Export of the tenant's data created"),
    "tenant.purge_requested": _l("Deletion of the tenant's data requested"),
    "benchmark.participation": _l("Participation in the comparison changed"),
    "benchmark.peers": _l("Own comparison group chosen"),
    "zsk.export": _l("Figures exported for the ZSK"),
}

#: Targets the code writes as fixed words (others are addresses, AGS or names and are shown as they are).
TARGETS = {"zsk": _l("ZSK export"), "all tenants": _l("all tenants"), "open_data": _l("Open Data")}

DETAIL_KEYS = {
    "role": _l("role"), "reason": _l("reason"), "client_id": _l("client id"), "secret_changed": _l("secret changed"),
    "role_claim": _l("role claim"), "email_claim": _l("e-mail claim"), "scopes": _l("scopes"),
    "datasets": _l("datasets"), "dataset": _l("dataset"), "licence": _l("licence"), "rows": _l("rows"),
    "attempted": _l("tried by"), "address": _l("address"), "version": _l("version"),
    "bytes": _l("size in bytes"), "domains": _l("e-mail domains"), "existing_account": _l("existing account"),
    "joined": _l("joined"), "withdrawn": _l("left"), "name": _l("name"), "new_version": _l("new version"),
    "tables": _l("tables"), "tenant": _l("municipality"),
}

#: Detail values that are codes of a vocabulary: shown by their names.
FAMILY_DETAILS = {"joined", "withdrawn"}


def action_text(code: str) -> str:
    return str(ACTIONS[code]) if code in ACTIONS else code


def target_text(action: str, target: str | None) -> str:
    """What an entry is about: the comparison's areas by name, fixed words translated, the rest as it is."""
    from portal.views.benchmark import family_label

    if not target:
        return ""
    if action == "benchmark.participation":
        return ", ".join(family_label(family) for family in target.split(","))
    return str(TARGETS[target]) if target in TARGETS else target


def actor_text(actor: str) -> str:
    """``user:12 a@b.de`` → ``a@b.de``; operators, sign-up contacts, attempts and the command line in words."""
    kind, _sep, rest = actor.partition(":") if actor.startswith(("user:", "operator:")) else ("", "", actor)
    if kind == "user":
        return rest.partition(" ")[2] or rest
    if kind == "operator":
        return _("%(who)s (platform operation)", who=rest.partition(" ")[2] or rest)
    word, _sep, who = actor.partition(" ")
    if word == "contact":
        return _("%(who)s (contact person)", who=who)
    if word == "attempt":
        return _("%(who)s (sign-in attempt)", who=who)
    return {"anonymous": _("unknown"), "cli": _("command line (platform operation)")}.get(actor, actor)


def detail_items(details: dict) -> list[tuple[str, str]]:
    from portal.views.tenant import role_label

    items = []
    for key, value in (details or {}).items():
        if key == "role":
            value = role_label(value)
        elif key in FAMILY_DETAILS and isinstance(value, list):
            from portal.views.benchmark import family_label

            value = ", ".join(family_label(family) for family in value) or "–"
        elif key == "licence" and isinstance(value, str):
            from tenants.opendata.publication import LICENCES

            value = LICENCES[value].title if value in LICENCES else value
        elif key in ("datasets", "dataset"):
            from tenants.opendata.datasets import DATASETS

            names = value if isinstance(value, list) else [value]
            value = ", ".join(DATASETS[name].title if name in DATASETS else str(name) for name in names)
        elif isinstance(value, bool):
            value = _("yes") if value else _("no")
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        items.append((str(DETAIL_KEYS.get(key, key)), str(value)))
    return items


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def requested_filter() -> audit.Filter:
    return audit.Filter(action=request.args.get("action", "")[:100], text=request.args.get("q", "").strip()[:200],
                        since=_day("since"), until=_day("until"), page=request.args.get("page", 1, type=int) or 1)


def audit_page(template: str, model, tenant_id: int | None = None, **context):
    """Render ``template`` with one filtered page of the log (``events``, ``filter``, ``has_next``, ``actions``)."""
    wanted = requested_filter()
    events, has_next, actions = audit.search(model, wanted, tenant_id)
    return render_template(template, events=events, filter=wanted, has_next=has_next, actions=actions, **context)


def page_url(page: int) -> str:
    """The current audit page's address with another page number (the filter kept)."""
    from flask import url_for

    args = {**request.view_args, **request.args.to_dict(), "page": page}
    return url_for(request.endpoint, **args)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(audit_action=action_text, audit_actor=actor_text, audit_details=detail_items,
                                 audit_target=target_text, audit_page_url=page_url)
