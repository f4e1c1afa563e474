"""Data sources of a tenant: create, fetch (not found for foreign ones), push tokens, feedback keys.

Push tokens are 256-bit random strings shown once; only their SHA-256 is stored (a token with
that much entropy needs no slow password hash), so a database leak reveals no usable token.
Revoking clears the hash. Matomo tokens are secrets the platform must use, so they are stored
encrypted (``tenants.crypto``).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from tenants import canonical
from tenants.crypto import encrypt
from tenants.errors import NotFound, UserError
from tenants.ingest.profiles import shipped_profiles
from tenants.models import DataSource, IngestError, IngestRun
from tenants.settings import Settings

KINDS = ("upload", "push", "matomo", "feedback")
TOKEN_PREFIX = "egov_"


class SourceNotFound(NotFound):
    """Missing or another tenant's: the caller answers 404 either way."""


class SourceError(UserError, ValueError):
    """Invalid input for a data source; the message is for the user."""


def list_sources(session) -> list[DataSource]:
    return list(session.scalars(select(DataSource).order_by(DataSource.name)))


def get_source(session, tenant_id: int, source_id: int, kinds: tuple[str, ...] = KINDS) -> DataSource:
    """:raise SourceNotFound: missing, another tenant's, or not of ``kinds``."""
    source = session.get(DataSource, (tenant_id, source_id))
    if source is None or source.tenant_id != tenant_id or source.kind not in kinds:
        raise SourceNotFound(source_id)
    return source


def get_run(session, tenant_id: int, run_id: int, source: DataSource | None = None) -> IngestRun:
    """:raise SourceNotFound: missing, another tenant's, or (with ``source``) another source's run."""
    run = session.get(IngestRun, (tenant_id, run_id))
    if run is None or run.tenant_id != tenant_id or (source is not None and run.data_source_id != source.id):
        raise SourceNotFound(run_id)
    return run


def create_source(session, tenant_id: int, settings: Settings, name: str, kind: str, profile: str = "canonical",
                  matomo: dict[str, str] | None = None, origins: str = "") -> DataSource:
    name = _check_name(session, name)
    if kind not in KINDS:
        raise SourceError("Unknown kind of data source.")
    if profile not in shipped_profiles():
        raise SourceError("Unknown mapping profile.")
    source = DataSource(tenant_id=tenant_id, name=name, kind=kind, mapping_profile=profile, config={})
    if kind == "matomo":
        configure_matomo(source, settings, **(matomo or {}))
    if kind == "feedback":
        source.config = {"public_key": secrets.token_urlsafe(18), "allowed_origins": parse_origins(origins)}
    session.add(source)
    session.flush()
    return source


def _check_name(session, name: str, source_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise SourceError("Give the data source a name (at most 100 characters).")
    clash = session.scalar(select(DataSource.id).where(DataSource.name == name))
    if clash is not None and clash != source_id:
        raise SourceError("A data source with this name exists already.")
    return name


def update_source(session, source: DataSource, name: str, active: bool) -> None:
    """Rename a source, or pause it: a paused source refuses uploads, pushes and feedback, and
    Matomo is not asked; what it delivered stays in every figure."""
    source.name = _check_name(session, name, source.id)
    source.active = active
    session.flush()


def delivered_data(session, source: DataSource) -> bool:
    """Whether anything of the source is stored: a run (files, pushes, Matomo pulls) or feedback."""
    if session.scalar(select(IngestRun.id).where(IngestRun.data_source_id == source.id).limit(1)) is not None:
        return True
    return bool(session.scalar(text("SELECT EXISTS (SELECT 1 FROM analytics.feedback WHERE data_source_id = :id)"),
                               {"id": source.id}))


def delete_source(session, source: DataSource) -> None:
    """Delete a source that never delivered anything (one created by mistake).

    A source with data is refused, not emptied: its figures would vanish from every dashboard
    and Open Data publication without a trace. Pausing it keeps them; removing a tenant's data
    is offboarding's job, with its archive.
    """
    if delivered_data(session, source):
        raise SourceError("This data source has delivered data and cannot be deleted; pause it instead. "
                          "Everything it delivered stays in the figures.")
    session.delete(source)
    session.flush()


def configure_matomo(source: DataSource, settings: Settings, url: str = "", site_id: str = "", token: str = "",
                     pages: str = "") -> None:
    url = (url or "").strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise SourceError("The Matomo address must start with https://.")
    if not str(site_id).strip().isdigit():
        raise SourceError("The Matomo site id is a number.")
    if not token or not token.strip().isalnum():
        raise SourceError("Give the view-only token of a Matomo user.")
    source.config = {"url": url, "site_id": int(site_id), "pages": parse_pages(pages)}
    source.secret_encrypted = encrypt(settings, token.strip())


def parse_pages(textvalue: str) -> list[dict[str, str]]:
    """Lines ``<URL prefix> <service key>``: which web pages belong to which online service."""
    pages = []
    for line in (textvalue or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            pages.append({"prefix": parts[0], "service_key": parts[1]})
        elif parts:
            raise SourceError("Each page line is: URL prefix, space, service key.")
    return pages


def parse_origins(textvalue: str) -> list[str]:
    origins = []
    for item in (textvalue or "").replace(",", " ").split():
        item = item.rstrip("/")
        if not item.startswith(("https://", "http://")) or "/" in item.split("://", 1)[1]:
            raise SourceError(f"Not an origin (scheme and host only): {item}")
        origins.append(item)
    return origins


def set_mapping(source: DataSource, textvalue: str) -> None:
    """Give an upload or push source its own mapping profile (JSON, docs/data-format.md); empty removes it."""
    import json

    from tenants.ingest.profiles import ProfileError, profile_from_dict

    if source.kind not in ("upload", "push"):
        raise SourceError("Only upload and push sources have a mapping.")
    config = dict(source.config or {})
    if not (textvalue or "").strip():
        config.pop("mapping", None)
    else:
        try:
            mapping = json.loads(textvalue)
            if not isinstance(mapping, dict):
                raise ValueError
            profile_from_dict(source.mapping_profile, mapping)
        except (ValueError, TypeError, ProfileError) as exc:
            raise SourceError("The mapping is not a valid profile (JSON object, see the data format).") from exc
        config["mapping"] = mapping
    source.config = config  # a new dict, so SQLAlchemy sees the change


#: Date and time formats a clerk picks from (``strptime``); the first of each is the canonical ISO form.
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y")
DATETIME_FORMATS = ("", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")


def set_column_mapping(source: DataSource, payload: str, columns: dict[str, str], date_format: str = "",
                       datetime_format: str = "", decimal_comma: bool = False) -> None:
    """Give an upload or push source its own column assignment, as the form without JSON sends it.

    :param payload: ``events`` or ``aggregates``.
    :param columns: canonical column -> the header in the clerk's file (empty: not in the file).
    :param date_format: one of :data:`DATE_FORMATS`; ``datetime_format`` one of :data:`DATETIME_FORMATS`
        ("" is ISO 8601).
    Value maps, constants and measures of an existing mapping are kept. No column at all removes the mapping.
    :raise SourceError: for another kind of source, an unknown format, or a header given twice.
    """
    import json

    from tenants.canonical import PAYLOADS

    if payload not in PAYLOADS:
        raise SourceError("The mapping is not a valid profile (JSON object, see the data format).")
    chosen = {c: h.strip() for c, h in columns.items() if c in PAYLOADS[payload] and h and h.strip()}
    if len(set(chosen.values())) < len(chosen):
        raise SourceError("Each column of your file can stand for one field only.")
    if date_format not in DATE_FORMATS or datetime_format not in DATETIME_FORMATS:
        raise SourceError("The mapping is not a valid profile (JSON object, see the data format).")
    if not chosen:
        set_mapping(source, "")
        return
    mapping = {k: v for k, v in (source.config or {}).get("mapping", {}).items()
               if k in ("values", "constants", "measures", "delimiter", "encoding")}
    mapping.update(payload=payload, columns=chosen, decimal_comma=decimal_comma)
    if date_format != DATE_FORMATS[0]:
        mapping["date_format"] = date_format
    if datetime_format:
        mapping["datetime_format"] = datetime_format
    set_mapping(source, json.dumps(mapping))


#: Canonical columns a value list can translate, and the values each may become.
CODED_VALUES: dict[str, tuple[str, ...]] = {
    "event_type": canonical.EVENT_TYPES, "measure": canonical.EVENT_TYPES, "channel": canonical.CHANNELS,
    "payment_method": canonical.PAYMENT_METHODS, "payment_provider": canonical.PAYMENT_PROVIDERS,
    "auth_method": canonical.AUTH_METHODS, "trust_level": canonical.TRUST_LEVELS,
}


def set_value_mapping(source: DataSource, rows: list[tuple[str, str, str]]) -> None:
    """Give an upload or push source its value lists, as the form without JSON sends them.

    :param rows: (canonical column, value as it stands in the file, canonical value); rows with all
        three empty are the form's spare rows and skipped.
    The rest of the mapping stays. A source without an own mapping starts from the shipped profile it
    names, so the value lists are the only change in how its files are read. Values are compared
    without regard to case, as the loader does.
    :raise SourceError: for another kind of source, an incomplete row, a meaning not in the lists,
        or one file value given twice for a field.
    """
    import json

    from tenants.ingest.profiles import ProfileError, profile_for

    if source.kind not in ("upload", "push"):
        raise SourceError("Only upload and push sources have a mapping.")
    try:
        profile = profile_for(source.mapping_profile, source.config)
    except ProfileError as exc:
        raise SourceError("The mapping is not a valid profile (JSON object, see the data format).") from exc
    # An entry for the empty cell (civento's "" -> "") has no row in the form; it stays as it is.
    values: dict[str, dict[str, str]] = {field: {"": meaning} for field, mapping in profile.values.items()
                                         for found, meaning in mapping.items() if not found.strip()}
    for field, found, meaning in rows:
        field, found, meaning = field.strip(), found.strip(), meaning.strip()
        if not (field or found or meaning):
            continue
        if not found or not meaning:
            raise SourceError("Each row of a value list needs the value as it stands in your file and its meaning.")
        if field not in CODED_VALUES or field not in profile.canonical_columns or meaning not in CODED_VALUES[field]:
            raise SourceError("Choose the meaning of each value from the list.")
        if found.casefold() in {known.casefold() for known in values.get(field, {}) if known}:
            raise SourceError("A value of your file is listed twice for the same field.")
        values.setdefault(field, {})[found] = meaning
    own = (source.config or {}).get("mapping")
    if not own and values == profile.values:
        return  # nothing changed: the source keeps reading its shipped profile as it is
    mapping = dict(own) if own else _profile_dict(profile)
    mapping.pop("values", None)
    if values:
        mapping["values"] = values
    set_mapping(source, json.dumps(mapping))


def _profile_dict(profile) -> dict[str, Any]:
    """A shipped profile as the keys of an own mapping (what differs from the defaults; no title)."""
    import dataclasses

    out = {}
    for spec in dataclasses.fields(profile):
        value = getattr(profile, spec.name)
        default = spec.default if spec.default is not dataclasses.MISSING else \
            spec.default_factory() if spec.default_factory is not dataclasses.MISSING else object()
        if spec.name not in ("name", "title", "description") and value != default:
            out[spec.name] = value
    return out


def issue_token(source: DataSource) -> str:
    """A new push token for ``source``; the only time it is seen in clear."""
    if source.kind != "push":
        raise SourceError("Only push sources have tokens.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    source.token_hash = hashlib.sha256(token.encode()).hexdigest()
    source.token_created_at = datetime.now(UTC)
    return token


def revoke_token(source: DataSource) -> None:
    source.token_hash = None
    source.token_created_at = None


def token_matches(source: DataSource, presented: str | None) -> bool:
    if not presented or not source.token_hash or not source.active:
        return False
    return hmac.compare_digest(hashlib.sha256(presented.encode()).hexdigest(), source.token_hash)


def recent_runs(session, limit: int = 20) -> list[IngestRun]:
    return list(session.scalars(select(IngestRun).order_by(IngestRun.created_at.desc()).limit(limit)))


def run_errors(session, run_id: int, limit: int | None = None) -> list[IngestError]:
    query = select(IngestError).where(IngestError.run_id == run_id).order_by(IngestError.row_no)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def errors_csv(header: list[str], lines: list[tuple[Any, ...]]) -> str:
    """Rejected rows as a CSV that German spreadsheets open directly (semicolon, BOM)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(lines)
    return out.getvalue()


def source_summary(source: DataSource) -> dict[str, Any]:
    return {"id": source.id, "name": source.name, "kind": source.kind, "profile": source.mapping_profile,
            "has_token": bool(source.token_hash)}
