"""Run a flow without a phone: the same FlowRunner on a text channel, scripted (CI) or interactive.

A script is YAML:

    caller: "+441632960000"
    now: 2026-03-30T10:00:00+01:00     # frozen clock for `hours` nodes (default: real time)
    variables: {vip: true}              # extra variables at the start
    steps:                              # the caller's side, in order
      - expect: Thanks for calling      # something said since the last input contains this text
      - press: "1"                      # keys (one or many)
      - say: billing please             # caller speech, as text
      - silence                         # no answer (the flow's timeout passes)
    end:                                # optional checks when the flow finishes
      node: billing_queue
      outcome: transferred              # ended | hangup | transferred | caller_hangup | error
      variables: {account: "12345"}
      transfer: {queue: billing}

`expect` steps are matched in order against what the flow said between two caller inputs; a step may also be
`expect_not: text`. When the script runs out of inputs while the flow still listens, the caller hangs up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.interface import Bot, KeywordBot
from ivr_flows.channel import (
    ChannelClosed,
    Heard,
    ListenRequest,
    RecordRequest,
    RecordResult,
    TransferRequest,
    TransferResult,
)
from ivr_flows.runner import FlowLookup, FlowRunner, RunResult
from ivr_flows.schema import Flow


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_Strict):
    expect: str | None = None
    expect_not: str | None = None
    press: str | None = None
    say: str | None = None
    silence: bool | None = None

    @field_validator("press")
    @classmethod
    def _keys(cls, keys: str | None) -> str | None:
        if keys is not None and (not keys or any(k not in "0123456789*#ABCD" for k in keys)):
            raise ValueError("press takes DTMF keys: 0-9, *, #, A-D")
        return keys

    def kind(self) -> str:
        set_fields = [name for name in ("expect", "expect_not", "press", "say", "silence") if getattr(self, name)]
        if len(set_fields) != 1:
            raise ValueError("each step has exactly one of expect, expect_not, press, say, silence")
        return set_fields[0]


class EndCheck(_Strict):
    node: str | None = None
    outcome: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    transfer: dict[str, Any] | None = None


class Script(_Strict):
    caller: str | None = "+15550100"
    now: datetime | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    end: EndCheck | None = None

    @field_validator("steps", mode="before")
    @classmethod
    def _bare_words(cls, steps: Any) -> Any:
        """`- silence` is shorthand for `- silence: true`."""
        if isinstance(steps, list):
            return [{"silence": True} if item == "silence" else item for item in steps]
        return steps


@dataclass
class SimulationResult:
    passed: bool
    failures: list[str]
    path: list[str]
    transcript: list[tuple[str, str]]  # (who, text): who is "flow", "caller" or "system"
    outcome: str
    end_node: str | None
    variables: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "failures": self.failures, "path": self.path, "outcome": self.outcome,
            "end_node": self.end_node, "transcript": [{"who": w, "text": t} for w, t in self.transcript],
            "variables": _jsonable(self.variables),
        }  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class TextChannel:
    """A Channel where the caller's side comes from a callable: a script or a person at a terminal."""

    kind = "text"

    def __init__(
        self,
        next_input: Callable[[ListenRequest], Heard],
        *,
        caller: str | None = None,
        on_output: Callable[[str, str], None] | None = None,
        conversation_id: str = "simulation",
    ) -> None:
        self._next_input = next_input
        self._caller = caller
        self._conversation_id = conversation_id
        self.transcript: list[tuple[str, str]] = []
        self.on_output = on_output
        self.closed = False

    @property
    def conversation_id(self) -> str:
        return self._conversation_id

    @property
    def caller(self) -> str | None:
        return self._caller

    def _out(self, who: str, text: str) -> None:
        self.transcript.append((who, text))
        if self.on_output:
            self.on_output(who, text)

    async def say(
        self, text: str, *, interruptible: bool = True, language: str = "en", voice: str | None = None
    ) -> bool:
        if self.closed:
            raise ChannelClosed(self._conversation_id)
        self._out("flow", text)
        return True

    async def prompt_and_listen(
        self, prompts: list[str], request: ListenRequest, *, language: str = "en", voice: str | None = None
    ) -> Heard:
        for text in prompts:
            await self.say(text, language=language)
        heard = self._next_input(request)
        if heard.kind == "dtmf":
            self._out("caller", f"[keys {heard.digits}]")
        elif heard.kind == "speech":
            self._out("caller", heard.text)
        else:
            self._out("caller", "[silence]")
        return heard

    async def transfer(self, request: TransferRequest) -> TransferResult:
        target = f"queue {request.queue}" if request.queue else f"{request.method} to {request.to}"
        self._out("system", f"[transfer: {target}]")
        return TransferResult(True, "simulated")

    async def record(self, request: RecordRequest) -> RecordResult:
        self._out("system", f"[recording up to {request.max_seconds} s]")
        return RecordResult("simulated-recording", 0.0)

    async def hangup(self, reason: str = "flow_hangup") -> None:
        if not self.closed:
            self.closed = True
            self._out("system", f"[hang-up: {reason}]")

    def note(self, type: str, value: str) -> None:
        pass


class _ScriptedCaller:
    """Feeds a Script's inputs and checks its expectations against what the flow said."""

    def __init__(self, script: Script, channel_ref: list[TextChannel]) -> None:
        self.steps = list(script.steps)
        self.index = 0
        self.failures: list[str] = []
        self.channel_ref = channel_ref
        self.mark = 0  # transcript position of the last input

    def _said_since_mark(self) -> list[str]:
        return [text for who, text in self.channel_ref[0].transcript[self.mark :] if who in ("flow", "system")]

    def check_expectations(self) -> None:
        said = self._said_since_mark()
        cursor = 0
        while self.index < len(self.steps) and self.steps[self.index].kind() in ("expect", "expect_not"):
            step = self.steps[self.index]
            self.index += 1
            if step.expect is not None:
                found = next((i for i in range(cursor, len(said)) if _matches(step.expect, said[i])), None)
                if found is None:
                    self.failures.append(
                        f"step {self.index}: expected the flow to say {step.expect!r}; it said {said!r}"
                    )
                else:
                    cursor = found + 1
            elif step.expect_not is not None and any(_matches(step.expect_not, text) for text in said):
                self.failures.append(f"step {self.index}: the flow said {step.expect_not!r}, which it must not")

    def __call__(self, request: ListenRequest) -> Heard:
        self.check_expectations()
        channel = self.channel_ref[0]
        if self.index >= len(self.steps):
            raise ChannelClosed(channel.conversation_id)  # the script is over: the caller hangs up
        step = self.steps[self.index]
        self.index += 1
        self.mark = len(channel.transcript)
        if step.press is not None:
            return Heard("dtmf", digits=step.press)
        if step.say is not None:
            return Heard("speech", text=step.say, confidence=1.0)
        return Heard("no_input")


def _matches(expected: str, text: str) -> bool:
    if len(expected) > 2 and expected.startswith("/") and expected.endswith("/"):
        return re.search(expected[1:-1], text) is not None
    return expected.lower() in text.lower()


async def simulate(
    flow: Flow, script: Script, *, version: int | None = None, flows: FlowLookup | None = None,
    bot: Bot | None = None, http_client: Any = None,
) -> SimulationResult:  # fmt: skip
    ref: list[TextChannel] = []
    caller = _ScriptedCaller(script, ref)
    channel = TextChannel(caller, caller=script.caller)
    ref.append(channel)
    moment = script.now
    clock = (lambda: moment) if moment is not None else (lambda: datetime.now(UTC))
    runner = FlowRunner(
        flow, channel, version=version, bot=bot or KeywordBot(), flows=flows, clock=clock,
        variables=dict(script.variables), http_client=http_client,
    )  # fmt: skip
    result = await runner.run()
    caller.check_expectations()
    failures = list(caller.failures)
    remaining = [s for s in script.steps[caller.index :] if s.kind() not in ("expect", "expect_not")]
    if remaining and result.outcome != "caller_hangup":
        failures.append(
            f"the flow ended ({result.outcome} at {result.end_node}) with {len(remaining)} caller step(s) unused"
        )
    failures += _end_failures(script.end, result)
    return SimulationResult(
        passed=not failures, failures=failures, path=result.path, transcript=channel.transcript,
        outcome=result.outcome, end_node=result.end_node, variables=result.variables,
    )  # fmt: skip


def _end_failures(end: EndCheck | None, result: RunResult) -> list[str]:
    if end is None:
        return [f"the flow failed: {result.error}"] if result.outcome == "error" else []
    failures = []
    if end.node is not None and result.end_node != end.node:
        failures.append(f"expected to end in node {end.node!r}, ended in {result.end_node!r}")
    if end.outcome is not None and result.outcome != end.outcome:
        failures.append(
            f"expected outcome {end.outcome!r}, got {result.outcome!r}" + (f" ({result.error})" if result.error else "")
        )
    for name, expected in end.variables.items():
        actual = result.variables.get(name)
        if actual != expected and str(actual) != str(expected):
            failures.append(f"expected variable {name} = {expected!r}, got {actual!r}")
    if end.transfer is not None:
        transfer = result.transfer
        if transfer is None:
            failures.append("expected a transfer, there was none")
        else:
            for key, expected in end.transfer.items():
                actual = getattr(transfer, key, None)
                if isinstance(actual, tuple):
                    actual = list(actual)
                if actual != expected:
                    failures.append(f"expected transfer {key} = {expected!r}, got {actual!r}")
    return failures


def parse_console_line(line: str) -> Heard:
    """Interactive input: `#123` presses 1 2 3 (`##` presses #), an empty line is silence, anything else speech."""
    text = line.strip()
    if not text:
        return Heard("no_input")
    if text.startswith("#") and len(text) > 1 and all(k in "0123456789*#ABCD" for k in text[1:].upper()):
        return Heard("dtmf", digits=text[1:].upper())
    return Heard("speech", text=text, confidence=1.0)
