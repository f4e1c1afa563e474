"""The disclosure audit: what a reader can still work out about every withheld count.

It is deliberately independent of the suppression code (``tenants/confidentiality.py`` and the
builders in ``tenants/opendata/datasets.py``): it imports neither, and it does not look at how
cells were chosen. It reads the tables exactly as the public gets them (rows with empty cells,
rates, shares and averages as printed) next to the true counts, writes down everything a reader
knows as linear constraints over whole numbers, and asks an integer programming solver (HiGHS,
through its own Python interface ``highspy``) for the smallest and the largest value each sensitive withheld
quantity can still take.

**What the reader knows** (the threat model of docs/confidentiality.md):

* every published figure of every dataset of the tenant: counts and totals exactly; rates and
  shares (4 decimals) and mean ratings (2 decimals) as the intervals their rounding leaves;
* counts are whole numbers and never negative; a withheld count that is not 0 is at least 1
  (0 is always published, so an empty cell is known not to be 0);
* ``started = submitted + aborted + open`` with ``open >= 0``, in every row whose counts satisfy
  it (a source that reports more submissions than starts in a month breaks the rule there, and
  a reader cannot rely on it);
* a rating is 1 to 5, so the sum of a cell's ratings lies between 1 and 5 times their number;
* links between tables: for each service, every relation ``=``, ``<=`` or ``>=`` between the
  total of a linked table (payments, authentications, channels, ratings) and the service's
  submitted or started count that holds in every month of the data. Whoever knows how a service
  works knows such rules ("a fee service takes one payment per application").

Nothing of the suppression is assumed: not which cells are primary, not that totals are sums
of the rows shown (they are written as sums of the true variables), not that a rate is only
printed next to its counts.

**The rule checked** (``min_cases`` = P, default 3): for every withheld count whose true value
lies between 1 and P-1, and for every open count (never printed) between 1 and P-1, the range
[low, high] a reader can still derive satisfies ``high - low >= P``: the value is neither pinned
nor bounded to within the threshold. Besides, no published count lies between 1 and P-1, and
every published figure agrees with the data.

The tables of one month share no constraint with another month's, and after the published
values are substituted the withheld quantities fall apart into small connected groups; each
group is one small problem. A linear relaxation is solved first; its optimum is taken when it is
whole-numbered (then it is also the integer optimum) and the integer program is solved otherwise.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import highspy
import numpy as np

TOTAL = "total"
USAGE = "usage"
COMPLETION = "completion"
SATISFACTION = "satisfaction"
USAGE_MEASURES = ("started", "submitted", "aborted")
OPEN = "open"
RATINGS = "ratings"
RATING_SUM = "rating_sum"
#: Published tables of counts per service, month and category, each with a total row per service
#: and month: dataset -> (category column, count column). Channels are not published today; a
#: channel table would be audited (and linked to usage) the same way.
BREAKDOWNS = {"payment": ("payment_method", "payments"), "authentication": ("auth_method", "authentications"),
              "channel": ("channel", "sessions")}
#: Usage counts a linked table's total may be tied to.
LINKED_MEASURES = ("submitted", "started")
#: Half of the last printed decimal: rates and shares have 4 decimals, mean ratings 2.
RATE_HALF_STEP = 0.00005
AVERAGE_HALF_STEP = 0.005
#: Slack for floating-point comparisons of solver results.
_EPS = 1e-6

NARROW = "narrow"  # a sensitive withheld quantity's range is narrower than the threshold
PUBLISHED_SMALL = "published_small"  # a published count between 1 and P-1
MISMATCH = "mismatch"  # a published figure that disagrees with the data (or refers to none)
UNSOLVED = "unsolved"  # the solver reached no verdict (set by callers that catch AuditError)


class Quantity(NamedTuple):
    """A count a reader might want: a cell of a public table, a total, or a never-printed open count.

    ``table`` is usage, payment, authentication, channel or satisfaction; ``service`` a service key
    or ``total``; ``measure`` started/submitted/aborted/open, a category (``total`` for the row of
    all categories) or ``ratings``. (A named tuple: the audit hashes millions of them.)
    """

    table: str
    month: str
    service: str
    measure: str

    def __str__(self) -> str:
        return f"{self.table} {self.month} {self.service} {self.measure}"


@dataclass(frozen=True)
class Finding:
    """One breach of the rule. ``low``/``high`` are the range a reader derives (None: unbounded)."""

    kind: str
    quantity: Quantity
    value: int
    low: int | None = None
    high: int | None = None
    #: Published count cells in the constraints that bound it: withholding one of them may help.
    bounded_by: tuple[Quantity, ...] = ()

    def __str__(self) -> str:
        if self.kind == NARROW:
            high = "∞" if self.high is None else self.high
            return f"{self.quantity} = {self.value} lies in [{self.low}, {high}]"
        return f"{self.kind}: {self.quantity} = {self.value}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    #: Sensitive withheld quantities whose range was computed, and solver calls made.
    checked: int = 0
    solves: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def months(self) -> set[str]:
        return {f.quantity.month for f in self.findings}

    def merge(self, other: Report) -> None:
        self.findings += other.findings
        self.checked += other.checked
        self.solves += other.solves


@dataclass
class TenantData:
    """The true counts of one tenant as its rollups hold them; the audit compares the tables with them.

    ``usage``: (service, month, started, submitted, aborted); ``breakdowns``: table ->
    (service, month, category, count); ``ratings``: (service, month, number of ratings, their sum).
    Months are ``YYYY-MM`` strings.
    """

    usage: list[tuple] = field(default_factory=list)
    breakdowns: dict[str, list[tuple]] = field(default_factory=dict)
    ratings: list[tuple] = field(default_factory=list)

    def months(self) -> set[str]:
        found = {row[1] for row in self.usage} | {row[1] for row in self.ratings}
        for rows in self.breakdowns.values():
            found |= {row[1] for row in rows}
        return found


def audit(data: TenantData, published: Mapping[str, list[dict]], min_cases: int,
          months: Iterable[str] | None = None) -> Report:
    """Audit every published table of one tenant together (all months, or only ``months``).

    :param published: dataset key -> its rows as served (withheld cells None), for any of usage,
        completion, payment, authentication, channel, satisfaction. Pass every dataset the tenant
        publishes or may publish: links between tables are only seen when both are given.
    :param min_cases: P, the protection the docs promise (see the module docstring).
    :raise AuditError: the reader's constraints cannot be solved (they contradict the data).
    """
    return Auditor(data, min_cases).audit(published, months)


class Auditor:
    """The audit of one tenant's data, for repeated use (the links are worked out once)."""

    def __init__(self, data: TenantData, min_cases: int):
        self.min_cases = min_cases
        self.links = _links(data)
        self.data_by_month = _split_data(data)

    def audit(self, published: Mapping[str, list[dict]], months: Iterable[str] | None = None) -> Report:
        rows_by_month = _split_rows(published)
        found = set(self.data_by_month) | set(rows_by_month)
        report = Report()
        for month in sorted(found if months is None else set(months) & found):
            report.merge(self._model(month, rows_by_month.get(month, {})).check())
        return report

    def check(self, published: Mapping[str, list[dict]], quantity: Quantity) -> Finding | None:
        """The finding about one quantity (None: it is safe), from the rows of (at least) its month."""
        rows = _split_rows(published).get(quantity.month, {})
        found = self._model(quantity.month, rows).check(only=quantity).findings
        return next((f for f in found if f.kind == NARROW), None)

    def range(self, published: Mapping[str, list[dict]], quantity: Quantity) -> tuple[int, int | None]:
        """The exact range a reader derives for ``quantity`` from ``published`` (high None: unbounded)."""
        return self._model(quantity.month, _split_rows(published).get(quantity.month, {})).range_of(quantity)

    def _model(self, month: str, rows: Mapping[str, list[dict]]) -> _MonthModel:
        model = _MonthModel(month, self.min_cases)
        model.build(self.data_by_month.get(month, TenantData()), rows, self.links)
        return model


# --- what the reader knows: links between tables ---------------------------------------


def _relation(pairs: list[tuple[int, int]]) -> str | None:
    """The strongest of =, <=, >= that holds for every (linked total, usage count) pair."""
    if all(a == b for a, b in pairs):
        return "="
    if all(a <= b for a, b in pairs):
        return "<="
    if all(a >= b for a, b in pairs):
        return ">="
    return None


def _links(data: TenantData) -> dict[tuple[str, str, str], str]:
    """(linked table, service, usage measure) -> relation holding in every month of the data."""
    usage = {(s, m): dict(zip(USAGE_MEASURES, map(int, counts), strict=True))
             for s, m, *counts in data.usage}
    totals: dict[str, dict] = {}
    for table, rows in data.breakdowns.items():
        found = totals[table] = defaultdict(int)
        for service, month, _category, count in rows:
            found[(service, month)] += int(count)
    found = totals[SATISFACTION] = defaultdict(int)
    for service, month, number, _sum in data.ratings:
        found[(service, month)] += int(number)
    links = {}
    for table, table_totals in totals.items():
        services = {s for s, _ in table_totals}
        for service in services:
            months = {m for s, m in table_totals if s == service} | {m for s, m in usage if s == service}
            for measure in LINKED_MEASURES:
                pairs = [(table_totals.get((service, m), 0), usage.get((service, m), {}).get(measure, 0))
                         for m in months]
                relation = _relation(pairs)
                if relation:
                    links[(table, service, measure)] = relation
    return links


def _split_data(data: TenantData) -> dict[str, TenantData]:
    months: dict = defaultdict(TenantData)
    for row in data.usage:
        months[row[1]].usage.append(row)
    for table, rows in data.breakdowns.items():
        for row in rows:
            months[row[1]].breakdowns.setdefault(table, []).append(row)
    for row in data.ratings:
        months[row[1]].ratings.append(row)
    return dict(months)


def _split_rows(published: Mapping[str, list[dict]]) -> dict[str, dict[str, list[dict]]]:
    """Rows by month and dataset; every dataset given is known to the reader in every month."""
    months: dict = defaultdict(lambda: {dataset: [] for dataset in published})
    for dataset, rows in published.items():
        for row in rows:
            months[row["month"]][dataset].append(row)
    return months


# --- one month as a constraint system ---------------------------------------------------------


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, items: list[int]) -> None:
        for item in items[:1]:
            self.find(item)
        for other in items[1:]:
            self.parent[self.find(other)] = self.find(items[0])


class _MonthModel:
    """Variables (true counts), the reader's constraints, and the sensitive quantities of one month."""

    def __init__(self, month: str, min_cases: int):
        self.month, self.min_cases = month, min_cases
        self.truth: list[int] = []
        self.low: list[float] = []
        self.high: list[float] = []
        self.fixed_by: dict[int, Quantity] = {}  # variable -> the published cell that fixes it
        #: (coefficients {variable: factor}, lower, upper, published cell it stems from or None)
        self.rows: list[tuple[dict, float, float, Quantity | None]] = []
        self.cells: dict[Quantity, dict] = {}  # every count a reader may look for, as a sum of variables
        self.published: dict[Quantity, int] = {}
        self.findings: list[Finding] = []
        self.known_tables: set[str] = set()  # tables whose rows (printed or empty) the reader sees
        self.ratios: list[tuple] = []  # (numerator, denominator, printed ratio, half step)

    # -- building ---------------------------------------------------------------------------

    def _var(self, quantity: Quantity, truth: int) -> int:
        index = len(self.truth)
        self.truth.append(int(truth))
        self.low.append(0.0)
        self.high.append(math.inf)
        self.cells[quantity] = {index: 1.0}
        return index

    def _sum_cell(self, quantity: Quantity, parts: Iterable[Quantity]) -> None:
        coeffs: dict[int, float] = defaultdict(float)
        for part in parts:
            for var, factor in self.cells[part].items():
                coeffs[var] += factor
        self.cells[quantity] = dict(coeffs)

    def _value(self, coeffs: dict) -> int:
        return int(sum(self.truth[v] * f for v, f in coeffs.items()))

    def _row(self, coeffs: dict, low: float, high: float, source: Quantity | None = None) -> None:
        if coeffs:
            self.rows.append((coeffs, low, high, source))

    def _difference(self, a: dict, b: dict) -> dict:
        out = defaultdict(float, a)
        for var, factor in b.items():
            out[var] -= factor
        return {v: f for v, f in out.items() if f}

    def build(self, data: TenantData, rows: Mapping[str, list[dict]], links: dict) -> None:
        self.known_tables = {USAGE if dataset == COMPLETION else dataset for dataset in rows}
        self._usage(data.usage)
        for table, table_rows in data.breakdowns.items():
            self._breakdown(table, table_rows)
        self._ratings(data.ratings)
        self._links(links)
        self._publish(rows)
        self._ratios()
        self._withheld_is_not_zero()

    def _usage(self, rows: list[tuple]) -> None:
        m = self.month
        for service, _, started, submitted, aborted in rows:
            variables = {measure: self._var(Quantity(USAGE, m, service, measure), value)
                         for measure, value in zip(USAGE_MEASURES, (started, submitted, aborted), strict=True)}
            rest = int(started) - int(submitted) - int(aborted)
            if rest >= 0:  # started = submitted + aborted + open, open >= 0
                open_var = self._var(Quantity(USAGE, m, service, OPEN), rest)
                self._row({variables["started"]: 1.0, variables["submitted"]: -1.0, variables["aborted"]: -1.0,
                           open_var: -1.0}, 0, 0)
        services = [row[0] for row in rows]
        for measure in USAGE_MEASURES:
            self._sum_cell(Quantity(USAGE, m, TOTAL, measure), [Quantity(USAGE, m, s, measure) for s in services])

    def _breakdown(self, table: str, rows: list[tuple]) -> None:
        by_service = defaultdict(list)
        for service, _, category, count in rows:
            quantity = Quantity(table, self.month, service, str(category))
            self._var(quantity, count)
            by_service[service].append(quantity)
        for service, parts in by_service.items():
            self._sum_cell(Quantity(table, self.month, service, TOTAL), parts)

    def _ratings(self, rows: list[tuple]) -> None:
        m = self.month
        for service, _, number, total in rows:
            count = self._var(Quantity(SATISFACTION, m, service, RATINGS), number)
            rating_sum = self._var(Quantity(SATISFACTION, m, service, RATING_SUM), total)
            self._row({rating_sum: 1.0, count: -1.0}, 0, math.inf)  # every rating is at least 1 ...
            self._row({rating_sum: 1.0, count: -5.0}, -math.inf, 0)  # ... and at most 5
        services = [row[0] for row in rows]
        for measure in (RATINGS, RATING_SUM):
            self._sum_cell(Quantity(SATISFACTION, m, TOTAL, measure),
                           [Quantity(SATISFACTION, m, s, measure) for s in services])

    def _links(self, links: dict) -> None:
        for (table, service, measure), relation in links.items():
            if table == SATISFACTION:
                linked = self.cells.get(Quantity(SATISFACTION, self.month, service, RATINGS), {})
            else:
                linked = self.cells.get(Quantity(table, self.month, service, TOTAL), {})
            usage = self.cells.get(Quantity(USAGE, self.month, service, measure), {})
            coeffs = self._difference(linked, usage)
            low, high = {"=": (0, 0), "<=": (-math.inf, 0), ">=": (0, math.inf)}[relation]
            self._row(coeffs, low, high)

    def _publish(self, rows: Mapping[str, list[dict]]) -> None:
        m = self.month
        for row in rows.get(USAGE, ()):
            for measure in USAGE_MEASURES:
                self._count(Quantity(USAGE, m, row["service_key"], measure), row.get(measure))
        for row in rows.get(COMPLETION, ()):
            service = row["service_key"]
            self._count(Quantity(USAGE, m, service, "started"), row.get("started"))
            started = Quantity(USAGE, m, service, "started")
            for column, measure in (("completion_rate", "submitted"), ("abandonment_rate", "aborted")):
                self._ratio(Quantity(USAGE, m, service, measure), started, row.get(column), RATE_HALF_STEP)
        for table, (category_column, count_column) in BREAKDOWNS.items():
            for row in rows.get(table, ()):
                cell = Quantity(table, m, row["service_key"], str(row[category_column]))
                self._count(cell, row.get(count_column))
                self._ratio(cell, Quantity(table, m, row["service_key"], TOTAL), row.get("share"), RATE_HALF_STEP)
        for row in rows.get(SATISFACTION, ()):
            service = row["service_key"]
            self._count(Quantity(SATISFACTION, m, service, RATINGS), row.get("ratings"))
            self._ratio(Quantity(SATISFACTION, m, service, RATING_SUM), Quantity(SATISFACTION, m, service, RATINGS),
                        row.get("average_rating"), AVERAGE_HALF_STEP)

    def _count(self, quantity: Quantity, value) -> None:
        if value is None or value == "":
            return
        value = int(value)
        coeffs = self.cells.get(quantity)
        if coeffs is None:
            self.findings.append(Finding(MISMATCH, quantity, value))
            return
        if quantity in self.published:
            if self.published[quantity] != value:
                self.findings.append(Finding(MISMATCH, quantity, value))
            return
        self.published[quantity] = value
        if self._value(coeffs) != value:
            self.findings.append(Finding(MISMATCH, quantity, value))
        elif 0 < value < self.min_cases:
            self.findings.append(Finding(PUBLISHED_SMALL, quantity, value, value, value))
        if len(coeffs) == 1:
            (var,) = coeffs
            self.low[var] = self.high[var] = value
            self.fixed_by[var] = quantity
        else:
            self._row(dict(coeffs), value, value, quantity)

    def _ratio(self, numerator: Quantity, denominator: Quantity, printed, half_step: float) -> None:
        """numerator / denominator lies within half a printed step of ``printed`` (applied in :meth:`_ratios`)."""
        if printed is None or printed == "":
            return
        if numerator not in self.cells or denominator not in self.cells:
            self.findings.append(Finding(MISMATCH, numerator, 0))
            return
        self.ratios.append((numerator, denominator, float(printed), half_step + 1e-9))

    def _ratios(self) -> None:
        """The printed rates, shares and averages as constraints, once every count is in.

        With a published denominator d the numerator lies in [ceil((r - h) d), floor((r + h) d)]:
        whole-number bounds, so the solver's relaxation stays whole-numbered. Otherwise the two
        linear inequalities num - (r +- h) den <= / >= 0.
        """
        for numerator, denominator, ratio, tolerance in self.ratios:
            num, den = self.cells[numerator], self.cells[denominator]
            known = self.published.get(denominator)
            if known is not None:
                self._row(dict(num), math.ceil((ratio - tolerance) * known - _EPS),
                          math.floor((ratio + tolerance) * known + _EPS))
                continue
            upper = {v: -f * (ratio + tolerance) for v, f in den.items()}
            lower = {v: -f * (ratio - tolerance) for v, f in den.items()}
            for var, factor in num.items():
                upper[var] = upper.get(var, 0.0) + factor
                lower[var] = lower.get(var, 0.0) + factor
            self._row(upper, -math.inf, 0)
            self._row(lower, 0, math.inf)

    def _withheld_is_not_zero(self) -> None:
        """0 is always published: a reader knows an empty cell holds at least 1."""
        for quantity, coeffs in self.cells.items():
            if (quantity in self.published or quantity.table not in self.known_tables
                    or quantity.measure in (RATING_SUM, OPEN) or self._value(coeffs) == 0):
                continue
            if len(coeffs) == 1:
                (var,) = coeffs
                self.low[var] = max(self.low[var], 1.0)
            else:
                self._row(dict(coeffs), 1, math.inf)

    # -- checking ---------------------------------------------------------------------------------

    def targets(self) -> list[tuple[Quantity, dict, int]]:
        """The sensitive quantities: withheld counts and open counts between 1 and P-1."""
        found = []
        for quantity, coeffs in self.cells.items():
            if quantity.measure == RATING_SUM or quantity in self.published or quantity.table not in self.known_tables:
                continue
            value = self._value(coeffs)
            if 0 < value < self.min_cases:
                found.append((quantity, coeffs, value))
        return sorted(found)

    def check(self, only: Quantity | None = None) -> Report:
        """Compute the range of every sensitive quantity (or of ``only``) and report the narrow ones."""
        report = Report(findings=list(self.findings) if only is None else [])
        fixed, groups = self._groups()
        # Targets in the same connected group share one model, solved once per objective.
        by_group = defaultdict(list)
        for target in self.targets():
            if only is None or target[0] == only:
                by_group[frozenset(groups.find(v) for v in target[1] if not fixed[v])].append(target)
        for roots, targets in by_group.items():
            program, rows = self._program(roots, fixed, groups)
            for quantity, coeffs, value in targets:
                low, high = self._range(program, coeffs, fixed, value, report)
                report.checked += 1
                if high is None or high - low >= self.min_cases:
                    continue
                report.findings.append(Finding(NARROW, quantity, value, low, high, self._bounded_by(rows)))
        return report

    def range_of(self, quantity: Quantity) -> tuple[int, int | None]:
        """The exact range a reader can derive for any count (published or not); high None: unbounded."""
        coeffs = self.cells[quantity]
        fixed, groups = self._groups()
        program, _ = self._program(frozenset(groups.find(v) for v in coeffs if not fixed[v]), fixed, groups)
        constant = sum(f * self.low[v] for v, f in coeffs.items() if fixed[v])
        if program is None:
            return round(constant), round(constant)
        report, cost = Report(), program.cost(coeffs)
        low = round(program.optimum(cost, maximise=False, report=report) + constant)
        high = program.optimum(cost, maximise=True, report=report)
        return low, None if high is None else round(high + constant)

    def _groups(self) -> tuple[list[bool], _UnionFind]:
        """Which variables are fixed by published figures, and how the others hang together."""
        fixed = [lo == hi for lo, hi in zip(self.low, self.high, strict=True)]
        groups = _UnionFind()
        for coeffs, *_ in self.rows:
            groups.union([v for v in coeffs if not fixed[v]])
        return fixed, groups

    def _program(self, roots: frozenset, fixed: list[bool], groups: _UnionFind) -> tuple[_Program | None, list]:
        """The linear program of the connected groups ``roots`` and the constraints it is made of."""
        variables = [v for v in range(len(self.truth)) if not fixed[v] and groups.find(v) in roots]
        if not variables:
            return None, []
        chosen = set(variables)
        rows = [r for r in self.rows if not chosen.isdisjoint(r[0])]
        return _Program(self, variables, rows, fixed), rows

    def _bounded_by(self, rows: list) -> tuple[Quantity, ...]:
        near = set()
        for coeffs, _, _, source in rows:
            if source is not None:
                near.add(source)
            near |= {self.fixed_by[v] for v in coeffs if v in self.fixed_by}
        return tuple(sorted(near))

    def _range(self, program: _Program | None, objective: dict, fixed: list[bool], value: int, report: Report):
        """(low, high) of sum(objective) over the whole-number points the reader allows (high None: unbounded).

        The maximum first: when it is at least ``value + P`` the range is wide enough whatever the
        minimum (which is at most the true value), and the second solve is saved.
        """
        constant = sum(f * self.low[v] for v, f in objective.items() if fixed[v])
        if program is None:
            return round(constant), round(constant)
        cost = program.cost(objective)
        high = program.optimum(cost, maximise=True, report=report)
        if high is None:
            return None, None
        high = round(high + constant)
        if high >= value + self.min_cases:
            return value, high  # the minimum is at most the true value
        return round(program.optimum(cost, maximise=False, report=report) + constant), high


class _Program:
    """One connected group of withheld quantities as a linear program in HiGHS.

    The model is built once and solved for one objective after the other: HiGHS starts each
    solve from the previous basis. Published (fixed) variables are substituted into the bounds.
    """

    def __init__(self, model: _MonthModel, variables: list[int], rows: list, fixed: list[bool]):
        self.position = {v: i for i, v in enumerate(variables)}
        self.size = len(variables)
        highs = self.highs = _highs()
        highs.addVars(self.size, np.array([model.low[v] for v in variables]),
                      np.array([_bound(model.high[v]) for v in variables]))
        for coeffs, lo, hi, _ in rows:
            shift, indices, values = 0.0, [], []
            for var, factor in coeffs.items():
                if fixed[var]:
                    shift += factor * model.low[var]
                else:
                    indices.append(self.position[var])
                    values.append(factor)
            highs.addRow(_bound(lo - shift), _bound(hi - shift), len(indices), np.array(indices, dtype=np.int32),
                         np.array(values))
        self.all_columns = np.arange(self.size, dtype=np.int32)

    def cost(self, objective: dict) -> np.ndarray:
        cost = np.zeros(self.size)
        for var, factor in objective.items():
            if var in self.position:
                cost[self.position[var]] = factor
        return cost

    def optimum(self, cost: np.ndarray, maximise: bool, report: Report) -> float | None:
        """The optimum of cost @ x over whole numbers (None when unbounded).

        The linear relaxation first: when its optimal point is whole-numbered it is the integer
        optimum. An unbounded relaxation of a feasible integer program (the true counts are one of
        its points) is unbounded as well.
        """
        highs = self.highs
        highs.changeColsCost(self.size, self.all_columns, cost)
        highs.changeObjectiveSense(highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize)
        found = self._run(report)
        if found is None or np.all(np.abs(np.asarray(highs.getSolution().col_value) - np.round(
                highs.getSolution().col_value)) < _EPS):
            return found
        highs.changeColsIntegrality(self.size, self.all_columns,
                                    np.array([highspy.HighsVarType.kInteger] * self.size))
        try:
            return self._run(report)
        finally:
            highs.changeColsIntegrality(self.size, self.all_columns,
                                        np.array([highspy.HighsVarType.kContinuous] * self.size))

    def _run(self, report: Report) -> float | None:
        status = self._solve(report)
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnbounded):
            # A warm start from the basis of an unbounded solve can end without a verdict: solve afresh.
            self.highs.clearSolver()
            status = self._solve(report)
        if status == highspy.HighsModelStatus.kUnbounded:
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            raise AuditError(f"the reader's constraints could not be solved: {self.highs.modelStatusToString(status)}")
        return float(self.highs.getInfo().objective_function_value)

    def _solve(self, report: Report):
        report.solves += 1
        self.highs.run()
        return self.highs.getModelStatus()


def _bound(value: float) -> float:
    return highspy.kHighsInf if value == math.inf else -highspy.kHighsInf if value == -math.inf else value


_LOCAL = threading.local()


def _highs() -> highspy.Highs:
    """An empty HiGHS model, one instance per thread (HiGHS prints its banner when an instance is made)."""
    highs = getattr(_LOCAL, "highs", None)
    if highs is None:
        highs = _LOCAL.highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
    highs.clearModel()
    return highs


class AuditError(RuntimeError):
    """The audit could not be carried out (the data contradict the rules it assumes): publish nothing."""
