"""Tenant pages for data: upload with live progress, run results, data sources, ingest health.

Editors and admins upload; admins manage data sources (push tokens, Matomo, feedback keys),
see the health page and retry failed runs. Logic lives in ``ingest_workers``; these views only
translate between HTTP and those functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from portal.access import operator_required, role_required
from portal.tenancy import current_tenant
from portal.views import commit_or_show_error
from tenants import vocabulary
from tenants.db import after_commit, db
from tenants.ingest import catalogue, file_templates, matomo, runs
from tenants.ingest.health import health_in_session
from tenants.ingest.profiles import shipped_profiles
from tenants.ingest.sources import (
    CODED_VALUES,
    SourceError,
    create_source,
    delete_source,
    errors_csv,
    get_run,
    get_source,
    issue_token,
    list_sources,
    recent_runs,
    revoke_token,
    run_errors,
    set_column_mapping,
    set_mapping,
    set_value_mapping,
    update_source,
)
from tenants.settings import get_settings
from tenants.superset import cache as superset_cache

bp = Blueprint("tenant_ingest", __name__, url_prefix="/t/<ags>/data")

UPLOAD_KINDS = ("upload", "push")
#: Empty rows the value list form offers below the filled ones (saving offers as many again), and the
#: most rows read from one form.
VALUE_ROWS_SPARE = 3
VALUE_ROWS_MAX = 500
SUFFIXES = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx"}


def N_(message: str) -> str:
    """Marks a message for the catalogues; it is translated where it is shown (``_(profile.title)``)."""
    return message


#: Titles and descriptions of the shipped profiles (tenants/ingest/profiles/*.json), for the catalogues;
#: tests/ingest/test_file_templates.py checks the list against the files.
PROFILE_TEXTS = (
    N_("Daily counts per service (eGovSAD template)"),
    N_("One row per day, service and count (started, submitted, abandoned). For systems that only know totals."),
    N_("Single steps of each application (eGovSAD template)"),
    N_("One row per step of an application: started, steps, sign-in, payment, submitted or "
       "abandoned. For form systems that can export single events."),
    N_("civento statistics export"),
    N_("The statistics export of the OZG platform civento as it is: one row per day and service, "
       "one column per count."),
    N_("Mängelmelder export"),
    N_("The export of a Mängelmelder app as it is: one row per step of a report, with its origin "
       "(web, iOS, Android)."),
)


def _source_or_404(source_id: int, kinds=("upload", "push", "matomo", "feedback")):
    """The tenant's data source (404 for missing and foreign ones); 400 when it is of another kind."""
    source = get_source(db.session, current_tenant().id, source_id)
    if source.kind not in kinds:
        abort(400)
    return source


def _run_or_404(run_id: int):
    return get_run(db.session, current_tenant().id, run_id)


@bp.get("/")
@role_required("editor")
def index():
    sources = list_sources(db.session)
    recent = recent_runs(db.session)
    upload_sources = [s for s in sources if s.kind in UPLOAD_KINDS and s.active]
    return render_template("ingest/index.html", sources=sources, runs=recent, upload_sources=upload_sources,
                           selected=_preselected(upload_sources, recent, request.args.get("source", type=int)),
                           profiles=shipped_profiles(), is_admin=current_user.has_role("admin"))


def _preselected(upload_sources, recent, asked: int | None) -> int | None:
    """The source the upload form offers first: the one asked for (``?source=``, the link on a source's
    page), else whichever is newer, the source of the latest load or the latest created source."""
    ids = {s.id for s in upload_sources}
    if asked in ids:
        return asked
    candidates = [(r.created_at, r.data_source_id) for r in recent[:1] if r.data_source_id in ids]
    candidates += [(s.created_at, s.id) for s in upload_sources]
    return max(candidates)[1] if candidates else None


@bp.post("/upload")
@role_required("editor")
def upload():
    tenant = current_tenant()
    source_id = request.form.get("source_id", type=int)
    file = request.files.get("file")
    suffix = "." + (file.filename.rsplit(".", 1)[-1].lower() if file and "." in file.filename else "")
    if not file or suffix not in SUFFIXES or source_id is None:
        flash(_("Choose a CSV or Excel (.xlsx) file."), "danger")
        return redirect(url_for(".index"))
    source = _source_or_404(source_id, UPLOAD_KINDS)
    path, key = runs.spool_bytes(tenant.id, iter(lambda: file.stream.read(1 << 20), b""), suffix)
    try:
        # The name is shown and stored as text: no control characters, valid Unicode.
        filename = "".join(ch for ch in file.filename if ch.isprintable())[:255]
        run, new = runs.accept_batch(db.session, tenant, source, key, path, SUFFIXES[suffix], filename,
                                     current_user.get_id())
    except runs.IngestRefused as exc:
        path.unlink(missing_ok=True)
        flash(_(str(exc)), "danger")
        return redirect(url_for(".index"))
    run_id, status = run.id, run.status
    if new:
        runs.enqueue_after_commit(db.session, run)
    db.session.commit()
    if not new and status == "succeeded":
        flash(_("This file was loaded before; nothing was changed."), "info")
    elif not new:
        flash(_("This file is being loaded already; this page shows how far it is."), "info")
    return redirect(url_for(".run_page", run_id=run_id))


def _settled_run_or_404(run_id: int):
    """The run, settled first when nobody works on it any more (its page then shows the truth)."""
    run = _run_or_404(run_id)
    if runs.settle_runs(db.session, [run]):
        runs.enqueue_after_commit(db.session, run)
        db.session.commit()
    return run


@bp.get("/runs/<int:run_id>")
@role_required("editor")
def run_page(run_id: int):
    run = _settled_run_or_404(run_id)
    source = _source_or_404(run.data_source_id)
    errors = [(e.row_no, e.column_name, runs.error_text(e.reason, e.args)) for e in run_errors(db.session, run.id, 100)]
    return render_template("ingest/run.html", run=run, source=source, errors=errors,
                           error=runs.error_text(run.error, run.error_args))


@bp.get("/formats")
@role_required("editor")
def formats():
    """What a file of each profile holds: its columns and what they mean, with template and example."""
    profiles = shipped_profiles()
    sources = [s for s in list_sources(db.session) if s.kind in UPLOAD_KINDS and s.mapping_profile in profiles]
    return render_template("ingest/formats.html", profiles=profiles, columns=file_templates.headers,
                           has_example=file_templates.has_example, column_meaning=column_meaning,
                           used_by={name: [s.name for s in sources if s.mapping_profile == name] for name in profiles})


@bp.get("/format-documentation")
@role_required("editor")
def format_documentation():
    """docs/data-format.md as a page of the portal: the full description behind the formats page, for the
    clerk who needs more than a template (own mappings, value lists, the push interface)."""
    return render_template("ingest/format_documentation.html", doc=documentation_in_language())


#: The repository's format documentation (the portal image copies it, docker/Containerfile.portal).
FORMAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "data-format.md"
#: The document in other languages than English: docs/data-format.<language>.md.
FORMAT_DOC_LANGUAGES = ("de",)


def documentation_in_language() -> SimpleNamespace:
    """docs/data-format.md in the page's language (German: docs/data-format.de.md): ``.language``, ``.html``."""
    from flask_babel import get_locale

    language = str(get_locale() or "de").split("_")[0]
    language = language if language in FORMAT_DOC_LANGUAGES else "en"
    return SimpleNamespace(language=language, html=_documentation_html(language))


@lru_cache(maxsize=len(FORMAT_DOC_LANGUAGES) + 1)
def _documentation_html(language: str) -> Markup:
    """docs/data-format.md (or its translation) rendered with markdown-it-py (CommonMark and tables).

    Raw HTML in the file is escaped, not passed through. Links relative to the repository (the JSON
    Schemas, other docs) have no page in the portal, so they become their text; headings move one level
    down under the page's own h1; tables and code get the portal's classes. Headings get the ids of the
    English original's headings (#mapping-profiles in every language: a translation has the same headings
    in the same order, tests/ingest/test_file_templates.py checks it).
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    path = FORMAT_DOC if language == "en" else FORMAT_DOC.with_suffix(f".{language}.md")
    tokens = md.parse(path.read_text(encoding="utf-8"))
    ids = iter(_heading_ids(md))
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
            if token.type == "heading_open":  # an id to link to, e.g. #mapping-profiles
                token.attrSet("class", "kern-heading-medium" if token.tag == "h2" else "kern-heading-small")
                token.attrSet("id", next(ids))
        elif token.type == "table_open":
            token.attrSet("class", "kern-table kern-table--small")
        elif token.type == "inline" and token.children:
            token.children = _without_repository_links(token.children)
    return Markup(md.renderer.render(tokens, md.options, {}))


def _heading_ids(md) -> list[str]:
    """The anchors of the English original's headings, in order: "Mapping profiles" -> mapping-profiles."""
    tokens = md.parse(FORMAT_DOC.read_text(encoding="utf-8"))
    return [re.sub(r"[^a-z0-9]+", "-", following.content.split(" (")[0].lower()).strip("-")
            for token, following in zip(tokens, tokens[1:], strict=False) if token.type == "heading_open"]


def _without_repository_links(children: list) -> list:
    kept, dropping = [], False  # links do not nest in Markdown: one flag suffices
    for child in children:
        if child.type == "link_open" and not str(child.attrGet("href") or "").startswith(("https://", "http://", "#")):
            dropping = True
        elif child.type == "link_close" and dropping:
            dropping = False
        else:
            kept.append(child)
    return kept


@bp.get("/formats/<profile>-<any(template, example):kind>.<any(csv, xlsx):fmt>")
@role_required("editor")
def format_file(profile: str, kind: str, fmt: str):
    """An empty template or a filled example of a shipped profile, as CSV or Excel workbook."""
    from tenants.ingest.loader import berlin_today

    chosen = shipped_profiles().get(profile)
    if chosen is None or (kind == "example" and not file_templates.has_example(chosen)):
        abort(404)
    rows = file_templates.example_rows(chosen, berlin_today()) if kind == "example" else []
    body = file_templates.render(chosen, rows, fmt)
    name = f"{_('template') if kind == 'template' else _('example')}-{profile}.{fmt}"
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})


def column_meaning(profile, header: str) -> str:
    """What a column of a file in ``profile`` holds, in the user's language."""
    if header in profile.measures:
        return _("number of %(what)s that day", what=measure_label(profile.measures[header]))
    from datetime import datetime

    canonical = next((c for c, h in profile.columns.items() if h == header), header)
    sample = datetime(2026, 3, 2, 9, 15)
    if canonical == "day" and profile.date_format:
        return _("Day, e.g. %(example)s", example=sample.strftime(profile.date_format))
    if canonical == "occurred_at" and profile.datetime_format:
        return _("Date and time, e.g. %(example)s", example=sample.strftime(profile.datetime_format))
    if profile.values.get(canonical):
        values = Markup(", ").join(_written_as(canonical, value, code)
                                   for value, code in profile.values[canonical].items() if value)
        return Markup(_("%(meaning)s; written as: %(values)s")) % {"meaning": canonical_column_label(canonical),
                                                                   "values": values}
    return canonical_column_label(canonical)


def _written_as(column: str, value: str, code: str) -> Markup:
    """A value a file may hold, as it is typed (code font) and, where that is a code, what it means."""
    meaning = code_meaning(column, code) if column in CODED_VALUES else value
    if meaning == value:
        return Markup("<code>%s</code>") % value
    return Markup("<code>%s</code> (%s)") % (value, meaning)


@bp.app_template_global()
def run_title(run) -> str:
    """A load as staff recognise it: its file's name; a Matomo pull by the days it fetched; a push
    delivery by when it arrived (never the internal batch key, ``matomo:2025-11-30:…:407bd…``)."""
    from flask_babel import format_date, format_datetime

    field = run.get if isinstance(run, dict) else lambda name: getattr(run, name)  # a row of the health report
    if field("filename"):
        return field("filename")
    if (field("batch_key") or "").startswith(matomo.BATCH_PREFIX) and field("day_from") and field("day_to"):
        return _("Web analytics (Matomo) %(start)s – %(end)s", start=format_date(field("day_from"), "medium"),
                 end=format_date(field("day_to"), "medium"))
    return _("Delivery of %(when)s", when=format_datetime(field("created_at"), "short"))


@bp.app_template_global()
def run_outcome(run) -> str:
    """What a finished load did, for its badge: ``succeeded`` only when every row was taken; ``partial`` when
    some rows were rejected, ``rejected`` when none was taken (the run itself worked, but a clerk who reads
    "erfolgreich" over "0 übernommen, 4 abgewiesen" is misled); otherwise the run's status."""
    if run.status != "succeeded" or not run.rows_rejected:
        return run.status
    return "partial" if run.rows_accepted else "rejected"


@bp.app_template_global()
def sample_date(fmt: str) -> str:
    """2 March 2026, 09:15, written in ``fmt`` (how a clerk recognises a date format)."""
    from datetime import datetime

    return datetime(2026, 3, 2, 9, 15).strftime(fmt)


def measure_label(measure: str) -> str:
    return {"started": _("applications started"), "submitted": _("applications submitted"),
            "aborted": _("applications abandoned"), "step_reached": _("steps reached"),
            "payment": _("payments"), "authentication": _("sign-ins")}.get(measure, measure)


def value_field_label(column: str) -> str:
    """Short name of a field with a value list (the value list form's first column)."""
    return {"event_type": _("What happened"), "measure": _("What is counted"), "channel": _("Channel"),
            "payment_method": _("Payment method"), "payment_provider": _("Payment provider"),
            "auth_method": _("Sign-in method"), "trust_level": _("Trust level")}.get(column, column)


def code_meaning(column: str, code: str) -> str:
    """What a canonical value of a coded column (tenants.ingest.sources.CODED_VALUES) means, in words."""
    if column in ("event_type", "measure"):
        return {"started": _("application started"), "step_reached": _("step reached"),
                "submitted": _("application submitted"), "aborted": _("application abandoned"),
                "payment": _("payment"), "authentication": _("sign-in")}.get(code, code)
    return vocabulary.VOCABULARIES[column].get(code, code)


def value_label(column: str, code: str) -> str:
    """A canonical value as the value list form offers it: its German label, the code behind it."""
    return f"{code_meaning(column, code)} ({code})"


#: Canonical columns whose values are codes, with the codes shown as examples of what to type.
EXAMPLE_CODES = {
    "event_type": ("started", "step_reached", "submitted", "aborted", "payment", "authentication"),
    "measure": ("started", "submitted", "aborted", "step_reached", "payment", "authentication"),
    "channel": ("web", "ios", "android"),
    "payment_method": ("paypal", "credit_card", "sepa_direct_debit", "invoice"),
    "payment_provider": ("epaybl", "pmpayment", "epay21"),
    "auth_method": ("none", "bundid_eid", "muk_elster"),
    "trust_level": ("none", "basis", "substanziell", "hoch"),
}


def canonical_column_label(column: str) -> str:
    """What a canonical column holds; codes to type appear in code font with their meaning."""
    with_codes = {
        "event_type": _("What happened: %(values)s"),
        "measure": _("What is counted: %(values)s"),
        "channel": _("Channel: %(values)s"),
        "payment_method": _("Payment method, e.g. %(values)s"),
        "payment_provider": _("Payment provider, e.g. %(values)s"),
        "auth_method": _("Sign-in method, e.g. %(values)s"),
        "trust_level": _("Trust level: %(values)s"),
    }
    if column in with_codes:
        codes = Markup(", ").join(_written_as(column, code, code) for code in EXAMPLE_CODES[column])
        return Markup(with_codes[column]) % {"values": codes}
    return {
        "event_id": _("Unique id of the row from your system (optional; without it, the row itself is the id)"),
        "occurred_at": _("Date and time, e.g. 2026-03-02T09:15:00"),
        "service_key": _("LeiKa key of the service (14 digits starting with 99) or local:name"),
        "session_id": _("Id of the application in your system; it is made unrecognisable on arrival"),
        "step_no": _("Number of the form step (0–999)"),
        "step_name": _("Title of the form step"),
        "day": _("Day, e.g. 2026-03-02"),
        "value": _("The count (a whole number)"),
    }.get(column, column)


@bp.get("/runs/<int:run_id>/status")
@role_required("editor")
def run_status(run_id: int):
    return jsonify(runs.run_status(_settled_run_or_404(run_id)))


@bp.get("/runs/<int:run_id>/errors.csv")
@role_required("editor")
def run_errors_csv(run_id: int):
    run = _run_or_404(run_id)
    header = [_("Row"), _("Column"), _("Reason")]
    lines = [(e.row_no, e.column_name, runs.error_text(e.reason, e.args)) for e in run_errors(db.session, run.id)]
    return Response(errors_csv(header, lines), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=fehler-lauf-{run.id}.csv"})


# -- administration --------------------------------------------------------------------------------

@bp.post("/sources")
@role_required("admin")
def create():
    form = request.form
    return commit_or_show_error(
        lambda: create_source(db.session, current_tenant().id, get_settings(), form.get("name", ""),
                              form.get("kind", ""), form.get("profile", "canonical"),
                              matomo={k: form.get(k, "") for k in ("url", "site_id", "token", "pages")},
                              origins=form.get("origins", "")),
        SourceError, lambda source: _("Data source %(name)s created.", name=source.name),
        lambda source: url_for(".source_page", source_id=source.id), failed_back=url_for(".index"),
        error_text=lambda exc: _(str(exc)))


@bp.get("/sources/<int:source_id>")
@role_required("admin")
def source_page(source_id: int):
    source = _source_or_404(source_id)
    return render_template("ingest/source.html", source=source, token=None,
                           portal_url=get_settings().portal_url, **_mapping_form(source))


def _mapping_form(source) -> dict:
    """What the column form shows: the payload, its fields and the headers assigned now (own or shipped)."""
    from tenants.canonical import PAYLOADS, REQUIRED
    from tenants.ingest.profiles import ProfileError, profile_for
    from tenants.ingest.sources import DATE_FORMATS, DATETIME_FORMATS

    try:
        profile = profile_for(source.mapping_profile, source.config)
    except ProfileError:
        profile = shipped_profiles()["canonical"]
    own = (source.config or {}).get("mapping") or {}
    payload_columns = PAYLOADS[profile.payload]
    return {"mapping_profile": profile, "payload_fields": {p: [(c, c in REQUIRED[p]) for c in cols]
                                                           for p, cols in PAYLOADS.items()},
            "assigned": profile.columns, "own_mapping": bool(own), "field_label": canonical_column_label,
            "date_formats": DATE_FORMATS, "datetime_formats": DATETIME_FORMATS,
            "profile_title": shipped_profiles().get(source.mapping_profile),
            "value_rows": [(f, found, meaning) for f, pairs in profile.values.items()
                           for found, meaning in pairs.items() if found.strip()] + [("", "", "")] * VALUE_ROWS_SPARE,
            "value_fields": [(f, value_field_label(f), [(v, value_label(f, v)) for v in CODED_VALUES[f]])
                             for f in payload_columns if f in CODED_VALUES]}


def _change_source(source_id: int, change: Callable[[], object], confirm: Callable[[object], str],
                   done: str | None = None) -> Response:
    """Apply a change to a data source: commit and confirm it, or undo it and show the user's error."""
    page = url_for(".source_page", source_id=source_id)
    return commit_or_show_error(change, SourceError, confirm, done or page, failed_back=page,
                                error_text=lambda exc: _(str(exc)))


@bp.post("/sources/<int:source_id>/settings")
@role_required("admin")
def settings(source_id: int):
    source = _source_or_404(source_id)
    return _change_source(
        source_id, lambda: update_source(db.session, source, request.form.get("name", ""),
                                         request.form.get("active") == "on"),
        lambda _saved: _("The data source was saved.") if source.active else
        _("The data source is paused: it accepts nothing until it is switched on again."))


@bp.post("/sources/<int:source_id>/delete")
@role_required("admin")
def delete(source_id: int):
    source = _source_or_404(source_id)
    name = source.name
    return _change_source(source_id, lambda: delete_source(db.session, source),
                          lambda _deleted: _("Data source %(name)s deleted.", name=name), url_for(".index"))


@bp.post("/sources/<int:source_id>/token")
@role_required("admin")
def new_token(source_id: int):
    source = _source_or_404(source_id, ("push",))
    token = issue_token(source)
    db.session.commit()
    # Shown once, in this response only; it is not stored in clear anywhere.
    response = Response(render_template("ingest/source.html", source=source, token=token,
                                        portal_url=get_settings().portal_url, **_mapping_form(source)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/sources/<int:source_id>/token/revoke")
@role_required("admin")
def revoke(source_id: int):
    source = _source_or_404(source_id, ("push",))
    revoke_token(source)
    db.session.commit()
    flash(_("The token was revoked; requests with it are refused from now on."), "success")
    return redirect(url_for(".source_page", source_id=source.id))


@bp.post("/sources/<int:source_id>/mapping")
@role_required("admin")
def mapping(source_id: int):
    """Save the source's own mapping: from the column form (rows "field → your column") or, for experts,
    as JSON."""
    source = _source_or_404(source_id, UPLOAD_KINDS)
    form = request.form
    if "payload" in form:
        def change():
            set_column_mapping(source, form.get("payload", ""),
                               {key[4:]: value for key, value in form.items() if key.startswith("col_")},
                               form.get("date_format", ""), form.get("datetime_format", ""),
                               form.get("decimal_comma") == "on")
    else:
        def change():
            set_mapping(source, form.get("mapping", ""))
    return _change_source(source_id, change,
                          lambda _saved: _("The mapping was saved; it applies to the next file or batch."))


@bp.post("/sources/<int:source_id>/values")
@role_required("admin")
def values(source_id: int):
    """Save the source's value lists from the form rows "field, value in your file → meaning"."""
    source = _source_or_404(source_id, UPLOAD_KINDS)
    form = request.form
    rows = []  # a meaning is sent as "<field>:<code>": the group of the list it was chosen from names the field
    for n in range(VALUE_ROWS_MAX):
        if f"value_from_{n}" in form:
            field, _sep, code = form.get(f"value_to_{n}", "").partition(":")
            rows.append((field, form[f"value_from_{n}"], code))
    return _change_source(source_id, lambda: set_value_mapping(source, rows),
                          lambda _saved: _("The value lists were saved; they apply to the next file or batch."))


@bp.post("/sources/<int:source_id>/backfill")
@role_required("admin")
def backfill(source_id: int):
    source = _source_or_404(source_id, ("matomo",))
    try:
        start, end = (date.fromisoformat(request.form.get(k, "")) for k in ("start", "end"))
        matomo.check_range(start, end)
    except ValueError:
        flash(_("Give a valid period of at most one year."), "danger")
        return redirect(url_for(".source_page", source_id=source.id))
    matomo.enqueue_pull(db.session, current_tenant().id, source.id, start, end)
    db.session.commit()
    flash(_("The Matomo data of the period is being fetched."), "success")
    return redirect(url_for(".health"))


@bp.get("/services")
@role_required("admin")
def services():
    return render_template("ingest/services.html", services=catalogue.list_services(db.session))


@bp.post("/services")
@role_required("admin")
def save_service():
    form = request.form
    if not form.get("service_key"):
        flash(_("Choose a service."), "danger")
        return redirect(url_for(".services"))
    tenant_id = current_tenant().id

    def change():
        service = catalogue.update_service(db.session, form.get("service_key", ""), form.get("name", ""),
                                           form.get("leika_key", ""))
        # The names are shown in charts: their cached answers go.
        after_commit(db.session, lambda: superset_cache.data_changed(tenant_id, [catalogue.SERVICES_TABLE]))
        return service

    return commit_or_show_error(change, catalogue.ServiceError,
                                lambda service: _("Service %(name)s saved.", name=service.name),
                                url_for(".services"), error_text=lambda exc: _(str(exc)))


def _health_page(retry_endpoint: str, back_url: str | None):
    """The health report; runs it settled are committed and queued before the page is shown."""
    report = health_in_session(db.session)
    db.session.commit()
    return render_template("ingest/health.html", report=report, retry_endpoint=retry_endpoint, back_url=back_url)


@bp.get("/health")
@role_required("admin")
def health():
    return _health_page("tenant_ingest.retry", url_for(".index"))


def _retry(run_id: int, back: str) -> Response:
    run = _run_or_404(run_id)
    return commit_or_show_error(lambda: runs.retry_run(db.session, run), runs.IngestRefused,
                                _("The run was queued again."), back, error_text=lambda exc: _(str(exc)))


@bp.post("/runs/<int:run_id>/retry")
@role_required("admin")
def retry(run_id: int):
    return _retry(run_id, url_for(".health"))


# -- operators: the same health page for any tenant ------------------------------------------------

ops = Blueprint("tenant_ops_ingest", __name__, url_prefix="/ops/t/<ags>/ingest")


@ops.get("/")
@operator_required
def ops_health():
    return _health_page("tenant_ops_ingest.ops_retry", None)


@ops.post("/runs/<int:run_id>/retry")
@operator_required
def ops_retry(run_id: int):
    return _retry(run_id, url_for(".ops_health"))
