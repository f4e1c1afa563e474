"""What one tenant's comparison page shows: its own values against its groups' published figures.

Call inside the request's (or a) transaction bound to the tenant: the own
values come from the tenant's rollups under RLS; the group figures come from
the ``benchmark`` schema, which holds group figures only. Another tenant's
value is never read here, so it cannot be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenants.benchmark import participation
from tenants.benchmark.aggregate import GroupFigure, rank_band
from tenants.benchmark.groups import HESSEN, Member, groups_of
from tenants.benchmark.metrics import ABANDON_STEP, BASE_METRICS, metric_for, tenant_values
from tenants.models import Region, Tenant


@dataclass
class Cell:
    """One group's figures for one metric on the page."""

    figure: GroupFigure | None
    mode_label: str | None = None
    mode_reason: str = ""
    band: str | None = None


@dataclass
class Row:
    key: str
    label: str
    unit: str
    family: str
    own: float | str | None
    cells: dict[str, Cell] = field(default_factory=dict)
    #: The cases the own value rests on (None for the step label): below ``min_cases`` it is shown to the
    #: tenant but enters no comparison, and the page says so.
    own_cases: int | None = None


@dataclass
class Comparison:
    leika: str
    service_name: str
    month: date | None
    months: list[date]
    groups: list[tuple[str, str, str]]
    rows: list[Row]
    participating: set[str]
    withdrawn_pending: set[str]
    refreshed_at: datetime | None


def last_refresh(session: Session) -> datetime | None:
    return session.execute(text("SELECT max(finished_at) FROM benchmark.refresh_runs WHERE status = 'succeeded'")
                           ).scalar()


def member_of(session: Session, tenant: Tenant) -> Member:
    region = session.get(Region, tenant.ags)
    return Member(tenant.id, region.ags, region.kind, region.kreis_ags, region.kreis_name, region.population)


def shown_groups(session: Session, tenant: Tenant, member: Member | None = None) -> list[tuple[str, str, str]]:
    """The (kind, key, label) of the groups the tenant's page shows: Hessen, its Landkreis, its size class and,
    once chosen, its own peer group. The Superset dashboard shows the same groups (tenants/superset/embedding.py).
    """
    member = member or member_of(session, tenant)
    return groups_of(member, bool(participation.peers(session, tenant.id)))


def services(session: Session, tenant_id: int) -> list[tuple[str, str]]:
    """The tenant's services that have a LeiKa key: [(leika, name)], by name."""
    rows = session.execute(text(
        "SELECT DISTINCT ON (leika) leika, name FROM ("
        " SELECT CASE WHEN service_key ~ '^99[0-9]{12}$' THEN service_key ELSE leika_key END AS leika, name"
        " FROM analytics.services WHERE tenant_id = :tenant) s WHERE leika IS NOT NULL ORDER BY leika, name"),
        {"tenant": tenant_id}).all()
    return sorted(((leika, name) for leika, name in rows), key=lambda r: r[1].lower())


def _figures(session: Session, group_keys: list[str], leika: str, month: date) -> dict:
    rows = session.execute(text(
        "SELECT group_key, metric, contributors_band, q1, median, q3, mode_label, suppressed "
        "FROM benchmark.figures WHERE service_key = :leika AND month = :month AND group_key = ANY(:groups)"),
        {"leika": leika, "month": month, "groups": group_keys}).all()
    found = {}
    for group, metric, band, q1, median, q3, mode, suppressed in rows:
        reasons = dict(part.split("=", 1) for part in suppressed.split(",") if part)
        found[(group, metric)] = (GroupFigure(band, q1, median, q3, reasons), mode, reasons.get("mode", ""))
    return found


def _ordered_metrics(keys: set[str]) -> list[str]:
    fixed = [m.key for m in BASE_METRICS[:3]] + [ABANDON_STEP.key]
    shares = sorted(k for k in keys if ":" in k)
    return [k for k in fixed if k in keys] + shares + [k for k in ("satisfaction",) if k in keys]


def comparison(session: Session, tenant: Tenant, leika: str, month: date | None, today: date) -> Comparison:
    member = member_of(session, tenant)
    names = dict(services(session, tenant.id))
    own = tenant_values(session, tenant.id, member.population, today)
    months = sorted({m for (lk, m, _) in own.values if lk == leika}, reverse=True)
    month = month if month in months else (months[0] if months else None)
    states = participation.families(session, tenant.id)
    participating = {f for f, s in states.items() if s["opted_in"]}
    refreshed_at = last_refresh(session)
    withdrawn_pending = {f for f, s in states.items() if not s["opted_in"] and s["changed_at"] and refreshed_at
                         and datetime.fromisoformat(s["changed_at"]) > refreshed_at}
    groups = shown_groups(session, tenant, member)
    published = _figures(session, [key for _, key, _ in groups], leika, month) if month else {}
    keys = {metric for (lk, m, metric) in own.values if lk == leika and m == month}
    if (leika, month) in own.steps or any(metric == ABANDON_STEP.key for _, metric in published):
        keys.add(ABANDON_STEP.key)
    rows = []
    for key in _ordered_metrics(keys):
        metric = metric_for(key)
        value = None  # the step label rests on no counted value of its own
        if key == ABANDON_STEP.key:
            own_value = own.steps.get((leika, month), (None,))[0]
        else:
            value = own.values.get((leika, month, key))
            own_value = value.value if value else None
        row = Row(key, metric.label, metric.unit, metric.family, own_value,
                  own_cases=value.base if value else None)
        if metric.family in participating:
            for _, group_key, _ in groups:
                figure, mode, mode_reason = published.get((group_key, key), (None, None, ""))
                band = rank_band(own_value, figure) if key != ABANDON_STEP.key else None
                row.cells[group_key] = Cell(figure, mode, mode_reason, band)
        rows.append(row)
    return Comparison(leika, names.get(leika, leika), month, months, groups, rows, participating, withdrawn_pending,
                      refreshed_at)


@dataclass(frozen=True)
class OverviewLine:
    """One service on the comparison overview: the tenant's own value of ``metric`` in the service's latest
    month against the published Hessen median. ``why`` says why no median is shown: "" (shown),
    ``not_participating``, ``not_refreshed`` (no comparison has run since), ``withheld`` (with
    ``withheld_reason``, the rule's key) or ``missing``."""

    leika: str
    name: str
    month: date | None
    own: float | None
    median: float | None
    band: str | None
    why: str
    withheld_reason: str = ""


OVERVIEW_METRIC = "completion_rate"


def overview(session: Session, tenant: Tenant, today: date, metric: str = OVERVIEW_METRIC) -> list[OverviewLine]:
    """Per service with a LeiKa key: own value against the Hessen median (see :class:`OverviewLine`)."""
    member = member_of(session, tenant)
    own = tenant_values(session, tenant.id, member.population, today)
    participating = participation.families(session, tenant.id)[metric_for(metric).family]["opted_in"]
    refreshed = last_refresh(session) is not None
    lines = []
    for leika, name in services(session, tenant.id):
        months = sorted({m for (lk, m, _) in own.values if lk == leika}, reverse=True)
        month = months[0] if months else None
        value = own.values.get((leika, month, metric)) if month else None
        own_value = value.value if value else None
        figure, why, reason = None, "", ""
        if not participating:
            why = "not_participating"
        elif not refreshed:
            why = "not_refreshed"
        elif month is not None:
            figure = _figures(session, [HESSEN], leika, month).get((HESSEN, metric), (None,))[0]
            if figure is None:
                why = "missing"
            elif figure.median is None:
                why, reason = "withheld", figure.suppressed.get("median", "group")
        else:
            why = "missing"
        lines.append(OverviewLine(leika, name, month, own_value, figure.median if figure else None,
                                  rank_band(own_value, figure), why, reason))
    return lines
