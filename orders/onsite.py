"""Time on site, counted from the order's history rather than typed (issue 16,
item 7). The works run from « Démarrer les travaux » or « Reprendre » to
« Suspendre » or « Terminer les travaux », each event at the technician's own
time (the offline queue keeps it); what lies between a suspension and the
resumption is not on site. A report covers the time on site since the report
before it, up to the end of the works, or up to now while they run.

Pure: the events' kinds and instants in, durations out (orders/reports.py reads
them from the database)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# The events' kinds (orders.states.Action's values) that open and close a stint on site.
OPENS = frozenset({"start", "resume"})
CLOSES = frozenset({"suspend", "finish"})
KINDS = OPENS | CLOSES
# Longer is not believable as one report's time on site (a technician who went
# home without suspending): it is typed instead.
LONGEST = timedelta(hours=24)


@dataclass(frozen=True)
class Stint:
    start: datetime
    end: datetime | None  # None: still on site


def stints(events: Iterable[tuple[str, datetime]]) -> list[Stint]:
    """The stints on site, from the events in the order they happened (kinds
    other than OPENS and CLOSES are skipped; a close without an open too)."""
    found: list[Stint] = []
    opened: datetime | None = None
    for kind, at in events:
        if kind in OPENS and opened is None:
            opened = at
        elif kind in CLOSES and opened is not None:
            found.append(Stint(opened, max(at, opened)))
            opened = None
    if opened is not None:
        found.append(Stint(opened, None))
    return found


def on_site(found: Iterable[Stint], *, until: datetime, since: datetime | None = None) -> timedelta:
    """The time on site between `since` (the beginning when None) and `until`."""
    total = timedelta()
    for stint in found:
        start = stint.start if since is None else max(stint.start, since)
        end = until if stint.end is None else min(stint.end, until)
        if end > start:
            total += end - start
    return total


def minutes(delta: timedelta) -> int:
    """To the nearest minute."""
    return int((delta.total_seconds() + 30) // 60)


def display(count: int) -> str:
    """`1 h 30`, `2 h`, `45 min`."""
    hours, rest = divmod(count, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest:02d}" if rest else f"{hours} h"
