"""The development identity provider: a real OpenID Connect server on loopback.

It is ``oidc-provider-mock`` (PyPI) with the demo's people predefined: for
every demo tenant a viewer, an editor and an admin (``viewer@marburg.de`` …)
and one platform operator (``operator@egovsad.example``). Its login page lists
them as buttons; any other subject typed in signs in with just an e-mail
claim equal to the subject (useful for a newly signed-up municipality, whose
contact person becomes its first admin). Started by ``make up`` on
127.0.0.1:9400; the tests start their own in a thread.

    python -m demo.dev_idp [--port 9400] [--host 127.0.0.1]

Development only: no passwords, in-memory keys and tokens.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from demo.tenants import DEMO_DOMAINS, GODONU_MEMBERS

ROLE_VALUES = {"viewer": "egovsad-viewer", "editor": "egovsad-editor", "admin": "egovsad-admin"}
#: The role mapping the demo tenants use (claim ``roles``).
DEMO_ROLE_MAPPING = {value: role for role, value in ROLE_VALUES.items()}
OPERATOR_EMAIL = "operator@egovsad.example"
OPERATOR_ROLE_VALUE = "egovsad-operator"
TEMPLATES = Path(__file__).with_name("dev_idp_templates")


def person(email: str, roles: Iterable[str] = (), name: str | None = None):
    from oidc_provider_mock import User

    claims = {"email": email, "email_verified": True, "name": name or email.split("@")[0].title()}
    if roles:
        claims["roles"] = list(roles)
    return User(sub=email, claims=claims)


def demo_people() -> list:
    people = [person(OPERATOR_EMAIL, [OPERATOR_ROLE_VALUE], "Platform Operator")]
    for ags in GODONU_MEMBERS:
        domain = DEMO_DOMAINS[ags]
        for role, value in ROLE_VALUES.items():
            people.append(person(f"{role}@{domain}", [value], f"{role.title()} {GODONU_MEMBERS[ags]}"))
    return people


def build_app(people: Iterable = (), *, token_max_age: timedelta = timedelta(hours=1)):
    """The provider as a WSGI app; nonce is required, as the portal always sends one."""
    import jinja2
    import oidc_provider_mock

    app = oidc_provider_mock.app(require_nonce=True, user_claims=list(people), access_token_max_age=token_max_age)
    # Our _base.html first (no CDN), the package's own pages behind it.
    app.jinja_loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES)), app.jinja_loader])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="eGovSAD development identity provider")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    from werkzeug.serving import run_simple

    print(f"Development identity provider on http://{args.host}:{args.port}", flush=True)
    run_simple(args.host, args.port, build_app(demo_people()), threaded=True)


if __name__ == "__main__":
    main()
