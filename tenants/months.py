"""Calendar months as the users see them: in German time (Europe/Berlin), whatever the servers run in.

Rollup days are already German days (the loader computes them in Europe/Berlin). Instants such as
``analytics.feedback.received_at`` are compared with the German wall clock in SQL
(``received_at AT TIME ZONE 'Europe/Berlin'``), never with a date the database would read in its own
time zone, and "today", which decides the running month, is the German date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def berlin_today(now: datetime | None = None) -> date:
    """The date in Germany at ``now`` (default: this instant)."""
    return (now or datetime.now(UTC)).astimezone(BERLIN).date()


def month_start(day: date, months_back: int = 0) -> date:
    """The first day of ``day``'s month, ``months_back`` months earlier."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)
