"""The operator command line: ``egov``.

Examples::

    egov db bootstrap            # once, with a PostgreSQL superuser (EGOV_ADMIN_DATABASE_URL)
    egov db upgrade              # migrations, as the schema owner
    egov refdata load            # Hessen's municipalities and districts
    egov tenants create 06534014 --active
    egov tenants list
    egov tenants show 06534014
    egov tenants grant-admin 06534014 it@marburg.de --reason "Ticket 4711"   # break-glass
    egov tenants identity 06534014 [--restore 3 --reason "Ticket 4711"]      # break-glass
    egov operators list | deactivate EMAIL [--reactivate]
    egov backup [--to DIR]       # both databases and the secrets into DIR/egovsad-<time>/
    egov restore DIR             # into fresh databases (docs/operations.md)
    egov secrets rotate          # re-encrypt stored secrets with the newest key
    egov demo seed               # demo tenants and a year of demo data
    egov ingest load 06534014 3 export.csv
    egov ingest health 06534014
    egov worker                  # an RQ worker for all queues (metrics on :9101)
    egov scheduler               # rq cron with ingest_workers/cron.py (metrics on :9102)
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click

from tenants.models import TenantStatus
from tenants.settings import SettingsError, load_settings, settings_of


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(1)


def with_app(func):
    """Run the command inside a portal app context."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from portal import create_app

        with create_app().app_context():
            return func(*args, **kwargs)

    return wrapper


@click.group()
def main() -> None:
    """Operate the eGovernment Service- und Analyse-Dashboard."""
    try:
        load_settings()
    except SettingsError as exc:
        _fail(str(exc))


# -- database ---------------------------------------------------------------

@main.group()
def db() -> None:
    """Roles, database and migrations."""


@db.command("bootstrap")
def db_bootstrap() -> None:
    """Create the database roles and the database (needs a superuser, once)."""
    from tenants.database import bootstrap

    settings = load_settings()
    bootstrap(settings)
    click.echo(f"Database {settings.database_name}: roles {settings.owner_role}, {settings.app_role} ready.")


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option("--wait-for-workers", "drain_seconds", type=float, default=0, show_default=True,
              help="First wait up to this many seconds until no queued job is running (old workers drain; "
                   "docs/operations.md, 'Upgrading'). Gives up without migrating if jobs still run then.")
def db_upgrade(revision: str, drain_seconds: float) -> None:
    """Run migrations up to REVISION (default: head) as the schema owner."""
    from tenants.database import upgrade

    settings = load_settings()
    if drain_seconds:
        from tenants.jobs import redis_connection, wait_until_drained

        running = wait_until_drained(redis_connection(settings.redis_url), settings.queues, drain_seconds)
        if running:
            _fail(f"Jobs still running after {drain_seconds:g} s, nothing migrated: {', '.join(running)}")
    upgrade(settings, revision)
    click.echo(f"Database {settings.database_name} is at revision {revision}.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (``base`` removes everything)."""
    from tenants.database import downgrade

    downgrade(load_settings(), revision)


@main.command("backup")
@click.option("--to", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Parent directory of the backup (default: <EGOV_VAR_DIR>/backups).")
def backup_cmd(directory: Path | None) -> None:
    """Dump the platform database, Superset's metadata and the secrets into a new directory."""
    from tenants.backup import BackupError, backup

    settings = load_settings()
    try:
        target = backup(settings, directory or settings.var_dir / "backups")
    except BackupError as exc:
        _fail(str(exc))
    click.echo(f"Backup written to {target} (it holds secrets.env: keep it as safe as the secrets themselves).")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore_cmd(source: Path) -> None:
    """Restore a backup into fresh databases (load the backup's secrets.env into the environment first)."""
    from tenants.backup import BackupError, restore

    try:
        report = restore(load_settings(), source)
    except BackupError as exc:
        _fail(str(exc))
    for name, tables in report.counts.items():
        click.echo(f"{name}: {len(tables)} tables, {sum(tables.values())} rows restored")
    click.echo(f"Schema revision {report.revision}. Next: `egov db upgrade` (a newer release), start the "
               "services, `egov superset provision` (recreates the tenants' database login roles).")


# -- reference data ---------------------------------------------------------

@main.group()
def refdata() -> None:
    """Official reference data."""


@refdata.command("load")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A newer Destatis excerpt in the same format (default: the shipped one).")
def refdata_load(path: Path | None) -> None:
    """Load or refresh Hessen's municipalities and districts (as the schema owner)."""
    from sqlalchemy import create_engine

    from tenants.refdata import DEFAULT_FILE, RefDataError, load_regions

    settings = load_settings()
    engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    try:
        with engine.begin() as conn:
            count = load_regions(conn, path or DEFAULT_FILE)
    except RefDataError as exc:
        _fail(f"Nothing loaded: {exc}")
    finally:
        engine.dispose()
    click.echo(f"{count} municipalities and districts loaded.")


# -- tenants ----------------------------------------------------------------

@main.group()
def tenants() -> None:
    """Create, list and show tenants by AGS."""


def _tenant_dict(tenant) -> dict:
    region = tenant.region
    return {
        "ags": tenant.ags,
        "ars": tenant.ars,
        "name": tenant.name,
        "kind": region.kind,
        "district": f"{region.kreis_name} ({region.kreis_ags})",
        "population": region.population,
        "status": tenant.status,
        "created_at": tenant.created_at.isoformat(timespec="seconds"),
        "activated_at": tenant.activated_at.isoformat(timespec="seconds") if tenant.activated_at else None,
    }


@tenants.command("create")
@click.argument("ags")
@click.option("--active", is_flag=True, help="Activate at once instead of leaving it pending review.")
@click.option("--contact-name")
@click.option("--contact-email")
@with_app
def tenants_create(ags: str, active: bool, contact_name: str | None, contact_email: str | None) -> None:
    """Register the municipality or district with this AGS as a tenant."""
    from tenants.context import platform_transaction
    from tenants.registry import TenantError, create_tenant

    try:
        with platform_transaction():
            tenant = create_tenant(ags, status=TenantStatus.ACTIVE if active else TenantStatus.PENDING,
                                   contact_name=contact_name, contact_email=contact_email)
            click.echo(f"Created tenant {tenant.name} (AGS {tenant.ags}, ARS {tenant.ars}), status {tenant.status}.")
    except TenantError as exc:
        _fail(str(exc))


@tenants.command("list")
@click.option("--status", type=click.Choice([s.value for s in TenantStatus]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_app
def tenants_list(status: str | None, as_json: bool) -> None:
    """List tenants, optionally by status."""
    from tenants.context import platform_transaction
    from tenants.registry import list_tenants

    with platform_transaction():
        rows = [_tenant_dict(t) for t in list_tenants(status)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['ags']:<9} {row['status']:<10} {row['name']}")
    click.echo(f"{len(rows)} tenant(s).")


@tenants.command("show")
@click.argument("ags")
@with_app
def tenants_show(ags: str) -> None:
    """Show one tenant by AGS."""
    from tenants.context import platform_transaction
    from tenants.registry import TenantError, get_tenant_by_ags

    try:
        with platform_transaction():
            row = _tenant_dict(get_tenant_by_ags(ags))
    except TenantError as exc:
        _fail(str(exc))
    for key, value in row.items():
        click.echo(f"{key:<13} {value}")


@tenants.command("grant-admin")
@click.argument("ags")
@click.argument("email")
@click.option("--reason", required=True, help="Why (ticket number); recorded in the tenant's and the platform's log.")
@with_app
def tenants_grant_admin(ags: str, email: str, reason: str) -> None:
    """Break-glass: make EMAIL an administrator of the tenant (fixed role; at first sign-in if new)."""
    from tenants.break_glass import grant_admin
    from tenants.context import platform_transaction
    from tenants.identity import IdentityError
    from tenants.registry import TenantError, get_tenant_by_ags

    try:
        with platform_transaction():
            tenant = get_tenant_by_ags(ags)
            user = grant_admin(tenant, email, actor="cli", reason=reason)
            click.echo(f"{user.email} is an administrator of {tenant.name} now"
                       f"{'' if user.subject else ' (from the first sign-in on)'}.")
    except (TenantError, IdentityError) as exc:
        _fail(str(exc))


@tenants.command("identity")
@click.argument("ags")
@click.option("--restore", "version", type=int, help="Break-glass: bring back this saved version of the settings.")
@click.option("--reason", help="Why (needed with --restore); recorded in the tenant's and the platform's log.")
@with_app
def tenants_identity(ags: str, version: int | None, reason: str | None) -> None:
    """Show the tenant's identity-provider settings and every saved version; restore one with --restore."""
    from tenants.break_glass import restore_identity, versions
    from tenants.context import platform_transaction
    from tenants.db import db
    from tenants.identity import IdentityError, find_identity_provider, format_role_mapping
    from tenants.registry import TenantError, get_tenant_by_ags

    try:
        with platform_transaction():
            tenant = get_tenant_by_ags(ags)
            if version is not None:
                provider = restore_identity(tenant, version, actor="cli", reason=reason or "")
                click.echo(f"Version {version} restored as version {provider.config_version}.")
            provider = find_identity_provider(db.session, tenant.id)
            current = provider.config_version if provider else None
            for saved in versions(tenant.id):
                mark = "*" if saved.version == current else " "
                mapping = format_role_mapping(saved.role_mapping).replace("\n", "; ")
                click.echo(f"{mark} v{saved.version:<4} {saved.saved_at:%Y-%m-%d %H:%M} {saved.saved_by}"
                           f"{f' ({saved.note})' if saved.note else ''}\n"
                           f"         {saved.issuer or saved.discovery_url} client {saved.client_id}, "
                           f"e-mail claim {saved.email_claim}, scopes {saved.scopes}, "
                           f"domains {', '.join(saved.domains)}\n"
                           f"         role claim {saved.role_claim}: {mapping or '-'}"
                           f"{f'; default {saved.default_role}' if saved.default_role else ''}")
    except (TenantError, IdentityError) as exc:
        _fail(str(exc))


# -- demo -------------------------------------------------------------------

@main.group()
def demo() -> None:
    """Demo content for a local installation."""


@demo.command("seed")
@click.option("--no-data", is_flag=True, help="Only the tenants, without a year of usage data.")
@with_app
def demo_seed(no_data: bool) -> None:
    """Create the demo tenants and load a year of demo data through the ingest paths (idempotent)."""
    import time

    from demo.data import seed_tenant
    from demo.tenants import seed_demo_identity, seed_demo_tenants
    from tenants.context import platform_transaction

    settings = load_settings()
    with platform_transaction():
        tenants = [(t.id, t.name) for t in seed_demo_tenants()]
        configured = seed_demo_identity(settings)
    # Names such as "Marburg, Universitätsstadt" hold commas themselves.
    click.echo(f"Demo tenants ready: {'; '.join(name for _, name in tenants)}")
    if configured:
        click.echo(f"{configured} demo tenant(s) now sign in through the development IdP at {settings.dev_idp_url}.")
    if no_data:
        return
    for tenant_id, name in tenants:
        started = time.perf_counter()
        loaded = seed_tenant(tenant_id)
        if loaded.get("skipped"):
            click.echo(f"  {name}: demo data present")
        else:
            click.echo(f"  {name}: {loaded['events'] + loaded['maengelmelder']:,} events, {loaded['civento']:,} "
                       f"civento rows, {loaded['feedback']} ratings, {loaded['web_days']} days of web visits "
                       f"({time.perf_counter() - started:.1f} s)")
    from demo.opendata import publish_demo_datasets

    click.echo(f"Open Data published by: {', '.join(publish_demo_datasets()) or 'nobody new'}")
    from demo.comparison import seed_comparison_demo

    started = time.perf_counter()
    outcome = seed_comparison_demo(generate=seed_tenant)
    click.echo(f"Comparisons: {outcome['created']} further municipalities with a year of data, "
               f"{len(outcome['opted_in'])} opted in ({time.perf_counter() - started:.1f} s)")
    from ingest_workers.benchmark import refresh_benchmarks

    # The nightly job would compute the comparison figures only at 04:00; the demo wants them now.
    started = time.perf_counter()
    refresh_benchmarks()
    click.echo(f"Comparison figures computed ({time.perf_counter() - started:.1f} s)")


# -- operators --------------------------------------------------------------

@main.group()
def operators() -> None:
    """Platform operators (created at their first sign-in through the platform IdP)."""


@operators.command("list")
@with_app
def operators_list() -> None:
    from sqlalchemy import select

    from tenants.context import platform_transaction
    from tenants.models import Operator

    with platform_transaction() as session:
        for op in session.scalars(select(Operator).order_by(Operator.email)):
            last = op.last_login_at.isoformat(timespec="minutes") if op.last_login_at else "never"
            click.echo(f"{op.email:<40} {'active' if op.active else 'deactivated':<12} last sign-in {last}")


@operators.command("deactivate")
@click.argument("email")
@click.option("--reactivate", is_flag=True, help="Let the operator in again.")
@with_app
def operators_deactivate(email: str, reactivate: bool) -> None:
    """Stop (or allow again) an operator's sign-in; their open sessions end with the next request."""
    from sqlalchemy import select

    from tenants import audit
    from tenants.context import platform_transaction
    from tenants.models import Operator

    with platform_transaction() as session:
        operator = session.scalar(select(Operator).where(Operator.email == email.lower()))
        if operator is None:
            _fail(f"No operator with the e-mail address {email}.")
        operator.active = reactivate
        audit.record("operator.reactivated" if reactivate else "operator.deactivated", actor="cli",
                     target=operator.email)
    click.echo(f"{email}: {'active' if reactivate else 'deactivated'}.")


# -- secrets ----------------------------------------------------------------

@main.group()
def secrets() -> None:
    """Secrets at rest."""


@secrets.command("rotate")
@with_app
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the first key of EGOV_ENCRYPTION_KEYS (see docs/operations.md)."""
    from tenants.crypto import SecretError
    from tenants.rotation import rotate_stored_secrets

    try:
        count = rotate_stored_secrets(load_settings())
    except SecretError as exc:
        _fail(f"{exc} Put the old key behind the new one in EGOV_ENCRYPTION_KEYS and run again.")
    click.echo(f"{count} secret(s) re-encrypted with the newest key. The older keys can now be removed.")


# -- ingest -----------------------------------------------------------------

@main.group()
def ingest() -> None:
    """Load files and look at ingest health."""


@ingest.command("load")
@click.argument("ags")
@click.argument("source_id", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app
def ingest_load(ags: str, source_id: int, path: Path) -> None:
    """Load the file PATH into data source SOURCE_ID of the tenant AGS, now, in this process."""
    from tenants.context import platform_transaction
    from tenants.ingest.runs import error_text, load_file
    from tenants.registry import TenantError, get_tenant_by_ags

    try:
        with platform_transaction():
            tenant_id = get_tenant_by_ags(ags).id
    except TenantError as exc:
        _fail(str(exc))
    run, outcome = load_file(tenant_id, source_id, path, requested_by="cli")
    click.echo(f"Run {run.id}: {run.status}; {run.rows_accepted} accepted, {run.rows_rejected} rejected"
               + (f"; {error_text(run.error, run.error_args)}" if run.error else ""))


@ingest.command("health")
@click.argument("ags")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_app
def ingest_health_command(ags: str, as_json: bool) -> None:
    """Ingest health of one tenant: last success and error per source, unfinished runs."""
    from tenants.context import platform_transaction
    from tenants.ingest.health import ingest_health
    from tenants.registry import TenantError, get_tenant_by_ags

    try:
        with platform_transaction():
            tenant_id = get_tenant_by_ags(ags).id
    except TenantError as exc:
        _fail(str(exc))
    report = ingest_health(tenant_id)
    if as_json:
        click.echo(json.dumps(report, default=str, ensure_ascii=False, indent=2))
        return
    for source in report["sources"]:
        click.echo(f"{source['name']:<28} {source['status']:<8} last success {source['last_success'] or '-'}"
                   + (f"  last error {source['last_failure']}: {source['last_error']}" if source["last_error"] else ""))
    click.echo(f"{len(report['unfinished_runs'])} unfinished run(s) (failed, queued for a retry or running).")


# -- processes --------------------------------------------------------------

@main.command("probe")
@click.argument("kind", type=click.Choice(["worker", "scheduler", "database"]))
def probe(kind: str) -> None:
    """Health check of a container: exit 0 when its worker or scheduler is registered in Redis, or (database)
    when PostgreSQL answers as the application role."""
    settings = load_settings()
    if kind == "database":
        import psycopg

        try:
            psycopg.connect(settings.database_url, connect_timeout=5).close()
        except psycopg.Error as exc:
            _fail(f"database: {exc}")
        return
    from tenants.jobs import redis_connection, registered_here

    if not registered_here(redis_connection(settings.redis_url), kind):
        _fail(f"no {kind} of this host is registered in Redis")


@main.command()
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.argument("queues", nargs=-1)
def worker(burst: bool, queues: tuple[str, ...]) -> None:
    """Run an RQ worker (all queues by default, highest priority first); metrics on EGOV_METRICS_PORT (9101)."""
    from ingest_workers.worker import run_worker

    app = _process_app("worker", metrics=not burst)  # nobody scrapes a worker that ends when the queue is empty
    run_worker(app, list(queues) or list(settings_of(app).queues), burst=burst)


def _process_app(role: str, metrics: bool = True):
    """The app of a background process (``worker``, ``scheduler``, ``watchdog``), with its logs and metrics server."""
    from portal import create_app
    from tenants.logs import configure_logging
    from tenants.metrics import serve

    app = create_app()
    configure_logging(settings_of(app), role)
    if metrics:
        serve(settings_of(app), role)
    return app


@main.command()
def scheduler() -> None:
    """Run the rq cron scheduler of ``ingest_workers/cron.py``; metrics (queues, last success per data
    source) on EGOV_METRICS_PORT (9102)."""
    from prometheus_client import REGISTRY
    from rq.cron import CronScheduler

    from tenants.jobs import redis_connection
    from tenants.metrics import StateCollector

    app = _process_app("scheduler")
    REGISTRY.register(StateCollector(app))
    cron = CronScheduler(connection=redis_connection(settings_of(app).redis_url))
    cron.load_config_from_file("ingest_workers.cron")
    cron.start()


@main.command()
@click.option("--once", is_flag=True, help="One round, then exit.")
def watchdog(once: bool) -> None:
    """End tenants' Superset sessions over the time limit; keep Superset's users in line with the portal."""
    from ingest_workers.watchdog import run

    app = _process_app("watchdog")
    settings = settings_of(app)
    with app.app_context():
        run(settings.tenant_query_limit_seconds, settings.watchdog_interval_seconds, rounds=1 if once else None)


from portal.superset_cli import superset  # noqa: E402

main.add_command(superset)
