"""Loading a batch: stage, validate, insert under RLS, roll up the affected days. One transaction.

``COPY`` cannot write into a table under row-level security (engineering notes, B2), so a batch
is copied into a temporary stage table of text columns, then validated and moved into the
tenant tables with one ``INSERT … SELECT`` that the policies check like any other insert
(docs/architecture.md, "Ingest"). Validation runs in SQL on the stage (one pass, the first
failed rule of a row is its error); rows that fail are written to ``portal.ingest_errors`` with
their row number, column and reason, and all others are loaded.

Everything from the first staged row to the last rollup is one transaction: a crash, a kill or
an error leaves nothing behind, and nobody ever sees half a batch.

Rollups are recomputed for the affected (service, day) keys only, from the events and daily
aggregates of those days: re-sending a batch, correcting an aggregate or loading an overlapping
file always yields the right totals. Loads of one tenant are serialised with a transaction-level
advisory lock, so two concurrent batches cannot both recompute a day from stale snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql
from sqlalchemy import text

from ingest_workers import canonical as c
from ingest_workers.privacy import EMAIL, IBAN, PHONE
from tenants.context import apply_tenant

TZ = "Europe/Berlin"
#: Events older than this or later than tomorrow are rejected (a typo in the year would
#: otherwise create partitions and skew dashboards).
EARLIEST = "2015-01-01"
ADVISORY_NAMESPACE = 4_004  # first half of the two-int advisory lock key: "ingest loads"

ISO_TS = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
          r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$")
ISO_DAY = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _day_exists(col: str) -> str:
    """SQL: the day part of an ISO string names a real date (31 April does not exist)."""
    return (f"substr({col}, 9, 2)::int <= extract(day from make_date(substr({col}, 1, 4)::int, "
            f"substr({col}, 6, 2)::int, 1) + interval '1 month - 1 day')")


def _vocab(col: str, values: tuple[str, ...]) -> tuple[str, str, str]:
    listed = ", ".join(f"'{v}'" for v in values)  # constants from canonical.py, not input
    return col, f"{col} IS NOT NULL AND {col} NOT IN ({listed})", "unknown value"


def _free_text(col: str) -> list[tuple[str, str, str]]:
    return [
        (col, f"length({col}) > 200", "longer than 200 characters"),
        (col, f"{col} ~ %(email)s", "contains an e-mail address"),
        (col, f"{col} ~ %(phone)s", "contains a phone number"),
        (col, f"{col} ~ %(iban)s", "contains an IBAN"),
    ]


STEP_RULES = [("step_no", "step_no IS NOT NULL AND step_no !~ '^[0-9]{1,3}$'", "not a whole number from 0 to 999")]
SERVICE_RULES = [
    ("service_key", "service_key IS NULL", "required"),
    ("service_key", "service_key !~ %(service_key)s", "neither a LeiKa key (14 digits, 99…) nor local:<name>"),
]
LEGACY = ", ".join(f"'{m}'" for m in c.LEGACY_PAYMENT_METHODS)

#: (column, SQL that is true when the value is wrong, reason); the first match is the row's error.
EVENT_RULES = [
    ("occurred_at", "occurred_at IS NULL", "required"),
    ("occurred_at", "occurred_at !~ %(iso_ts)s", "not an ISO 8601 date and time"),
    ("occurred_at", f"NOT ({_day_exists('occurred_at')})", "no such date"),
    ("occurred_at", f"occurred_at::timestamptz < '{EARLIEST}' OR occurred_at::timestamptz > now() + interval '1 day'",
     "outside the accepted period (2015 until tomorrow)"),
    *SERVICE_RULES,
    ("event_type", "event_type IS NULL", "required"),
    _vocab("event_type", c.EVENT_TYPES),
    ("event_id", "event_id IS NOT NULL AND event_id !~ %(uuid)s", "not a UUID"),
    ("session_id", "length(session_id) > 200", "longer than 200 characters"),
    *STEP_RULES,
    *_free_text("step_name"),
    _vocab("channel", c.CHANNELS),
    _vocab("payment_method", c.PAYMENT_METHODS),
    ("payment_method",
     f"payment_method IN ({LEGACY}) AND occurred_at::timestamptz >= '{c.LEGACY_PAYMENT_END}'::date + 1",
     "giropay and paydirekt ended on 2024-12-31"),
    _vocab("payment_provider", c.PAYMENT_PROVIDERS),
    _vocab("auth_method", c.AUTH_METHODS),
    _vocab("trust_level", c.TRUST_LEVELS),
]

AGGREGATE_RULES = [
    ("day", "day IS NULL", "required"),
    ("day", f"day !~ %(iso_day)s OR NOT ({_day_exists('day')})", "not a date (YYYY-MM-DD)"),
    ("day", f"day::date < '{EARLIEST}' OR day::date > current_date + 1",
     "outside the accepted period (2015 until tomorrow)"),
    *SERVICE_RULES,
    ("measure", "measure IS NULL", "required"),
    _vocab("measure", c.EVENT_TYPES),
    ("value", "value IS NULL", "required"),
    ("value", "value !~ '^[0-9]{1,12}$'", "not a whole number of 0 or more"),
    *STEP_RULES,
    _vocab("channel", c.CHANNELS),
    _vocab("payment_method", c.PAYMENT_METHODS),
    ("payment_method", f"payment_method IN ({LEGACY}) AND day::date > '{c.LEGACY_PAYMENT_END}'",
     "giropay and paydirekt ended on 2024-12-31"),
    _vocab("auth_method", c.AUTH_METHODS),
    _vocab("trust_level", c.TRUST_LEVELS),
]

PATTERN_PARAMS = {"email": EMAIL, "phone": PHONE, "iban": IBAN, "iso_ts": ISO_TS, "iso_day": ISO_DAY,
                  "uuid": UUID, "service_key": c.SERVICE_KEY_PATTERN}


def _error_case(rules) -> str:
    whens = " ".join(f"WHEN {cond} THEN '{col}|{reason}'" for col, cond, reason in rules)
    return f"CASE {whens} END"


@dataclass
class LoadResult:
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    day_from: object = None
    day_to: object = None


@dataclass
class Batch:
    """What the loader needs to know about one batch."""

    tenant_id: int
    data_source_id: int
    run_id: int
    payload: str  # events | aggregates
    salt: str


Progress = Callable[[str, float], None]


def _stage_columns(payload: str) -> tuple[str, ...]:
    return c.PAYLOADS[payload]


def _create_stage(cur, payload: str) -> None:
    cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(col)) for col in _stage_columns(payload))
    # Row numbers count like a spreadsheet: the header is row 1.
    cur.execute(sql.SQL("CREATE TEMP TABLE stage (row_no bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 2), "
                        "{}) ON COMMIT DROP").format(cols))


def copy_csv_file(cur, path: Path, header: list[str], encoding: str, delimiter: str,
                  progress: Progress | None = None) -> None:
    """Stream a canonical CSV straight into the stage (the fast path: no Python per row)."""
    pg_encoding = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "cp1252": "WIN1252"}[encoding]
    cols = sql.SQL(", ").join(sql.Identifier(h) for h in header)
    statement = sql.SQL("COPY stage ({}) FROM STDIN (FORMAT csv, HEADER true, DELIMITER {}, ENCODING {}, "
                        "FORCE_NULL ({}))").format(cols, sql.Literal(delimiter), sql.Literal(pg_encoding), cols)
    total = max(path.stat().st_size, 1)
    done = 0
    with path.open("rb") as fh, cur.copy(statement) as copy:
        first = fh.read(1 << 20)
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
        chunk = first
        while chunk:
            copy.write(chunk)
            done += len(chunk)
            if progress:
                progress("staging", done / total)
            chunk = fh.read(1 << 20)


def copy_rows(cur, payload: str, rows: Iterable[tuple[int, tuple[str, ...]]],
              progress: Progress | None = None) -> None:
    """Stage mapped rows (row number + canonical values) with COPY."""
    cols = sql.SQL(", ").join(sql.Identifier(col) for col in ("row_no", *_stage_columns(payload)))
    with cur.copy(sql.SQL("COPY stage ({}) FROM STDIN").format(cols)) as copy:
        for count, (row_no, values) in enumerate(rows, start=1):
            copy.write_row((row_no, *[v if v != "" else None for v in values]))
            if progress and count % 50_000 == 0:
                progress("staging", -count)


# -- events ---------------------------------------------------------------------------------------

LOCAL_DAY = f"(occurred_at AT TIME ZONE '{TZ}')::date"

MOVE_EVENTS = """
WITH checked AS MATERIALIZED (
    SELECT s.*, {error} AS err FROM stage s
), errs AS (
    INSERT INTO portal.ingest_errors (tenant_id, run_id, row_no, column_name, reason)
    SELECT %(tenant)s, %(run)s, row_no, split_part(err, '|', 1), split_part(err, '|', 2)
    FROM checked WHERE err IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
), good AS (
    SELECT occurred_at::timestamptz AS ts, * FROM checked WHERE err IS NULL
), ins AS (
    INSERT INTO analytics.process_events (tenant_id, occurred_at, event_id, data_source_id, service_key, session_hash,
        event_type, step_no, step_name, channel, payment_method, payment_provider, auth_method, trust_level)
    SELECT %(tenant)s, ts,
           coalesce(event_id::uuid, md5(concat_ws('|', %(source)s::text, ts::text, service_key,
               coalesce(session_id, ''), event_type, coalesce(step_no, ''), coalesce(step_name, ''),
               coalesce(channel, ''), coalesce(payment_method, ''), coalesce(payment_provider, ''),
               coalesce(auth_method, ''), coalesce(trust_level, ''), row_no::text))::uuid),
           %(source)s, service_key,
           CASE WHEN session_id IS NOT NULL
                THEN encode(sha256(convert_to(%(salt)s || ':' || session_id, 'UTF8')), 'hex') END,
           event_type, step_no::smallint, step_name, channel, payment_method, payment_provider, auth_method, trust_level
    FROM good
    ON CONFLICT DO NOTHING
    RETURNING 1
), aff AS (
    INSERT INTO affected (service_key, day)
    SELECT DISTINCT service_key, (ts AT TIME ZONE '{tz}')::date FROM good
    RETURNING 1
)
SELECT (SELECT count(*) FROM checked), (SELECT count(*) FROM ins), (SELECT count(*) FROM errs),
       (SELECT count(*) FROM aff)
"""

MOVE_AGGREGATES = """
WITH checked AS MATERIALIZED (
    SELECT s.*, {error} AS err FROM stage s
), errs AS (
    INSERT INTO portal.ingest_errors (tenant_id, run_id, row_no, column_name, reason)
    SELECT %(tenant)s, %(run)s, row_no, split_part(err, '|', 1), split_part(err, '|', 2)
    FROM checked WHERE err IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
), good AS (
    SELECT day::date AS d, service_key, measure, coalesce(step_no, '0')::smallint AS step,
           coalesce(channel, '') AS ch, coalesce(payment_method, '') AS pm, coalesce(auth_method, '') AS am,
           coalesce(trust_level, '') AS tl, sum(value::bigint) AS v
    FROM checked WHERE err IS NULL
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
SELECT (SELECT count(*) FROM checked), (SELECT count(*) FROM checked WHERE err IS NULL), (SELECT count(*) FROM errs),
       (SELECT count(*) FROM aff)
"""

# -- rollups --------------------------------------------------------------------------------------

CUBE = f"""
CREATE TEMP TABLE cube ON COMMIT DROP AS
WITH days AS (SELECT DISTINCT day FROM affected)
SELECT e.service_key, {LOCAL_DAY.replace('occurred_at', 'e.occurred_at')} AS day, e.event_type AS measure,
       coalesce(e.step_no, 0) AS step_no, coalesce(max(e.step_name), '') AS step_name,
       coalesce(e.channel, '') AS channel, coalesce(e.payment_method, '') AS payment_method,
       coalesce(e.payment_provider, '') AS payment_provider, coalesce(e.auth_method, '') AS auth_method,
       coalesce(e.trust_level, '') AS trust_level, count(*) AS n
FROM days
JOIN analytics.process_events e
  ON e.occurred_at >= (days.day::timestamp AT TIME ZONE '{TZ}')
 AND e.occurred_at < ((days.day + 1)::timestamp AT TIME ZONE '{TZ}')
WHERE (e.service_key, {LOCAL_DAY.replace('occurred_at', 'e.occurred_at')}) IN (SELECT service_key, day FROM affected)
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

ROLLUPS = {
    "analytics.rollup_service_daily": f"""
        INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, submitted, aborted)
        SELECT %(tenant)s, service_key, day, {FUNNEL}
        FROM cube WHERE measure IN ('started', 'submitted', 'aborted') GROUP BY 2, 3""",
    "analytics.rollup_channel_daily": f"""
        INSERT INTO analytics.rollup_channel_daily (tenant_id, service_key, day, channel, started, submitted, aborted)
        SELECT %(tenant)s, service_key, day, channel, {FUNNEL}
        FROM cube WHERE measure IN ('started', 'submitted', 'aborted') AND channel <> '' GROUP BY 2, 3, 4""",
    "analytics.rollup_step_daily": f"""
        INSERT INTO analytics.rollup_step_daily (tenant_id, service_key, day, step_no, step_name, reached, aborted)
        SELECT %(tenant)s, service_key, day, step_no, max(step_name), {_counts("step_reached", "aborted")}
        FROM cube WHERE measure IN ('step_reached', 'aborted') AND step_no > 0 GROUP BY 2, 3, 4""",
    "analytics.rollup_payment_daily": """
        INSERT INTO analytics.rollup_payment_daily (tenant_id, service_key, day, payment_method, payment_provider,
            payments)
        SELECT %(tenant)s, service_key, day, payment_method, payment_provider, sum(n)
        FROM cube WHERE measure = 'payment' AND payment_method <> '' GROUP BY 2, 3, 4, 5""",
    "analytics.rollup_auth_daily": """
        INSERT INTO analytics.rollup_auth_daily (tenant_id, service_key, day, auth_method, trust_level, authentications)
        SELECT %(tenant)s, service_key, day, auth_method, trust_level, sum(n)
        FROM cube WHERE measure = 'authentication' AND auth_method <> '' GROUP BY 2, 3, 4, 5""",
}


def refresh_rollups(cur, tenant_id: int) -> None:
    """Recompute every rollup for the (service, day) keys in the temp table ``affected``."""
    cur.execute(CUBE)
    for table, insert in ROLLUPS.items():
        cur.execute(sql.SQL("DELETE FROM {} r USING affected a WHERE r.service_key = a.service_key "
                            "AND r.day = a.day").format(sql.SQL(table)))
        cur.execute(insert, {"tenant": tenant_id})


# -- the whole load -------------------------------------------------------------------------------

def stage_months(cur, payload: str) -> list[str]:
    """First days of the months the staged rows fall into (and the next: time zones shift edges)."""
    col = "occurred_at" if payload == "events" else "day"
    cur.execute(sql.SQL("SELECT DISTINCT substr({c}, 1, 7) FROM stage WHERE {c} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])'")
                .format(c=sql.Identifier(col)))
    months = set()
    for (ym,) in cur.fetchall():
        year, month = int(ym[:4]), int(ym[5:7])
        if year < int(EARLIEST[:4]) or year > 2100:
            continue
        months.add(f"{year:04d}-{month:02d}-01")
        months.add(f"{year + month // 12:04d}-{month % 12 + 1:02d}-01")
    return sorted(months)


def load(sa_connection, batch: Batch, stage: Callable[[object], None], ensure_partitions: Callable[[list[str]], None],
         progress: Progress | None = None) -> LoadResult:
    """Run one batch inside the caller's open transaction on ``sa_connection``.

    :param stage: fills the temp table ``stage`` through the cursor it is given.
    :param ensure_partitions: creates the monthly partitions for the given first days, in a
        separate short transaction (creating a partition locks the parent table; holding that
        lock for a whole load would stall every dashboard).
    """
    apply_tenant(sa_connection, batch.tenant_id)
    sa_connection.execute(text("SELECT set_config('timezone', :tz, true)"), {"tz": TZ})
    cur = sa_connection.connection.driver_connection.cursor()
    _create_stage(cur, batch.payload)
    stage(cur)
    if progress:
        progress("validating", 0)
    if batch.payload == "events":
        ensure_partitions(stage_months(cur, "events"))
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_NAMESPACE, batch.tenant_id))
    cur.execute("CREATE TEMP TABLE affected (service_key text, day date) ON COMMIT DROP")
    move = MOVE_EVENTS if batch.payload == "events" else MOVE_AGGREGATES
    rules = EVENT_RULES if batch.payload == "events" else AGGREGATE_RULES
    cur.execute(move.replace("{error}", _error_case(rules)).replace("{tz}", TZ),
                {**PATTERN_PARAMS, "tenant": batch.tenant_id, "run": batch.run_id, "source": batch.data_source_id,
                 "salt": batch.salt})
    total, accepted, rejected, _ = cur.fetchone()
    if progress:
        progress("rollups", 0)
    cur.execute("ANALYZE affected")
    refresh_rollups(cur, batch.tenant_id)
    cur.execute("SELECT min(day), max(day) FROM affected")
    day_from, day_to = cur.fetchone()
    # A push may hold events and aggregates: the next part of the batch stages afresh.
    cur.execute("DROP TABLE stage, affected, cube")
    return LoadResult(total, accepted, rejected, day_from, day_to)

