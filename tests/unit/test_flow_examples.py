"""The shipped example flows, run end to end by their simulator scripts (tests/unit/sim_scripts/).

Scripts are named `<flow>.<case>.yaml`. The accounts service the carrier flows call is a real HTTP server
on loopback whose answers depend on the account number, so the scripts choose the webhook's ok / error /
timeout paths by what the caller keys in. The negative checks prove the simulator can fail: a script with
one expectation changed must not pass.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import ivr_flows
from bot.interface import KeywordBot
from ivr_flows.channel import ListenRequest, RecordRequest, RecordResult, TransferRequest, TransferResult
from ivr_flows.loader import load_flow_file, load_yaml
from ivr_flows.runner import FlowRunner
from ivr_flows.schema import Flow
from ivr_flows.simulator import Script, SimulationResult, TextChannel, simulate

EXAMPLES = Path(ivr_flows.__file__).parent / "examples"
SCRIPTS = Path(__file__).parent / "sim_scripts"
SCRIPT_FILES = sorted(SCRIPTS.glob("*.yaml"))
SHIPPED = ("carrier_en", "carrier_zh", "after_hours", "identify")

# The bot the scripts talk to: two English entries and one Chinese, plus KeywordBot's hand-off detection.
RULES = {
    "data-allowance": (["data", "allowance"], "Your plan includes 20 gigabytes of data a month."),
    "puk": (["puk"], "Your PUK code is printed on the card your SIM came in, or in the app."),
    "zh-data": (["流量"], "您的套餐每月包含20GB流量。"),
}

# ---- the accounts service ---------------------------------------------------------------------------
ACCOUNTS = {
    "12345678": {"customer": {"name": "Alex Morgan"}, "account": {"balance": 23.5}},
    "87654321": {"customer": {"name": "王伟"}, "account": {"balance": 88}},
}
FAILING_ACCOUNT = "99999999"  # HTTP 500
SLOW_ACCOUNT = "55555555"  # answers after the flow's 2 s timeout
OUTAGE_NUMBER = "+441632960111"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class AccountsService:
    url: str
    requests: list[Received] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    service: AccountsService

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any) -> Received:
        parts = urlsplit(self.path)
        received = Received(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
        self.service.requests.append(received)
        return received

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        received = self._record(body)
        if received.path != "/accounts/lookup":
            self._reply(404, {"error": "no such endpoint"})
            return
        account = str(body.get("account"))
        if account == FAILING_ACCOUNT:
            self._reply(500, {"error": "database unavailable"})
        elif account == SLOW_ACCOUNT:
            time.sleep(3)
            self._reply(200, ACCOUNTS["12345678"])
        elif account in ACCOUNTS:
            self._reply(200, ACCOUNTS[account])
        else:
            self._reply(404, {"error": "no such account"})

    def do_GET(self) -> None:
        received = self._record(None)
        if received.path != "/network/status":
            self._reply(404, {"error": "no such endpoint"})
            return
        number = received.query.get("number", [""])[0]
        if number == OUTAGE_NUMBER:
            self._reply(200, {"outage": {"active": True, "area": "Leeds", "fixed_by": "6 pm"}})
        else:
            self._reply(200, {"outage": {"active": False}})


@pytest.fixture(scope="module")
def accounts() -> Iterator[AccountsService]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    service = AccountsService(f"http://127.0.0.1:{server.server_address[1]}")
    _Handler.service = service
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


# ---- helpers ----------------------------------------------------------------------------------------
def load_examples() -> dict[str, Flow]:
    flows = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        flow, _ = load_flow_file(path)
        flows[flow.flow] = flow
    return flows


FLOWS = load_examples()


def lookup(name: str) -> tuple[Flow, int | None] | None:
    flow = FLOWS.get(name)
    return None if flow is None else (flow, 1)


def load_script(path: Path) -> Script:
    return Script.model_validate(load_yaml(path.read_text(encoding="utf-8"), str(path)).data)


def flow_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


async def run_script(
    path: Path, service: AccountsService, *, script: Script | None = None, bot: KeywordBot | None = None
) -> SimulationResult:
    script = script or load_script(path)
    script.variables.setdefault("accounts_api", service.url)
    return await simulate(FLOWS[flow_of(path)], script, version=1, flows=lookup, bot=bot or KeywordBot(RULES))


def explain(result: SimulationResult) -> str:
    lines = [*result.failures, f"path: {' -> '.join(result.path)}", "transcript:"]
    lines += [f"  {who:>6}: {text}" for who, text in result.transcript]
    return "\n".join(lines)


def is_subsequence(expected: list[str], actual: list[str]) -> bool:
    remaining = iter(actual)
    return all(any(item == seen for seen in remaining) for item in expected)


# ---- the examples themselves -------------------------------------------------------------------------
def test_examples_are_the_shipped_flows() -> None:
    assert set(SHIPPED) <= set(FLOWS)


def test_examples_lint_clean() -> None:
    lint = pytest.importorskip("ivr_flows.lint")
    problems = lint.lint_paths([EXAMPLES])
    assert [str(p) for p in problems] == []


def test_every_example_has_scripts() -> None:
    scripted = {flow_of(path) for path in SCRIPT_FILES}
    assert scripted == {"carrier_en", "carrier_zh", "after_hours"}  # identify runs inside the carrier scripts
    assert all(flow_of(path) in FLOWS for path in SCRIPT_FILES)
    assert len(SCRIPT_FILES) >= 30


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=[p.stem for p in SCRIPT_FILES])
async def test_script_passes(path: Path, accounts: AccountsService) -> None:
    result = await run_script(path, accounts)
    print(explain(result))
    assert result.passed, explain(result)


# ---- paths and what the accounts service received ---------------------------------------------------
async def test_billing_goes_through_the_subflow_and_returns(accounts: AccountsService) -> None:
    accounts.requests.clear()
    result = await run_script(SCRIPTS / "carrier_en.billing_by_key.yaml", accounts)
    assert result.passed, explain(result)
    assert result.path == [
        "config", "greeting", "hours", "main_menu", "billing",
        "identify:config", "identify:ask_account", "identify:count_attempt", "identify:lookup",
        "identify:found",
        "billing_check", "balance", "billing_menu", "billing_queue",
    ]  # fmt: skip
    [request] = accounts.requests
    assert (request.method, request.path) == ("POST", "/accounts/lookup")
    assert request.body == {"account": "12345678", "caller": "+441632960001"}
    assert request.headers["X-Call-Id"] == "simulation"
    assert request.headers["Accept-Language"] == "en"


async def test_language_switch_runs_the_chinese_flow_and_nested_identify(accounts: AccountsService) -> None:
    accounts.requests.clear()
    result = await run_script(SCRIPTS / "carrier_en.chinese.yaml", accounts)
    assert result.passed, explain(result)
    expected = ["main_menu", "to_chinese", "chinese_line", "carrier_zh:config", "carrier_zh:main_menu",
                "carrier_zh:billing", "identify:ask_account", "identify:found", "carrier_zh:billing_check",
                "carrier_zh:balance", "carrier_zh:billing_queue"]  # fmt: skip
    assert is_subsequence(expected, result.path), result.path
    [request] = accounts.requests
    assert request.headers["Accept-Language"] == "zh"
    assert request.body == {"account": "87654321", "caller": "+441632960009"}
    said = [text for who, text in result.transcript if who == "flow"]
    assert not any("Please key in" in text for text in said)


async def test_unknown_account_is_asked_again(accounts: AccountsService) -> None:
    accounts.requests.clear()
    result = await run_script(SCRIPTS / "carrier_en.billing_unknown_account.yaml", accounts)
    assert result.passed, explain(result)
    assert [r.body["account"] for r in accounts.requests] == ["00000000", "12345678"]
    assert result.path.count("identify:ask_account") == 2
    assert "identify:unknown_account" in result.path


async def test_outage_webhook_gets_the_callers_number(accounts: AccountsService) -> None:
    accounts.requests.clear()
    result = await run_script(SCRIPTS / "carrier_en.support_outage.yaml", accounts)
    assert result.passed, explain(result)
    [request] = accounts.requests
    assert (request.method, request.path, request.query) == (
        "GET",
        "/network/status",
        {"number": [OUTAGE_NUMBER]},
    )
    assert result.variables["network"]["status"] == 200


async def test_lookup_timeout_waits_only_for_the_webhook_timeout(accounts: AccountsService) -> None:
    started = time.monotonic()
    result = await run_script(SCRIPTS / "carrier_en.billing_lookup_timeout.yaml", accounts)
    elapsed = time.monotonic() - started
    assert result.passed, explain(result)
    assert "identify:lookup_slow" in result.path
    assert 1.9 <= elapsed < 2.9  # the flow's timeout is 2 s; the server answers after 3 s


# ---- the simulator can fail -------------------------------------------------------------------------
def _with(path: Path, **changes: Any) -> Script:
    script = load_script(path)
    data = script.model_dump()
    data.update(changes)
    return Script.model_validate(data)


def _changed_end(path: Path, **end: Any) -> Script:
    script = load_script(path)
    data = script.model_dump()
    data["end"] = {**(data["end"] or {}), **end}
    return Script.model_validate(data)


@pytest.mark.parametrize(
    ("name", "script_factory", "failure"),
    [
        ("wrong end node", lambda p: _changed_end(p, node="payments_queue"), "expected to end in node"),
        ("wrong outcome", lambda p: _changed_end(p, outcome="hangup"), "expected outcome"),
        (
            "wrong variable",
            lambda p: _changed_end(p, variables={"customer_name": "Sam"}),
            "expected variable",
        ),
        ("wrong queue", lambda p: _changed_end(p, transfer={"queue": "support"}), "expected transfer queue"),
    ],
)
async def test_wrong_end_check_fails(name: str, script_factory: Any, failure: str, accounts: Any) -> None:
    path = SCRIPTS / "carrier_en.billing_by_key.yaml"
    result = await run_script(path, accounts, script=script_factory(path))
    assert not result.passed
    assert any(failure in text for text in result.failures), result.failures


async def test_wrong_expectation_fails(accounts: AccountsService) -> None:
    path = SCRIPTS / "carrier_en.billing_by_key.yaml"
    script = load_script(path)
    data = script.model_dump(exclude_none=True)
    index = next(i for i, step in enumerate(data["steps"]) if "Alex Morgan" in step.get("expect", ""))
    data["steps"][index] = {"expect": "Your balance is 99.00 pounds"}
    result = await run_script(path, accounts, script=Script.model_validate(data))
    assert not result.passed
    assert any("99.00 pounds" in text for text in result.failures), result.failures


async def test_forbidden_text_fails(accounts: AccountsService) -> None:
    path = SCRIPTS / "carrier_en.billing_lookup_error.yaml"
    data = load_script(path).model_dump(exclude_none=True)
    data["steps"].append({"expect_not": "Please hold for the billing team"})
    result = await run_script(path, accounts, script=Script.model_validate(data))
    assert not result.passed
    assert any("must not" in text for text in result.failures), result.failures


async def test_unused_caller_steps_fail(accounts: AccountsService) -> None:
    path = SCRIPTS / "after_hours.open.yaml"
    data = load_script(path).model_dump(exclude_none=True)
    data["steps"].append({"press": "1"})
    result = await run_script(path, accounts, script=Script.model_validate(data))
    assert not result.passed
    assert any("unused" in text for text in result.failures), result.failures


async def test_closed_clock_fails_an_open_script(accounts: AccountsService) -> None:
    path = SCRIPTS / "after_hours.open.yaml"
    script = _with(path, now="2026-03-30T20:00:00+01:00")
    result = await run_script(path, accounts, script=script)
    assert not result.passed
    assert result.end_node == "thanks"


async def test_answered_script_fails_with_the_default_bot(accounts: AccountsService) -> None:
    """The default KeywordBot() has no entries: the answered path must then not be taken."""
    path = SCRIPTS / "carrier_en.faq_answered.yaml"
    script = load_script(path)
    script.variables.setdefault("accounts_api", accounts.url)
    result = await simulate(FLOWS["carrier_en"], script, flows=lookup)
    assert not result.passed
    assert any("20 gigabytes" in text for text in result.failures), result.failures


# ---- channels the simulator cannot play: a refused transfer, the record request ---------------------
class _OfficeChannel(TextChannel):
    """A text channel whose reception queue does not answer and which keeps the record request."""

    def __init__(self) -> None:
        super().__init__(self._no_caller)
        self.records: list[RecordRequest] = []

    @staticmethod
    def _no_caller(request: ListenRequest) -> Any:
        raise AssertionError("the after-hours flow never listens")

    async def transfer(self, request: TransferRequest) -> TransferResult:
        self.transcript.append(("system", f"[transfer refused: {request.queue}]"))
        return TransferResult(False, "no agent answered")

    async def record(self, request: RecordRequest) -> RecordResult:
        self.records.append(request)
        return RecordResult("rec-42", 37.5, {"path": "/var/spool/rec-42.wav"})


async def test_unanswered_reception_falls_back_to_voicemail() -> None:
    channel = _OfficeChannel()
    clock = load_script(SCRIPTS / "after_hours.open.yaml").now
    assert clock is not None
    result = await FlowRunner(FLOWS["after_hours"], channel, clock=lambda: clock).run()
    assert result.outcome == "hangup"
    assert result.path == ["hours", "reception", "unanswered", "leave_message", "voicemail", "thanks"]
    expected = RecordRequest(beep=True, max_seconds=120, finish_on_key="#", silence_timeout=5.0)
    assert channel.records == [expected]
    assert result.variables["voicemail"] == {"id": "rec-42", "seconds": 37.5, "path": "/var/spool/rec-42.wav"}
    assert result.variables["transfer"] == {"ok": False, "detail": "no agent answered"}
    assert channel.transcript[-1] == ("system", "[hang-up: flow_hangup]")


# ---- known simulator bugs ---------------------------------------------------------------------------
async def test_end_check_on_transfer_skills(accounts: AccountsService) -> None:
    path = SCRIPTS / "carrier_en.support_no_outage.yaml"
    script = _changed_end(path, transfer={"queue": "support", "skills": ["network", "devices"]})
    result = await run_script(path, accounts, script=script)
    assert result.passed, result.failures
