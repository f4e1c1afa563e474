"""Citizens' feedback from the embeddable widget: rating 1–5 and an optional comment.

Defences, in order: the tenant's public key names an active feedback source; the browser's
``Origin`` must be one the tenant allowed; a form token signed by the portal must be between
3 seconds and 2 hours old and is accepted once (bots post instantly or replay); a hidden
honeypot field must stay empty; comments with links are refused; the endpoint is rate limited
per address and per key (see the view). Comments are scrubbed of e-mail addresses, phone
numbers and IBANs before they are stored.
"""

from __future__ import annotations

import re
import time
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, text

from tenants.canonical import SERVICE_KEY_PATTERN
from tenants.ingest.privacy import scrub
from tenants.models import DataSource

MIN_SECONDS = 3
MAX_SECONDS = 2 * 3600
MAX_COMMENT = 1000
LINK = re.compile(r"https?://|www\.", re.IGNORECASE)


class FeedbackRejected(ValueError):
    """The submission is refused; the message is safe to show (it reveals nothing)."""


def find_source(session, tenant_id: int, public_key: str) -> DataSource | None:
    """The tenant's active feedback source with this public key; None for a key of another tenant.

    Filters on the tenant itself, not only through row-level security underneath: the two layers
    are tested apart (tests/auth/test_route_matrix.py runs once on a connection without RLS).
    """
    query = select(DataSource).where(DataSource.tenant_id == tenant_id, DataSource.kind == "feedback",
                                     DataSource.active)
    for source in session.scalars(query):
        if source.config.get("public_key") == public_key:
            return source
    return None


def origin_allowed(source: DataSource, origin: str | None) -> bool:
    return bool(origin) and origin.rstrip("/") in source.config.get("allowed_origins", [])


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="feedback-form")


def form_token(secret: str, public_key: str, nonce: str) -> str:
    return _serializer(secret).dumps({"k": public_key, "n": nonce})


def check_token(secret: str, public_key: str, token: str, now: float | None = None) -> str:
    """The token's nonce if it is genuine, for this key, and neither too fresh nor too old."""
    serializer = _serializer(secret)
    try:
        data, issued = serializer.loads(token, max_age=MAX_SECONDS, return_timestamp=True)
    except SignatureExpired as exc:
        raise FeedbackRejected("The form has expired; reload the page.") from exc
    except BadSignature as exc:
        raise FeedbackRejected("Invalid form.") from exc
    age = (now or time.time()) - issued.timestamp()
    if data.get("k") != public_key or age < MIN_SECONDS:
        raise FeedbackRejected("Invalid form.")
    return data["n"]


def clean_submission(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("website"):  # the honeypot: people never see the field
        raise FeedbackRejected("Invalid form.")
    rating = body.get("rating")
    if isinstance(rating, str) and rating.isdigit():
        rating = int(rating)
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise FeedbackRejected("Choose a rating from 1 to 5.")
    service_key = str(body.get("service_key") or "")
    if not re.fullmatch(SERVICE_KEY_PATTERN, service_key):
        raise FeedbackRejected("Unknown service.")
    comment = (body.get("comment") or "").strip() or None
    if comment is not None:
        if len(comment) > MAX_COMMENT:
            raise FeedbackRejected("The comment is too long.")
        if LINK.search(comment):
            raise FeedbackRejected("Links are not allowed in comments.")
        comment = scrub(comment)
    return {"rating": rating, "service_key": service_key, "comment": comment}


def store_feedback(session, tenant_id: int, source_id: int, submission: dict[str, Any], received_at=None) -> None:
    session.execute(text(
        "INSERT INTO analytics.feedback (tenant_id, service_key, rating, comment, data_source_id, received_at) "
        "VALUES (:tenant, :service_key, :rating, :comment, :source, coalesce(:received_at, now()))"
    ), {"tenant": tenant_id, "source": source_id, "received_at": received_at, **submission})
