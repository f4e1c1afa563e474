"""A tenant's Superset objects as one versioned import bundle (``POST /api/v1/assets/import/``).

Superset's ``ImportAssetsCommand`` creates or overwrites the database connection, the datasets, the
charts and the dashboards of a ZIP in one transaction: one request instead of the dozens the REST
endpoints need. The bundle is rendered from the same templates as ever (superset_config/dashboards/,
:mod:`tenants.superset.templates`), with UUIDs derived from the tenant's AGS and the template keys,
so importing again overwrites the tenant's objects instead of adding new ones.

The bundle never holds the database password: the connection's URI carries Superset's mask and the
password goes in the request's ``passwords`` field. Its version (a hash of the files) is kept in the
tenant's state; an unchanged version with every object in place means there is nothing to import.

Not in a bundle, and still done over REST by :mod:`tenants.superset.provision`: roles, row-level
security rules, dashboard roles and embedding.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from tenants.superset import templates

#: Namespace of the tenants' object UUIDs (uuid5 of it and "<AGS>/<kind>/<key>"); never change it, or
#: every tenant's next import creates its objects a second time beside the old ones.
NAMESPACE = uuid.UUID("6c1d6a0e-5f5b-4c8e-9a57-2f0f3c1e7d21")
#: Superset's mask for a stored password; the real one comes with the request.
MASK = "XXXXXXXXXX"
#: Columns editors never need to group or filter by (the tenant's own rows are all they see).
INTERNAL_COLUMNS = ("tenant_id",)
#: Column types as Superset names them when it reads a virtual dataset's query through psycopg2.
_PG_TYPES = {16: "BOOLEAN", 20: "LONGINTEGER", 21: "INTEGER", 23: "INTEGER", 25: "STRING", 19: "STRING",
             1042: "STRING", 1043: "STRING", 700: "FLOAT", 701: "FLOAT", 1700: "DECIMAL", 1082: "DATE",
             1083: "TIME", 1114: "DATETIME", 1184: "DATETIME"}
_TEMPORAL = ("DATE", "DATETIME")


def object_uuid(ags: str, kind: str, key: str = "") -> str:
    return str(uuid.uuid5(NAMESPACE, f"{ags}/{kind}/{key}"))


def database_name(ags: str) -> str:
    return f"tenant_{ags}"


def dashboard_slug(ags: str, key: str) -> str:
    return f"t{ags}-{key}"


_column_cache: dict[str, tuple[tuple[str, str], ...]] = {}


def dataset_columns(session, name: str, sql: str) -> list[tuple[str, str]]:
    """(name, Superset type) of the dataset's query, read from PostgreSQL without rows.

    The same for every tenant (the templates' SQL), so asked once per process. Superset would
    read them on its own only through a refresh request per dataset.
    """
    if sql not in _column_cache:
        result = session.execute(text(f"SELECT * FROM ({sql}) AS dataset LIMIT 0"))  # noqa: S608 - template SQL
        columns = []
        for column in result.cursor.description:
            if column.type_code not in _PG_TYPES:
                raise LookupError(f"dataset {name}: column {column.name} has a type Superset provisioning "
                                  f"does not know (oid {column.type_code})")
            columns.append((column.name, _PG_TYPES[column.type_code]))
        result.close()
        _column_cache[sql] = tuple(columns)
    return list(_column_cache[sql])


def warm(session) -> None:
    """Read every dataset's columns now (inside the caller's transaction), so :func:`build` needs no database."""
    for name, spec in templates.datasets().items():
        dataset_columns(session, name, spec["sql"])


@dataclass
class Bundle:
    ags: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: template dashboard key -> chart key -> chart UUID
    charts: dict[str, dict[str, str]] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)  # dataset key -> UUID
    dataset_names: dict[str, str] = field(default_factory=dict)  # dataset key -> the German name Superset shows
    dashboards: dict[str, str] = field(default_factory=dict)  # template key -> UUID
    database: str = ""

    @property
    def database_file(self) -> str:
        return f"databases/{database_name(self.ags)}.yaml"

    @property
    def version(self) -> str:
        body = json.dumps(self.files, sort_keys=True, ensure_ascii=False).encode()
        return "b" + hashlib.sha256(body).hexdigest()[:16]

    def datasets_only(self) -> Bundle:
        """The same bundle without its charts and dashboards."""
        files = {name: content for name, content in self.files.items()
                 if name.startswith(("databases/", "datasets/"))}
        return Bundle(self.ags, files, datasets=self.datasets, dataset_names=self.dataset_names, database=self.database)

    def zip(self) -> bytes:
        """The ZIP Superset expects: one root folder, ``metadata.yaml``, one YAML (here: JSON) file per object."""
        out = io.BytesIO()
        root = f"tenant_{self.ags}"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{root}/metadata.yaml", json.dumps(
                {"version": "1.0.0", "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"}))
            for name, content in sorted(self.files.items()):
                archive.writestr(f"{root}/{name}", json.dumps(content, ensure_ascii=False))
        return out.getvalue()


def build(session, ags: str, tenant_name: str, sqlalchemy_uri_masked: str,
          uuids: dict[str, str] | None = None) -> Bundle:
    """The tenant's bundle; ``uuids`` keeps the UUIDs of objects made before bundles (database, datasets)."""
    uuids = uuids or {}
    bundle = Bundle(ags)
    bundle.database = uuids.get("database") or object_uuid(ags, "database")
    bundle.files[bundle.database_file] = {
        "database_name": database_name(ags), "sqlalchemy_uri": sqlalchemy_uri_masked, "cache_timeout": None,
        "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
        "allow_dml": False, "allow_csv_upload": False, "extra": {}, "uuid": bundle.database, "version": "1.0.0",
    }
    for name, spec in templates.datasets().items():
        labels = templates.dataset_column_labels(name)
        dataset_uuid = uuids.get(f"dataset/{name}") or object_uuid(ags, "dataset", name)
        bundle.datasets[name] = dataset_uuid
        bundle.dataset_names[name] = spec["name"]
        # Only what differs from Superset's defaults: Superset parses each file with the pure-Python YAML
        # parser, which takes about a second for the whole bundle.
        columns = [{"column_name": column, "type": kind, "is_dttm": column == "day" or kind in _TEMPORAL,
                    "verbose_name": labels.get(column), "groupby": column not in INTERNAL_COLUMNS,
                    "filterable": column not in INTERNAL_COLUMNS}
                   for column, kind in dataset_columns(session, name, spec["sql"])]
        # The table name is what editors see (Superset has no other display name for a dataset); no schema,
        # which Superset would show in front of it ("analytics.Dienste je Tag"): the SQL names its schemas.
        bundle.files[f"datasets/{database_name(ags)}/{name}.yaml"] = {
            "table_name": spec["name"], "schema": None, "main_dttm_col": "day",
            "description": spec.get("description", ""), "offset": 0, "sql": spec["sql"], "filter_select_enabled": True,
            "normalize_columns": False, "always_filter_main_dttm": False, "uuid": dataset_uuid,
            "metrics": [{"metric_name": "count", "verbose_name": templates.metric_labels()["count"],
                         "metric_type": "count", "expression": "COUNT(*)"}],
            "columns": columns, "version": "1.0.0", "database_uuid": bundle.database,
        }
    for key, template in templates.dashboards().items():
        _add_dashboard(bundle, tenant_name, key, template)
    return bundle


def _add_dashboard(bundle: Bundle, tenant_name: str, key: str, template: dict[str, Any]) -> None:
    ags = bundle.ags
    # Superset renumbers the charts on import (by their UUIDs in the layout): any ids do here, and
    # fixed ones keep the bundle the same from one run to the next.
    charts = {chart["key"]: {"id": number, "uuid": object_uuid(ags, "chart", f"{key}/{chart['key']}"),
                             "name": chart["name"]}
              for number, chart in enumerate(template["charts"], start=1)}
    placeholder_datasets = {name: 0 for name in bundle.datasets}
    for chart in template["charts"]:
        params = templates.chart_params(chart, 0)  # Superset sets the datasource on import
        bundle.files[f"charts/{dashboard_slug(ags, key)}/{chart['key']}.yaml"] = {
            "slice_name": chart["name"], "viz_type": chart["viz_type"], "params": params,
            "uuid": charts[chart["key"]]["uuid"], "version": "1.0.0",
            "dataset_uuid": bundle.datasets[chart["dataset"]],
        }
    metadata = templates.json_metadata(template, charts, placeholder_datasets)
    for native in metadata["native_filter_configuration"]:
        # Superset maps a filter's dataset UUID and its excluded charts to the new ids on import, not
        # chartsInScope; without it the dashboard derives the charts in scope from ``scope``.
        native.pop("chartsInScope", None)
        for target in native["targets"]:
            if "datasetId" in target:
                target.pop("datasetId")
                spec = next(f for f in template["filters"] if f"NATIVE_FILTER-{f['key']}" == native["id"])
                target["datasetUuid"] = bundle.datasets[spec["dataset"]]
    dashboard_uuid = object_uuid(ags, "dashboard", key)
    bundle.dashboards[key] = dashboard_uuid
    bundle.charts[key] = {chart_key: c["uuid"] for chart_key, c in charts.items()}
    bundle.files[f"dashboards/{dashboard_slug(ags, key)}.yaml"] = {
        "dashboard_title": f"{template['title']} – {tenant_name}",
        "slug": dashboard_slug(ags, key), "uuid": dashboard_uuid, "position": templates.position(template, charts),
        "metadata": metadata, "version": "1.0.0", "published": True,
    }
