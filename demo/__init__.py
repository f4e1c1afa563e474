"""Demo seeding of every kind and the development identity provider.

Nothing in the core (``tenants``) imports this package; only the CLI (``egov demo seed``), the
tests and ``python -m demo.dev_idp`` do.
"""
