"""Loading a batch: stage, validate, insert under RLS, roll up the affected days. One transaction.

``COPY`` cannot write into a table under row-level security (engineering notes, B2), so a batch
is copied into a temporary stage table of text columns, then validated and moved into the
tenant tables with one ``INSERT … SELECT`` that the policies check like any other insert
(docs/architecture.md, "Ingest"). Validation runs in SQL on the stage, inside the insert (the first
failed rule of a row is its error); rows that fail are written to ``portal.ingest_errors`` with
their row number, column and reason, and all others are loaded.

Everything from the first staged row to the last rollup is one transaction: a crash, a kill or
an error leaves nothing behind, and nobody ever sees half a batch.

Rollups change for the affected (service, day) keys only: events are insert-only, so the rollups
grow by the aggregate of exactly the inserted events; aggregates can be corrected, so their days
are recomputed from everything stored for them. Re-sending a batch, correcting an aggregate or
loading an overlapping file always yields the right totals. Loads of one tenant are serialised with a transaction-level
advisory lock, so two concurrent batches cannot both recompute a day from stale snapshots.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from sqlalchemy import text

from tenants import canonical as c
from tenants.context import apply_tenant
from tenants.ingest.catalogue import leika_names
from tenants.ingest.privacy import personal_data_in
from tenants.ingest.profiles import SEP

log = logging.getLogger(__name__)

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)
#: Events older than this or later than tomorrow are rejected (a typo in the year would
#: otherwise create partitions and skew dashboards).
EARLIEST = "2015-01-01"
WORK_MEM = "256MB"
ADVISORY_NAMESPACE = 4_004  # first half of the two-int advisory lock key: "ingest loads"
CLIENT_CHECK_MS = "2000"

ISO_TS = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
          r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$")
ISO_DAY = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _day_exists(col: str) -> str:
    """SQL: the day part of an ISO string names a real date (31 April does not exist)."""
    return (f"substr({col}, 9, 2)::int <= extract(day from make_date(substr({col}, 1, 4)::int, "
            f"substr({col}, 6, 2)::int, 1) + interval '1 month - 1 day')")


LEGACY = ", ".join(f"'{m}'" for m in c.LEGACY_PAYMENT_METHODS)
PERIOD = "outside the accepted period (2015 until tomorrow)"
REQUIRED = "required"

#: What the reader found wrong with a source row (a cell in another date format, a NUL character,
#: cells beyond the header, a wide row without any count): first, in its own words (``_problem``).
PROBLEM_RULE = (None, "_problem IS NOT NULL", None)
#: Checks of every row: (column, SQL that is true when the value is wrong, reason). ``ts`` is the
#: parsed timestamp (events) or day (aggregates), see ``_parsed``. The first match is the row's error.
EVENT_ROW_RULES = [
    PROBLEM_RULE,
    ("occurred_at", "occurred_at IS NULL", REQUIRED),
    ("occurred_at", "ts IS NULL", "not an ISO 8601 date and time"),
    ("occurred_at", f"ts < '{EARLIEST}' OR ts > %(latest)s", PERIOD),
    ("session_id", "length(session_id) > 200", "longer than 200 characters"),
]
#: Only the strict pass checks what would otherwise make a cast fail (a regular expression costs
#: seconds per million rows, see load()).
EVENT_STRICT_RULES = [("event_id", "event_id IS NOT NULL AND event_id !~ %(uuid)s", "not a UUID")]
AGGREGATE_ROW_RULES = [
    PROBLEM_RULE,
    ("day", "day IS NULL", REQUIRED),
    ("day", "ts IS NULL", "not a date (YYYY-MM-DD)"),
    ("day", f"ts < '{EARLIEST}' OR ts > %(latest)s::date", PERIOD),
    ("value", "value IS NULL", REQUIRED),
    ("value", "value !~ '^[0-9]{1,12}$'", "not a whole number of 0 or more"),
]
LEGACY_RULE = {
    "events": ("payment_method", f"payment_method IN ({LEGACY}) AND ts >= '{c.LEGACY_PAYMENT_END}'::date + 1",
               "giropay and paydirekt ended on 2024-12-31"),
    "aggregates": ("payment_method", f"payment_method IN ({LEGACY}) AND ts > '{c.LEGACY_PAYMENT_END}'",
                   "giropay and paydirekt ended on 2024-12-31"),
}

PATTERN_PARAMS = {"iso_ts": ISO_TS, "iso_day": ISO_DAY, "uuid": UUID}


def _parsed(payload: str, strict: bool) -> str:
    """SQL for ``ts``: a plain cast (fast pass) or a cast guarded by format checks (strict pass)."""
    # Even the fast cast needs ISO's shape first: PostgreSQL would also read 03/04/2026 (as March),
    # "now" or "today", which must not pass as dates.
    if payload == "events":
        if not strict:
            return "CASE WHEN occurred_at LIKE '____-__-__%%' THEN occurred_at::timestamptz END"
        return f"CASE WHEN occurred_at ~ %(iso_ts)s AND {_day_exists('occurred_at')} THEN occurred_at::timestamptz END"
    if not strict:
        return "CASE WHEN day LIKE '____-__-__' THEN day::date END"
    return f"CASE WHEN day ~ %(iso_day)s AND {_day_exists('day')} THEN day::date END"


# -- checks of distinct values --------------------------------------------------------------------

PERSONAL_DATA_REASONS = {"e-mail address": "contains an e-mail address", "phone number": "contains a phone number",
                         "IBAN": "contains an IBAN"}


def _required(check):
    def wrapped(value):
        return REQUIRED if value is None else check(value)
    return wrapped


def _optional(check):
    def wrapped(value):
        return None if value is None else check(value)
    return wrapped


#: A value outside a vocabulary (what _vocabulary reports); the error then names the row's own value and,
#: where the file uses the canonical codes, the codes allowed (UNKNOWN_VALUE_LISTED). A file read through a
#: profile writes its own words ("Kanal": "Web"), so there only the value is named.
UNKNOWN_VALUE = "unknown value"
UNKNOWN_VALUE_LISTED = "unknown value “%(value)s”; allowed: %(allowed)s"
UNKNOWN_VALUE_NAMED = "unknown value “%(value)s”"


def _vocabulary(values: tuple[str, ...]):
    return lambda value: None if value in values else UNKNOWN_VALUE


def _service_key(value: str) -> str | None:
    if not re.fullmatch(c.SERVICE_KEY_PATTERN[1:-1], value):
        return "neither a LeiKa key (14 digits, 99…) nor local:<name>"
    return None


def _step_no(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9]{1,3}", value) else "not a whole number from 0 to 999"


def _free_text(value: str) -> str | None:
    if len(value) > 200:
        return "longer than 200 characters"
    found = personal_data_in(value)
    return PERSONAL_DATA_REASONS[found] if found else None


#: The codes a column takes, per payload (an error names them).
_VOCABULARIES = {
    "events": {"event_type": c.EVENT_TYPES, "channel": c.CHANNELS, "payment_method": c.PAYMENT_METHODS,
               "payment_provider": c.PAYMENT_PROVIDERS, "auth_method": c.AUTH_METHODS, "trust_level": c.TRUST_LEVELS},
    "aggregates": {"measure": c.EVENT_TYPES, "channel": c.CHANNELS, "payment_method": c.PAYMENT_METHODS,
                   "auth_method": c.AUTH_METHODS, "trust_level": c.TRUST_LEVELS},
}

#: Columns with few distinct values, in the order their errors are reported.
EVENT_VALUE_CHECKS = {
    "service_key": _required(_service_key),
    "event_type": _required(_vocabulary(_VOCABULARIES["events"]["event_type"])),
    "step_no": _optional(_step_no),
    "step_name": _optional(_free_text),
    **{col: _optional(_vocabulary(_VOCABULARIES["events"][col]))
       for col in ("channel", "payment_method", "payment_provider", "auth_method", "trust_level")},
}
AGGREGATE_VALUE_CHECKS = {
    "service_key": _required(_service_key),
    "measure": _required(_vocabulary(_VOCABULARIES["aggregates"]["measure"])),
    "step_no": _optional(_step_no),
    **{col: _optional(_vocabulary(_VOCABULARIES["aggregates"][col]))
       for col in ("channel", "payment_method", "auth_method", "trust_level")},
}


def distinct_values(cur, payload: str) -> dict[str, set]:
    """One scan of the stage: the distinct values of the checked columns."""
    checks = EVENT_VALUE_CHECKS if payload == "events" else AGGREGATE_VALUE_CHECKS
    columns = [sql.Identifier(col) for col in checks]
    cur.execute(sql.SQL("SELECT DISTINCT {} FROM stage").format(sql.SQL(", ").join(columns)))
    names = list(checks)
    distinct: dict[str, set] = {name: set() for name in names}
    for row in cur.fetchall():
        for name, value in zip(names, row, strict=True):
            distinct[name].add(value)
    return distinct


def _value_rules(distinct: dict[str, set], payload: str, headers: dict[str, str]) -> tuple[list, dict]:
    """Rules for the columns with few distinct values, checked once per value in Python.

    A million rows hold a few dozen services, step names and vocabulary values: checking each
    distinct value once is far cheaper than a condition (let alone a regular expression) per row
    in SQL, and the patterns for personal data live in one place (``tenants.ingest.privacy``).
    A clean batch ends up with no per-row condition for these columns at all.
    """
    checks = EVENT_VALUE_CHECKS if payload == "events" else AGGREGATE_VALUE_CHECKS
    rules, params = [], {}
    for col, check in checks.items():
        by_reason: dict[str, list] = {}
        for value in distinct.get(col, ()):
            reason = check(value)
            if reason:
                by_reason.setdefault(reason, []).append(value)
        for i, (reason, values) in enumerate(sorted(by_reason.items())):
            if reason == REQUIRED:
                rules.append((col, f"{col} IS NULL", reason))
                continue
            name = f"bad_{col}_{i}"
            if reason == UNKNOWN_VALUE:
                # The row's own value (a column reference, never text put into the SQL) and the codes allowed.
                params[f"allowed_{col}"] = ", ".join(_VOCABULARIES[payload][col])
                message = UNKNOWN_VALUE_LISTED if headers.get(col, col) == col else UNKNOWN_VALUE_NAMED
                rules.append((col, f"{col} = ANY(%({name})s)", message,
                              f"json_build_object('value', {col}, 'allowed', CAST(%(allowed_{col})s AS text))::text"))
            else:
                rules.append((col, f"{col} = ANY(%({name})s)", reason))
            params[name] = values
    if distinct.get("payment_method", set()) & set(c.LEGACY_PAYMENT_METHODS):
        rules.append(LEGACY_RULE[payload])
    return rules, params


def _error_case(rules) -> str:
    """SQL for a row's first error: column SEP reason SEP arguments (JSON or empty).

    A rule is (column, condition, reason) or (column, condition, reason, SQL of its JSON arguments); the
    reason is a message id, so a ``%`` in it is doubled for the driver's parameter syntax."""
    whens = []
    for col, cond, reason, *args in rules:
        then = "_problem" if col is None else f"'{col}{SEP}{reason.replace('%', '%%')}{SEP}'"
        whens.append(f"WHEN {cond} THEN {then}" + (f" || {args[0]}" if args else ""))
    return f"CASE {' '.join(whens)} END"


@dataclass
class LoadResult:
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    day_from: object = None
    day_to: object = None
    #: seconds per phase (stage, partitions, validate+insert, rollups), for the benchmark and the logs
    timings: dict = field(default_factory=dict)


@dataclass
class Batch:
    """What the loader needs to know about one batch."""

    tenant_id: int
    data_source_id: int
    run_id: int
    payload: str  # events | aggregates
    salt: str
    #: canonical column -> the file's header, so that errors name the file's own columns
    headers: dict[str, str] = field(default_factory=dict)


Progress = Callable[[str, float | None], None]


def _stage_columns(payload: str) -> tuple[str, ...]:
    return c.PAYLOADS[payload]


def _create_stage(cur, payload: str) -> None:
    cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(col)) for col in _stage_columns(payload))
    # Row numbers count like a spreadsheet: the header is row 1. Besides the canonical values a
    # stage row carries what the reader found out about its source row: the file's header of a
    # wide export's count column (``_src``), the row's first problem (``_problem``, column SEP
    # reason SEP arguments) and which part of the source row it is (``_n``).
    cur.execute(sql.SQL("CREATE TEMP TABLE stage (row_no bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 2), "
                        "{}, _src text, _problem text, _n smallint NOT NULL DEFAULT 0) ON COMMIT DROP").format(cols))


def copy_csv_file(cur, path: Path, columns: list[str], encoding: str, delimiter: str, offset: int,
                  progress: Progress | None = None) -> None:
    """Stream a canonical CSV's data rows (from byte ``offset``) straight into the stage: no Python per row.

    ``columns`` are the canonical names of the file's columns in file order. Raises a
    ``psycopg.errors.DataError`` for anything COPY cannot read (a short line, a NUL byte, a byte
    the encoding lacks); the caller then stages the file row by row (``copy_rows``).
    """
    pg_encoding = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "cp1252": "WIN1252"}[encoding]
    cols = sql.SQL(", ").join(sql.Identifier(h) for h in columns)
    statement = sql.SQL("COPY stage ({}) FROM STDIN (FORMAT csv, DELIMITER {}, ENCODING {}, "
                        "FORCE_NULL ({}))").format(cols, sql.Literal(delimiter), sql.Literal(pg_encoding), cols)
    total = max(path.stat().st_size, 1)
    done = offset
    with path.open("rb") as fh, cur.copy(statement) as copy:
        fh.seek(offset)
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
            done += len(chunk)
            if progress:
                progress("staging", done / total)


def copy_rows(cur, payload: str, rows: Iterable[tuple[int, tuple[Any, ...]]],
              progress: Progress | None = None) -> None:
    """Stage mapped rows (row number + the Mapper's stage values) with COPY."""
    cols = sql.SQL(", ").join(sql.Identifier(col) for col in ("row_no", *_stage_columns(payload), "_src",
                                                              "_problem", "_n"))
    with cur.copy(sql.SQL("COPY stage ({}) FROM STDIN").format(cols)) as copy:
        for count, (row_no, values) in enumerate(rows, start=1):
            copy.write_row((row_no, *[v if v != "" else None for v in values]))
            if progress and count % 50_000 == 0:
                progress("staging", None)  # a mapped stream has no known length


# -- events ---------------------------------------------------------------------------------------

# One pass moves the rows whose checks all pass (the checks run inline, on the same scan). Only when
# rows were left out does a second pass record them as errors: a clean batch, the common case, is
# read once. OFFSET 0 keeps the planner from folding the subquery into its caller, which would
# parse the timestamp again in every check, the sort key and the select list (about 0.9 s per
# million events, measured); behind the fence it is parsed once per row.
PARSED = "(SELECT s.*, {parsed} AS ts FROM stage s OFFSET 0) p"

# One error per source row: the first part's first error (a wide row's counts are its parts). The
# column is named as the file names it: a count column by its header (``_src``), any other through
# the profile's column map (``%(canonical)s`` -> ``%(headers)s``).
RECORD_ERRORS = """
INSERT INTO portal.ingest_errors (tenant_id, run_id, row_no, column_name, reason, args)
SELECT DISTINCT ON (row_no) %(tenant)s, %(run)s, row_no,
       CASE WHEN col IN ('value', 'measure') AND _src IS NOT NULL THEN _src
            ELSE coalesce((SELECT m.header FROM unnest(%(canonical)s::text[], %(headers)s::text[]) AS m (canon, header)
                           WHERE m.canon = col), col) END,
       split_part(err, '""" + SEP + """', 2), NULLIF(split_part(err, '""" + SEP + """', 3), '')::jsonb
FROM (SELECT row_no, _n, _src, err, split_part(err, '""" + SEP + """', 1) AS col
      FROM (SELECT row_no, _n, _src, {error} AS err FROM """ + PARSED + """) e0) e
WHERE err IS NOT NULL
ORDER BY row_no, _n
ON CONFLICT DO NOTHING
"""

VALID_ONLY = "WHERE ({error}) IS NULL"

# Rows already stored (same event id and time) are skipped when the period held events; the
# cube counts what was new, so the rollups grow by exactly the inserted events.
MOVE_EVENTS = """
WITH ins AS (
    INSERT INTO analytics.process_events (tenant_id, occurred_at, event_id, data_source_id, service_key, session_hash,
        event_type, step_no, step_name, channel, payment_method, payment_provider, auth_method, trust_level)
    SELECT %(tenant)s, ts,
           coalesce(event_id::uuid, md5(concat_ws('|', %(source)s::text, ts::text, service_key,
               coalesce(session_id, ''), event_type, coalesce(step_no, ''), coalesce(step_name, ''),
               coalesce(channel, ''), coalesce(payment_method, ''), coalesce(payment_provider, ''),
               coalesce(auth_method, ''), coalesce(trust_level, ''), _dup::text))::uuid),
           %(source)s, service_key,
           sha256(convert_to(%(salt)s || ':' || session_id, 'UTF8')),
           event_type, step_no::smallint, step_name, channel, payment_method, payment_provider, auth_method, trust_level
    FROM """ + PARSED + """
    {filter}
    ORDER BY ts
    {on_conflict}
    RETURNING service_key, occurred_at, event_type, step_no, step_name, channel, payment_method, payment_provider,
              auth_method, trust_level
), cubed AS (
    INSERT INTO cube
    SELECT service_key, (occurred_at AT TIME ZONE '{tz}')::date, event_type, coalesce(step_no, 0),
           coalesce(step_name, ''), coalesce(channel, ''), coalesce(payment_method, ''),
           coalesce(payment_provider, ''), coalesce(auth_method, ''), coalesce(trust_level, ''), count(*)
    FROM ins GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    RETURNING n
)
SELECT coalesce(sum(n), 0) FROM cubed
"""

# A source row is loaded whole or rejected whole: a wide export's row is one stage row per count,
# and one bad count keeps all of them out (``row_ok``).
MOVE_AGGREGATES = """
WITH checked AS (
    SELECT p.*, bool_and(({error}) IS NULL) OVER (PARTITION BY row_no) AS row_ok FROM """ + PARSED + """
), good AS (
    SELECT ts AS d, service_key, measure, coalesce(step_no, '0')::smallint AS step,
           coalesce(channel, '') AS ch, coalesce(payment_method, '') AS pm, coalesce(auth_method, '') AS am,
           coalesce(trust_level, '') AS tl, sum(value::bigint) AS v
    FROM checked
    WHERE row_ok
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), ins AS (
    INSERT INTO analytics.daily_aggregates (tenant_id, data_source_id, day, service_key, measure, step_no, channel,
        payment_method, auth_method, trust_level, value)
    SELECT %(tenant)s, %(source)s, d, service_key, measure, step, ch, pm, am, tl, v FROM good
    ON CONFLICT (tenant_id, data_source_id, day, service_key, measure, step_no, channel, payment_method,
                 auth_method, trust_level) DO UPDATE SET value = EXCLUDED.value
    RETURNING 1
), aff AS (
    INSERT INTO affected (service_key, day) SELECT DISTINCT service_key, d FROM good RETURNING 1
)
SELECT count(*) FROM ins
"""

# -- rollups --------------------------------------------------------------------------------------

CUBE_TABLE = """
CREATE TEMP TABLE cube (service_key text, day date, measure text, step_no smallint, step_name text, channel text,
    payment_method text, payment_provider text, auth_method text, trust_level text, n bigint) ON COMMIT DROP
"""

# Aggregates can be corrected (a re-delivered day replaces the old counts), so their days are
# recomputed from everything stored for them: one range scan over the days (the key leads with
# tenant_id, occurred_at), a hash join keeps the affected (service, day) pairs.
RECOMPUTE_CUBE = f"""
INSERT INTO cube
SELECT e.service_key, (e.occurred_at AT TIME ZONE '{TZ}')::date AS day, e.event_type,
       coalesce(e.step_no, 0), coalesce(max(e.step_name), ''), coalesce(e.channel, ''),
       coalesce(e.payment_method, ''), coalesce(e.payment_provider, ''), coalesce(e.auth_method, ''),
       coalesce(e.trust_level, ''), count(*)
FROM analytics.process_events e
JOIN affected f ON f.service_key = e.service_key AND f.day = (e.occurred_at AT TIME ZONE '{TZ}')::date
WHERE e.occurred_at >= (SELECT min(day)::timestamp AT TIME ZONE '{TZ}' FROM affected)
  AND e.occurred_at < (SELECT (max(day) + 1)::timestamp AT TIME ZONE '{TZ}' FROM affected)
GROUP BY 1, 2, 3, 4, 6, 7, 8, 9, 10
UNION ALL
SELECT a.service_key, a.day, a.measure, a.step_no, '', a.channel, a.payment_method, '', a.auth_method, a.trust_level,
       sum(a.value)
FROM analytics.daily_aggregates a JOIN affected f ON f.service_key = a.service_key AND f.day = a.day
GROUP BY 1, 2, 3, 4, 6, 7, 9, 10
"""


def _counts(*measures: str) -> str:
    return ", ".join(f"coalesce(sum(n) FILTER (WHERE measure = '{m}'), 0)" for m in measures)


FUNNEL = _counts("started", "submitted", "aborted")

FUNNEL_ADD = "started = r.started + EXCLUDED.started, submitted = r.submitted + EXCLUDED.submitted, " \
             "aborted = r.aborted + EXCLUDED.aborted"

# Each adds the cube to the rollup: after a recompute the affected rows were deleted first, so
# adding is the same as setting.
ROLLUPS = {
    "analytics.rollup_service_daily": f"""
        INSERT INTO analytics.rollup_service_daily AS r (tenant_id, service_key, day, started, submitted, aborted)
        SELECT %(tenant)s, service_key, day, {FUNNEL}
        FROM cube WHERE measure IN ('started', 'submitted', 'aborted') GROUP BY 2, 3
        ON CONFLICT (tenant_id, service_key, day) DO UPDATE SET {FUNNEL_ADD}""",
    "analytics.rollup_channel_daily": f"""
        INSERT INTO analytics.rollup_channel_daily AS r (tenant_id, service_key, day, channel, started, submitted,
            aborted)
        SELECT %(tenant)s, service_key, day, channel, {FUNNEL}
        FROM cube WHERE measure IN ('started', 'submitted', 'aborted') AND channel <> '' GROUP BY 2, 3, 4
        ON CONFLICT (tenant_id, service_key, day, channel) DO UPDATE SET {FUNNEL_ADD}""",
    "analytics.rollup_step_daily": f"""
        INSERT INTO analytics.rollup_step_daily AS r (tenant_id, service_key, day, step_no, step_name, reached, aborted)
        SELECT %(tenant)s, service_key, day, step_no, max(step_name), {_counts("step_reached", "aborted")}
        FROM cube WHERE measure IN ('step_reached', 'aborted') AND step_no > 0 GROUP BY 2, 3, 4
        ON CONFLICT (tenant_id, service_key, day, step_no) DO UPDATE SET reached = r.reached + EXCLUDED.reached,
            aborted = r.aborted + EXCLUDED.aborted,
            step_name = CASE WHEN EXCLUDED.step_name <> '' THEN EXCLUDED.step_name ELSE r.step_name END""",
    "analytics.rollup_payment_daily": """
        INSERT INTO analytics.rollup_payment_daily AS r (tenant_id, service_key, day, payment_method,
            payment_provider, payments)
        SELECT %(tenant)s, service_key, day, payment_method, payment_provider, sum(n)
        FROM cube WHERE measure = 'payment' AND payment_method <> '' GROUP BY 2, 3, 4, 5
        ON CONFLICT (tenant_id, service_key, day, payment_method, payment_provider)
        DO UPDATE SET payments = r.payments + EXCLUDED.payments""",
    "analytics.rollup_auth_daily": """
        INSERT INTO analytics.rollup_auth_daily AS r (tenant_id, service_key, day, auth_method, trust_level,
            authentications)
        SELECT %(tenant)s, service_key, day, auth_method, trust_level, sum(n)
        FROM cube WHERE measure = 'authentication' AND auth_method <> '' GROUP BY 2, 3, 4, 5
        ON CONFLICT (tenant_id, service_key, day, auth_method, trust_level)
        DO UPDATE SET authentications = r.authentications + EXCLUDED.authentications""",
}


# A service seen for the first time enters the catalogue (dashboards join names): a LeiKa service
# under its name in the LeiKa list, any other under its key until an admin names it
# (tenants/ingest/catalogue.py, the page "Dienste").
REGISTER_SERVICES = """
INSERT INTO analytics.services (tenant_id, service_key, leika_key, name)
SELECT %(tenant)s, k.service_key, CASE WHEN k.service_key LIKE '99%%' THEN k.service_key END,
       coalesce(n.name, k.service_key)
FROM (SELECT DISTINCT service_key FROM {}) k
LEFT JOIN unnest(%(leika_keys)s::text[], %(leika_names)s::text[]) AS n (key, name) ON n.key = k.service_key
ON CONFLICT (tenant_id, service_key) DO NOTHING
"""


def add_cube_to_rollups(cur, tenant_id: int) -> None:
    for insert in ROLLUPS.values():
        cur.execute(insert, {"tenant": tenant_id})


def recompute_rollups(cur, tenant_id: int) -> None:
    """Rebuild every rollup row of the (service, day) keys in the temp table ``affected``."""
    cur.execute("ANALYZE affected")
    cur.execute(RECOMPUTE_CUBE)
    for table in ROLLUPS:
        cur.execute(sql.SQL("DELETE FROM {} r USING affected a WHERE r.service_key = a.service_key "
                            "AND r.day = a.day").format(sql.SQL(table)))
    add_cube_to_rollups(cur, tenant_id)


# -- the whole load -------------------------------------------------------------------------------

def _add_months(first_day: date, months: int) -> date:
    total = first_day.year * 12 + first_day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def berlin_today() -> date:
    """Today in Germany: the day every figure and every schedule means (the server may run in UTC)."""
    return datetime.now(BERLIN).date()


def plausible_months(now: datetime | None = None) -> tuple[date, date]:
    """The first and the last month (UTC, as partitions are bounded) an accepted event can fall into.

    From the UTC month of the earliest accepted moment (``EARLIEST`` 00:00 German time is the last
    hour of the year before in UTC) to the UTC month of the latest one (``_latest()``).
    """
    earliest = datetime.combine(date.fromisoformat(EARLIEST), datetime.min.time(), BERLIN).astimezone(UTC)
    latest = (now or datetime.now(UTC)) + timedelta(days=1)
    return earliest.date().replace(day=1), latest.date().replace(day=1)


def months_of(text_months: set[str], now: datetime | None = None) -> list[date]:
    """The UTC months (first days) that events written in the given ``YYYY-MM`` months can fall into.

    Partitions are bounded in UTC, but a timestamp is written in its own offset (or German time):
    ``2025-09-01T00:30+02:00`` is still August in UTC, so every month also brings its neighbours.
    Only plausible months count (see :func:`plausible_months`).
    """
    first, last = plausible_months(now)
    months: set[date] = set()
    for ym in text_months:
        if not ym or not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", ym):
            continue
        month = date(int(ym[:4]), int(ym[5:7]), 1)
        months |= {m for m in (_add_months(month, -1), month, _add_months(month, 1)) if first <= m <= last}
    return sorted(months)


# An event without an id of its own gets one from its content and its place among the file's identical rows
# (the first, the second …), not from its row number: a corrected file sent again, a rejected row deleted,
# finds the events loaded before under the same ids although their row numbers moved. The numbering costs a
# sort, so a batch whose events all carry ids skips it.
NUMBERED = ("(SELECT s.*, {parsed} AS ts, row_number() OVER (PARTITION BY occurred_at, service_key, session_id, "
            "event_type, step_no, step_name, channel, payment_method, payment_provider, auth_method, trust_level "
            "ORDER BY row_no) AS _dup FROM stage s OFFSET 0) p")
UNNUMBERED = "(SELECT s.*, {parsed} AS ts, 0 AS _dup FROM stage s OFFSET 0) p"


def _move(cur, batch: Batch, distinct: dict[str, set], strict: bool, skip_existing: bool) -> tuple[int, int, int]:
    error, values = _validation(batch, distinct, strict)
    parsed = _parsed(batch.payload, strict)
    statement = MOVE_EVENTS if batch.payload == "events" else MOVE_AGGREGATES
    if batch.payload == "events":
        cur.execute("SELECT EXISTS (SELECT 1 FROM stage WHERE event_id IS NULL)")
        statement = statement.replace(PARSED, NUMBERED if cur.fetchone()[0] else UNNUMBERED)
    statement = (statement.replace("{filter}", VALID_ONLY).replace("{error}", error).replace("{parsed}", parsed)
                 .replace("{tz}", TZ).replace("{on_conflict}", "ON CONFLICT DO NOTHING" if skip_existing else ""))
    cur.execute(statement, values)
    inserted = cur.fetchone()[0]
    cur.execute("SELECT count(*), count(DISTINCT row_no) FROM stage")
    staged, total = cur.fetchone()
    rejected = 0
    if inserted < staged:  # errors, or events stored before: find out which
        # A line of only delimiters is no row (as the row-by-row reader skips it); COPY staged it.
        # Such a line fails the required columns, so it can only be among the rows left out.
        columns = ", ".join(c.PAYLOADS[batch.payload])
        cur.execute(f"DELETE FROM stage WHERE _problem IS NULL AND num_nonnulls({columns}) = 0")
        if cur.rowcount:
            cur.execute("SELECT count(DISTINCT row_no) FROM stage")
            total = cur.fetchone()[0]
        cur.execute(RECORD_ERRORS.replace("{error}", error).replace("{parsed}", parsed), values)
        rejected = cur.rowcount
    # Counted in source rows: a wide export's row becomes several aggregates but is one row to its
    # sender. Every row is accepted or rejected; an event stored before counts as accepted (it is
    # the same event again and changes nothing).
    return total, total - rejected, rejected


def _validation(batch: Batch, distinct: dict[str, set], strict: bool) -> tuple[str, dict[str, Any]]:
    """The SQL of a row's first error and the statement's parameters."""
    rules = list(EVENT_ROW_RULES if batch.payload == "events" else AGGREGATE_ROW_RULES)
    if strict:
        column = "occurred_at" if batch.payload == "events" else "day"
        # before "ts IS NULL", so that 30 February is called what it is
        position = next(i for i, rule in enumerate(rules) if rule[1] == "ts IS NULL")
        rules.insert(position, (column, f"{column} ~ %({'iso_ts' if column == 'occurred_at' else 'iso_day'})s "
                                        f"AND NOT ({_day_exists(column)})", "no such date"))
    if strict and batch.payload == "events":
        rules += EVENT_STRICT_RULES
    value_rules, params = _value_rules(distinct, batch.payload, batch.headers)
    rules += value_rules
    values = {**PATTERN_PARAMS, **params, "tenant": batch.tenant_id, "run": batch.run_id,
              "source": batch.data_source_id, "salt": batch.salt, "latest": _latest(),
              "canonical": list(batch.headers), "headers": list(batch.headers.values())}
    return _error_case(rules), values


def _latest() -> datetime:
    """Events may lie at most one day in the future (clocks of source systems drift)."""
    return datetime.now(UTC) + timedelta(days=1)


def _utc(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def _period_has_events(cur, months: list[date]) -> bool:
    """Whether the months of the batch hold events already (then stored ones must be skipped)."""
    if not months:
        return False
    cur.execute("SELECT EXISTS (SELECT 1 FROM analytics.process_events WHERE occurred_at >= %s::timestamptz "
                "AND occurred_at < %s::timestamptz)", (_utc(months[0]), _utc(_add_months(months[-1], 1))))
    return cur.fetchone()[0]


def _move_with_fallbacks(cur, batch: Batch, distinct: dict[str, set], skip_existing: bool) -> tuple[int, int, int]:
    """The cheapest pass that works; a failed pass is undone to a savepoint.

    * fast: plain casts, and a plain INSERT when the batch's months hold no events yet (a fresh
      period cannot conflict: the tenant's loads are serialised);
    * a cast failed (``DataError``): the strict pass finds the rows with regular expressions;
    * an event was there already or came twice (``UniqueViolation``): ``ON CONFLICT DO NOTHING``.
    """
    strict = False
    for _ in range(3):
        cur.execute("SAVEPOINT attempt")
        try:
            result = _move(cur, batch, distinct, strict, skip_existing)
        except psycopg.errors.DataError as exc:
            log.info("run %s: a value cannot be cast (%s); validating strictly", batch.run_id, exc)
            cur.execute("ROLLBACK TO SAVEPOINT attempt")
            strict = True
        except psycopg.errors.UniqueViolation:
            log.info("run %s: events stored before; skipping them", batch.run_id)
            cur.execute("ROLLBACK TO SAVEPOINT attempt")
            skip_existing = True
        else:
            cur.execute("RELEASE SAVEPOINT attempt")
            return result
    return _move(cur, batch, distinct, True, True)


def event_months(cur) -> list[date]:
    """The UTC months the staged events can fall into, from the text (a cheap scan: no casts, one short key)."""
    cur.execute("SELECT DISTINCT substr(occurred_at, 1, 7) FROM stage")
    return months_of({row[0] for row in cur.fetchall()})


def _missing_partitions(cur, months: list[date]) -> list[date]:
    cur.execute("SELECT m FROM unnest(%s::date[]) AS m WHERE to_regclass(format('analytics.process_events_%%s', "
                "to_char(m, 'YYYY_MM'))) IS NULL", (months,))
    return [row[0] for row in cur.fetchall()]


def accepted_months(cur, batch: Batch, distinct: dict[str, set], candidates: list[date]) -> list[date]:
    """The UTC months among ``candidates`` that accepted events fall into: the full validation, read only.

    Runs only when a month the batch may need has no partition yet (a backfill into a new month),
    so that partitions are created after validation and never for a rejected row.
    """
    wanted = sorted({f"{m:%Y-%m}" for c in candidates for m in (_add_months(c, -1), c, _add_months(c, 1))})
    for strict in (False, True):
        error, values = _validation(batch, distinct, strict)
        statement = ("SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')::date FROM " + PARSED
                     + " WHERE substr(occurred_at, 1, 7) = ANY(%(wanted)s) AND ({error}) IS NULL")
        cur.execute("SAVEPOINT months")
        try:
            cur.execute(statement.replace("{parsed}", _parsed("events", strict)).replace("{error}", error),
                        {**values, "wanted": wanted})
        except psycopg.errors.DataError:
            cur.execute("ROLLBACK TO SAVEPOINT months")
            continue
        months = {row[0] for row in cur.fetchall()}
        cur.execute("RELEASE SAVEPOINT months")
        return sorted(set(candidates) & months)
    raise AssertionError("the strict pass casts nothing it has not checked")  # pragma: no cover


def _cube_problems(cur) -> bool:
    """Whether the events just moved hold a value the checks of distinct values would refuse.

    The cube holds every distinct combination of the moved events' values (a few thousand rows
    for a million events), so checking it costs next to nothing; the database's CHECK constraints
    have already refused unknown vocabulary.
    """
    cur.execute("SELECT DISTINCT service_key, measure, step_name, channel, payment_method, payment_provider, "
                f"auth_method, trust_level, payment_method IN ({LEGACY}) AND day > %s FROM cube",
                (c.LEGACY_PAYMENT_END,))
    columns = ("service_key", "event_type", "step_name", "channel", "payment_method", "payment_provider",
               "auth_method", "trust_level")
    for *row, legacy_too_late in cur.fetchall():
        if legacy_too_late:
            return True
        for col, value in zip(columns, row, strict=True):
            if EVENT_VALUE_CHECKS[col](value or None):
                return True
    return False


def _move_clean_events(cur, batch: Batch, skip_existing: bool) -> tuple[int, int, int] | None:
    """The common case first: a clean batch of events, moved without scanning it for distinct values.

    Only the per-row rules filter; vocabulary is left to the table's CHECK constraints, and service
    keys, step names and the end of giropay/paydirekt are checked afterwards on the distinct values
    in the cube. Anything unusual (a failed cast or constraint, events stored before, a refused
    value) undoes the attempt, and ``None`` sends the batch the careful way.
    """
    cur.execute("SAVEPOINT clean")
    try:
        result = _move(cur, batch, {}, strict=False, skip_existing=skip_existing)
        if not _cube_problems(cur):
            cur.execute("RELEASE SAVEPOINT clean")
            return result
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        log.info("run %s: not a clean batch (%s); validating every value", batch.run_id, type(exc).__name__)
    cur.execute("ROLLBACK TO SAVEPOINT clean")  # also empties the cube and forgets recorded errors
    return None


def load(sa_connection, batch: Batch, stage: Callable[[object], None], ensure_partitions: Callable[[list[date]], None],
         progress: Progress | None = None) -> LoadResult:
    """Run one batch inside the caller's open transaction on ``sa_connection``.

    The fast pass casts timestamps, days and ids directly and checks everything that cannot
    make a cast fail; if a cast does fail somewhere in the batch, the pass is rolled back to a
    savepoint and the strict pass runs, whose regular expressions find the offending rows (about
    3× slower). Clean batches, the common case, never pay for that (see _move_with_fallbacks).

    :param stage: fills the temp table ``stage`` through the cursor it is given.
    :param ensure_partitions: creates the monthly partitions for the given first days, in a
        separate short transaction (creating a partition locks the parent table; holding that
        lock for a whole load would stall every dashboard). Only months that accepted events fall
        into are asked for, and only when one of them lacks its partition: the common case (the
        scheduler keeps this month and the next ones ready) costs one catalogue look-up.
    """
    apply_tenant(sa_connection, batch.tenant_id)
    sa_connection.execute(text("SELECT set_config('timezone', :tz, true)"), {"tz": TZ})
    # Sorting and grouping a million rows in memory instead of spilling to disk.
    sa_connection.execute(text("SELECT set_config('work_mem', :mem, true)"), {"mem": WORK_MEM})
    # A worker killed mid-statement leaves its backend running until the statement ends; checking
    # the client every few seconds ends it (and frees its locks) at once.
    sa_connection.execute(text("SELECT set_config('client_connection_check_interval', :ms, true)"),
                          {"ms": CLIENT_CHECK_MS})
    cur = sa_connection.connection.driver_connection.cursor()
    clock = time.perf_counter()
    timings = {}
    _create_stage(cur, batch.payload)
    stage(cur)
    timings["stage"], clock = time.perf_counter() - clock, time.perf_counter()
    if progress:
        progress("validating", 0)
    events = batch.payload == "events"
    distinct = {} if events else distinct_values(cur, batch.payload)
    months = event_months(cur) if events else []
    missing = _missing_partitions(cur, months) if months else []
    if missing:
        distinct = distinct_values(cur, batch.payload)
        ensure_partitions(accepted_months(cur, batch, distinct, missing))
    timings["partitions"], clock = time.perf_counter() - clock, time.perf_counter()
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_NAMESPACE, batch.tenant_id))
    cur.execute("CREATE TEMP TABLE affected (service_key text, day date) ON COMMIT DROP")
    cur.execute(CUBE_TABLE)
    skip_existing = _period_has_events(cur, months)
    moved = _move_clean_events(cur, batch, skip_existing) if events else None
    if moved is None:
        distinct = distinct or distinct_values(cur, batch.payload)
        moved = _move_with_fallbacks(cur, batch, distinct, skip_existing)
    total, accepted, rejected = moved
    timings["validate_insert"], clock = time.perf_counter() - clock, time.perf_counter()
    if progress:
        progress("rollups", 0)
    if batch.payload == "events":
        add_cube_to_rollups(cur, batch.tenant_id)
        keys = "cube"
    else:
        recompute_rollups(cur, batch.tenant_id)
        keys = "affected"
    names = leika_names()
    cur.execute(sql.SQL(REGISTER_SERVICES).format(sql.Identifier(keys)),
                {"tenant": batch.tenant_id, "leika_keys": list(names), "leika_names": list(names.values())})
    cur.execute(sql.SQL("SELECT min(day), max(day) FROM {}").format(sql.Identifier(keys)))
    day_from, day_to = cur.fetchone()
    timings["rollups"] = time.perf_counter() - clock
    # A push may hold events and aggregates: the next part of the batch stages afresh.
    cur.execute("DROP TABLE stage, affected, cube")
    return LoadResult(total, accepted, rejected, day_from, day_to, timings)
