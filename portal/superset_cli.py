"""``egov superset …``: install and run Superset, provision tenants, roll out dashboard templates."""

from __future__ import annotations

import os
import sys
import time

import click

from tenants.models import TenantStatus
from tenants.settings import load_settings


@click.group("superset")
def superset() -> None:
    """Apache Superset: installation, tenants' objects, dashboard templates."""


@superset.command("install")
@click.option("--venv-only", is_flag=True, help="Only the virtual environment (the tests initialise their own).")
def install_cmd(venv_only: bool) -> None:
    """Install Superset into .venv-superset and initialise its metadata database (idempotent)."""
    from tenants.superset import server

    settings = load_settings()
    log_path = settings.var_dir / "log" / "superset-install.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        if not server.installed():
            click.echo(f"Installing Superset 6.1.0 into {server.VENV} (about a minute; log {log_path}) ...")
        server.install(log=log)
        if venv_only:
            return
        click.echo("Initialising Superset's metadata database ...")
        server.initialise(settings, log=log)
    click.echo(f"Superset ready in {server.VENV}; metadata in database {settings.superset_meta_database}.")


@superset.command("serve")
@click.option("--port", type=int, default=None, help="Default: the port of EGOV_SUPERSET_URL.")
@click.option("--workers", type=int, default=2)
def serve_cmd(port: int | None, workers: int) -> None:
    """Run Superset under gunicorn in the foreground (scripts/run.sh uses this). Never --preload."""
    from urllib.parse import urlsplit

    from tenants.superset import server

    settings = load_settings()
    port = port or urlsplit(settings.superset_url).port or 8088
    os.execve(server._bin("gunicorn"), [
        "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", "4", "--timeout", "120",
        "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "superset.app:create_app()"],
        server.environment(settings, url=f"http://127.0.0.1:{port}"))


def _wait_for_superset(url: str, seconds: int = 120) -> None:
    from tenants.superset.server import answers

    deadline = time.monotonic() + seconds
    while not answers(url):
        if time.monotonic() > deadline:
            click.secho(f"Superset does not answer at {url}.", fg="red", err=True)
            sys.exit(1)
        time.sleep(1)


def _tenants(ags_list: tuple[str, ...]):
    from tenants.context import platform_transaction
    from tenants.registry import get_tenant_by_ags, list_tenants

    with platform_transaction() as session:
        found = [get_tenant_by_ags(ags) for ags in ags_list] if ags_list else list_tenants(status=TenantStatus.ACTIVE)
        for tenant in found:
            session.expunge(tenant)
        return found


@superset.command("provision")
@click.argument("ags_list", nargs=-1)
def provision_cmd(ags_list: tuple[str, ...]) -> None:
    """Run the provisioning job now for the given tenants (default: every active tenant)."""
    from portal import create_app
    from tenants.provisioning import provision_tenant

    app = create_app()
    with app.app_context():
        _wait_for_superset(app.config["EGOV"].superset_url)
        for tenant in _tenants(ags_list):
            started = time.perf_counter()
            state = provision_tenant(tenant.id)
            click.echo(f"{tenant.ags} {tenant.name}: {state['status']} ({time.perf_counter() - started:.1f} s)")


@superset.command("rollout")
@click.option("--check", is_flag=True, help="Only report which tenants differ; change nothing.")
def rollout_cmd(check: bool) -> None:
    """Bring every active tenant's dashboards to the current templates; report the tenants that differ."""
    from portal import create_app
    from tenants.superset.rollout import rollout

    app = create_app()
    with app.app_context():
        if not check:
            _wait_for_superset(app.config["EGOV"].superset_url)
        reports = rollout(_tenants(()), apply=not check)
    differing = [r for r in reports if r.differences]
    for report in differing:
        state = "differs" if check else ("FAILED: " + report.error if report.error else "updated")
        click.echo(f"{report.ags} {report.name}: {state}")
        for line in report.differences:
            click.echo(f"    {line}")
    click.echo(f"{len(differing)} of {len(reports)} tenant(s) differ from the current templates.")
    if any(r.error for r in reports) or (check and differing):
        sys.exit(1)
