"""Operator commands: secrets rotate, operators deactivate (demo seed: tests/test_demo_seed.py)."""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import text

from portal.cli import main
from tenants.context import tenant_transaction


def test_secrets_rotate_command(app, sso_tenants, monkeypatch, settings):
    from tenants.crypto import decrypt

    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("EGOV_ENCRYPTION_KEYS", ",".join((new_key, *settings.encryption_keys)))
    result = CliRunner().invoke(main, ["secrets", "rotate"], catch_exceptions=False)
    # two client secrets and their saved versions (portal.identity_provider_versions)
    assert result.exit_code == 0 and "4 secret(s) re-encrypted" in result.output
    with app.app_context(), tenant_transaction(sso_tenants.a.id) as session:
        stored = session.execute(text("SELECT client_secret_encrypted FROM portal.identity_providers")).scalar()
    assert decrypt(dataclasses.replace(settings, encryption_keys=(new_key,)), stored) == f"secret-{sso_tenants.a.id}"


def test_deactivated_operator_loses_access(sso_app, sso_client, clean_db):
    from tests.auth.conftest import login

    assert login(sso_client, "/operator/login", "operator@egovsad.example").status_code == 302
    runner = CliRunner()
    assert "operator@egovsad.example" in runner.invoke(main, ["operators", "list"]).output
    result = runner.invoke(main, ["operators", "deactivate", "operator@egovsad.example"], catch_exceptions=False)
    assert result.exit_code == 0
    assert sso_client.get("/operator/").status_code == 302
    assert login(sso_client, "/operator/login", "operator@egovsad.example").status_code == 403
