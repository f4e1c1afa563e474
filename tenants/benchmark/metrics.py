"""The compared metrics and how one tenant's values are computed from its own rollups.

Everything here runs inside ``tenant_transaction(tenant_id)``: RLS decides
what is read, and the same function computes the values the refresh job
compares and the own values the tenant's page shows, so both always agree.

Services are compared by LeiKa key only (a local service has no counterpart
elsewhere). Months are complete calendar months of the last
:data:`HISTORY_MONTHS`; the running month is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sqlalchemy.orm import Session

from tenants import vocabulary
from tenants.benchmark.aggregate import Value
from tenants.months import month_start

HISTORY_MONTHS = 36

#: Metric families a tenant opts into separately.
FAMILIES = ("usage", "payment", "authentication", "satisfaction")


@dataclass(frozen=True)
class Metric:
    key: str
    family: str
    label: str  # German
    unit: str  # "rate" (0–1), "per_1000", "rating"
    higher_is_better: bool | None = None


BASE_METRICS = (
    Metric("usage_per_1000", "usage", "Abgeschickte Anträge je 1.000 Einwohner", "per_1000", True),
    Metric("completion_rate", "usage", "Abschlussquote (abgeschickt ÷ begonnen)", "rate", True),
    Metric("abandonment_rate", "usage", "Abbruchquote (abgebrochen ÷ begonnen)", "rate", False),
    Metric("satisfaction", "satisfaction", "Zufriedenheit (mittlere Bewertung 1–5)", "rating", True),
)
#: The categorical metric: the step where most abandon.
ABANDON_STEP = Metric("abandon_step", "usage", "Schritt mit den meisten Abbrüchen", "label")

#: German labels of the codes (one source, shared with the Superset datasets: tenants/vocabulary.py).
PAYMENT_LABELS = vocabulary.PAYMENT_METHODS
AUTH_LABELS = vocabulary.AUTH_METHODS
TRUST_LABELS = vocabulary.TRUST_LEVELS


@lru_cache(maxsize=4096)
def metric_for(key: str) -> Metric:
    """The metric behind a key, including the share metrics named after a method or level."""
    for metric in (*BASE_METRICS, ABANDON_STEP):
        if metric.key == key:
            return metric
    prefix, _, name = key.partition(":")
    if prefix == "payment":
        return Metric(key, "payment", f"Anteil {PAYMENT_LABELS.get(name, name)} an den Zahlungen", "rate")
    if prefix == "auth":
        return Metric(key, "authentication", f"Anteil {AUTH_LABELS.get(name, name)} an den Anmeldungen", "rate")
    if prefix == "trust":
        return Metric(key, "authentication", f"Anteil Vertrauensniveau „{TRUST_LABELS.get(name, name)}“", "rate")
    raise KeyError(key)


def published_metrics() -> list[Metric]:
    """Every metric the refresh can publish, in display order (the Superset dataset labels them from this).

    Share metrics are named after the canonical vocabularies the analytics tables CHECK, plus
    ``unknown`` for rows without a method or level.
    """
    from tenants.canonical import AUTH_METHODS, PAYMENT_METHODS, TRUST_LEVELS

    shares = {"payment": {*PAYMENT_METHODS, *PAYMENT_LABELS}, "auth": {*AUTH_METHODS, *AUTH_LABELS},
              "trust": {*TRUST_LEVELS, *TRUST_LABELS}}
    keys = [m.key for m in (*BASE_METRICS, ABANDON_STEP)]
    keys += [f"{prefix}:{name}" for prefix, names in shares.items() for name in sorted(names | {"unknown"})]
    return [metric_for(key) for key in keys]


def since(today: date) -> date:
    """The first month compared on ``today``."""
    return month_start(today, HISTORY_MONTHS)


# LeiKa key of a rollup row: the service key itself when it is one, else the catalogue's leika_key.
_LEIKA = ("CASE WHEN length(r.service_key) = 14 AND left(r.service_key, 2) = '99' THEN r.service_key "
          "ELSE s.leika_key END")
_JOIN = "LEFT JOIN analytics.services s ON s.tenant_id = r.tenant_id AND s.service_key = r.service_key"
_WINDOW = "r.tenant_id = %(tenant)s AND r.day >= %(since)s AND r.day < %(until)s"
_MONTH = "date_trunc('month', r.day)::date"
_AUTH = "coalesce(nullif(r.auth_method, ''), 'unknown')"
_TRUST = "coalesce(nullif(r.trust_level, ''), 'unknown')"
# A share within its service and month (and kind, for the grouping sets), and that total.
_SHARE = ("coalesce(sum({x})::float8 / nullif(sum(sum({x})) OVER w, 0), 0), "
          "(sum(sum({x})) OVER w)::bigint")

# Constant SQL; only bound parameters vary. Every query but "steps" answers in the same shape,
# (leika, month, metric key, value, cases it rests on), so that reading a tenant costs one pass
# over the rows in Python: at Hessen's scale the refresh reads some eight million values.
_QUERIES = {
    "usage": f"""SELECT u.leika, u.month, m.metric, m.value, m.base FROM (
        SELECT {_LEIKA} AS leika, {_MONTH} AS month, sum(r.started)::bigint AS started,
               sum(r.submitted)::bigint AS submitted, sum(r.aborted)::bigint AS aborted
        FROM analytics.rollup_service_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2) u
        CROSS JOIN LATERAL (VALUES
            ('usage_per_1000', CASE WHEN %(population)s > 0
                                    THEN u.submitted::float8 * 1000 / %(population)s ELSE 0 END, u.submitted),
            ('completion_rate', coalesce(u.submitted::float8 / nullif(u.started, 0), 0), u.started),
            ('abandonment_rate', coalesce(u.aborted::float8 / nullif(u.started, 0), 0), u.started)
        ) m (metric, value, base)
        WHERE u.leika IS NOT NULL""",  # noqa: S608 - constant fragments
    "steps": f"SELECT {_LEIKA}, {_MONTH}, r.step_no, max(r.step_name), sum(r.aborted) "  # noqa: S608
             f"FROM analytics.rollup_step_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2, 3",
    "payment": f"""SELECT {_LEIKA}, {_MONTH}, 'payment:' || coalesce(nullif(r.payment_method, ''), 'unknown'),
               {_SHARE.format(x="r.payments")}
        FROM analytics.rollup_payment_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2, 3
        WINDOW w AS (PARTITION BY {_LEIKA}, {_MONTH})""",  # noqa: S608
    # Methods and trust levels from one scan: two grouping sets, each share within its own set.
    "authentication": f"""SELECT {_LEIKA}, {_MONTH},
               CASE WHEN GROUPING({_AUTH}) = 0 THEN 'auth:' || {_AUTH} ELSE 'trust:' || {_TRUST} END,
               {_SHARE.format(x="r.authentications")}
        FROM analytics.rollup_auth_daily r {_JOIN} WHERE {_WINDOW}
        GROUP BY GROUPING SETS (({_LEIKA}, {_MONTH}, {_AUTH}), ({_LEIKA}, {_MONTH}, {_TRUST}))
        WINDOW w AS (PARTITION BY {_LEIKA}, {_MONTH}, GROUPING({_AUTH}))""",  # noqa: S608
    "satisfaction": """SELECT CASE WHEN length(f.service_key) = 14 AND left(f.service_key, 2) = '99'
                                   THEN f.service_key ELSE s.leika_key END AS leika,
               date_trunc('month', f.received_at AT TIME ZONE 'Europe/Berlin')::date, 'satisfaction',
               sum(f.rating)::float8 / count(*), count(*)
        FROM analytics.feedback f LEFT JOIN analytics.services s
             ON s.tenant_id = f.tenant_id AND s.service_key = f.service_key
        WHERE f.tenant_id = %(tenant)s
          AND (f.received_at AT TIME ZONE 'Europe/Berlin') >= CAST(%(since)s AS timestamp)
          AND (f.received_at AT TIME ZONE 'Europe/Berlin') < CAST(%(until)s AS timestamp)
        GROUP BY 1, 2 HAVING CASE WHEN length(f.service_key) = 14 AND left(f.service_key, 2) = '99'
                                  THEN f.service_key ELSE s.leika_key END IS NOT NULL""",
}


@dataclass
class TenantValues:
    """One tenant's values: (leika, month, metric) -> Value, and (leika, month) -> (worst step, base)."""

    values: dict
    steps: dict


def _worst_steps(rows) -> dict:
    """(leika, month) -> (label of the step most abandon at, all abandonments of the month)."""
    worst: dict = {}
    for leika, month, step_no, step_name, aborted in rows:
        if not leika:
            continue
        total, best = worst.get((leika, month), (0, (-1, 0, "")))
        candidate = (int(aborted), -int(step_no), f"{step_no}. {step_name}".strip(" ."))
        worst[(leika, month)] = (total + int(aborted), max(best, candidate))
    return {key: (best[2], total) for key, (total, best) in worst.items() if best[0] > 0}


def read_tenant(session: Session, tenant_id: int, population: int, today: date,
                families: tuple[str, ...] = FAMILIES, months: tuple[date, date] | None = None
                ) -> tuple[list[tuple], dict]:
    """One tenant's values as rows (leika, month, metric, value, base), and its worst steps.

    ``months`` is (first month, month after the last), both first days; by default every month compared on
    ``today`` (:func:`since` up to the running month, which is left out). Call inside
    ``tenant_transaction(tenant_id)``. Reads through the session's own connection (its transaction and
    tenant binding) with the driver's cursor: plain tuples, no result objects.
    """
    first, until = months or (since(today), month_start(today))
    params = {"tenant": tenant_id, "since": max(first, since(today)), "until": min(until, month_start(today)),
              "population": population}
    rows: list[tuple] = []
    steps: dict = {}
    with session.connection().connection.driver_connection.cursor() as cur:
        for family in families:
            cur.execute(_QUERIES[family], params)
            rows += cur.fetchall()
            if family == "usage":
                cur.execute(_QUERIES["steps"], params)
                steps = _worst_steps(cur.fetchall())
    return [row for row in rows if row[0]], steps


def tenant_values(session: Session, tenant_id: int, population: int, today: date,
                  families: tuple[str, ...] = FAMILIES) -> TenantValues:
    """Compute one tenant's metric values; call inside ``tenant_transaction(tenant_id)``."""
    rows, steps = read_tenant(session, tenant_id, population, today, families)
    return TenantValues({(leika, month, metric): Value(value, base) for leika, month, metric, value, base in rows},
                        steps)
