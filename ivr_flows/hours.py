"""Business hours: is `moment` inside the weekly schedule, in the flow's time zone, and not a holiday?

Times are compared as local wall-clock times in the configured zone, so a schedule of 08:00-20:00 means
08:00-20:00 local time on both sides of a daylight-saving change.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ivr_flows.schema import WEEKDAYS, HoursAction


def is_open(spec: HoursAction, moment: datetime) -> bool:
    if moment.tzinfo is None:
        raise ValueError("the clock must give timezone-aware times")
    local = moment.astimezone(ZoneInfo(spec.timezone))
    if local.date() in spec.holidays:
        return False
    minute = local.hour * 60 + local.minute
    for span in spec.weekly.get(WEEKDAYS[local.weekday()], []):
        start, end = span.split("-")
        if _minutes(start) <= minute < _minutes(end):
            return True
    return False


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)
