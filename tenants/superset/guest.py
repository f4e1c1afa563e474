"""Guest tokens for embedded dashboards, signed by the portal itself.

Superset accepts an HS256 JWT signed with ``GUEST_TOKEN_JWT_SECRET``; the
portal shares that secret, so minting a token costs no round trip to
Superset. Every token names one dashboard and carries the tenant's RLS
clause. The clause is built from the integer tenant id only; the tenant's
database role restricts the rows anyway, the clause is the second layer.

Rules may also name one dataset (Superset applies a rule with ``dataset``
to that dataset only): the comparison dataset gets one that keeps the
tenant's own groups (:func:`benchmark_clause`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from joserfc import jwt
from joserfc.jwk import OctKey

from tenants.benchmark.groups import DISTRICTS, HESSEN, SIZE_CLASSES
from tenants.benchmark.metrics import FAMILIES
from tenants.settings import Settings

AGS = re.compile(r"06[0-9]{3}(?:[0-9]{3})?")


def audience(settings: Settings) -> str:
    """The guest tokens' audience: Superset's public origin (EGOV_SUPERSET_URL), which superset_config.py
    expects as GUEST_TOKEN_JWT_AUDIENCE, so a token is good for this installation's Superset only (not for a
    staging one that happens to share the secret)."""
    return settings.superset_url


LIFETIME_SECONDS = 300  # GUEST_TOKEN_JWT_EXP_SECONDS; the page renews the token before it runs out

#: The group key of the tenant's own values in the comparison dataset (no published group has it).
OWN_VALUES = "own"
#: Every group key the comparison can publish; anything else never reaches a clause (it is raw SQL).
GROUP_KEY = re.compile("|".join([re.escape(HESSEN), r"kreis:\d{5}", r"peer:[0-9a-f]{20}",
                                 *(re.escape(key) for key, *_ in (*SIZE_CLASSES, DISTRICTS))]))


def rls_clause(tenant_id: int) -> str:
    return f"tenant_id = {int(tenant_id)}"


def _listed(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(set(values)))


def benchmark_clause(group_keys: Iterable[str], families: Iterable[str] | None = None) -> str:
    """Rows of the comparison dataset a tenant sees: its own values, and its own groups' figures.

    With ``families``, group figures only of those metric families (the ones the tenant takes part
    in); None leaves the families open. Keys and families are checked against what the comparison
    can produce, so nothing else can reach the SQL.
    """
    keys = list(group_keys)
    wrong = [key for key in keys if not GROUP_KEY.fullmatch(key)]
    if families is not None:
        families = list(families)
        wrong += [family for family in families if family not in FAMILIES]
    if wrong:
        raise ValueError(f"not a comparison group or family: {wrong!r}")
    groups = f"group_key IN ({_listed(keys)})" if keys else "1 = 0"
    if families is not None:
        groups = f"{groups} AND family_code IN ({_listed(families)})" if families else "1 = 0"
    return f"group_key = '{OWN_VALUES}' OR ({groups})"


def mint(settings: Settings, tenant_id: int, ags: str, embedded_uuid: str, user_label: str,
         dataset_rules: Iterable[dict] = (), now: float | None = None) -> str:
    """A signed guest token for one dashboard of the tenant (``tenant_id``, ``ags``).

    ``dataset_rules``: further ``{"dataset": id, "clause": ...}`` rules, ANDed by Superset for that
    dataset. The ``tenant`` claim (the AGS) binds the guest to the tenant's objects in Superset's
    tenant boundary (superset_config/tenant_boundary.py), which refuses a token without it.
    """
    if not AGS.fullmatch(str(ags)):
        raise ValueError(f"not an AGS: {ags!r}")
    issued = int(now if now is not None else time.time())
    claims = {
        "user": {"username": user_label, "first_name": user_label, "last_name": ""},
        "resources": [{"type": "dashboard", "id": str(embedded_uuid)}],
        "rls_rules": [{"clause": rls_clause(tenant_id)},
                      *({"dataset": int(rule["dataset"]), "clause": rule["clause"]} for rule in dataset_rules)],
        "iat": issued,
        "exp": issued + LIFETIME_SECONDS,
        "aud": audience(settings),
        "type": "guest",
        "tenant": str(ags),
    }
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.import_key(settings.superset_guest_secret))
