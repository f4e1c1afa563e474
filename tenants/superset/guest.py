"""Guest tokens for embedded dashboards, signed by the portal itself.

Superset accepts an HS256 JWT signed with ``GUEST_TOKEN_JWT_SECRET``; the
portal shares that secret, so minting a token costs no round trip to
Superset. Every token names one dashboard and carries the tenant's RLS
clause. The clause is built from the integer tenant id only; the tenant's
database role restricts the rows anyway, the clause is the second layer.
"""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import OctKey

from portal.settings import Settings

AUDIENCE = "egovsad-portal"  # GUEST_TOKEN_JWT_AUDIENCE in superset_config.py
LIFETIME_SECONDS = 300  # GUEST_TOKEN_JWT_EXP_SECONDS; the page renews the token before it runs out


def rls_clause(tenant_id: int) -> str:
    return f"tenant_id = {int(tenant_id)}"


def mint(settings: Settings, tenant_id: int, embedded_uuid: str, user_label: str,
         now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "user": {"username": user_label, "first_name": user_label, "last_name": ""},
        "resources": [{"type": "dashboard", "id": str(embedded_uuid)}],
        "rls_rules": [{"clause": rls_clause(tenant_id)}],
        "iat": issued,
        "exp": issued + LIFETIME_SECONDS,
        "aud": AUDIENCE,
        "type": "guest",
    }
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.import_key(settings.superset_guest_secret))
