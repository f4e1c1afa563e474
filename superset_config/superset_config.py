"""Superset's configuration for eGovSAD (read by Superset's own process and venv).

Every value that differs between installations comes from the environment;
``tenants/superset/server.py`` sets these variables when it starts Superset
(``make up`` and the test set-up), production sets them in its unit file.
Keys were checked against ``superset/config.py`` of 6.1.0; see
../shared/notes/superset-6.1.md for why each is needed.
"""

import os
import sys
from pathlib import Path

# portal_security lives next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from answers import StoredAnswers, deploy_fingerprint  # noqa: E402
from flask_appbuilder.security.manager import AUTH_OAUTH  # noqa: E402
from portal_security import PortalSecurityManager, guest_token_is_bound, roles_mapping  # noqa: E402
from portal_ui import install as _install_portal_ui  # noqa: E402
from serving import EVENT_LOGGER, language_packs, mutate, static_files  # noqa: E402, F401 - EVENT_LOGGER is a setting
from tenant_boundary import RELATED_FILTERS  # noqa: E402


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"Superset needs the environment variable {name}")
    return value


PORTAL_ORIGIN = _env("EGOV_PORTAL_URL", "http://127.0.0.1:5000").rstrip("/")
# Superset's server talks to the portal's token, key and user-info endpoints here (behind a reverse proxy:
# the portal's internal address); browsers are sent to PORTAL_ORIGIN, which is also the issuer.
PORTAL_BACKCHANNEL = (os.environ.get("EGOV_PORTAL_INTERNAL_URL") or PORTAL_ORIGIN).rstrip("/")

# The way back to the portal from Superset's own pages (chart editor, SQL Lab): its logo leads to the
# signed-in person's start page in the portal (/start). Only these brand tokens change; _mutate_app puts
# them into Superset's own default and dark themes (a THEME_DEFAULT here would replace all its tokens).
LOGO_TOOLTIP = "Zurück zum eGovSAD-Portal"
PORTAL_BRAND = {"brandAppName": "eGovSAD", "brandLogoAlt": "eGovSAD-Portal: Startseite",
                "brandLogoHref": PORTAL_ORIGIN + "/start"}
# Signing out of Superset's own pages leads back to the portal's start page, not to Superset's sign-in page
# (which only offers signing in through the portal again). The portal's own sign-out stays a POST with CSRF.
LOGOUT_REDIRECT_URL = PORTAL_ORIGIN + "/start"
# No inline SQL validation in SQL Lab: Superset's PostgreSQLValidator needs the ecpg binary (libecpg-dev),
# and without it every query got a red error marker ("Unable to execute 'ecpg'", HTTP 422 on each key).
# PostgreSQL reports real errors when the query runs.
SQL_VALIDATORS_BY_ENGINE: dict[str, str] = {}
# Must stay fixed: it encrypts the stored database passwords.
SECRET_KEY = _env("EGOV_SUPERSET_SECRET_KEY")
SQLALCHEMY_DATABASE_URI = _env("EGOV_SUPERSET_META_URL")
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

FEATURE_FLAGS = {
    "EMBEDDED_SUPERSET": True,
    # Off: with it, a dashboard's roles grant its charts' data to whoever holds a role, whatever the
    # charts are; dashboards reach people through their datasets instead (docs/architecture.md).
    "DASHBOARD_RBAC": False,
    "RLS_IN_SQLLAB": True,
    "DASHBOARD_NATIVE_FILTERS": True,
    "DRILL_TO_DETAIL": True,
    # Charts outside the visible part of a dashboard are drawn when scrolled to (Superset's default, stated).
    "DASHBOARD_VIRTUALIZATION": True,
    # Settings → "Info" led editors to a bare JSON "403 Forbidden" (Superset's user page is for its admins);
    # who is signed in is the portal's business.
    "MENU_HIDE_USER_INFO": True,
}

# Embedded dashboards: the portal mints guest tokens itself (HS256, shared secret).
GUEST_ROLE_NAME = "EmbedGuest"
GUEST_TOKEN_JWT_SECRET = _env("EGOV_SUPERSET_GUEST_SECRET")
GUEST_TOKEN_JWT_ALGO = "HS256"
GUEST_TOKEN_JWT_EXP_SECONDS = 300
# Superset's public origin, as the portal mints it (tenants/superset/guest.py, audience()).
GUEST_TOKEN_JWT_AUDIENCE = (os.environ.get("EGOV_SUPERSET_PUBLIC_URL") or _env("EGOV_SUPERSET_URL", "")).rstrip("/")


# Tokens minted through Superset's own API; the portal mints its own, checked by
# PortalSecurityManager.parse_jwt_guest_token with the same rule.
GUEST_TOKEN_VALIDATOR_HOOK = guest_token_is_bound
# The "related" lists (owners, created_by, roles) show only the acting tenant's people and roles.
EXTRA_RELATED_QUERY_FILTERS = RELATED_FILTERS

TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'", PORTAL_ORIGIN],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": PORTAL_ORIGIN.startswith("https://"),
    # frame-ancestors governs framing; X-Frame-Options SAMEORIGIN would block the portal.
    "frame_options": None,
}
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PORTAL_ORIGIN.startswith("https://")
WTF_CSRF_ENABLED = True
ENABLE_PROXY_FIX = os.environ.get("EGOV_SUPERSET_PROXY_FIX", "") == "1"


def _stored_answers(wsgi_app):
    """Embedded guests' cached chart answers and dashboard metadata without Superset's per-request work
    (superset_config/answers.py); EGOV_SUPERSET_STORED_ANSWERS=0 turns it off (to compare, or to profile
    Superset's own path)."""
    return StoredAnswers(wsgi_app, secret=GUEST_TOKEN_JWT_SECRET, audience=GUEST_TOKEN_JWT_AUDIENCE,
                         algorithm=GUEST_TOKEN_JWT_ALGO, redis_url=_REDIS, meta_url=SQLALCHEMY_DATABASE_URI,
                         validator=guest_token_is_bound, guest_role=GUEST_ROLE_NAME,
                         fingerprint=deploy_fingerprint(Path(__file__).resolve().parent),
                         enabled=os.environ.get("EGOV_SUPERSET_STORED_ANSWERS", "1") != "0")


# Front-end files from WhiteNoise (compressed, immutable when hashed) and the language pack, both before
# Flask (superset_config/serving.py); the stored answers outermost, so a hit touches nothing else.
ADDITIONAL_MIDDLEWARE = [static_files, language_packs, _stored_answers]

# Caches in Redis (EGOV_SUPERSET_REDIS_URL: caches; ..._LIMITS_URL: rate limits).
_REDIS = _env("EGOV_SUPERSET_REDIS_URL", "redis://127.0.0.1:6379/1")
_R = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": _REDIS}
CACHE_CONFIG = {**_R, "CACHE_KEY_PREFIX": "ss_cache_", "CACHE_DEFAULT_TIMEOUT": 300}
# Chart results stay until the tenant's data changes: their key holds the dataset's changed_on, which
# tenants/superset/cache.py moves after every load (the week only bounds what nobody asks for again).
DATA_CACHE_CONFIG = {**_R, "CACHE_KEY_PREFIX": "ss_data_", "CACHE_DEFAULT_TIMEOUT": 7 * 24 * 3600}
FILTER_STATE_CACHE_CONFIG = {**_R, "CACHE_KEY_PREFIX": "ss_filter_", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {**_R, "CACHE_KEY_PREFIX": "ss_explore_", "CACHE_DEFAULT_TIMEOUT": 86400}
RATELIMIT_STORAGE_URI = _env("EGOV_SUPERSET_LIMITS_URL", "redis://127.0.0.1:6379/2")
WEBDRIVER_BASEURL = _env("EGOV_SUPERSET_URL", "http://127.0.0.1:8088").rstrip("/") + "/"
THEME_FONT_URL_ALLOWED_DOMAINS: list[str] = []
SQLLAB_TIMEOUT = 30
SQL_MAX_ROW = 10000
BABEL_DEFAULT_LOCALE = "de"


def _mutate_app(app) -> None:
    """FLASK_APP_MUTATOR: corrected German strings, <html lang>, contrast and keyboard stops on the embedded
    page (portal_ui.py); guests' chart requests noted for the warm-up (serving.py); the logo's way back to
    the portal (PORTAL_BRAND)."""
    _install_portal_ui(app)
    mutate(app)
    for key in ("THEME_DEFAULT", "THEME_DARK"):
        if theme := app.config.get(key):
            app.config[key] = {**theme, "token": {**theme.get("token", {}), **PORTAL_BRAND}}


FLASK_APP_MUTATOR = _mutate_app
LANGUAGES = {"de": {"flag": "de", "name": "Deutsch"}, "en": {"flag": "us", "name": "English"}}

# Sign-in: the portal is the OpenID Connect provider. The service account of
# the portal keeps using the API with a password (provider "db").
AUTH_TYPE = AUTH_OAUTH
OAUTH_PROVIDERS = [{
    "name": "portal",
    "icon": "fa-key",
    "token_key": "access_token",
    "remote_app": {
        "client_id": "superset",
        "client_secret": _env("EGOV_SUPERSET_OIDC_SECRET"),
        # The endpoints are named here rather than discovered: the discovery document names the public ones,
        # which Superset's server may not reach (portal/views/oidc.py serves the same paths).
        "issuer": PORTAL_ORIGIN,
        "authorize_url": PORTAL_ORIGIN + "/oauth/authorize",
        "access_token_url": PORTAL_BACKCHANNEL + "/oauth/token",
        "userinfo_endpoint": PORTAL_BACKCHANNEL + "/oauth/userinfo",
        "jwks_uri": PORTAL_BACKCHANNEL + "/oauth/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "client_kwargs": {"scope": "openid email profile", "code_challenge_method": "S256"},
    },
}]
AUTH_USER_REGISTRATION = True
AUTH_USER_REGISTRATION_ROLE = None
AUTH_ROLES_SYNC_AT_LOGIN = True
AUTH_API_LOGIN_ALLOW_MULTIPLE_PROVIDERS = True
AUTH_ROLES_MAPPING = roles_mapping
CUSTOM_SECURITY_MANAGER = PortalSecurityManager

# German number and date formats in every chart (d3-format / d3-time-format locale objects).
D3_FORMAT = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", "\u00a0€"]}
D3_TIME_FORMAT = {
    "dateTime": "%A, der %e. %B %Y, %X", "date": "%d.%m.%Y", "time": "%H:%M:%S",
    "periods": ["AM", "PM"],
    "days": ["Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"],
    "shortDays": ["So", "Mo", "Di", "Mi", "Do", "Fr", "Sa"],
    "months": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
               "November", "Dezember"],
    "shortMonths": ["Jan", "Feb", "Mrz", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"],
}
#: English mode (the portal's ``_l_=en``, Flask-AppBuilder's locale "en"): the figures and dates in English
#: as well, not German numbers under English titles (d3's own en-US locale, the euro in front).
D3_FORMATS_BY_LOCALE = {"en": {
    "d3_format": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["€", ""]},
    "d3_time_format": {
        "dateTime": "%x, %X", "date": "%-m/%-d/%Y", "time": "%-I:%M:%S %p", "periods": ["AM", "PM"],
        "days": ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
        "shortDays": ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
        "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                   "October", "November", "December"],
        "shortMonths": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    },
}}


def COMMON_BOOTSTRAP_OVERRIDES_FUNC(data: dict) -> dict:  # noqa: N802 - Superset's setting name
    """The page's number and date formats by its language (Superset caches the result per user and locale)."""
    return D3_FORMATS_BY_LOCALE.get(data.get("locale"), {})
