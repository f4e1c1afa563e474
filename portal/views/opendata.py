"""Open Data for everyone: the public pages, downloads and the DCAT-AP.de catalogue.

No sign-in. Each tenant's data is read in its own ``tenant_transaction`` (see
tenants/opendata/publication.py), so row-level security stays the only way in.
Rate-limited per client address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import gettext as _

from portal.extensions import limiter
from tenants import vocabulary
from tenants.db import db
from tenants.opendata import catalogue
from tenants.opendata.datasets import COLUMN_LABELS, DATASETS, DisclosureRisk
from tenants.opendata.publication import (
    LICENCES,
    NotPublished,
    Withdrawn,
    all_published_entries,
    public_snapshot,
    public_tenant,
    published_entries,
    rules_from,
    to_csv,
    to_excel_csv,
    to_json,
)
from tenants.settings import get_settings

bp = Blueprint("opendata", __name__)

DATASET = "any(" + ", ".join(DATASETS) + "):dataset"
RDF_SUFFIX = "any(" + ", ".join(catalogue.FORMATS) + "):suffix"
LIMIT = "120 per minute"
#: Rows a dataset page shows before the download: the file's last ones, of the newest month.
PREVIEW_ROWS = 12


def _settings():
    return get_settings()


def _fresh() -> None:
    # Public reads open one transaction per tenant; whatever the request read
    # before (a signed-in user's row) must not hold a transaction open.
    if db.session().in_transaction():
        db.session.rollback()


def _snapshot(key: str, dataset: str):
    _fresh()
    try:
        snapshot = public_snapshot(key, dataset, rules_from(_settings()))
    except Withdrawn:
        abort(410)
    except NotPublished:
        abort(404)
    except DisclosureRisk as risk:
        # The audit before publication found a count a reader could narrow down: nothing is served.
        current_app.logger.error("Open Data of %s not released, the disclosure audit failed: %s", key, risk)
        abort(Response(_("This dataset is not available at the moment: the confidentiality check before "
                         "publication did not pass. The operators have been notified."), 503,
                       mimetype="text/plain", headers={"Retry-After": "3600"}))
    db.session.commit()  # keeps the audited decisions of new months (and the content hash)
    return snapshot


def _conditional(body: bytes, media_type: str, etag: str, modified, filename: str | None = None) -> Response:
    response = Response(body, mimetype=media_type)
    response.set_etag(etag)
    response.last_modified = modified
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    response.headers["Access-Control-Allow-Origin"] = "*"
    if filename:
        response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response.make_conditional(request)


@bp.get("/opendata/")
@limiter.limit(LIMIT)
def index():
    _fresh()
    entries = all_published_entries()
    tenants = {}
    for entry in entries:
        tenants.setdefault(entry.tenant.ags, (entry.tenant, []))[1].append(entry)
    return render_template("opendata/index.html", tenants=list(tenants.values()))


@bp.get("/opendata/<key>/")
@limiter.limit(LIMIT)
def tenant_page(key: str):
    _fresh()
    try:
        tenant = public_tenant(key)
    except NotPublished:
        abort(404)
    return render_template("opendata/tenant.html", tenant=tenant, entries=published_entries(tenant),
                           datasets=DATASETS, licences=LICENCES)


@bp.get(f"/opendata/<key>/<{DATASET}>")
@limiter.limit(LIMIT)
def dataset_page(key: str, dataset: str):
    snapshot = _snapshot(key, dataset)
    return render_template("opendata/dataset.html", snapshot=snapshot, spec=DATASETS[dataset],
                           preview=snapshot.rows[-PREVIEW_ROWS:], columns=DATASETS[dataset].columns)


@bp.get(f"/opendata/<key>/<{DATASET}>.<any(csv, json):fmt>")
@limiter.limit(LIMIT)
def download(key: str, dataset: str, fmt: str):
    snapshot = _snapshot(key, dataset)
    if fmt == "csv":
        body, media_type = to_csv(snapshot), "text/csv"
    else:
        body, media_type = to_json(snapshot, _settings().portal_url), "application/json"
    return _conditional(body, media_type, f"{snapshot.etag}-{snapshot.publication.licence}",
                        snapshot.publication.modified, f"{key}-{dataset}.{fmt}")


@bp.app_template_global()
def cell_text(column: str, value: str) -> str:
    """A text cell of the preview as a reader understands it: payment and sign-in methods by their names,
    the sum rows' ``total`` as "alle", the withheld columns by their headings (the files keep the codes,
    which programs read)."""
    if column == "suppressed":
        return ", ".join(COLUMN_LABELS.get(name, name) for name in value.split(";") if name)
    if value == "total":
        return _("all")
    if column in ("payment_method", "auth_method"):
        return vocabulary.label(column, value)
    return value


#: Columns holding a rate or share (0–1 in the files): the preview shows them as percentages.
RATE_COLUMNS = frozenset({"completion_rate", "abandonment_rate", "share"})


@bp.app_template_global()
def rate_column(name: str) -> bool:
    return name in RATE_COLUMNS


@bp.app_template_global()
def in_reading_order(rows: list) -> list:
    """Preview rows as a reader scans them: month by month, the services before the sum row ("alle"), and
    within a service the methods before its sum row (the files keep their own order)."""
    def key(row):
        category = row.get("payment_method") or row.get("auth_method")
        return (row.get("month") or "", row.get("service_key") == "total", category == "total")
    return sorted(rows, key=key)


@bp.app_template_global()
def month_name(value: str) -> str:
    """``2026-03`` as the reader's language writes it ("März 2026")."""
    from datetime import date

    from flask_babel import format_date

    try:
        return format_date(date(int(value[:4]), int(value[5:7]), 1), "MMMM y")
    except (TypeError, ValueError):
        return value


@bp.get(f"/opendata/<key>/<{DATASET}>.excel.csv")
@limiter.limit(LIMIT)
def download_excel(key: str, dataset: str):
    """The table for German Excel (semicolons, decimal commas, German months); the standard CSV stays as it is."""
    snapshot = _snapshot(key, dataset)
    return _conditional(to_excel_csv(snapshot), "text/csv", f"{snapshot.etag}-{snapshot.publication.licence}-excel",
                        snapshot.publication.modified, f"{key}-{dataset}-excel.csv")


def _page() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        abort(400, "page must be a positive integer")
    return int(raw)


def _modified_since(entries):
    """ckanext-dcat's ``modified_since``: only datasets changed at or after an ISO 8601 date or time."""
    raw = request.args.get("modified_since")
    if not raw:
        return entries
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        abort(400, "modified_since must be an ISO 8601 date or date and time")
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return [e for e in entries if e.publication.modified >= since]


def _catalogue_response(spec: catalogue.CatalogueSpec, entries, suffix: str) -> Response:
    entries = _modified_since(entries)
    since = request.args.get("modified_since")
    query = f"{urlencode({'modified_since': since})}&" if since else ""
    graph = catalogue.build_catalogue(spec, entries, _page(), suffix, query)
    body, media_type = catalogue.serialise(graph, suffix)
    response = Response(body, mimetype=media_type)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.add_etag()
    return response.make_conditional(request)


def _spec(path: str, title: str, description: str, publisher_name: str, publisher_uri: str):
    settings = _settings()
    return catalogue.CatalogueSpec(settings.portal_url, path, title, description, publisher_name, publisher_uri,
                                   settings.dcat_contributor_id, settings.dcat_page_size)


@bp.get(f"/catalog.<{RDF_SUFFIX}>")
@limiter.limit(LIMIT)
def platform_catalogue(suffix: str):
    _fresh()
    base = _settings().portal_url
    spec = _spec("/catalog", "eGovSAD – Nutzungsdaten kommunaler Online-Dienste in Hessen",
                 "Offene Daten der teilnehmenden Kommunen über die Nutzung ihrer Online-Dienste: Nutzung, "
                 "Abschluss- und Abbruchquoten, Bezahl- und Anmeldeverfahren, Zufriedenheit.",
                 "eGovSAD – Betrieb der Plattform", f"{base}/opendata/#operator")
    return _catalogue_response(spec, all_published_entries(), suffix)


@bp.get(f"/opendata/<key>/catalog.<{RDF_SUFFIX}>")
@limiter.limit(LIMIT)
def tenant_catalogue(key: str, suffix: str):
    _fresh()
    try:
        tenant = public_tenant(key)
    except NotPublished:
        abort(404)
    base = _settings().portal_url
    spec = _spec(f"/opendata/{tenant.ags}/catalog", f"Offene Daten der Online-Dienste – {tenant.name}",
                 f"Nutzungsdaten der Online-Dienste von {tenant.name} (AGS {tenant.ags}).",
                 tenant.name, f"{catalogue.tenant_page_url(base, tenant.ags)}#publisher")
    return _catalogue_response(spec, published_entries(tenant), suffix)
