"""The `hours` node with frozen clocks: schedules are local wall-clock times, so opening and closing move
by an hour in UTC across a daylight-saving change, and a holiday is a local date.

Every moment below is given in UTC, one minute either side of the local open/close, so a check that
compared in UTC (or in a fixed offset) fails on at least one side of each change.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr_flows.channel import Heard, ListenRequest
from ivr_flows.hours import is_open
from ivr_flows.loader import parse_flow
from ivr_flows.runner import FlowRunner
from ivr_flows.schema import WEEKDAYS, HoursAction
from ivr_flows.simulator import TextChannel

EVERY_DAY_8_TO_20 = {day: ["08:00-20:00"] for day in WEEKDAYS}


Weekly = dict[str, list[str]]


def spec(zone: str, weekly: Weekly | None = None, holidays: list[str] | None = None) -> HoursAction:
    weekly = weekly or EVERY_DAY_8_TO_20
    return HoursAction.model_validate({"timezone": zone, "weekly": weekly, "holidays": holidays or []})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Saturday 28 March 2026: GMT (UTC+0)
        ("2026-03-28T07:59", False), ("2026-03-28T08:00", True),
        ("2026-03-28T19:59", True), ("2026-03-28T20:00", False),
        # Sunday 29 March: 01:00 GMT -> 02:00 BST, so 08:00-20:00 local is 07:00-19:00 UTC
        ("2026-03-29T06:59", False), ("2026-03-29T07:00", True),
        ("2026-03-29T18:59", True), ("2026-03-29T19:00", False),
        # Saturday 24 October: BST (UTC+1)
        ("2026-10-24T06:59", False), ("2026-10-24T07:00", True),
        ("2026-10-24T18:59", True), ("2026-10-24T19:00", False),
        # Sunday 25 October: 02:00 BST -> 01:00 GMT, back to 08:00-20:00 UTC
        ("2026-10-25T07:00", False), ("2026-10-25T07:59", False),
        ("2026-10-25T08:00", True), ("2026-10-25T19:59", True),
        ("2026-10-25T20:00", False),
    ],
)  # fmt: skip
def test_london_across_both_changes(moment: str, expected: bool) -> None:
    assert is_open(spec("Europe/London"), utc(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Saturday 7 March 2026: EST (UTC-5); 20:00 local is 01:00 UTC the next day
        ("2026-03-07T12:59", False), ("2026-03-07T13:00", True),
        ("2026-03-08T00:59", True), ("2026-03-08T01:00", False),
        # Sunday 8 March: 02:00 EST -> 03:00 EDT (UTC-4)
        ("2026-03-08T11:59", False), ("2026-03-08T12:00", True),
        ("2026-03-08T23:59", True), ("2026-03-09T00:00", False),
    ],
)  # fmt: skip
def test_new_york_spring_forward(moment: str, expected: bool) -> None:
    assert is_open(spec("America/New_York"), utc(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-10-25T00:30", True),  # 01:30 BST, the first time 01:30 happens
        ("2026-10-25T01:30", True),  # 01:30 GMT, the second time
        ("2026-10-25T02:00", False),  # 02:00 GMT
        ("2026-10-24T23:59", False),  # 00:59 BST
    ],
)
def test_the_repeated_hour_in_autumn_is_open_twice(moment: str, expected: bool) -> None:
    assert is_open(spec("Europe/London", {"sun": ["01:00-02:00"]}), utc(moment)) is expected


@pytest.mark.parametrize("moment", ["2026-03-29T00:59", "2026-03-29T01:00", "2026-03-29T01:30"])
def test_the_skipped_hour_in_spring_is_never_open(moment: str) -> None:
    # 01:00-02:00 local does not exist on 29 March: 00:59 UTC is 00:59 GMT, 01:00 UTC is already 02:00 BST
    assert is_open(spec("Europe/London", {"sun": ["01:00-02:00"]}), utc(moment)) is False


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-12-24T23:59", True),
        ("2026-12-25T00:00", False),
        ("2026-12-25T12:00", False),
        ("2026-12-25T23:59", False),
        ("2026-12-26T00:00", True),
    ],
)
def test_holiday_is_closed_all_day(moment: str, expected: bool) -> None:
    always = {day: ["00:00-24:00"] for day in WEEKDAYS}
    assert is_open(spec("Europe/London", always, ["2026-12-25"]), utc(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-09-30T15:59", True),  # 23:59 on 30 September in Shanghai
        ("2026-09-30T16:00", False),  # 00:00 on 1 October local, still 30 September in UTC
        ("2026-10-01T15:59", False),
        ("2026-10-01T16:00", True),
    ],
)
def test_holiday_is_a_local_date(moment: str, expected: bool) -> None:
    always = {day: ["00:00-24:00"] for day in WEEKDAYS}
    assert is_open(spec("Asia/Shanghai", always, ["2026-10-01"]), utc(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-07-03T18:59", False),  # Friday 19:59 BST
        ("2026-07-03T19:00", True),
        ("2026-07-03T22:59", True),  # 23:59 local: a span ending 24:00 includes the last minute
        ("2026-07-03T23:00", False),  # 00:00 Saturday, which has no span
    ],
)
def test_span_ending_at_midnight(moment: str, expected: bool) -> None:
    assert is_open(spec("Europe/London", {"fri": ["20:00-24:00"]}), utc(moment)) is expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("08:59", False), ("09:00", True), ("11:59", True), ("12:00", False),
        ("12:59", False), ("13:00", True), ("17:29", True), ("17:30", False),
    ],
)  # fmt: skip
def test_several_spans_per_day(local: str, expected: bool) -> None:
    hours = spec("America/New_York", {"wed": ["09:00-12:00", "13:00-17:30"]})
    # Wednesday 15 July 2026 in New York is EDT (UTC-4)
    hour, minute = (int(part) for part in local.split(":"))
    assert is_open(hours, utc(f"2026-07-15T{hour + 4:02d}:{minute:02d}")) is expected


def test_a_day_without_spans_is_closed() -> None:
    monday_only = spec("Europe/London", {"mon": ["00:00-24:00"]})
    assert is_open(monday_only, utc("2026-07-14T12:00")) is False  # a Tuesday


def test_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(spec("Europe/London"), datetime(2026, 3, 29, 12, 0))


# ---- through the runner, with the flow's clock --------------------------------------------------------
FLOW = """
flow: dst
start: check
nodes:
  check:
    hours:
      timezone: Europe/London
      weekly: {sun: ["08:00-20:00"]}
      on: {open: open, closed: closed}
  open: {say: Open.}
  closed: {say: Closed.}
"""


def _no_input(request: ListenRequest) -> Heard:
    raise AssertionError("never listens")


@pytest.mark.parametrize(("moment", "end"), [("2026-03-29T06:59", "closed"), ("2026-03-29T07:00", "open")])
async def test_runner_reads_its_clock(moment: str, end: str) -> None:
    flow, _ = parse_flow(FLOW)
    channel = TextChannel(_no_input)
    result = await FlowRunner(flow, channel, clock=lambda: utc(moment)).run()
    assert result.path == ["check", end]
    assert channel.transcript[0] == ("flow", f"{end.capitalize()}.")
