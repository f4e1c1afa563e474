"""An ID token that says ``email_verified: false`` signs nobody in (docs/architecture.md, "What is refused").

A provider that has not verified an address vouches for nothing: whoever typed ``admin@marburg.de``
into a self-service account there must not become Marburg's admin. A provider of its own (the
same real OpenID Connect server as the other sign-in tests) issues the unverified claims.
"""

from __future__ import annotations

from sqlalchemy import text

from demo.dev_idp import build_app, person
from tenants.context import platform_transaction, tenant_transaction
from tests.auth.conftest import _provider, configure_provider, login


def _unverified(email: str, roles=()):
    someone = person(email, roles)
    someone.claims["email_verified"] = False
    return someone


def _users(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return dict(session.execute(text("SELECT email, role FROM portal.users")).all())


def test_an_unverified_e_mail_address_is_refused(serve, sso_app, sso_client, two_tenants):
    provider = _provider(serve(build_app([_unverified("admin@marburg.de", ["egovsad-admin"]),
                                          person("viewer@marburg.de", ["egovsad-viewer"])])))
    a = two_tenants.a
    configure_provider(sso_app, a.id, provider, ["marburg.de"])
    refused = login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'id="refusal-reason"' in body
    assert _users(sso_app, a.id) == {}
    assert sso_client.get(f"/t/{a.ags}/").status_code == 302  # not signed in
    # The same provider's verified people are admitted: the refusal is about the claim.
    assert login(sso_client, f"/t/{a.ags}/login", "viewer@marburg.de").status_code == 302
    assert _users(sso_app, a.id) == {"viewer@marburg.de": "viewer"}


def test_an_unverified_contact_person_does_not_become_the_first_admin(serve, sso_app, sso_client, two_tenants):
    from tenants.models import Tenant

    provider = _provider(serve(build_app([_unverified("kontakt@marburg.de")])))
    a = two_tenants.a
    configure_provider(sso_app, a.id, provider, ["marburg.de"])
    with sso_app.app_context(), platform_transaction() as session:
        session.get(Tenant, a.id).contact_email = "kontakt@marburg.de"
    assert login(sso_client, f"/t/{a.ags}/login", "kontakt@marburg.de").status_code == 403
    assert _users(sso_app, a.id) == {}
