"""Row accounting as an invariant, tested on generated files (docs/data-format.md, "Row accounting").

Hypothesis writes tables (a civento wide export of daily counts, canonical event files) with good
rows and rows with one bad cell, in the dialects offices save them in (encodings, delimiters,
Excel's sep= hint, title rows, trailing empty columns and rows, line endings, quoting, numbers as
text, workbooks), loads each through the real loader, and compares with an independent count kept
here in plain Python:

* every row is accepted or listed as rejected, and exactly the bad rows are, by their row number
  as the spreadsheet shows it;
* the rollups after the load equal the rollups before plus what the accepted rows say (counts of
  a day replace what the source sent for that key, zero included; events add up), so a rejected
  row changes nothing. Each file is checked against the state just before it, so a failing file
  is shrunk on its own.

Each test loads a few hundred generated files per run (``EXAMPLES``).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.ingest.runs import load_file
from tests.ingest.conftest import EVENT_HEADER, add_source, rows

EXAMPLES = 150
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
BERLIN = ZoneInfo("Europe/Berlin")
SERVICES = ["99102013104000", "99108001001000", "local:fundsache"]
NAMES = ["Hundesteuer", "Grünschnitt-Abholung", "Straßenreinigung", "Ölspur melden", "Anwohnerparken"]


# -- dialects -------------------------------------------------------------------------------------

@dataclass
class Dialect:
    encoding: str
    delimiter: str
    newline: str
    sep_hint: bool
    preamble: list[list[str]]
    empty_columns: int
    empty_rows: int
    quote_all: bool
    workbook: bool

    @property
    def first_data_row(self) -> int:
        return len(self.preamble) + 2  # the sep= line is no row (Excel hides it)


DIALECTS = st.builds(
    Dialect,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "cp850", "mac_roman", "utf-16"]),
    delimiter=st.sampled_from([";", ",", "\t"]),
    newline=st.sampled_from(["\r\n", "\n", "\r"]),
    sep_hint=st.booleans(),
    preamble=st.lists(st.sampled_from([["Statistik der Onlinedienste"], [""], ["Stand: 01.11.2026"]]), max_size=2),
    empty_columns=st.integers(0, 2),
    empty_rows=st.integers(0, 2),
    quote_all=st.booleans(),
    workbook=st.booleans(),
)


def write_table(path_without_suffix, dialect: Dialect, header: list[str], body: list[list]):
    """The table as the office program would save it; returns the path."""
    width = len(header) + dialect.empty_columns
    lines = [*dialect.preamble, header, *body]
    lines = [line + [""] * (width - len(line)) if dialect.empty_columns else line for line in lines]
    lines += [[""] * width] * dialect.empty_rows
    if dialect.workbook:
        from openpyxl import Workbook

        book = Workbook()
        for line in lines:
            book.active.append([None if cell == "" else cell for cell in line])
        path = path_without_suffix.with_suffix(".xlsx")
        book.save(path)
        return path
    out = io.StringIO()
    if dialect.sep_hint:
        out.write(f"sep={dialect.delimiter}{dialect.newline}")
    writer = csv.writer(out, delimiter=dialect.delimiter, lineterminator=dialect.newline,
                        quoting=csv.QUOTE_ALL if dialect.quote_all else csv.QUOTE_MINIMAL)
    writer.writerows([[str(cell) for cell in line] for line in lines])
    path = path_without_suffix.with_suffix(".csv")
    path.write_bytes(out.getvalue().encode(dialect.encoding))
    return path


# -- a civento export: daily counts, one column per measure ------------------------------------------

CIVENTO_HEADER = ["Datum", "Leistungsschlüssel", "Onlinedienst", "Kanal", "Anträge gestartet",
                  "Anträge abgeschickt", "Anträge abgebrochen"]
MEASURES = ["started", "submitted", "aborted"]
CHANNELS = {"Web": "web", "iOS": "ios", "Android": "android", "": ""}
DAYS = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 10, 25), date(2024, 2, 29)]


@dataclass
class WideRow:
    day: date
    service: str
    name: str
    channel: str
    counts: list[int | None]
    number_style: str
    day_as_date: bool
    bad: tuple[int, str] | None = None  # (column, cell) that makes the row bad

    def cells(self, workbook: bool) -> list:
        cells: list = [self.day if workbook and self.day_as_date else self.day.strftime("%d.%m.%Y"), self.service,
                       self.name, self.channel]
        cells += ["" if n is None else _number(n, self.number_style, workbook) for n in self.counts]
        if self.bad:
            column, value = self.bad
            if column == -1:  # no count at all
                cells[4:] = ["", "", ""]
            else:
                cells[column] = value
        return cells


def _number(n: int, style: str, workbook: bool):
    if style == "text" or not workbook:
        if style == "thousands" and n >= 1000:
            return f"{n:,}".replace(",", ".")
        if style == "formula" and not workbook:
            return f'="{n}"'
        return str(n)
    return n if style != "float" else float(n)


BAD_WIDE_CELLS = st.sampled_from([
    (0, "31.02.2026"), (0, "2026-03-01"), (0, "1.3.26"), (0, ""), (1, "99123"), (1, "9,91020E+13"),
    (3, "Fax"), (4, "k.A."), (5, "-3"), (6, "1,5"), (-1, ""),
])

WIDE_ROWS = st.builds(
    WideRow,
    day=st.sampled_from(DAYS),
    service=st.sampled_from(SERVICES),
    name=st.sampled_from(NAMES),
    channel=st.sampled_from(list(CHANNELS)),
    counts=st.lists(st.one_of(st.none(), st.integers(0, 3000)), min_size=3, max_size=3).filter(
        lambda c: any(n is not None for n in c)),
    number_style=st.sampled_from(["plain", "thousands", "text", "formula", "float"]),
    day_as_date=st.booleans(),
    bad=st.one_of(st.none(), st.none(), BAD_WIDE_CELLS),
)


def _add(days: dict[tuple, tuple], key: tuple, measure: str, n: int) -> None:
    counts = list(days.get(key, (0, 0, 0)))
    counts[MEASURES.index(measure)] += n
    days[key] = tuple(counts)


def _figures(days: dict[tuple, tuple]) -> dict[tuple, tuple]:
    return {key: counts for key, counts in days.items() if any(counts)}


def _stored_service_days(app, tenant_id) -> dict[tuple, tuple]:
    return {(service, day): (s, u, a) for service, day, s, u, a in rows(
        app, tenant_id, "SELECT service_key, day, started, submitted, aborted FROM analytics.rollup_service_daily")
        if s or u or a}


def _stored_counts(app, tenant_id, source_id) -> dict[tuple, int]:
    """What the source sent per day, service, measure and channel (the statements a new file replaces)."""
    return {(day, service, measure, channel): value for day, service, measure, channel, value in rows(
        app, tenant_id, "SELECT day, service_key, measure, channel, value FROM analytics.daily_aggregates "
                        "WHERE data_source_id = :s", s=source_id)}


def _loaded_and_accounted(app, tenant_id, source, path, dialect: Dialect, table: list, before: dict) -> bool:
    """Load the file; check that every row is accepted or rejected, and exactly the bad ones are (by
    their spreadsheet row number). False for the very same file again (then nothing may change)."""
    with app.app_context():
        run, outcome = load_file(tenant_id, source, path)
    if outcome["status"] == "duplicate":
        assert _stored_service_days(app, tenant_id) == before
        return False
    assert outcome["status"] == "succeeded", (run.error, run.error_args)
    bad = [dialect.first_data_row + i for i, row in enumerate(table) if row.bad]
    assert (run.rows_total, run.rows_accepted, run.rows_rejected) == (len(table), len(table) - len(bad), len(bad))
    assert [r[0] for r in rows(app, tenant_id, "SELECT row_no FROM portal.ingest_errors WHERE run_id = :r "
                                               "ORDER BY row_no", r=run.id)] == bad
    return True


def test_every_row_of_a_wide_export_is_accounted_for_and_only_accepted_rows_change_figures(
        app, two_tenants, tmp_path_factory):
    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "civento", profile="civento")
    folder = tmp_path_factory.mktemp("civento")
    serial = iter(range(10**9))

    @SETTINGS
    @given(dialect=DIALECTS, table=st.lists(WIDE_ROWS, min_size=1, max_size=8))
    def load_one(dialect, table):
        before, sent_before = _stored_service_days(app, a), _stored_counts(app, a, source)
        body = [row.cells(dialect.workbook) for row in table]
        path = write_table(folder / f"export-{next(serial)}", dialect, CIVENTO_HEADER, body)
        if not _loaded_and_accounted(app, a, source, path, dialect, table, before):
            return
        batch: Counter = Counter()
        for row in table:
            if not row.bad:
                for measure, n in zip(MEASURES, row.counts, strict=True):
                    if n is not None:  # an empty cell is "not given": what is stored stays
                        batch[(row.day, row.service, measure, CHANNELS[row.channel])] += n
        # A day's count replaces what the source sent for the same key, zero included.
        expected = dict(before)
        for (day, service, measure, channel), n in batch.items():
            _add(expected, (service, day), measure, n - sent_before.get((day, service, measure, channel), 0))
        assert _stored_service_days(app, a) == _figures(expected)

    load_one()


# -- canonical events ------------------------------------------------------------------------------

GOOD_TIMES = ["2026-03-02T09:15:00+01:00", "2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00",
              "2026-10-25T02:30:00+01:00", "2025-12-31T23:30:00Z", "2025-12-31T22:59:00Z", "2026-03-02 10:00",
              "2024-02-29T23:30:00Z", "2026-11-01T00:30:00+01:00"]
EVENT_TYPES = ["started", "submitted", "aborted", "step_reached"]


@dataclass
class EventRow:
    occurred_at: str
    service: str
    session: str
    event_type: str
    channel: str
    bad: tuple[str, str] | None = None

    def values(self) -> dict[str, str]:
        values = {"occurred_at": self.occurred_at, "service_key": self.service, "session_id": self.session,
                  "event_type": self.event_type, "channel": self.channel,
                  "step_no": "1" if self.event_type == "step_reached" else ""}
        if self.bad and self.bad[0] != "extra":
            values[self.bad[0]] = self.bad[1]
        return values

    def berlin_day(self) -> date:
        moment = datetime.fromisoformat(self.occurred_at.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=BERLIN)
        return moment.astimezone(BERLIN).date()


BAD_EVENT_CELLS = st.sampled_from([
    ("occurred_at", "2026-02-30T10:00:00+01:00"), ("occurred_at", "02.03.2026 10:00"),
    ("occurred_at", "2095-05-01T10:00:00Z"), ("occurred_at", ""), ("event_type", "gestartet"), ("event_type", ""),
    ("service_key", "99123"), ("channel", "fax"), ("session_id", "s\x00x"), ("extra", "Notiz"),
])

EVENT_ROWS = st.builds(
    EventRow, occurred_at=st.sampled_from(GOOD_TIMES), service=st.sampled_from(SERVICES),
    session=st.sampled_from(["a1", "b2", "c3"]), event_type=st.sampled_from(EVENT_TYPES),
    channel=st.sampled_from(["web", "ios", "android", ""]), bad=st.one_of(st.none(), st.none(), BAD_EVENT_CELLS))

COLUMN_ORDERS = st.permutations(EVENT_HEADER.split(","))


def test_every_row_of_an_event_file_is_accounted_for_and_only_accepted_rows_change_figures(
        app, two_tenants, tmp_path_factory):
    a = two_tenants.a.id
    with app.app_context():
        source = add_source(a, "Formulardienst", profile="canonical")
    folder = tmp_path_factory.mktemp("events")
    serial = iter(range(10**9))

    @SETTINGS
    @given(dialect=DIALECTS, header=COLUMN_ORDERS, table=st.lists(EVENT_ROWS, min_size=1, max_size=8))
    def load_one(dialect, header, table):
        if dialect.workbook and any(row.bad and "\x00" in row.bad[1] for row in table):
            dialect.workbook = False  # a workbook cannot hold a NUL character at all
        file_no = next(serial)
        for row in table:  # sessions of this file only: no event of it was stored before
            row.session = f"{row.session}-{file_no}"
        before = _stored_service_days(app, a)
        body = [[row.values().get(column, "") for column in header] + (["Notiz"] if row.bad and row.bad[0] == "extra"
                                                                        else []) for row in table]
        path = write_table(folder / f"events-{file_no}", dialect, header, body)
        if not _loaded_and_accounted(app, a, source, path, dialect, table, before):
            return
        expected = dict(before)
        for row in table:
            if not row.bad and row.event_type in MEASURES:
                _add(expected, (row.service, row.berlin_day()), row.event_type, 1)
        assert _stored_service_days(app, a) == _figures(expected)

    load_one()
