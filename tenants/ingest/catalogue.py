"""A tenant's service catalogue (``analytics.services``): the names dashboards and comparisons show.

A service enters the catalogue the first time data for it arrives (``loader.REGISTER_SERVICES``);
a LeiKa service is named from the LeiKa reference list (``tenants/data/leika_services.csv``), any
other under its key until an admin names it here. Admins may also give a local service the LeiKa
key it corresponds to: from then on it takes part in comparisons and the ZSK export under that key.
Everything runs inside the tenant's transaction (RLS); a key of another tenant is "not found".
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import text

from tenants.errors import NotFound, UserError

LEIKA_FILE = Path(__file__).resolve().parents[1] / "data" / "leika_services.csv"
LEIKA_KEY = re.compile(r"99[0-9]{12}")
MAX_NAME = 200


class ServiceNotFound(NotFound):
    """No such service in the tenant's catalogue; the caller answers 404."""


class ServiceError(UserError, ValueError):
    """Invalid input; the message is for the user."""


@dataclass(frozen=True)
class Service:
    service_key: str
    leika_key: str | None
    name: str

    @property
    def is_leika(self) -> bool:
        return bool(LEIKA_KEY.fullmatch(self.service_key))


@cache
def leika_names() -> dict[str, str]:
    """LeiKa key -> official name, from the reference list shipped with the platform."""
    with LEIKA_FILE.open(encoding="utf-8") as fh:
        return {row["leika_key"]: row["name"] for row in csv.DictReader(fh)}


def list_services(session) -> list[Service]:
    rows = session.execute(text("SELECT service_key, leika_key, name FROM analytics.services "
                                "ORDER BY name, service_key"))
    return [Service(*row) for row in rows]


def get_service(session, service_key: str) -> Service:
    row = session.execute(text("SELECT service_key, leika_key, name FROM analytics.services WHERE service_key = :k"),
                          {"k": service_key}).first()
    if row is None:
        raise ServiceNotFound(service_key)
    return Service(*row)


def update_service(session, service_key: str, name: str, leika_key: str = "") -> Service:
    """Rename a service; a local one may also be given (or lose) its LeiKa key."""
    service = get_service(session, service_key)
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise ServiceError("Give the service a name (at most 200 characters).")
    leika_key = (leika_key or "").strip()
    if service.is_leika:
        leika_key = service.service_key  # a LeiKa service is its own key; the form cannot change that
    elif leika_key and not LEIKA_KEY.fullmatch(leika_key):
        raise ServiceError("A LeiKa key has 14 digits and begins with 99.")
    session.execute(text("UPDATE analytics.services SET name = :n, leika_key = :l WHERE service_key = :k"),
                    {"n": name, "l": leika_key or None, "k": service_key})
    return Service(service_key, leika_key or None, name)
