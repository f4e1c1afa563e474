"""ORM models of the control plane (schema ``portal``).

The tables are created by migrations/versions; these classes only map them.
Tenant-owned models carry ``tenant_id`` as the first primary-key column and
are protected by row-level security in the database, so a query outside a
tenant context returns nothing rather than everything.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenants.db import db

PORTAL = {"schema": "portal"}



class TenantStatus(enum.StrEnum):
    """Where a tenant is in its life (tenants/lifecycle.py moves it). Stored as the text value; only ``active``
    signs in, receives data and is provisioned in Superset."""

    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    OFFBOARDED = "offboarded"
    REJECTED = "rejected"


class Role(enum.StrEnum):
    """A member of staff's role, lowest first: each role may do what the ones below it may."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """1 for viewer up to 3 for admin."""
        return list(Role).index(self) + 1

    def at_least(self, other: str) -> bool:
        """Whether this role may do what ``other`` (a role or its text) may."""
        return self.rank >= Role(other).rank


TENANT_STATUSES = tuple(TenantStatus)
USER_ROLES = tuple(Role)
#: role text -> rank, for ``max(..., key=ROLE_RANK.__getitem__)`` and tables of roles.
ROLE_RANK = {role: role.rank for role in Role}


class Region(db.Model):
    """A Hessian municipality or district from the official register."""

    __tablename__ = "regions"
    __table_args__ = PORTAL

    ags: Mapped[str] = mapped_column(String(8), primary_key=True)
    ars: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    kreis_ags: Mapped[str] = mapped_column(String(5))
    kreis_name: Mapped[str] = mapped_column(Text)
    population: Mapped[int] = mapped_column(Integer)
    postal_code: Mapped[str | None] = mapped_column(String(5))
    longitude: Mapped[float | None]
    latitude: Mapped[float | None]
    loaded_at: Mapped[datetime] = mapped_column(server_default=func.now())

    @property
    def is_district(self) -> bool:
        return self.kind == "landkreis"


class Tenant(db.Model):
    __tablename__ = "tenants"
    __table_args__ = PORTAL

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    ags: Mapped[str] = mapped_column(String(8), ForeignKey("portal.regions.ags"), unique=True)
    ars: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default=TenantStatus.PENDING.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    contact_name: Mapped[str | None] = mapped_column(Text)
    contact_email: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    activated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    region: Mapped[Region] = relationship(lazy="joined")

    @hybrid_property
    def is_active(self) -> bool:
        """Active tenants sign in, receive data and see their dashboards; also usable in queries
        (``select(Tenant).where(Tenant.is_active)``)."""
        return self.status == TenantStatus.ACTIVE


class TenantDomain(db.Model):
    __tablename__ = "tenant_domains"
    __table_args__ = PORTAL

    domain: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"))


class Operator(db.Model):
    __tablename__ = "operators"
    __table_args__ = PORTAL

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    subject: Mapped[str] = mapped_column(Text, unique=True)
    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[datetime | None]


class AuditColumns:
    """What every audit entry says: when, who, what, on what, details, from which address (tenants/audit.py).

    A mixin's columns come after the class's own, so both tables keep their column order (the migrations made
    them so; tests/test_migrations.py compares)."""

    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(INET)


class PlatformAuditEvent(AuditColumns, db.Model):
    __tablename__ = "platform_audit_log"
    __table_args__ = PORTAL

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)


class User(db.Model):
    """A member of a tenant's staff, created on first sign-in through the tenant's IdP."""

    __tablename__ = "users"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    #: The provider's subject; None for an address an operator made admin before its first sign-in.
    subject: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(Text, default="viewer")
    #: A tenant admin set the role in the portal; sign-ins keep it.
    role_pinned: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[datetime | None]
    #: The claims of the last sign-in (without the token's own fields): settings changes are simulated on them.
    last_claims: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: "<issuer> <client id>" the subject belongs to (subjects of another provider or client differ).
    bound_to: Mapped[str | None] = mapped_column(Text)


class IdentityProvider(db.Model):
    __tablename__ = "identity_providers"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"), primary_key=True)
    discovery_url: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(Text)
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text, default="openid email profile")
    #: Where the role or groups are in the claims: a name, a dotted path or a JMESPath expression.
    role_claim: Mapped[str] = mapped_column(Text, default="roles")
    #: Where the e-mail address (or user name in the tenant's domains) is, same notation.
    email_claim: Mapped[str] = mapped_column(Text, default="email")
    role_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    config_version: Mapped[int] = mapped_column(Integer, default=1)
    #: The issuer seen by the connection test when the settings were saved.
    issuer: Mapped[str | None] = mapped_column(Text)
    #: Role for users whose claims map to none; None refuses them.
    default_role: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    @property
    def binding(self) -> str:
        """Whose subjects the tenant's users carry: ``<issuer> <client id>``."""
        return f"{self.issuer} {self.client_id}"


class IdentityProviderVersion(db.Model):
    """A saved version of a tenant's identity-provider settings (operators restore one in an emergency)."""

    __tablename__ = "identity_provider_versions"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    saved_at: Mapped[datetime] = mapped_column(server_default=func.now())
    saved_by: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    discovery_url: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(Text)
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text)
    role_claim: Mapped[str] = mapped_column(Text)
    email_claim: Mapped[str] = mapped_column(Text)
    role_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    default_role: Mapped[str | None] = mapped_column(Text)
    issuer: Mapped[str | None] = mapped_column(Text)
    domains: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)


class DataSource(db.Model):
    __tablename__ = "data_sources"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"), primary_key=True)
    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    mapping_profile: Mapped[str] = mapped_column(Text, default="canonical")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str | None] = mapped_column(Text)
    token_created_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IngestRun(db.Model):
    __tablename__ = "ingest_runs"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    data_source_id: Mapped[int] = mapped_column(Integer)
    batch_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="queued")
    job_id: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(Text)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    #: an English message id with ``%(name)s`` placeholders; its values in ``error_args``
    error: Mapped[str | None] = mapped_column(Text)
    error_args: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: how often a worker started loading it (tenants/ingest/runs.py)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    payload_format: Mapped[str] = mapped_column(Text, default="csv")
    spool_path: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(Text)
    day_from: Mapped[date | None]
    day_to: Mapped[date | None]


class IngestError(db.Model):
    """A rejected row of a run: number, column, reason (never the value)."""

    __tablename__ = "ingest_errors"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    column_name: Mapped[str] = mapped_column(Text)
    #: an English message id; its ``%(name)s`` values in ``args``
    reason: Mapped[str] = mapped_column(Text)
    args: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class AuditEvent(AuditColumns, db.Model):
    """A security-relevant action on one tenant: who, what, when, from where."""

    __tablename__ = "audit_log"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)


class TenantSetting(db.Model):
    __tablename__ = "tenant_settings"
    __table_args__ = PORTAL

    tenant_id: Mapped[int] = mapped_column(ForeignKey("portal.tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
