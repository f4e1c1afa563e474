"""``egov superset …``: install and run Superset, provision tenants, roll out dashboard templates."""

from __future__ import annotations

import os
import sys
import time

import click

from tenants.models import TenantStatus
from tenants.settings import get_settings, load_settings


@click.group("superset")
def superset() -> None:
    """Apache Superset: installation, tenants' objects, dashboard templates."""


@superset.command("install")
@click.option("--venv-only", is_flag=True, help="Only the virtual environment (the tests initialise their own).")
def install_cmd(venv_only: bool) -> None:
    """Install Superset into .venv-superset and initialise its metadata database (idempotent)."""
    import contextlib

    from tenants.superset import server

    settings = load_settings()
    log_path = settings.var_dir / "log" / "superset-install.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # In production (containers) the output belongs on stdout, where the runtime keeps the logs.
    with (contextlib.nullcontext(sys.stdout) if settings.is_production else open(log_path, "a")) as log:
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
@click.option("--workers", type=int, default=None, help="Default: one per core, at least two.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 in a container, where the proxy reaches it).")
def serve_cmd(port: int | None, workers: int | None, host: str) -> None:
    """Run Superset under gunicorn in the foreground (scripts/run.sh uses this). Never --preload."""
    from urllib.parse import urlsplit

    from tenants.superset import server

    settings = load_settings()
    port = port or urlsplit(settings.superset_url).port or 8088
    command = server.gunicorn_command(port, workers, host)
    os.execve(command[0], command, server.environment(settings, url=f"http://127.0.0.1:{port}"))


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
@click.option("--parallel", type=int, default=4, show_default=True,
              help="Tenants provisioned side by side (Superset's answers, not its CPU, are what they wait for).")
def provision_cmd(ags_list: tuple[str, ...], parallel: int) -> None:
    """Run the provisioning job now for the given tenants (default: every active tenant)."""
    from concurrent.futures import ThreadPoolExecutor

    from portal import create_app
    from tenants.provisioning import provision_tenant
    from tenants.superset.provision import client
    from tenants.superset.roles import ensure_base_roles

    app = create_app()
    begun = time.perf_counter()
    with app.app_context():
        _wait_for_superset(get_settings().superset_api_url)
        found = _tenants(ags_list)
        ensure_base_roles(client())  # shared by all; once, before the tenants run side by side

    def one(tenant) -> tuple[str, bool]:
        started = time.perf_counter()
        with app.app_context():
            try:
                status = provision_tenant(tenant.id)["status"]
            except Exception as exc:  # noqa: BLE001 - reported; the other tenants go on
                status = f"failed: {type(exc).__name__}: {exc}"
        return f"{tenant.ags} {tenant.name}: {status} ({time.perf_counter() - started:.1f} s)", status == "succeeded"

    # The first tenant alone: Superset creates shared permission rows ("datasource_access", …) with the first
    # dataset it ever stores, and side by side on a new Superset several imports raced to insert them (500).
    results = [_echoed(one(t)) for t in found[:1]]
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        results += list(pool.map(lambda t: _echoed(one(t)), found[1:]))
    # Superset answers 422 now and then when two tenants create their objects at the same moment (its shared
    # permission rows); provisioning is idempotent, so those tenants are done again one at a time.
    again = [tenant for tenant, (_, ok) in zip(found, results, strict=True) if not ok]
    if again and parallel > 1:
        click.echo(f"Again, one at a time: {len(again)} tenant(s).")
        results = [r for r in results if r[1]] + [_echoed(one(t)) for t in again]
    click.echo(f"{len(found)} tenant(s) in {time.perf_counter() - begun:.1f} s.")
    if not all(ok for _, ok in results):
        sys.exit(1)


def _echoed(result: tuple[str, bool]) -> tuple[str, bool]:
    click.echo(result[0])
    return result


@superset.command("rollout")
@click.option("--check", is_flag=True, help="Only report which tenants differ; change nothing.")
def rollout_cmd(check: bool) -> None:
    """Bring every active tenant's dashboards to the current templates; report the tenants that differ."""
    from portal import create_app
    from tenants.superset.rollout import rollout

    app = create_app()
    with app.app_context():
        if not check:
            _wait_for_superset(get_settings().superset_api_url)
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
