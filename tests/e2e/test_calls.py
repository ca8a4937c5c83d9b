"""`hotline serve` answering real sipp callers over loopback; every assertion is on the API's call records."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from harness import (
    HotlineServer,
    call_answered,
    call_ended,
    dtmf_digits,
    event_values,
    run_sipp,
    start_sipp,
)
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.e2e

GREETING = "Thanks for calling hotline. Press any key and I will say it back. Press pound to hang up."


def _ended(server: HotlineServer, call_id: str, timeout: float = 10.0) -> dict:
    return server.wait_for_call(call_id, call_ended, timeout=timeout)


def _states(record: dict) -> list[str]:
    return event_values(record, "state")


def test_rfc2833_digits_are_said_back_and_recorded(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_dtmf_2833.xml", hotline_server, call_id="e2e-2833")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-2833")
    assert dtmf_digits(record) == "123"
    assert record["end_reason"] == "caller_bye"
    assert record["codec"] == "PCMU"
    assert record["answered_at"] and record["answered_at"] >= record["started_at"]
    assert record["ended_at"] >= record["answered_at"]
    prompts = event_values(record, "prompt")
    assert prompts[0] == GREETING
    assert "You pressed 1." in prompts and "You pressed 3." in prompts
    states = _states(record)
    assert states.index("answered") < states.index("confirmed") < states.index("ended")
    times = [event["at"] for event in record["events"]]
    assert times == sorted(times)


def test_pound_makes_the_server_hang_up(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_dtmf_pound.xml", hotline_server, call_id="e2e-pound")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-pound")
    assert dtmf_digits(record) == "123#"
    assert record["end_reason"] == "server_bye"
    assert event_values(record, "prompt")[-1] == "Goodbye."


def test_sip_info_digits_both_body_types(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_info_dtmf.xml", hotline_server, call_id="e2e-info")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-info")
    assert dtmf_digits(record) == "57"
    assert record["end_reason"] == "caller_bye"


@pytest.mark.parametrize("hotline_server", [{"answer_delay_ms": 4000}], indirect=True)
def test_cancel_while_ringing(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_cancel.xml", hotline_server, call_id="e2e-cancel")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-cancel")
    assert record["end_reason"] == "cancelled"
    assert record["answered_at"] is None
    assert "ringing" in _states(record) and "answered" not in _states(record)


def test_options_is_answered(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_options.xml", hotline_server)
    assert result.ok, result.describe()


def test_hold_and_resume_keep_the_call(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_hold_resume.xml", hotline_server, call_id="e2e-hold")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-hold")
    states = _states(record)
    assert states.index("hold") < states.index("resumed")
    assert record["end_reason"] == "caller_bye"


def test_pcma_only_offer_gets_pcma(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_rtp_audio.xml", hotline_server, call_id="e2e-pcma")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-pcma")
    assert record["codec"] == "PCMA"
    assert record["remote_media"].startswith("127.0.0.1:")


def test_rtp_stream_caller_gets_pcmu(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_rtpstream.xml", hotline_server, call_id="e2e-stream")
    assert result.ok, result.describe()
    assert _ended(hotline_server, "e2e-stream")["codec"] == "PCMU"


def test_offer_without_a_common_codec_is_rejected_with_488(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_no_codec.xml", hotline_server, call_id="e2e-488")
    assert result.ok, result.describe()
    record = _ended(hotline_server, "e2e-488")
    assert record["end_reason"] == "rejected"
    assert record["answered_at"] is None and record["codec"] is None
    assert any(state.startswith("rejected 488") for state in _states(record))


def test_no_rtp_hangs_up_with_rtp_timeout(start_hotline: Callable[..., HotlineServer]) -> None:
    server = start_hotline(extra_args=["--rtp-timeout", "2"])
    started = time.monotonic()
    result = run_sipp("t_uac_silent_wait_bye.xml", server, call_id="e2e-rtp-timeout", timeout=30)
    assert result.ok, result.describe()
    assert time.monotonic() - started < 15
    assert _ended(server, "e2e-rtp-timeout")["end_reason"] == "rtp_timeout"


def test_sigterm_sends_bye_to_active_calls(start_hotline: Callable[..., HotlineServer]) -> None:
    server = start_hotline()
    caller = start_sipp("t_uac_silent_wait_bye.xml", server, call_id="e2e-shutdown", timeout=30)
    with caller:
        server.wait_for_call("e2e-shutdown", call_answered, timeout=10)
        time.sleep(0.5)
        assert server.stop() == 0
        result = caller.wait(timeout=20)
    assert result.ok, result.describe()
    engine = create_engine(server.db_url)
    with engine.connect() as connection:
        reason = connection.execute(
            text("SELECT end_reason FROM calls WHERE sip_call_id = :cid"), {"cid": "e2e-shutdown"}
        ).scalar_one()
    engine.dispose()
    assert reason == "shutdown"


def test_concurrent_callers_each_get_their_own_record(hotline_server: HotlineServer) -> None:
    result = run_sipp("uac_dtmf_2833.xml", hotline_server, calls=10, rate=10, call_id="e2e-multi", timeout=60)
    assert result.ok and result.successful == 10, result.describe()
    for number in range(1, 11):
        record = _ended(hotline_server, f"e2e-multi-{number}")
        assert dtmf_digits(record) == "123"


def test_records_are_written_while_the_call_runs(hotline_server: HotlineServer) -> None:
    caller = start_sipp("uac_dtmf_pound.xml", hotline_server, call_id="e2e-live", timeout=40)
    with caller:
        live = hotline_server.wait_for_call("e2e-live", lambda r: dtmf_digits(r).startswith("1"), timeout=15)
        assert live["ended_at"] is None and live["answered_at"] is not None
        result = caller.wait(timeout=40)
    assert result.ok, result.describe()
