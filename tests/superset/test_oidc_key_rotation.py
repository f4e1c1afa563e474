"""Rotating the key the portal signs Superset's ID tokens with: publish first, then sign; nobody is signed out."""

from __future__ import annotations

import dataclasses

import requests

from tests.superset.conftest import add_user
from tests.superset.test_self_service import sso_session


def signed_in_to_superset(http: requests.Session, superset: str) -> bool:
    return http.get(superset + "/api/v1/me/", timeout=30).status_code == 200


def test_rotating_the_signing_key_signs_nobody_out(ss_app, ss_live_server, tenants_ab, superset, tmp_path):
    from joserfc.jwk import RSAKey

    a = tenants_ab.a
    first, _ = sso_session(ss_app, ss_live_server, superset, add_user(ss_app, a, "editor", subject="rot-1"))
    assert signed_in_to_superset(first, superset)
    current = ss_app.config["EGOV"]
    old_key = current.oidc_signing_key_file
    new_key = tmp_path / "next-signing-key.pem"
    new_key.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    jwks = ss_live_server.url + "/oauth/jwks"
    kids = lambda: [k["kid"] for k in requests.get(jwks, timeout=10).json()["keys"]]  # noqa: E731
    old_kid = kids()[0]
    try:
        # 1. Publish the next key; the current one still signs.
        ss_app.config["EGOV"] = dataclasses.replace(current, oidc_published_key_files=(str(new_key),))
        new_kid = kids()[1]
        assert kids() == [old_kid, new_kid]
        # 2. Sign with the next key, keep the previous one published.
        ss_app.config["EGOV"] = dataclasses.replace(current, oidc_signing_key_file=str(new_key),
                                                    oidc_published_key_files=(old_key,))
        assert kids() == [new_kid, old_kid]
        second, response = sso_session(ss_app, ss_live_server, superset, add_user(ss_app, a, "editor", subject="rot-2"))
        assert response.status_code == 200 and signed_in_to_superset(second, superset)
        # 3. Retire the previous key: later sign-ins work, and whoever was signed in stays so.
        ss_app.config["EGOV"] = dataclasses.replace(current, oidc_signing_key_file=str(new_key))
        assert kids() == [new_kid]
        third, response = sso_session(ss_app, ss_live_server, superset, add_user(ss_app, a, "editor", subject="rot-3"))
        assert response.status_code == 200 and signed_in_to_superset(third, superset)
        assert signed_in_to_superset(first, superset) and signed_in_to_superset(second, superset)
    finally:
        ss_app.config["EGOV"] = current
