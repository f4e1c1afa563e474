"""HTTP security headers for every response.

The Content-Security-Policy allows nothing from other origins: all scripts,
styles and fonts are the portal's own static files (KERN UX comes from npm,
not from a CDN). Later parts widen ``frame-src`` for the embedded Superset
origin only.
"""

from __future__ import annotations

from flask import current_app, g

from tenants.settings import get_settings

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "frame-ancestors": "'self'",
    "form-action": "'self'",
    "base-uri": "'self'",
    "object-src": "'none'",
}


def content_security_policy() -> str:
    policy = dict(CSP)
    policy.update(current_app.config.get("CSP_EXTRA", {}))
    # The dashboards page sets g.csp_frame_src to Superset's origin; no other page may frame anything.
    if g.get("csp_frame_src"):
        policy["frame-src"] = f"{policy['frame-src']} {g.csp_frame_src}"
    return "; ".join(f"{k} {v}" for k, v in policy.items())


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    # The embedded dashboards check the Referer against allowed domains, so
    # send the origin (never the full URL) to other origins.
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if get_settings().secure_cookies:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response
