"""The operator command line: ``egov``.

Examples::

    egov db bootstrap            # once, with a PostgreSQL superuser (EGOV_ADMIN_DATABASE_URL)
    egov db upgrade              # migrations, as the schema owner
    egov refdata load            # Hessen's municipalities and districts
    egov tenants create 06534014 --active
    egov tenants list
    egov tenants show 06534014
    egov demo seed
    egov worker                  # an RQ worker for all queues
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click

from portal.settings import SettingsError, load_settings


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
def db_upgrade(revision: str) -> None:
    """Run migrations up to REVISION (default: head) as the schema owner."""
    from tenants.database import upgrade

    upgrade(load_settings(), revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (``base`` removes everything)."""
    from tenants.database import downgrade

    downgrade(load_settings(), revision)


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
    from tenants.context import tenant_transaction
    from tenants.registry import TenantError, create_tenant

    try:
        with tenant_transaction(None):
            tenant = create_tenant(ags, status="active" if active else "pending",
                                   contact_name=contact_name, contact_email=contact_email)
            click.echo(f"Created tenant {tenant.name} (AGS {tenant.ags}, ARS {tenant.ars}), status {tenant.status}.")
    except TenantError as exc:
        _fail(str(exc))


@tenants.command("list")
@click.option("--status", type=click.Choice(["pending", "active", "suspended", "offboarded", "rejected"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_app
def tenants_list(status: str | None, as_json: bool) -> None:
    """List tenants, optionally by status."""
    from tenants.context import tenant_transaction
    from tenants.registry import list_tenants

    with tenant_transaction(None):
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
    from tenants.context import tenant_transaction
    from tenants.registry import TenantError, get_tenant_by_ags

    try:
        with tenant_transaction(None):
            row = _tenant_dict(get_tenant_by_ags(ags))
    except TenantError as exc:
        _fail(str(exc))
    for key, value in row.items():
        click.echo(f"{key:<13} {value}")


# -- demo -------------------------------------------------------------------

@main.group()
def demo() -> None:
    """Demo content for a local installation."""


@demo.command("seed")
@with_app
def demo_seed() -> None:
    """Create the demo tenants (idempotent)."""
    from tenants.context import tenant_transaction
    from tenants.demo import seed_demo_tenants

    with tenant_transaction(None):
        names = [t.name for t in seed_demo_tenants()]
    click.echo(f"Demo tenants ready: {', '.join(names)}")
    from tenants.opendata.demo import publish_demo_datasets

    click.echo(f"Open Data published by: {', '.join(publish_demo_datasets()) or 'nobody new'}")
    from tenants.benchmark.demo import seed_comparison_demo

    outcome = seed_comparison_demo()
    click.echo(f"Comparisons: {outcome['created']} further municipalities, {len(outcome['opted_in'])} opted in")


# -- processes --------------------------------------------------------------

@main.command()
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.argument("queues", nargs=-1)
def worker(burst: bool, queues: tuple[str, ...]) -> None:
    """Run an RQ worker (all queues by default, highest priority first)."""
    from ingest_workers.worker import run_worker
    from portal import create_app

    app = create_app()
    run_worker(app, list(queues) or list(app.config["EGOV"].queues), burst=burst)
