"""Publishing, withdrawing and reading a tenant's Open Data.

State lives in ``portal.open_data_publications`` (a tenant table under RLS).
Public readers have no signed-in user, so every read opens
``tenant_transaction(tenant_id)`` for exactly one tenant at a time: the
public side sees a tenant's data the same way its own staff do, through the
same policies, and never more than one tenant per transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tenants import audit
from tenants.confidentiality import Rules
from tenants.context import platform_transaction, tenant_transaction
from tenants.db import db
from tenants.errors import UserError
from tenants.models import Tenant
from tenants.months import berlin_today
from tenants.opendata.datasets import DATASETS, DisclosureRisk, column_names, dataset_rows
from tenants.registry import find_tenant_by_ags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Licence:
    key: str
    title: str
    uri: str  # the DCAT-AP.de licence IRI
    url: str  # the licence text
    needs_attribution: bool


LICENCES: dict[str, Licence] = {lic.key: lic for lic in (
    Licence("dl-by-de/2.0", "Datenlizenz Deutschland – Namensnennung – Version 2.0",
            "http://dcat-ap.de/def/licenses/dl-by-de/2.0", "https://www.govdata.de/dl-de/by-2-0", True),
    Licence("dl-zero-de/2.0", "Datenlizenz Deutschland – Zero – Version 2.0",
            "http://dcat-ap.de/def/licenses/dl-zero-de/2.0", "https://www.govdata.de/dl-de/zero-2-0", False),
    Licence("cc-by/4.0", "Creative Commons Namensnennung 4.0 International",
            "http://dcat-ap.de/def/licenses/cc-by/4.0", "https://creativecommons.org/licenses/by/4.0/", True),
)}
DEFAULT_LICENCE = "dl-by-de/2.0"
#: The same rule as the table's CHECK constraint, so a bad address is a message, not an error page.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Publication(db.Model):
    __tablename__ = "open_data_publications"
    __table_args__ = {"schema": "portal"}

    tenant_id: Mapped[int] = mapped_column(Integer, ForeignKey("portal.tenants.id"), primary_key=True)
    dataset: Mapped[str] = mapped_column(Text, primary_key=True)
    licence: Mapped[str] = mapped_column(Text, default=DEFAULT_LICENCE)
    state: Mapped[str] = mapped_column(Text, default="published")
    contact_email: Mapped[str] = mapped_column(Text)
    attribution: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data_hash: Mapped[str | None] = mapped_column(Text)
    data_modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())

    @property
    def is_published(self) -> bool:
        return self.state == "published"


@dataclass(frozen=True)
class Publisher:
    """The facts about a tenant the public side needs, copied out of its transaction.

    ORM objects expire when their transaction ends, and reloading one outside
    its tenant's transaction would find nothing; plain values do not.
    """

    id: int
    ags: str
    ars: str
    name: str
    is_district: bool

    @classmethod
    def of(cls, tenant: Tenant) -> Publisher:
        return cls(tenant.id, tenant.ags, tenant.ars, tenant.name, len(tenant.ags) == 5)


@dataclass(frozen=True)
class PublicationInfo:
    dataset: str
    licence: str
    contact_email: str
    attribution: str
    issued: datetime
    modified: datetime

    @classmethod
    def of(cls, pub: Publication) -> PublicationInfo:
        return cls(pub.dataset, pub.licence, pub.contact_email, pub.attribution, pub.published_at,
                   max(pub.data_modified_at, pub.published_at))


class OpenDataError(UserError, ValueError):
    """A publishing request that cannot be carried out; the message is for the user."""


class NotPublished(LookupError):
    """No such tenant or dataset, or never published: 404."""


class Withdrawn(LookupError):
    """The dataset was published and has been withdrawn: 410."""


def rules_from(settings) -> Rules:
    return Rules(settings.confidentiality_min_cases, settings.confidentiality_min_contributors)


def _now() -> datetime:
    return datetime.now(UTC)


def publications(session: Session, tenant_id: int) -> dict[str, Publication]:
    """The tenant's publication rows by dataset (inside its tenant transaction)."""
    rows = session.scalars(select(Publication).where(Publication.tenant_id == tenant_id))
    return {p.dataset: p for p in rows}


def _audit(session, tenant_id: int, actor: str, action: str, details: dict) -> None:
    audit.record(action, actor=actor, tenant_id=tenant_id, target="open_data", details=details, session=session)


def publish(session: Session, tenant: Tenant, datasets: list[str], licence: str, contact_email: str,
            actor: str) -> list[Publication]:
    """Publish ``datasets`` under ``licence``; already published ones take the new licence and contact.

    :raise OpenDataError: unknown dataset or licence, no dataset, or no contact e-mail.
    """
    if not datasets or any(d not in DATASETS for d in datasets):
        raise OpenDataError("Bitte mindestens einen bekannten Datensatz auswählen.")
    if licence not in LICENCES:
        raise OpenDataError("Unbekannte Lizenz.")
    contact_email = (contact_email or "").strip()
    if not EMAIL.fullmatch(contact_email):
        raise OpenDataError("Bitte eine gültige Kontakt-E-Mail-Adresse angeben.")
    existing = publications(session, tenant.id)
    result = []
    for key in datasets:
        pub = existing.get(key) or Publication(tenant_id=tenant.id, dataset=key)
        if not pub.is_published or pub.published_at is None:
            pub.published_at, pub.withdrawn_at, pub.data_modified_at = _now(), None, _now()
        elif pub.licence != licence:  # new terms: harvesters must fetch the metadata again
            pub.data_modified_at = _now()
        pub.state, pub.licence, pub.contact_email, pub.attribution = "published", licence, contact_email, tenant.name
        session.add(pub)
        result.append(pub)
    _audit(session, tenant.id, actor, "open_data.publish", {"datasets": datasets, "licence": licence})
    return result


def withdraw(session: Session, tenant: Tenant, dataset: str, actor: str) -> None:
    """Withdraw a published dataset: it leaves the catalogue, its URLs answer 410."""
    pub = publications(session, tenant.id).get(dataset)
    if pub is None or not pub.is_published:
        raise OpenDataError("Dieser Datensatz ist nicht veröffentlicht.")
    pub.state, pub.withdrawn_at = "withdrawn", _now()
    _audit(session, tenant.id, actor, "open_data.withdraw", {"dataset": dataset})


# --- what the public gets -----------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One dataset of one tenant as it is public right now."""

    tenant: Publisher
    publication: PublicationInfo
    rows: list[dict]
    etag: str

    @property
    def dataset(self) -> str:
        return self.publication.dataset

    @property
    def licence(self) -> Licence:
        return LICENCES[self.publication.licence]


def _digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:32]


def build_snapshot(session: Session, tenant: Publisher, pub: Publication, rules: Rules, today: date) -> Snapshot:
    """The rows as they would be public; also notes when they last changed (Last-Modified)."""
    rows = dataset_rows(session, tenant.id, pub.dataset, rules, today)
    digest = _digest(rows)
    if pub.is_published and pub.data_hash != digest:
        pub.data_hash, pub.data_modified_at = digest, _now()
    if pub.published_at is None:  # a preview of a dataset never published
        pub.published_at = pub.data_modified_at = _now()
    return Snapshot(tenant, PublicationInfo.of(pub), rows, digest)


def preview(session: Session, tenant: Tenant, dataset: str, rules: Rules, today: date | None = None) -> Snapshot:
    """Exactly what publishing ``dataset`` would make public (for the tenant admin)."""
    pub = publications(session, tenant.id).get(dataset) or Publication(
        tenant_id=tenant.id, dataset=dataset, licence=DEFAULT_LICENCE, state="draft",
        contact_email=tenant.contact_email or "", attribution=tenant.name)
    return build_snapshot(session, Publisher.of(tenant), pub, rules, today or berlin_today())


def _public_tenant(ags: str) -> Tenant:
    tenant = find_tenant_by_ags(ags)
    if tenant is None or not tenant.is_active:
        raise NotPublished(ags)
    return tenant


def public_snapshot(ags: str, dataset: str, rules: Rules, today: date | None = None) -> Snapshot:
    """A published dataset for anyone. :raise NotPublished: 404. :raise Withdrawn: 410."""
    if dataset not in DATASETS:
        raise NotPublished(dataset)
    tenant = public_tenant(ags)
    with tenant_transaction(tenant.id) as session:
        pub = publications(session, tenant.id).get(dataset)
        if pub is None:
            raise NotPublished(dataset)
        if not pub.is_published:
            raise Withdrawn(dataset)
        return build_snapshot(session, tenant, pub, rules, today or berlin_today())


@dataclass(frozen=True)
class PublishedEntry:
    """One published dataset as the catalogue and the public page list it."""

    tenant: Publisher
    publication: PublicationInfo

    @property
    def dataset(self) -> str:
        return self.publication.dataset


def published_entries(tenant: Publisher) -> list[PublishedEntry]:
    """The tenant's published datasets, read in its own transaction."""
    with tenant_transaction(tenant.id) as session:
        pubs = publications(session, tenant.id).values()
        return [PublishedEntry(tenant, PublicationInfo.of(p))
                for p in sorted(pubs, key=lambda p: list(DATASETS).index(p.dataset)) if p.is_published]


def public_tenant(ags: str) -> Publisher:
    """An active tenant by AGS for the public pages. :raise NotPublished: none such."""
    with platform_transaction():
        return Publisher.of(_public_tenant(ags))


def all_published_entries() -> list[PublishedEntry]:
    """Every published dataset of every active tenant, one tenant transaction each, in AGS order."""
    with platform_transaction():
        tenants = [Publisher.of(t) for t in
                   db.session.scalars(select(Tenant).where(Tenant.is_active).order_by(Tenant.ags))]
    entries = []
    for tenant in tenants:
        entries += published_entries(tenant)
    return entries


def refresh_published(tenant_id: int, rules: Rules, today: date | None = None) -> int:
    """Recompute the content hash of every published dataset (keeps dct:modified true) and, on the way,
    protect and audit the months that changed (kept for the downloads). Returns the count."""
    with platform_transaction():
        tenant = Publisher.of(db.session.get(Tenant, tenant_id))
    with tenant_transaction(tenant_id) as session:
        pubs = [p for p in publications(session, tenant_id).values() if p.is_published]
        for pub in pubs:
            try:
                build_snapshot(session, tenant, pub, rules, today or berlin_today())
            except DisclosureRisk as risk:  # not released; the other tenants' datasets still are
                log.error("Open Data of tenant %s not released, the disclosure audit failed: %s", tenant_id, risk)
                return 0
        return len(pubs)


# --- serialisations -------------------------------------------------------------------


#: What makes a spreadsheet program read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: text starting like a formula gets a leading apostrophe.

    Service names are the tenant's free text and reach the public; ``=HYPERLINK(…)`` must be shown,
    not run. Numbers are left alone (counts and rates are never negative).
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(snapshot: Snapshot) -> bytes:
    """UTF-8, comma-separated, header row with the documented column names; withheld cells are empty,
    text that would start a formula is prefixed with an apostrophe (:func:`spreadsheet_safe`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=column_names(snapshot.dataset), lineterminator="\r\n")
    writer.writeheader()
    for row in snapshot.rows:
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
    return buffer.getvalue().encode("utf-8")


GERMAN_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                 "November", "Dezember")


def to_excel_csv(snapshot: Snapshot) -> bytes:
    """The same table for German Excel, which opens it in columns by a double click: UTF-8 with BOM,
    semicolons, decimal commas, months written as "März 2026"; same columns and order as :func:`to_csv`."""
    def cell(name: str, value):
        if name == "month" and isinstance(value, str) and len(value) == 7:
            return f"{GERMAN_MONTHS[int(value[5:]) - 1]} {value[:4]}"
        if isinstance(value, float):
            return repr(value).replace(".", ",")
        return spreadsheet_safe(value)

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=column_names(snapshot.dataset), delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    for row in snapshot.rows:
        writer.writerow({k: cell(k, v) for k, v in row.items()})
    return buffer.getvalue().encode("utf-8-sig")


def to_json(snapshot: Snapshot, base_url: str) -> bytes:
    spec = DATASETS[snapshot.dataset]
    document = {
        "dataset": spec.key,
        "title": f"{spec.title} – {snapshot.tenant.name}",
        "publisher": {"name": snapshot.tenant.name, "ags": snapshot.tenant.ags, "ars": snapshot.tenant.ars},
        "licence": {"id": snapshot.licence.key, "title": snapshot.licence.title, "url": snapshot.licence.url,
                    "attribution": snapshot.publication.attribution},
        "modified": snapshot.publication.modified.isoformat(),
        "catalogue": f"{base_url}/opendata/{snapshot.tenant.ags}/catalog.ttl",
        "columns": [{"name": c.name, "description": c.description} for c in spec.columns],
        "rows": snapshot.rows,
    }
    return json.dumps(document, ensure_ascii=False, indent=1, default=str).encode("utf-8")
