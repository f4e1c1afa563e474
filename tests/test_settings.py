"""One settings module: documented defaults, fail fast in production, generated dev secrets."""

import stat

import pytest

from tenants.settings import SettingsError, load_settings


def test_production_fails_fast_naming_every_missing_secret(tmp_path):
    with pytest.raises(SettingsError) as err:
        load_settings({"EGOV_ENV": "production", "EGOV_VAR_DIR": str(tmp_path), "EGOV_SECRET_KEY": "s"})
    message = str(err.value)
    assert "EGOV_DATABASE_URL" in message and "EGOV_ENCRYPTION_KEYS" in message
    assert "EGOV_SECRET_KEY" not in message
    assert not (tmp_path / "secrets.json").exists()


def test_production_with_everything_given():
    settings = load_settings({
        "EGOV_ENV": "production", "EGOV_SECRET_KEY": "k", "EGOV_DATABASE_URL": "postgresql://a@db/x",
        "EGOV_MIGRATION_DATABASE_URL": "postgresql://o@db/x", "EGOV_ENCRYPTION_KEYS": "k1,k2",
        **{f"EGOV_SUPERSET_{name}": "s" for name in ("SECRET_KEY", "GUEST_SECRET", "ADMIN_PASSWORD", "OIDC_SECRET",
                                                     "META_PASSWORD")},
    })
    assert settings.is_production and settings.secure_cookies
    assert settings.encryption_keys == ("k1", "k2")
    assert settings.sqlalchemy_url() == "postgresql+psycopg://a@db/x"


def test_development_generates_secrets_once_and_keeps_them_private(tmp_path):
    first = load_settings({"EGOV_VAR_DIR": str(tmp_path)})
    second = load_settings({"EGOV_VAR_DIR": str(tmp_path)})
    assert first.secret_key and first.secret_key == second.secret_key
    assert first.app_password == second.app_password and first.app_password != first.owner_password
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert f"egov_app:{first.app_password}@" in first.database_url


def test_test_mode_uses_roles_of_its_own_database(tmp_path):
    """Roles are cluster-wide and bootstrap resets their passwords: a test run beside `make up`
    (or another checkout's tests) must not touch the roles the running platform signs in with."""
    test = load_settings({"EGOV_VAR_DIR": str(tmp_path), "EGOV_ENV": "test", "EGOV_DATABASE_NAME": "x_test"})
    dev = load_settings({"EGOV_VAR_DIR": str(tmp_path)})
    assert (test.owner_role, test.app_role, test.benchmark_role) == ("x_test_owner", "x_test_app", "x_test_benchmark")
    assert {test.owner_role, test.app_role, test.benchmark_role}.isdisjoint(
        {dev.owner_role, dev.app_role, dev.benchmark_role})
    assert "x_test_app:" in test.database_url


def test_unknown_mode_is_refused():
    with pytest.raises(SettingsError, match="staging"):
        load_settings({"EGOV_ENV": "staging"})
