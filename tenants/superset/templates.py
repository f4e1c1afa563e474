"""The ready-made dashboards, as versioned JSON files in superset_config/dashboards/.

A template names its charts by key, with Superset's form data (``params``)
written out except for what differs per tenant (dataset ids, chart ids). Two
short forms keep the files readable:

* a metric ``{"sql": "SUM(started)", "label": "Begonnen"}`` becomes an ad-hoc SQL metric;
* ``rows`` lists chart keys per dashboard row; widths default to an even split.

The fingerprint of a template (its version plus a hash of its content and of
the datasets) is stored with every tenant's copy, so the roll-out command can
tell which tenants differ.

A dataset's SQL may name ``{benchmark_metrics}``: it becomes a ``VALUES`` list
of the comparison metrics (key, family, German label, scale) from
:func:`tenants.benchmark.metrics.published_metrics`, so the labels have one
source and a changed label changes the fingerprint like any edit. In the same way
``{vocabulary:<name>}`` becomes the ``(VALUES (code, label), …)`` list of one vocabulary of
:mod:`tenants.vocabulary`, joined so that charts show German labels instead of codes.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from tenants import vocabulary
from tenants.settings import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "superset_config" / "dashboards"
GRID_COLUMNS = 12
METRIC_KEYS = ("metric", "metrics", "percent_metrics", "timeseries_limit_metric", "x", "y", "size")


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def benchmark_metrics_sql() -> str:
    """The comparison metrics as ``VALUES (key, family, label, scale)``; rates are shown in per cent."""
    from tenants.benchmark.metrics import published_metrics

    rows = [f"({vocabulary.sql_text(m.key)}, {vocabulary.sql_text(m.family)}, "
            f"{vocabulary.sql_text(m.label + (' in %' if m.unit == 'rate' else ''))}, "
            f"{100 if m.unit == 'rate' else 1}::float8)" for m in published_metrics()]
    return "VALUES " + ",\n  ".join(rows)


#: What a dataset's name must not hold: Superset writes it into permission names as ``[tenant_<AGS>].[<name>](id:N)``.
_NAME_FORBIDDEN = re.compile(r"[\[\]()]")


@lru_cache(maxsize=1)
def datasets() -> dict[str, dict[str, Any]]:
    found = _read(TEMPLATE_DIR / "datasets.json")["datasets"]
    names = [spec["name"] for spec in found.values()]
    if len(set(names)) != len(names) or any(_NAME_FORBIDDEN.search(name) for name in names):
        raise ValueError(f"datasets.json: dataset names must differ and hold no brackets: {names}")
    for spec in found.values():
        spec["sql"] = re.sub(r"\{vocabulary:(\w+)\}", lambda m: vocabulary.values_sql(m.group(1)),
                             spec["sql"].replace("{benchmark_metrics}", benchmark_metrics_sql()))
    return found


def dataset_keys_by_name() -> dict[str, str]:
    """Template key by dataset name, old names included: a tenant provisioned before the German names
    has datasets named by their keys."""
    return {**{key: key for key in datasets()}, **{spec["name"]: key for key, spec in datasets().items()}}


@lru_cache(maxsize=1)
def metric_labels() -> dict[str, str]:
    """German names of the datasets' saved metrics (Superset's verbose names), by metric name."""
    return _read(TEMPLATE_DIR / "datasets.json")["metric_labels"]


@lru_cache(maxsize=1)
def column_labels() -> dict[str, str]:
    """German labels of the datasets' columns (Superset's verbose names), shared by every dataset."""
    return _read(TEMPLATE_DIR / "datasets.json")["labels"]


def dataset_column_labels(name: str) -> dict[str, str]:
    """The labels of one dataset's columns: the shared ones, overridden by the dataset's own ``labels``
    (the comparison figures are monthly, so their ``day`` reads "Monat", not "Tag")."""
    return {**column_labels(), **datasets()[name].get("labels", {})}


@lru_cache(maxsize=1)
def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard template by key, in the order the portal lists them (``order``)."""
    found = [_read(path) for path in TEMPLATE_DIR.glob("*.json") if path.name != "datasets.json"]
    return {template["key"]: template for template in sorted(found, key=lambda t: (t["order"], t["key"]))}


def fingerprint(template: dict[str, Any]) -> str:
    body = json.dumps([template, datasets(), column_labels(), metric_labels()], sort_keys=True,
                      ensure_ascii=False).encode()
    return f"v{template['version']}-{hashlib.sha256(body).hexdigest()[:12]}"


def _metric(spec: Any) -> Any:
    if isinstance(spec, dict) and "sql" in spec:
        return {"expressionType": "SQL", "sqlExpression": spec["sql"], "label": spec["label"],
                "hasCustomLabel": True, "optionName": "metric_" + hashlib.sha1(spec["label"].encode()).hexdigest()[:10]}
    if isinstance(spec, list):
        return [_metric(item) for item in spec]
    return spec


#: Superset's categorical colours for every ready-made dashboard and its charts.
DASHBOARD_COLOR_SCHEME = "supersetColors"


def chart_params(chart: dict[str, Any], dataset_id: int) -> dict[str, Any]:
    """Superset form data of one chart for one tenant's dataset."""
    params = {key: (_metric(value) if key in METRIC_KEYS else value) for key, value in chart["params"].items()}
    params.update({
        "datasource": f"{dataset_id}__table",
        "viz_type": chart["viz_type"],
        # The dashboard's scheme (json_metadata) named in the chart too: otherwise the page asked with
        # Superset's default "SUPERSET_DEFAULT" when a chart loaded before the dashboard's scheme was applied,
        # another body than the next view's, so its stored answer missed every other view.
        "color_scheme": DASHBOARD_COLOR_SCHEME,
        "time_range": "No filter",
        "granularity_sqla": "day",
        "adhoc_filters": params.get("adhoc_filters", []),
    })
    return params


def _widths(row: list[str], charts: dict[str, dict[str, Any]]) -> list[int]:
    given = [charts[key].get("width") for key in row]
    free = [w for w in given if w is None]
    rest = GRID_COLUMNS - sum(w for w in given if w is not None)
    share = max(1, rest // len(free)) if free else 0
    return [w if w is not None else share for w in given]


def position(template: dict[str, Any], charts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The dashboard layout; ``charts`` maps chart key to ``{"id", "uuid", "name"}`` in Superset."""
    by_key = {chart["key"]: chart for chart in template["charts"]}
    layout: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": template["title"]}},
    }
    if template.get("intro"):  # a text above the charts: what to choose, what data the charts need
        layout["GRID_ID"]["children"].append("ROW-intro")
        layout["ROW-intro"] = {"type": "ROW", "id": "ROW-intro", "children": ["MARKDOWN-intro"],
                               "parents": ["ROOT_ID", "GRID_ID"], "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        layout["MARKDOWN-intro"] = {"type": "MARKDOWN", "id": "MARKDOWN-intro", "children": [],
                                    "parents": ["ROOT_ID", "GRID_ID", "ROW-intro"],
                                    "meta": {"width": GRID_COLUMNS, "height": 20, "code": template["intro"]}}
    for number, row in enumerate(template["rows"], start=1):
        row_id = f"ROW-{number}"
        layout["GRID_ID"]["children"].append(row_id)
        layout[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                          "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for key, width in zip(row, _widths(row, by_key), strict=True):
            chart_id = f"CHART-{key}"
            layout[row_id]["children"].append(chart_id)
            layout[chart_id] = {
                "type": "CHART", "id": chart_id, "children": [], "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"chartId": charts[key]["id"], "uuid": charts[key]["uuid"], "width": width,
                         "height": by_key[key].get("height", 50), "sliceName": charts[key]["name"]},
            }
    return layout


def _scope(spec: dict[str, Any], template: dict[str, Any]) -> list[str]:
    """The keys of the charts a filter reaches: those it names, else those whose dataset has its column
    (the time filter reaches all)."""
    if "charts" in spec:
        return spec["charts"]
    datasets = spec.get("scope_datasets", [spec.get("dataset")])
    return [c["key"] for c in template["charts"] if spec["type"] == "filter_time" or c["dataset"] in datasets]


def _native_filter(spec: dict[str, Any], template: dict[str, Any], charts: dict[str, dict[str, Any]],
                   dataset_ids: dict[str, int]) -> dict[str, Any]:
    in_scope = [charts[key]["id"] for key in _scope(spec, template)]
    excluded = [charts[c["key"]]["id"] for c in template["charts"] if charts[c["key"]]["id"] not in in_scope]
    native = {
        "id": f"NATIVE_FILTER-{spec['key']}", "name": spec["name"], "filterType": spec["type"],
        "type": "NATIVE_FILTER", "cascadeParentIds": [], "description": "",
        "scope": {"rootPath": ["ROOT_ID"], "excluded": excluded}, "chartsInScope": in_scope, "tabsInScope": [],
    }
    if spec["type"] == "filter_time":
        native.update(targets=[{}], controlValues={},
                      defaultDataMask={"filterState": {"value": spec.get("default", "No filter")}, "extraFormData": {}})
    else:
        native.update(
            targets=[{"datasetId": dataset_ids[spec["dataset"]], "column": {"name": spec["column"]}}],
            # "first": one value at a time, the first one preselected (charts that mix values mean nothing).
            # "first" also makes a value required: the filter cannot be emptied into a mix of all values.
            controlValues={"enableEmptyFilter": bool(spec.get("first")), "defaultToFirstItem": bool(spec.get("first")),
                           "multiSelect": not spec.get("first"), "searchAllOptions": False,
                           "inverseSelection": False},
            defaultDataMask={"filterState": {}, "extraFormData": {}, "ownState": {}},
        )
        if spec.get("first"):
            native["requiredFirst"] = True  # the charts wait for that first value instead of loading without it
    return native


def json_metadata(template: dict[str, Any], charts: dict[str, dict[str, Any]],
                  dataset_ids: dict[str, int]) -> dict[str, Any]:
    return {
        "native_filter_configuration": [_native_filter(f, template, charts, dataset_ids)
                                        for f in template.get("filters", [])],
        "chart_configuration": {}, "color_scheme": DASHBOARD_COLOR_SCHEME, "refresh_frequency": 0,
        "expanded_slices": {}, "label_colors": {}, "timed_refresh_immune_slices": [],
        "cross_filters_enabled": False, "default_filters": "{}", "filter_scopes": {},
    }
