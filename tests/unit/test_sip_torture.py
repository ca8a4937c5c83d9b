"""RFC 4475 torture messages through the sans-IO user agent: each gets what the manifest's strict column asks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from telephony.sip.message import SipParseError, parse_message
from telephony.sip.useragent import IncomingCall, UserAgentCore

TORTURE = Path(__file__).resolve().parents[2].parent / "shared" / "sip-torture"


def _manifest() -> list[dict[str, str]]:
    if not (TORTURE / "manifest.tsv").exists():
        return [{"name": "missing-shared-sip-torture"}]  # fails below with a clear message, not at collection
    with (TORTURE / "manifest.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _accepts(spec: str, status: int | None) -> bool:
    """`spec` is the manifest's notation: ranges like 200-399, single codes, 'drop' or 'none'."""
    for part in spec.split(","):
        part = part.strip()
        if part in ("drop", "none"):
            if status is None:
                return True
        elif "-" in part:
            low, high = part.split("-")
            if status is not None and int(low) <= status <= int(high):
                return True
        elif status is not None and int(part) == status:
            return True
    return False


def _final_status(core: UserAgentCore) -> tuple[int | None, list[int]]:
    statuses = [int(data.split(b" ", 2)[1]) for data, _ in core.take_outbox() if data.startswith(b"SIP/2.0 ")]
    finals = [s for s in statuses if s >= 200]
    return (finals[0] if finals else None), statuses


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["name"])
def test_torture_message_gets_the_strict_answer(entry: dict[str, str]) -> None:
    assert TORTURE.exists(), f"RFC 4475 messages expected at {TORTURE} (shared/ beside the project checkout)"
    data = (TORTURE / "messages" / f"{entry['name']}.dat").read_bytes()
    core = UserAgentCore(("127.0.0.1", 5060))
    core.receive_datagram(data, ("127.0.0.1", 5099), now=0.0)
    for event in core.take_events():
        if isinstance(
            event, IncomingCall
        ):  # a well-formed INVITE reaches the application: answer it normally
            event.session.reject(486)
    status, statuses = _final_status(core)
    assert _accepts(entry["strict"], status), (
        f"{entry['name']}: got {statuses}, strict wants {entry['strict']}"
    )
    if entry["flags"] == "trailing_ignored":
        assert len([s for s in statuses if s >= 200]) == 1


def test_parser_reports_reason_for_bad_messages() -> None:
    data = (TORTURE / "messages" / "clerr.dat").read_bytes()
    with pytest.raises(SipParseError, match="Content-Length"):
        parse_message(data)
