"""What a tenant admin types as e-mail domains (tenants/identity.py ``parse_domains``).

Domains may be separated by commas, spaces or lines and written with a leading ``@``; a lone ``@``
is no domain and is passed over, not taken as the end of the list. Added for a surviving mutant of
``make mutation`` (docs/mutation.md).
"""

from __future__ import annotations

import pytest

from tenants.identity import IdentityError, parse_domains


def test_domains_in_any_separation_with_or_without_at_sign():
    assert parse_domains("@Marburg.de, @ marburg-biedenkopf.de\nstadt-marburg.de;marburg.de") == [
        "marburg.de", "marburg-biedenkopf.de", "stadt-marburg.de"]


@pytest.mark.parametrize("text", ["", " @ ", "marburg", "marburg.de, nicht domain"])
def test_no_domain_or_a_wrong_one_is_refused(text):
    with pytest.raises(IdentityError):
        parse_domains(text)


@pytest.mark.parametrize("url", ["ftp://idp.marburg.de/.well-known/openid-configuration",
                                 "https:///.well-known/openid-configuration"])
def test_a_provider_address_needs_https_and_a_host(settings, url):
    import dataclasses

    from tenants.identity import check_provider

    production_like = dataclasses.replace(settings, oidc_allow_http=False, outbound_allow_private_addresses=True)
    with pytest.raises(IdentityError, match="https://"):
        check_provider(url, production_like)
