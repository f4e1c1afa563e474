"""The tenant domain: models, the tenant context, lifecycle and reference data.

Everything that answers "which tenant" lives here; portal and workers ask,
they never decide it themselves.
"""
