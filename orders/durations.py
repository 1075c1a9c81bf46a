"""How long something took or waits, as people read it in French. Pure Python
(the penalty module, which may not import Django, uses it too).

One definition for every page: the overview's delays and penalties in whole
minutes (`2 j 3 h 05 min`), the relay's timeline to the second when it is
short (`3 min 05 s`, `moins d'une seconde`).
"""

from __future__ import annotations

from datetime import timedelta

NBSP = "\u00a0"  # between a number and its unit, as French typography wants


def duration(delta: timedelta, *, seconds: bool = False) -> str:
    """`2 j 3 h 05 min`, `1 h`, `16 min`; with `seconds`, the two largest units
    down to the second: `4 s`, `3 min 05 s`, `2 h 10 min`, `3 j 4 h`."""
    if seconds:
        return _precise(delta)
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days}{NBSP}j")
    if hours:
        parts.append(f"{hours}{NBSP}h")
    if minutes or not parts:
        parts.append(f"{minutes:02d}{NBSP}min" if parts else f"{minutes}{NBSP}min")
    return " ".join(parts)


def _precise(delta: timedelta) -> str:
    total = int(max(delta.total_seconds(), 0))
    if total < 1:
        return "moins d'une seconde"
    if total < 60:
        return f"{total} s"
    minutes, total = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {total:02d} s" if total else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} j {hours} h" if hours else f"{days} j"
