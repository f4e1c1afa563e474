"""Reading claims the way identity providers really send them.

A tenant names where its provider puts the role (or groups) and the e-mail address as a *claim
path*, as Grafana's ``role_attribute_path`` does:

* a top-level claim name, also one JMESPath cannot parse (``custom:egov_admin``,
  ``https://example.org/roles``): ``roles``, ``groups``, ``upn``;
* a dotted path into nested objects, also with hyphens (``realm_access.roles``,
  ``resource_access.egov-portal.roles``: Keycloak);
* any JMESPath expression (``resource_access."egov-portal".roles``, ``groups[?starts_with(@, 'eGov')]``),
  https://jmespath.org.

Values are typed as providers type them (:func:`values`): arrays, a single string (ADFS sends one
group as a string), space- or comma-separated strings, booleans (``true``), numbers, objects whose
keys are the roles (Zitadel). Matching is case-insensitive: directories treat group names so.
"""

from __future__ import annotations

import re
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

#: Fields of the token itself, not of the person: not kept as "last claims".
TOKEN_FIELDS = frozenset({"iss", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "auth_time", "sid", "jti",
                          "azp", "acr", "amr", "s_hash", "uti", "rh", "xms_tcdt", "session_state"})
_SEGMENT = re.compile(r"^[^.\s]+$")


def _walk(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for segment in path.split("."):
        if not isinstance(value, dict) or segment not in value:
            return None
        value = value[segment]
    return value


def read(claims: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in ``claims``, or None (see the module docstring for the notation)."""
    if not path:
        return None
    if path in claims:
        return claims[path]
    try:
        found = jmespath.search(path, claims)
    except JMESPathError:
        found = None
    if found is None and "." in path:
        found = _walk(claims, path)
    return found


def is_valid_path(path: str) -> bool:
    """A path :func:`read` understands: JMESPath, or dotted names without blanks."""
    path = (path or "").strip()
    if not path or len(path) > 300:
        return False
    try:
        jmespath.compile(path)
        return True
    except JMESPathError:
        return all(_SEGMENT.match(segment) for segment in path.split("."))


def _text(value: Any) -> str | None:
    """A scalar as providers mean it: ``true``/``false`` for booleans, ``3`` for 3.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value).strip()
    return None


def values(value: Any) -> list[str]:
    """Every value a claim carries, as text.

    A string counts whole and, split at blanks and commas, in parts: ``"egov-viewer egov-admin"``
    (space-separated, OAuth's own style) and ``"Domain Users"`` (a group name with a blank) both
    match. Objects count by their keys.
    """
    if value is None:
        return []
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list | tuple):
        return [v for item in value for v in values(item)]
    text = _text(value)
    if not text:
        return []
    parts = [p for p in re.split(r"[\s,]+", text) if p]
    return [text, *[p for p in parts if p != text]]


def matching(claim_values: list[str], mapping: dict[str, str]) -> list[str]:
    """The mapped roles of the values that appear in ``mapping`` (keys compared case-insensitively)."""
    folded = {key.casefold(): role for key, role in mapping.items()}
    return [folded[v.casefold()] for v in claim_values if v.casefold() in folded]


def group_overage(claims: dict[str, Any], path: str) -> bool:
    """Did the provider leave the groups out because there are too many (Microsoft Entra ID, ADFS)?

    Entra ID sends ``_claim_names: {"groups": "src1"}`` instead of ``groups`` when a user is in
    more than 200 groups (150 in SAML, 6 in the implicit flow, where ``hasgroups`` says so).
    """
    top = path.split(".")[0].strip('"')
    names = claims.get("_claim_names")
    return (isinstance(names, dict) and top in names) or claims.get("hasgroups") in (True, "true")


def storable(claims: dict[str, Any]) -> dict[str, Any]:
    """The person's claims without the token's own fields (what settings changes are simulated on)."""
    return {k: v for k, v in claims.items() if k not in TOKEN_FIELDS}


def is_false(value: Any) -> bool:
    """``email_verified`` and the like: false as JSON, as text ("false", Cognito) or as 0."""
    return value is False or value == 0 or (isinstance(value, str) and value.strip().lower() in ("false", "0", "no"))
