"""Foundation: control plane (schema portal) and tenant data (schema analytics).

Every table holding a tenant's data has ``tenant_id`` leading each key and
row-level security ENABLEd and FORCEd (see migrations/rls.py). Tables without
RLS are control plane and say why in their comment.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from migrations.rls import app_role, grant_app, protect_tenant_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PORTAL_TENANT_TABLES = [
    "portal.users",
    "portal.identity_providers",
    "portal.data_sources",
    "portal.ingest_runs",
    "portal.audit_log",
    "portal.tenant_settings",
]

ANALYTICS_TABLES = [
    "analytics.services",
    "analytics.process_events",
    "analytics.daily_aggregates",
    "analytics.rollup_service_daily",
    "analytics.rollup_step_daily",
    "analytics.rollup_payment_daily",
    "analytics.rollup_auth_daily",
    "analytics.rollup_channel_daily",
    "analytics.feedback",
    "analytics.web_visits_daily",
    "analytics.web_pages_daily",
]

CONTROL_PLANE = """
CREATE TABLE portal.regions (
    ags varchar(8) PRIMARY KEY CHECK (ags ~ '^06[0-9]{3}([0-9]{3})?$'),
    ars char(12) NOT NULL UNIQUE CHECK (ars ~ '^[0-9]{12}$'),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('kreisfreie_stadt', 'stadt', 'gemeinde', 'landkreis')),
    kreis_ags varchar(5) NOT NULL,
    kreis_name text NOT NULL,
    population integer NOT NULL CHECK (population >= 0),
    postal_code varchar(5),
    longitude double precision,
    latitude double precision,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE portal.regions IS
    'Reference data (Destatis GV-ISys): every Hessian municipality and district. Public, no RLS.';

CREATE TABLE portal.tenants (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ags varchar(8) NOT NULL UNIQUE REFERENCES portal.regions (ags),
    ars char(12) NOT NULL UNIQUE,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'suspended', 'offboarded', 'rejected')),
    status_reason text,
    contact_name text,
    contact_email text,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE portal.tenants IS
    'Control plane: the tenant registry itself. Every request must read it before a tenant is known, so no RLS.';

CREATE TABLE portal.tenant_domains (
    domain text PRIMARY KEY CHECK (domain = lower(domain) AND domain ~ '^[a-z0-9.-]+\\.[a-z]{2,}$'),
    tenant_id integer NOT NULL REFERENCES portal.tenants (id) ON DELETE CASCADE
);
CREATE INDEX ix_tenant_domains_tenant_id ON portal.tenant_domains (tenant_id);
COMMENT ON TABLE portal.tenant_domains IS
    'Control plane: e-mail domain -> tenant, read by login discovery before a tenant is known. No RLS; '
    'holds no tenant data beyond the public domain name.';

CREATE TABLE portal.operators (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject text NOT NULL UNIQUE,
    email text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
COMMENT ON TABLE portal.operators IS 'Control plane: platform operators, who belong to no tenant.';

CREATE TABLE portal.platform_audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    target text,
    details jsonb NOT NULL DEFAULT '{}',
    remote_addr inet
);
COMMENT ON TABLE portal.platform_audit_log IS
    'Control plane: security-relevant actions outside any tenant (operator sign-in, sign-ups). '
    'Actions on a tenant go to that tenant''s portal.audit_log.';
"""

PORTAL_TENANT = """
CREATE TABLE portal.users (
    tenant_id integer NOT NULL REFERENCES portal.tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    subject text NOT NULL,
    email text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    role text NOT NULL DEFAULT 'viewer' CHECK (role IN ('viewer', 'editor', 'admin')),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, subject)
);

CREATE TABLE portal.identity_providers (
    tenant_id integer PRIMARY KEY REFERENCES portal.tenants (id),
    discovery_url text NOT NULL,
    client_id text NOT NULL,
    client_secret_encrypted text NOT NULL,
    scopes text NOT NULL DEFAULT 'openid email profile',
    role_claim text NOT NULL DEFAULT 'roles',
    role_mapping jsonb NOT NULL DEFAULT '{}',
    config_version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE portal.data_sources (
    tenant_id integer NOT NULL REFERENCES portal.tenants (id),
    id integer GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('upload', 'push', 'matomo', 'feedback')),
    mapping_profile text NOT NULL DEFAULT 'canonical',
    config jsonb NOT NULL DEFAULT '{}',
    secret_encrypted text,
    token_hash text,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE portal.ingest_runs (
    tenant_id integer NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    data_source_id integer NOT NULL,
    batch_key text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'duplicate')),
    job_id text,
    filename text,
    rows_total integer NOT NULL DEFAULT 0,
    rows_accepted integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, data_source_id, batch_key),
    FOREIGN KEY (tenant_id, data_source_id) REFERENCES portal.data_sources (tenant_id, id)
);

CREATE TABLE portal.audit_log (
    tenant_id integer NOT NULL REFERENCES portal.tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    target text,
    details jsonb NOT NULL DEFAULT '{}',
    remote_addr inet,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_audit_log_tenant_occurred ON portal.audit_log (tenant_id, occurred_at DESC);

CREATE TABLE portal.tenant_settings (
    tenant_id integer NOT NULL REFERENCES portal.tenants (id),
    key text NOT NULL,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
"""

# Vocabularies are enforced here and documented in docs/data-model.md. The empty
# string means "not applicable" in keys, because NULL cannot be part of a
# primary key.
ANALYTICS = """
CREATE TABLE analytics.services (
    tenant_id integer NOT NULL,
    service_key varchar(64) NOT NULL CHECK (service_key ~ '^(99[0-9]{12}|local:[a-z0-9][a-z0-9_.-]{0,57})$'),
    leika_key char(14) CHECK (leika_key ~ '^99[0-9]{12}$'),
    name text NOT NULL,
    ozg_topic text,
    source_system text,
    online_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, service_key)
);

CREATE TABLE analytics.process_events (
    tenant_id integer NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id uuid NOT NULL,
    data_source_id integer NOT NULL,
    service_key varchar(64) NOT NULL,
    session_hash char(64),
    event_type text NOT NULL
        CHECK (event_type IN ('started', 'step_reached', 'submitted', 'aborted', 'payment', 'authentication')),
    step_no smallint,
    step_name text,
    channel text CHECK (channel IN ('web', 'ios', 'android')),
    payment_method text,
    payment_provider text,
    auth_method text,
    trust_level text CHECK (trust_level IN ('none', 'basis', 'substanziell', 'hoch')),
    PRIMARY KEY (tenant_id, event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX ix_process_events_tenant_time ON analytics.process_events (tenant_id, occurred_at);
COMMENT ON TABLE analytics.process_events IS
    'Partitioned by month; partitions come from analytics.ensure_event_partition() and inherit RLS there.';

CREATE TABLE analytics.daily_aggregates (
    tenant_id integer NOT NULL,
    data_source_id integer NOT NULL,
    day date NOT NULL,
    service_key varchar(64) NOT NULL,
    measure text NOT NULL
        CHECK (measure IN ('started', 'step_reached', 'submitted', 'aborted', 'payment', 'authentication')),
    step_no smallint NOT NULL DEFAULT 0,
    channel text NOT NULL DEFAULT '',
    payment_method text NOT NULL DEFAULT '',
    auth_method text NOT NULL DEFAULT '',
    trust_level text NOT NULL DEFAULT '',
    value bigint NOT NULL CHECK (value >= 0),
    PRIMARY KEY (tenant_id, data_source_id, day, service_key, measure, step_no, channel,
                 payment_method, auth_method, trust_level)
);

CREATE TABLE analytics.rollup_service_daily (
    tenant_id integer NOT NULL,
    service_key varchar(64) NOT NULL,
    day date NOT NULL,
    started bigint NOT NULL DEFAULT 0,
    submitted bigint NOT NULL DEFAULT 0,
    aborted bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, service_key, day)
);

CREATE TABLE analytics.rollup_step_daily (
    tenant_id integer NOT NULL,
    service_key varchar(64) NOT NULL,
    day date NOT NULL,
    step_no smallint NOT NULL,
    step_name text NOT NULL DEFAULT '',
    reached bigint NOT NULL DEFAULT 0,
    aborted bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, service_key, day, step_no)
);

CREATE TABLE analytics.rollup_payment_daily (
    tenant_id integer NOT NULL,
    service_key varchar(64) NOT NULL,
    day date NOT NULL,
    payment_method text NOT NULL,
    payment_provider text NOT NULL DEFAULT '',
    payments bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, service_key, day, payment_method, payment_provider)
);

CREATE TABLE analytics.rollup_auth_daily (
    tenant_id integer NOT NULL,
    service_key varchar(64) NOT NULL,
    day date NOT NULL,
    auth_method text NOT NULL,
    trust_level text NOT NULL DEFAULT '',
    authentications bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, service_key, day, auth_method, trust_level)
);

CREATE TABLE analytics.rollup_channel_daily (
    tenant_id integer NOT NULL,
    service_key varchar(64) NOT NULL,
    day date NOT NULL,
    channel text NOT NULL CHECK (channel IN ('web', 'ios', 'android')),
    started bigint NOT NULL DEFAULT 0,
    submitted bigint NOT NULL DEFAULT 0,
    aborted bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, service_key, day, channel)
);

CREATE TABLE analytics.feedback (
    tenant_id integer NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    service_key varchar(64) NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment text CHECK (length(comment) <= 2000),
    data_source_id integer,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_feedback_tenant_received ON analytics.feedback (tenant_id, received_at);

CREATE TABLE analytics.web_visits_daily (
    tenant_id integer NOT NULL,
    data_source_id integer NOT NULL,
    day date NOT NULL,
    visits bigint NOT NULL DEFAULT 0,
    unique_visitors bigint,
    actions bigint NOT NULL DEFAULT 0,
    bounce_rate numeric(5, 2),
    avg_time_on_site integer,
    PRIMARY KEY (tenant_id, data_source_id, day)
);

CREATE TABLE analytics.web_pages_daily (
    tenant_id integer NOT NULL,
    data_source_id integer NOT NULL,
    day date NOT NULL,
    page_url text NOT NULL,
    service_key varchar(64),
    hits bigint NOT NULL DEFAULT 0,
    visits bigint NOT NULL DEFAULT 0,
    bounce_rate numeric(5, 2),
    avg_time_on_page integer,
    PRIMARY KEY (tenant_id, data_source_id, day, page_url)
);

-- Views run with the caller's rights, so the caller's RLS applies (PG15+).
CREATE VIEW analytics.service_usage_monthly WITH (security_invoker = true) AS
SELECT tenant_id,
       service_key,
       date_trunc('month', day)::date AS month,
       sum(started) AS started,
       sum(submitted) AS submitted,
       sum(aborted) AS aborted
FROM analytics.rollup_service_daily
GROUP BY tenant_id, service_key, date_trunc('month', day)::date;
"""

# Partitions are created on demand by portal and workers, which may not create
# tables. The function runs as the owner, takes only a date, builds the
# partition name from it and gives the partition the same RLS as its parent:
# a partition queried directly must not be an open door.
PARTITION_FUNCTION = """
CREATE FUNCTION analytics.ensure_event_partition(month_in date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, analytics AS $$
DECLARE
    first_day date := date_trunc('month', month_in)::date;
    part text := format('process_events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    IF to_regclass(format('analytics.%I', part)) IS NULL THEN
        EXECUTE format('CREATE TABLE analytics.%I PARTITION OF analytics.process_events '
                       'FOR VALUES FROM (%L) TO (%L)', part, first_day, (first_day + interval '1 month')::date);
        EXECUTE format('ALTER TABLE analytics.%I ENABLE ROW LEVEL SECURITY', part);
        EXECUTE format('ALTER TABLE analytics.%I FORCE ROW LEVEL SECURITY', part);
        EXECUTE format('CREATE POLICY tenant_isolation ON analytics.%I '
                       'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer) '
                       'WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer)',
                       part);
    END IF;
    RETURN part;
END $$;
REVOKE ALL ON FUNCTION analytics.ensure_event_partition(date) FROM PUBLIC;
"""


def upgrade() -> None:
    app = app_role()
    op.execute("CREATE SCHEMA portal")
    op.execute("CREATE SCHEMA analytics")
    op.execute(CONTROL_PLANE)
    op.execute(PORTAL_TENANT)
    op.execute(ANALYTICS)
    op.execute(PARTITION_FUNCTION)
    for table in PORTAL_TENANT_TABLES + ANALYTICS_TABLES:
        protect_tenant_table(table)

    op.execute(f"GRANT USAGE ON SCHEMA portal, analytics TO {app}")
    # /healthz reports the schema version.
    op.execute(f"GRANT SELECT ON public.alembic_version TO {app}")
    grant_app("portal.regions", "SELECT")
    grant_app("portal.tenants", "SELECT, INSERT, UPDATE")
    grant_app("portal.tenant_domains")
    grant_app("portal.operators", "SELECT, INSERT, UPDATE")
    grant_app("portal.platform_audit_log", "SELECT, INSERT")
    for table in PORTAL_TENANT_TABLES + ANALYTICS_TABLES:
        grant_app(table)
    grant_app("analytics.service_usage_monthly", "SELECT")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA portal, analytics TO {app}")
    op.execute(f"GRANT EXECUTE ON FUNCTION analytics.ensure_event_partition(date) TO {app}")


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
    op.execute("DROP SCHEMA portal CASCADE")
