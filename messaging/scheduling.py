"""Quiet hours in the recipient's local time, derived from the number."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as pn_timezone


@lru_cache(maxsize=20_000)
def _zones_for_prefix(prefix: str) -> tuple[ZoneInfo, ...]:
    try:
        number = phonenumbers.parse(prefix + "0" * max(0, 12 - len(prefix)))
    except phonenumbers.NumberParseException:
        return ()
    zones = []
    for name in pn_timezone.time_zones_for_number(number):
        try:
            zones.append(ZoneInfo(name))
        except Exception:  # noqa: S112 - "Etc/Unknown" and friends are not zones
            continue
    return tuple(zones)


def zones_for(e164: str) -> tuple[ZoneInfo, ...]:
    """Time zones of the number's area; several when the area spans zones."""
    zones = _zones_for_prefix(e164[:8])
    if not zones:
        try:
            zones = tuple(
                ZoneInfo(n)
                for n in pn_timezone.time_zones_for_number(phonenumbers.parse(e164))
                if "/" in n and not n.startswith("Etc")
            )
        except (phonenumbers.NumberParseException, Exception):
            zones = ()
    return zones


def _inside(local: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # a window across midnight


def next_allowed(e164: str, now: datetime, start: time, end: time) -> datetime | None:
    """None if ``now`` is inside the window in every zone of the number, else when it next is.

    A number whose zone cannot be told is held to UTC, so it is never sent at night by accident.
    """
    zones = zones_for(e164) or (ZoneInfo("UTC"),)
    candidate = now
    for _ in range(4):  # a few passes settle zones that disagree
        late = None
        for zone in zones:
            local = candidate.astimezone(zone)
            if _inside(local.time(), start, end):
                continue
            opens = datetime.combine(local.date(), start, tzinfo=zone)
            if opens <= local:
                opens = datetime.combine(local.date() + timedelta(days=1), start, tzinfo=zone)
            late = max(late, opens) if late else opens
        if late is None:
            return None if candidate == now else candidate
        candidate = late
    return candidate
