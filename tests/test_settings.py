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


def test_production_reads_secrets_from_files_and_the_environment_wins(tmp_path):
    """Containers mount secrets as files (docker/compose.yaml); a variable given directly still wins."""
    files = {}
    for name, value in [("SECRET_KEY", "from-file"), ("DATABASE_URL", "postgresql://a:pw@db/x"),
                        ("MIGRATION_DATABASE_URL", "postgresql://o:pw@db/x"), ("ENCRYPTION_KEYS", "k1,k2"),
                        *[(f"SUPERSET_{n}", "s") for n in ("SECRET_KEY", "GUEST_SECRET", "ADMIN_PASSWORD",
                                                           "OIDC_SECRET", "META_PASSWORD")]]:
        path = tmp_path / name.lower()
        path.write_text(value + "\n")  # the line end a shell's echo leaves is not part of the secret
        files[f"EGOV_{name}_FILE"] = str(path)
    settings = load_settings({"EGOV_ENV": "production", **files})
    assert settings.secret_key == "from-file" and settings.encryption_keys == ("k1", "k2")
    assert settings.database_url == "postgresql://a:pw@db/x"
    assert load_settings({"EGOV_ENV": "production", **files, "EGOV_SECRET_KEY": "direct"}).secret_key == "direct"


def test_a_secret_file_that_cannot_be_read_stops_the_start_naming_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="EGOV_SECRET_KEY_FILE"):
        load_settings({"EGOV_VAR_DIR": str(tmp_path), "EGOV_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_internal_urls_default_to_the_public_ones(tmp_path):
    plain = load_settings({"EGOV_VAR_DIR": str(tmp_path), "EGOV_SUPERSET_URL": "https://dashboards.egov.test"})
    assert plain.superset_api_url == "https://dashboards.egov.test"
    assert plain.portal_backchannel_url == plain.portal_url
    behind = load_settings({"EGOV_VAR_DIR": str(tmp_path), "EGOV_SUPERSET_URL": "https://dashboards.egov.test",
                            "EGOV_SUPERSET_INTERNAL_URL": "http://superset:8088/",
                            "EGOV_PORTAL_INTERNAL_URL": "http://portal:8000"})
    assert behind.superset_api_url == "http://superset:8088" and behind.superset_url == "https://dashboards.egov.test"
    assert behind.portal_backchannel_url == "http://portal:8000"


def _in_processes(target, count: int = 6) -> list:
    """``target()`` in ``count`` forked processes started together; their answers."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with context.Pool(count) as pool:
        return pool.starmap(target, [()] * count)


def _settings_secret_key(var_dir: str) -> str:
    return load_settings({"EGOV_VAR_DIR": var_dir}).secret_key


def _signing_kid(var_dir: str) -> str:
    from portal import create_app
    from portal.oidc import signing_key

    app = create_app(settings=load_settings({"EGOV_VAR_DIR": var_dir, "EGOV_ENV": "development"}))
    with app.app_context():
        return signing_key().thumbprint()


def test_processes_starting_together_generate_one_set_of_secrets(tmp_path):
    """`make up` starts the portal's workers, the worker and Superset side by side on a fresh checkout: each
    generates what is missing on first use. They must agree on one secret key and one OIDC signing key; a
    second key written over the first signed an ID token Superset then refused ("No key for kid"), so the
    clerk's first "Eigene Auswertungen erstellen" ended on Superset's sign-in page."""
    from functools import partial

    keys = _in_processes(partial(_settings_secret_key, str(tmp_path)))
    assert len(set(keys)) == 1 and keys[0] == _settings_secret_key(str(tmp_path))
    kids = _in_processes(partial(_signing_kid, str(tmp_path)))
    assert len(set(kids)) == 1 and kids[0] == _signing_kid(str(tmp_path))
