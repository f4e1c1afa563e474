"""The refresh: read every participant's values, compute the protected group figures, add them to the schema.

Reading goes one tenant at a time through ``tenant_transaction(tenant_id)``,
so RLS stays the only way into tenant data and no role can read across
tenants. The values live only in this process's memory; what is written to
the ``benchmark`` schema are group figures that passed
:func:`tenants.benchmark.aggregate.quartile_figures`.

**Published once, never recomputed** (issue 14). A figure of a closed month is
computed at the first refresh after the month has settled (:data:`SETTLE_DAYS`
days into the next month) and then kept as it is: a month with figures in
``benchmark.figures`` is neither read nor computed by later refreshes. So no
participant can learn another's value by changing its own data of a past month
between refreshes (late events, a new peer group, withdrawing and rejoining):
a second refresh publishes nothing new about that month. It also makes the
nightly run cheap: it reads only the months due (on the 4th, last month; on
other nights none), and only the first refresh reads all 36. Changes of data and
participation take effect for the months compared from then on. Figures older
than the 36 months compared are deleted. The write is one transaction: readers
see the figures before or after the refresh, never a part of it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from array import array
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from sqlalchemy import select, text

from tenants.benchmark import participation
from tenants.benchmark.aggregate import QUARTILES, BenchmarkRules, Grouping, Value, mode_figures, quartile_figures
from tenants.benchmark.groups import Member, build_groups
from tenants.benchmark.metrics import ABANDON_STEP, FAMILIES, metric_for, read_tenant, since
from tenants.context import platform_transaction, tenant_transaction
from tenants.db import db
from tenants.models import Region, Tenant
from tenants.months import berlin_today, month_start


class CellTable:
    """Every participant's values of one family, compact: one row per tenant and (service, month, metric).

    Hessen-wide that is millions of values; plain arrays keep them in a few hundred megabytes where
    dictionaries of objects would take gigabytes.
    """

    def __init__(self):
        self.index: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.cell, self.tenant = array("i"), array("i")
        self.value, self.base = array("d"), array("q")

    def add(self, key: tuple, tenant: int, value: float, base: int) -> None:
        cell = self.index.get(key)
        if cell is None:
            cell = self.index[key] = len(self.keys)
            self.keys.append(key)
        self.cell.append(cell)
        self.tenant.append(tenant)
        self.value.append(value)
        self.base.append(base)

    def merge(self, other: CellTable, value_map: np.ndarray | None = None) -> None:
        """Append another table's rows (from a worker process), renumbering its cells into ours."""
        if not len(other.cell):
            return
        mapping = np.array([self.index.get(key, -1) for key in other.keys], dtype=np.int32)
        for position, key in enumerate(other.keys):
            if mapping[position] < 0:
                mapping[position] = self.index[key] = len(self.keys)
                self.keys.append(key)
        self.cell.frombytes(mapping[np.frombuffer(other.cell, dtype=np.int32)].astype(np.int32).tobytes())
        self.tenant.extend(other.tenant)
        values = np.frombuffer(other.value, dtype=np.float64)
        self.value.frombytes((value_map[values.astype(np.int64)].astype(np.float64) if value_map is not None
                              else values).tobytes())
        self.base.extend(other.base)

    def segments(self) -> list[np.ndarray]:
        """Row positions per cell, one array per cell (in cell order)."""
        cells = np.frombuffer(self.cell, dtype=np.int32) if len(self.cell) else np.zeros(0, dtype=np.int32)
        order = np.argsort(cells, kind="stable")
        return np.split(order, np.flatnonzero(np.diff(cells[order])) + 1) if len(order) else []

    def values(self, rows: np.ndarray) -> dict[int, Value]:
        return {self.tenant[i]: Value(self.value[i], self.base[i]) for i in rows.tolist()}


@dataclass
class Collected:
    """What the refresh read: members (public reference data), opt-ins, peers, and the values in memory."""

    members: dict[int, Member] = field(default_factory=dict)
    families: dict[int, set[str]] = field(default_factory=dict)
    peers: dict[int, set[int]] = field(default_factory=dict)
    tables: dict[str, CellTable] = field(default_factory=lambda: {f: CellTable() for f in FAMILIES})
    steps: CellTable = field(default_factory=CellTable)
    step_labels: list[str] = field(default_factory=list)

    def add(self, tenant_id: int, rows: list[tuple], steps: dict) -> None:
        """One tenant's rows (leika, month, metric, value, base) and worst steps (see metrics.read_tenant)."""
        tables = self.tables
        for leika, month, metric, value, base in rows:
            tables[metric_for(metric).family].add((leika, month, metric), tenant_id, value, base)
        for (leika, month), (label, base) in steps.items():
            self.steps.add((leika, month, ABANDON_STEP.key), tenant_id, self._label(label), base)

    def _label(self, label: str) -> int:
        if label not in self.step_labels:
            self.step_labels.append(label)
        return self.step_labels.index(label)

    def merge(self, other: Collected) -> None:
        self.families.update(other.families)
        self.peers.update(other.peers)
        for family, table in other.tables.items():
            self.tables[family].merge(table)
        labels = np.array([self._label(label) for label in other.step_labels] or [0], dtype=np.float64)
        self.steps.merge(other.steps, labels)


def active_members() -> dict[int, Member]:
    with platform_transaction() as session:
        rows = session.execute(select(Tenant.id, Region).join(Region, Region.ags == Tenant.ags)
                               .where(Tenant.is_active)).all()
        return {tid: Member(tid, r.ags, r.kind, r.kreis_ags, r.kreis_name, r.population) for tid, r in rows}


def _collect_tenants(found: Collected, tenant_ids: list[int], today: date,
                     months: tuple[date, date] | None) -> Collected:
    by_ags = {m.ags: tid for tid, m in found.members.items()}
    for tenant_id in tenant_ids:
        with tenant_transaction(tenant_id) as session:
            chosen = participation.opted_in(session, tenant_id)
            if not chosen:
                continue
            found.families[tenant_id] = chosen
            found.peers[tenant_id] = {by_ags[a] for a in participation.peers(session, tenant_id) if a in by_ags}
            found.add(tenant_id, *read_tenant(session, tenant_id, found.members[tenant_id].population, today,
                                              tuple(f for f in FAMILIES if f in chosen), months))
    return found


def _collect_slice(tenant_ids: list[int]) -> Collected:
    """In a forked worker: own database connections (never the parent's sockets), same reading."""
    members, today, months = _WORK
    db.engine.dispose(close=False)
    part = _collect_tenants(Collected(members=members), tenant_ids, today, months)
    part.members = {}
    return part


def collect(today: date, months: tuple[date, date] | None = None) -> Collected:
    """Opt-ins, peers and values of every active tenant in ``months`` (first month, month after the last;
    default: all months compared), one tenant transaction each.

    With many tenants the reading is split over forked worker processes (one per core); each reads
    its tenants through its own connections, exactly as a single process would.
    """
    found = Collected(members=active_members())
    ids = sorted(found.members)
    workers = os.cpu_count() or 1
    if len(ids) < PARALLEL_TENANTS or workers < 2:
        return _collect_tenants(found, ids, today, months)
    _WORK[:] = [found.members, today, months]
    # Twice as many readers as cores: each spends about half its time waiting for its query, and
    # the other reader's Python work fills that time (measured: 32 s -> 29.5 s for 443 tenants on 2 cores).
    readers = workers * READERS_PER_CORE
    try:
        with _fork_pool(readers) as pool:
            for part in _map(pool, _collect_slice, [ids[i::readers * 2] for i in range(readers * 2)]):
                found.merge(part)
    finally:
        _WORK.clear()
    return found


#: A worker that has not answered after this long is taken as lost (a pool never notices a worker
#: that died or hangs); the refresh then fails with an error instead of waiting for ever.
POOL_TIMEOUT_S = 1800


def _fork_pool(processes: int):
    """A pool of forked workers that die when the pool terminates them.

    A fork inherits the parent's Python signal handlers; an RQ worker run in the same process (the
    CLI, a test) leaves its SIGTERM handler behind, which only asks for a warm shutdown, and the
    pool's ``terminate()`` then waits for ever for workers that never exit.
    """
    return multiprocessing.get_context("fork").Pool(processes, initializer=_default_signals)


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _map(pool, func, items: list) -> list:
    return pool.map_async(func, items).get(timeout=POOL_TIMEOUT_S)


#: From this many tenants on, reading runs on every core.
READERS_PER_CORE = 2
PARALLEL_TENANTS = 100


#: Below this many cells the figures are computed in this process; above, on every core (forked workers).
PARALLEL_FROM = 5000

# (jobs, rules) of the running compute(), for forked workers: they inherit it instead of unpickling it.
_WORK: list = []


def _job_rows(job, brules: BenchmarkRules) -> list[tuple]:
    kind, grouping, table, key, rows, labels = job
    leika, month, metric = key
    if kind == "mode":
        steps = {table.tenant[i]: (labels[int(table.value[i])], table.base[i]) for i in rows.tolist()}
        return [(group, leika, month, metric, band, None, None, None, label, f"mode={why}" if why else "")
                for group, (label, band, why) in mode_figures(steps, grouping, brules).items()]
    out = []
    for group, fig in quartile_figures(table.values(rows), grouping, brules).items():
        why = ",".join(f"{q}={fig.suppressed[q]}" for q in QUARTILES if q in fig.suppressed)
        out.append((group, leika, month, metric, fig.contributors_band, fig.q1, fig.median, fig.q3, None, why))
    return out


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value) -> str:
    """One field in COPY's text format: NULL as \\N, text with backslash, tab and line breaks escaped
    (a step label comes from a source system and may hold any of them)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def _run_chunk(bounds: tuple[int, int]) -> tuple[int, str]:
    """The figure rows of some cells, already as COPY text: formatted in the worker, on every core,
    and one string to send back instead of a million tuples to pickle."""
    jobs, brules = _WORK
    lines = ["\t".join(map(copy_field, row)) + "\n" for job in jobs[bounds[0]:bounds[1]]
             for row in _job_rows(job, brules)]
    return len(lines), "".join(lines)


def _jobs(found: Collected, wanted=lambda key: True) -> tuple[list, dict]:
    """One job per family and (service, month, metric) that ``wanted`` accepts: the cell's rows and the
    family's groups."""
    jobs, labels = [], {}
    for family in FAMILIES:
        participants = {t for t, fams in found.families.items() if family in fams}
        if not participants:
            continue
        groups, family_labels = build_groups({t: found.members[t] for t in participants}, found.peers)
        labels.update(family_labels)
        grouping = Grouping(groups)
        table = found.tables[family]
        for rows in table.segments():
            key = table.keys[table.cell[int(rows[0])]]
            if wanted(key):
                jobs.append(("quartiles", grouping, table, key, rows, None))
        if family == ABANDON_STEP.family:
            steps = found.steps
            for rows in steps.segments():
                key = steps.keys[steps.cell[int(rows[0])]]
                if wanted(key):
                    jobs.append(("mode", grouping, steps, key, rows, found.step_labels))
    return jobs, labels


def compute(found: Collected, brules: BenchmarkRules, wanted=lambda key: True) -> tuple[list[str], int, dict]:
    """The figure rows of the cells ``wanted`` accepts (all by default) as COPY text chunks, their number,
    and the group labels.

    A row is (group, leika, month, metric, band, q1, median, q3, mode, why). Cells are independent,
    so a large refresh splits them over forked worker processes (one per core).
    """
    jobs, labels = _jobs(found, wanted)
    workers = os.cpu_count() or 1
    _WORK[:] = [jobs, brules]
    try:
        if len(jobs) < PARALLEL_FROM or workers < 2:
            parts = [_run_chunk((0, len(jobs)))]
        else:
            size = -(-len(jobs) // (workers * 4))
            chunks = [(i, min(i + size, len(jobs))) for i in range(0, len(jobs), size)]
            with _fork_pool(workers) as pool:
                parts = _map(pool, _run_chunk, chunks)
        return [text for _, text in parts], sum(count for count, _ in parts), labels
    finally:
        _WORK.clear()


def _copy_rows(session, texts: list[str]) -> None:
    """COPY the figures in: 10^6 rows in seconds, where INSERTs would take minutes."""
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(
            "COPY benchmark.figures (group_key, service_key, month, metric, contributors_band, q1, median, q3, "
            "mode_label, suppressed) FROM STDIN") as copy:
        for text_chunk in texts:
            copy.write(text_chunk)


#: Days into the next month before a month is compared (and from then on kept as published): late
#: deliveries of the last days (a push source that lags, an export uploaded on the 2nd) get in first.
SETTLE_DAYS = 3


def comparable(month: date, today: date) -> bool:
    """Whether ``month`` (its first day) is closed and settled on ``today`` (German date)."""
    return month < month_start(today) and (month < month_start(today, 1) or today.day > SETTLE_DAYS)


def months_due(today: date, published: set[date]) -> list[date]:
    """The months a refresh on ``today`` computes: compared (:func:`since`), settled (:func:`comparable`) and
    without published figures. A month with figures is kept as it is (module docstring)."""
    month, due = since(today), []
    while comparable(month, today):
        if month not in published:
            due.append(month)
        month = month_start(month, -1)
    return due


def _published_months(session) -> set[date]:
    """The months with published figures: kept as they are, never read or computed again."""
    return set(session.execute(text("SELECT DISTINCT month FROM benchmark.figures")).scalars())


def refresh(brules: BenchmarkRules, today: date | None = None) -> dict:
    """Compute the figures of the months due (:func:`months_due`); keep the published ones.

    Returns a summary (participants, new figures, months computed, run id, seconds per phase).
    """
    today = today or berlin_today()
    with platform_transaction() as session:
        run_id = session.execute(text("INSERT INTO benchmark.refresh_runs DEFAULT VALUES RETURNING id")).scalar()
        published = _published_months(session)
    due = set(months_due(today, published))
    seconds = {}
    try:
        clock = time.perf_counter()
        # Nothing due (most nights): no tenant is read; old months are still dropped below.
        found = collect(today, (min(due), month_start(max(due), -1))) if due else Collected()
        seconds["read"], clock = time.perf_counter() - clock, time.perf_counter()
        texts, figures, labels = compute(found, brules, lambda key: key[1] in due)
        seconds["compute"], clock = time.perf_counter() - clock, time.perf_counter()
        with platform_transaction() as session:
            _write(session, texts, labels, bool(published), since(today))
            session.execute(text("UPDATE benchmark.refresh_runs SET status = 'succeeded', finished_at = now(), "
                                 "participants = :p, figures = :f, months = :m WHERE id = :id"),
                            {"p": len(found.families), "f": figures, "m": len(due), "id": run_id})
    except Exception as error:
        db.session.rollback()
        with platform_transaction() as session:
            session.execute(text("UPDATE benchmark.refresh_runs SET status = 'failed', finished_at = now(), "
                                 "error = :e WHERE id = :id"), {"e": str(error)[:2000], "id": run_id})
        raise
    seconds["write"] = time.perf_counter() - clock
    return {"run_id": run_id, "participants": len(found.families), "figures": figures, "months": len(due),
            "seconds": seconds}


def _write(session, texts: list[str], labels: dict, incremental: bool, oldest: date) -> None:
    """Add the new figures and the group labels; drop figures older than the months compared.

    The first refresh (nothing published yet) loads in bulk: the key is dropped and rebuilt around the
    COPY (migration 0008), a third of the time at Hessen's scale. Later refreshes add a month's figures
    with the key in place.
    """
    if incremental:
        session.execute(text("DELETE FROM benchmark.figures WHERE month < :oldest"), {"oldest": oldest})
    else:
        session.execute(text("SELECT benchmark.clear_figures()"))
    if labels:
        session.execute(text("INSERT INTO benchmark.groups (group_key, kind, label) VALUES (:k, :kind, :l) "
                             "ON CONFLICT (group_key) DO UPDATE SET kind = excluded.kind, label = excluded.label"),
                        [{"k": k, "kind": kind, "l": label} for k, (kind, label) in labels.items()])
    _copy_rows(session, texts)
    if not incremental:
        session.execute(text("SELECT benchmark.index_figures()"))
