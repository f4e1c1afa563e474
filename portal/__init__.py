"""The portal: a Flask app built by :func:`create_app`."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from tenants import errors
from tenants.settings import Settings, load_settings


def create_app(test_config: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the portal.

    :param test_config: Flask config values that override the settings (tests).
    :param settings: settings to use instead of reading the environment.
    """
    settings = settings or load_settings()
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(
        EGOV=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.sqlalchemy_url(),
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "pool_size": settings.db_pool_size,
            # Same-transaction semantics as the tenant hook expects.
            "connect_args": {"application_name": "egov-portal"},
        },
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="egov_session",
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE="Europe/Berlin",
        LANGUAGES=("de", "en"),
        RATELIMIT_STORAGE_URI=settings.redis_url,
        RATELIMIT_HEADERS_ENABLED=True,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
    )
    if test_config:
        app.config.update(test_config)

    if settings.proxy_count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    _init_extensions(app)
    from portal import inputs, observability, static_files

    observability.init_app(app)
    static_files.init_app(app)

    inputs.init_app(app)  # before the blueprints: their rules read the id converter
    from portal.error_pages import init_app as init_error_pages
    from portal.error_pages import not_found

    init_error_pages(app)  # before the blueprints: the API's handlers for unrouted URLs take precedence
    _register_blueprints(app)
    # A tenant's object that is missing or another tenant's: 404, for every view (tenants/errors.py).
    app.register_error_handler(errors.NotFound, not_found)
    _register_provisioning_steps()

    from portal.security import add_security_headers

    app.after_request(add_security_headers)
    return app


def _select_locale() -> str:
    from flask import current_app, has_request_context, session

    if not has_request_context():  # a worker or the CLI (e.g. an outbound error message in a job)
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    wanted = request.args.get("lang")
    languages = current_app.config["LANGUAGES"]
    if wanted in languages:
        session["lang"] = wanted
    # German unless the user chose otherwise: the browser's language is not
    # asked, because staff share machines and screenshots travel in German.
    if session.get("lang") in languages:
        return session["lang"]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _init_extensions(app: Flask) -> None:
    from portal.extensions import babel, csrf, limiter, login_manager
    from tenants.db import db

    db.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from flask_babel import get_locale

    app.jinja_env.globals["get_locale"] = get_locale
    from portal import audit_pages, navigation

    navigation.init_app(app)
    audit_pages.init_app(app)

    login_manager.login_view = "auth.login"
    login_manager.blueprint_login_views = {"tenant_home": "tenant_auth.login", "tenant_admin": "tenant_auth.login",
                                           "operator": "auth.operator_login"}
    login_manager.login_message = None

    from portal import sessions, sso, tenancy

    # Sessions first: an expired or revoked session must be gone before tenancy reads the identity.
    sessions.init_app(app)
    sso.init_app(app)
    tenancy.init_app(app)


def _register_provisioning_steps() -> None:
    """Steps of the provisioning job; jobs run inside this app, so they are known there too."""
    from tenants.superset import access, provision

    provision.register()
    # Who may act in Superset follows the portal's users and tenant statuses (after each commit).
    access.watch()


def _register_blueprints(app: Flask) -> None:
    from portal import oidc
    from portal.views import (
        api,
        auth,
        benchmark,
        dashboards,
        feedback,
        health,
        ingest,
        main,
        opendata,
        opendata_admin,
        operator,
        signup,
        tenant,
    )
    from portal.views import oidc as oidc_views

    app.register_blueprint(main.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(opendata.bp)
    app.register_blueprint(opendata_admin.bp)
    app.register_blueprint(opendata_admin.operator_bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(auth.tenant_bp)
    app.register_blueprint(tenant.home_bp)
    app.register_blueprint(tenant.admin_bp)
    app.register_blueprint(operator.bp)
    app.register_blueprint(signup.bp)
    app.register_blueprint(dashboards.bp)
    app.register_blueprint(oidc_views.bp)
    oidc.init_app(app)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(ingest.ops)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.public_bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(benchmark.bp)
    app.register_blueprint(benchmark.operator_bp)
