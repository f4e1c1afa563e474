"""The refresh: read every participant's values, compute the protected group figures, replace the schema.

Reading goes one tenant at a time through ``tenant_transaction(tenant_id)``,
so RLS stays the only way into tenant data and no role can read across
tenants. The values live only in this process's memory; what is written to
the ``benchmark`` schema are group figures that passed
:func:`tenants.benchmark.aggregate.quartile_figures`. The write replaces the
previous state in one transaction, so readers see either the old or the new
figures, and a withdrawn tenant is gone from every figure after the run.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, text

from tenants.benchmark import participation
from tenants.benchmark.aggregate import QUARTILES, BenchmarkRules, Grouping, mode_figures, quartile_figures
from tenants.benchmark.groups import Member, build_groups
from tenants.benchmark.metrics import ABANDON_STEP, FAMILIES, metric_for, tenant_values
from tenants.context import tenant_transaction
from tenants.db import db
from tenants.models import Region, Tenant


@dataclass
class Collected:
    """What the refresh read: members (public reference data), opt-ins, peers, and the values in memory."""

    members: dict[int, Member] = field(default_factory=dict)
    families: dict[int, set[str]] = field(default_factory=dict)
    peers: dict[int, set[int]] = field(default_factory=dict)
    values: dict[int, object] = field(default_factory=dict)


def active_members() -> dict[int, Member]:
    with tenant_transaction(None) as session:
        rows = session.execute(select(Tenant.id, Region).join(Region, Region.ags == Tenant.ags)
                               .where(Tenant.status == "active")).all()
        return {tid: Member(tid, r.ags, r.kind, r.kreis_ags, r.kreis_name, r.population) for tid, r in rows}


def collect(today: date) -> Collected:
    """Opt-ins, peers and values of every active tenant, one tenant transaction each."""
    found = Collected(members=active_members())
    by_ags = {m.ags: tid for tid, m in found.members.items()}
    for tenant_id, member in found.members.items():
        with tenant_transaction(tenant_id) as session:
            chosen = participation.opted_in(session, tenant_id)
            if not chosen:
                continue
            found.families[tenant_id] = chosen
            found.peers[tenant_id] = {by_ags[a] for a in participation.peers(session, tenant_id) if a in by_ags}
            found.values[tenant_id] = tenant_values(session, tenant_id, member.population, today,
                                                    tuple(f for f in FAMILIES if f in chosen))
    return found


#: Below this many cells the figures are computed in this process; above, on every core (forked workers).
PARALLEL_FROM = 5000

# (tasks, rules) of the running compute(), for forked workers: they inherit it instead of unpickling it.
_WORK: list = []


def _task_rows(task, brules: BenchmarkRules) -> list[tuple]:
    kind, grouping, (leika, month, metric), values = task
    if kind == "mode":
        return [(group, leika, month, metric, band, None, None, None, label, f"mode={why}" if why else "")
                for group, (label, band, why) in mode_figures(values, grouping, brules).items()]
    rows = []
    for group, fig in quartile_figures(values, grouping, brules).items():
        why = ",".join(f"{q}={fig.suppressed[q]}" for q in QUARTILES if q in fig.suppressed)
        rows.append((group, leika, month, metric, fig.contributors_band, fig.q1, fig.median, fig.q3, None, why))
    return rows


def _run_chunk(bounds: tuple[int, int]) -> list[tuple]:
    tasks, brules = _WORK
    return [row for task in tasks[bounds[0]:bounds[1]] for row in _task_rows(task, brules)]


def _tasks(found: Collected) -> tuple[list, dict]:
    """One task per (service, month, metric) and family: the participants' values and the family's groups."""
    tasks, labels = [], {}
    split = {t: values.by_family() for t, values in found.values.items()}
    for family in FAMILIES:
        participants = {t for t, fams in found.families.items() if family in fams}
        if not participants:
            continue
        groups, family_labels = build_groups({t: found.members[t] for t in participants}, found.peers)
        labels.update(family_labels)
        grouping = Grouping(groups)
        by_cell: dict = defaultdict(dict)
        for tenant in participants:
            for cell, value in split[tenant].get(family, {}).items():
                by_cell[cell][tenant] = value
        tasks += [("quartiles", grouping, cell, values) for cell, values in by_cell.items()]
        if family == ABANDON_STEP.family:
            by_step: dict = defaultdict(dict)
            for tenant in participants:
                for (leika, month), label in found.values[tenant].steps.items():
                    by_step[(leika, month, ABANDON_STEP.key)][tenant] = label
            tasks += [("mode", grouping, cell, steps) for cell, steps in by_step.items()]
    return tasks, labels


def compute(found: Collected, brules: BenchmarkRules) -> tuple[list[tuple], dict]:
    """All figure rows and group labels: ([(group, leika, month, metric, band, q1, median, q3, mode, why)], labels).

    Cells are independent, so a large refresh splits them over forked worker processes (one per core).
    """
    tasks, labels = _tasks(found)
    workers = os.cpu_count() or 1
    _WORK[:] = [tasks, brules]
    try:
        if len(tasks) < PARALLEL_FROM or workers < 2:
            return _run_chunk((0, len(tasks))), labels
        size = -(-len(tasks) // (workers * 4))
        chunks = [(i, min(i + size, len(tasks))) for i in range(0, len(tasks), size)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            rows = [row for part in pool.map(_run_chunk, chunks) for row in part]
        return rows, labels
    finally:
        _WORK.clear()


def _copy_rows(session, rows: list[tuple]) -> None:
    """COPY the figures in: 10^6 rows in seconds, where INSERTs would take minutes."""
    raw = session.connection().connection.driver_connection
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    with raw.cursor() as cur, cur.copy(
            "COPY benchmark.figures (group_key, service_key, month, metric, contributors_band, q1, median, q3, "
            "mode_label, suppressed) FROM STDIN") as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)


def refresh(brules: BenchmarkRules, today: date | None = None) -> dict:
    """Recompute every benchmark figure. Returns a summary (participants, figures, run id)."""
    today = today or date.today()
    with tenant_transaction(None) as session:
        run_id = session.execute(text("INSERT INTO benchmark.refresh_runs DEFAULT VALUES RETURNING id")).scalar()
    try:
        found = collect(today)
        rows, labels = compute(found, brules)
        with tenant_transaction(None) as session:
            session.execute(text("TRUNCATE benchmark.figures, benchmark.groups"))
            if labels:
                session.execute(text("INSERT INTO benchmark.groups (group_key, kind, label) VALUES (:k, :kind, :l)"),
                                [{"k": k, "kind": kind, "l": label} for k, (kind, label) in labels.items()])
            _copy_rows(session, rows)
            session.execute(text("UPDATE benchmark.refresh_runs SET status = 'succeeded', finished_at = now(), "
                                 "participants = :p, figures = :f WHERE id = :id"),
                            {"p": len(found.families), "f": len(rows), "id": run_id})
    except Exception as error:
        db.session.rollback()
        with tenant_transaction(None) as session:
            session.execute(text("UPDATE benchmark.refresh_runs SET status = 'failed', finished_at = now(), "
                                 "error = :e WHERE id = :id"), {"e": str(error)[:2000], "id": run_id})
        raise
    return {"run_id": run_id, "participants": len(found.families), "figures": len(rows)}


def metric_label(key: str) -> str:
    return metric_for(key).label
