"""Golden tests of the flow runner, one group per node kind: small inline flows, scripted caller input,
and the exact path, transcript and variables that must come out.

The channel here is a recording fake rather than the simulator's TextChannel, so these tests pin the
runner's contract with *any* channel (what it says, in which language, what it asks to listen for).
"""

from __future__ import annotations

import textwrap
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.interface import KeywordBot
from ivr_flows import runner as runner_module
from ivr_flows.channel import (
    ChannelClosed,
    Heard,
    ListenRequest,
    RecordRequest,
    RecordResult,
    TransferRequest,
    TransferResult,
)
from ivr_flows.loader import parse_flow
from ivr_flows.registry import FlowRegistry
from ivr_flows.runner import FlowRunner, RunResult
from ivr_flows.schema import Flow

SILENCE = Heard("no_input")


def keys(digits: str) -> Heard:
    return Heard("dtmf", digits=digits)


def speech(text: str) -> Heard:
    return Heard("speech", text=text, confidence=0.9)


class FakeChannel:
    """Plays scripted caller input and records everything the runner asks of the channel."""

    kind = "voice"

    def __init__(
        self, inputs: Iterable[Heard] = (), *, caller: str | None = "+441632960000",
        transfer: TransferResult | None = None, recording: RecordResult | None = None,
    ) -> None:  # fmt: skip
        self.inputs = deque(inputs)
        self._caller = caller
        self.transfer_result = transfer or TransferResult(True, "bridged")
        self.recording = recording or RecordResult("rec-1", 12.345)
        self.transcript: list[tuple[str, str]] = []
        self.said: list[dict[str, Any]] = []  # every text with the options it was said with
        self.requests: list[ListenRequest] = []
        self.transfers: list[TransferRequest] = []
        self.records: list[RecordRequest] = []
        self.hangups: list[str] = []
        self.notes: list[tuple[str, str]] = []

    @property
    def conversation_id(self) -> str:
        return "call-7"

    @property
    def caller(self) -> str | None:
        return self._caller

    async def say(
        self, text: str, *, interruptible: bool = True, language: str = "en", voice: str | None = None
    ) -> bool:
        self.transcript.append(("flow", text))
        self.said.append({"text": text, "interruptible": interruptible, "language": language, "voice": voice})
        return True

    async def prompt_and_listen(
        self, prompts: list[str], request: ListenRequest, *, language: str = "en", voice: str | None = None
    ) -> Heard:
        for text in prompts:
            await self.say(text, interruptible=request.interruptible, language=language, voice=voice)
        self.requests.append(request)
        if not self.inputs:
            raise ChannelClosed("the caller hung up")
        heard = self.inputs.popleft()
        label = {"dtmf": f"[keys {heard.digits}]", "speech": heard.text, "no_input": "[silence]"}[heard.kind]
        self.transcript.append(("caller", label))
        return heard

    async def transfer(self, request: TransferRequest) -> TransferResult:
        self.transfers.append(request)
        return self.transfer_result

    async def record(self, request: RecordRequest) -> RecordResult:
        self.records.append(request)
        return self.recording

    async def hangup(self, reason: str = "flow_hangup") -> None:
        self.hangups.append(reason)

    def note(self, type: str, value: str) -> None:
        self.notes.append((type, value))


def flow(text: str) -> Flow:
    parsed, _ = parse_flow(textwrap.dedent(text))
    return parsed


async def run(
    text: str | Flow, inputs: Iterable[Heard] = (), *, channel: FakeChannel | None = None, **kwargs: Any
) -> tuple[RunResult, FakeChannel]:
    channel = channel or FakeChannel(inputs)
    result = await FlowRunner(text if isinstance(text, Flow) else flow(text), channel, **kwargs).run()
    return result, channel


def flow_said(channel: FakeChannel) -> list[str]:
    return [text for who, text in channel.transcript if who == "flow"]


# ---- say ----------------------------------------------------------------------------------------------
async def test_say_text_then_the_flow_ends() -> None:
    result, channel = await run("""
        flow: t
        start: hello
        nodes:
          hello: {say: Hello there., next: bye}
          bye: {say: Goodbye.}
    """)
    assert (result.outcome, result.end_node, result.path) == ("ended", "bye", ["hello", "bye"])
    assert channel.transcript == [("flow", "Hello there."), ("flow", "Goodbye.")]
    assert channel.hangups == ["flow_end"]


async def test_say_list_is_said_in_order_with_defaults() -> None:
    _, channel = await run("""
        flow: t
        start: hello
        defaults: {voice: slt, interruptible: false}
        nodes:
          hello: {say: [One., Two., Three.]}
    """)
    assert [s["text"] for s in channel.said] == ["One.", "Two.", "Three."]
    assert {(s["voice"], s["interruptible"], s["language"]) for s in channel.said} == {("slt", False, "en")}


async def test_say_options_override_defaults() -> None:
    _, channel = await run("""
        flow: t
        start: hello
        nodes:
          hello: {say: {text: Please listen., interruptible: false, voice: awb}}
    """)
    said = {"text": "Please listen.", "interruptible": False, "language": "en", "voice": "awb"}
    assert channel.said == [said]


async def test_say_language_map_follows_the_call_language() -> None:
    result, channel = await run("""
        flow: t
        language: en
        start: first
        nodes:
          first: {say: {en: Hello., zh: 你好。}, next: switch}
          switch: {language: zh, next: second}
          second: {say: {en: Goodbye., zh: 再见。}, next: french}
          french: {language: fr, next: third}
          third: {say: {en: Fallback to the flow language., zh: 不是这个。}}
    """)
    assert [(s["text"], s["language"]) for s in channel.said] == [
        ("Hello.", "en"), ("再见。", "zh"), ("Fallback to the flow language.", "fr"),
    ]  # fmt: skip
    assert result.variables["language"] == "fr"
    assert ("language", "zh") in channel.notes


async def test_say_template_renders_call_variables() -> None:
    _, channel = await run(
        """
        flow: t
        start: hello
        nodes:
          hello:
            say: "Hi {{ name }} on {{ caller.number }} ({{ call.id }}, {{ call.channel }}).{{ missing }}"
        """,
        variables={"name": "Ann"},
    )
    assert flow_said(channel) == ["Hi Ann on +441632960000 (call-7, voice)."]


async def test_say_with_its_own_language_restores_the_call_language() -> None:
    _, channel = await run("""
        flow: t
        start: zh_once
        nodes:
          zh_once: {say: {text: {en: English., zh: 中文。}, language: zh}, next: again}
          again: {say: {en: English again., zh: 又是中文。}}
    """)
    assert [(s["text"], s["language"]) for s in channel.said] == [("中文。", "zh"), ("English again.", "en")]


# ---- menu ---------------------------------------------------------------------------------------------
MENU = """
flow: t
start: menu
defaults:
  timeout: 4
  no_input_prompt: I did not hear you.
  no_match_prompt: I did not get that.
nodes:
  menu:
    menu:
      prompt: Press 1 for billing or 2 for support.
      reprompt: One billing, two support.
      options:
        "1": {say_as: [billing, my bill, support], next: billing}
        "2": {say_as: [technical support, tech], next: tech}
      on: {no_input: silent, no_match: confused}
  billing: {hangup: Billing.}
  tech: {hangup: Tech.}
  silent: {hangup: Silent.}
  confused: {hangup: Confused.}
"""


async def test_menu_option_by_key() -> None:
    result, channel = await run(MENU, [keys("2")])
    assert (result.outcome, result.end_node, result.path) == ("hangup", "tech", ["menu", "tech"])
    assert channel.transcript == [("flow", "Press 1 for billing or 2 for support."), ("caller", "[keys 2]"),
                                  ("flow", "Tech.")]  # fmt: skip
    [request] = channel.requests
    assert (request.max_digits, request.timeout, request.speech) == (1, 4.0, True)
    assert request.grammar == ("billing", "my bill", "support", "technical support", "tech")
    assert result.variables["last"] == {"kind": "dtmf", "digits": "2", "text": "", "confidence": 0.0,
                                        "input": "2", "node": "menu"}  # fmt: skip


@pytest.mark.parametrize(
    ("said", "end"),
    [
        ("Billing", "billing"),  # a synonym, any case
        ("my bill!", "billing"),  # punctuation ignored
        ("I have a question about my bill", "billing"),  # a sentence containing a synonym
        ("technical support please", "tech"),  # the longest phrase wins over "support"
        ("support", "billing"),
    ],
)
async def test_menu_option_by_speech(said: str, end: str) -> None:
    result, _ = await run(MENU, [speech(said)])
    assert result.path == ["menu", end]


async def test_menu_chinese_speech_containing_a_synonym() -> None:
    text = MENU.replace("[billing, my bill, support]", "[billing, 账单]")
    result, _ = await run(text, [speech("我要查账单")])
    assert result.path == ["menu", "billing"]


async def test_menu_no_match_retries_then_exit() -> None:
    result, channel = await run(MENU, [keys("7"), speech("weather"), keys("9")])
    assert result.path == ["menu", "confused"]
    assert channel.transcript == [
        ("flow", "Press 1 for billing or 2 for support."), ("caller", "[keys 7]"),
        ("flow", "I did not get that."), ("flow", "One billing, two support."), ("caller", "weather"),
        ("flow", "I did not get that."), ("flow", "One billing, two support."), ("caller", "[keys 9]"),
        ("flow", "Confused."),
    ]  # fmt: skip
    assert [n for n in channel.notes if n[0] == "input"] == [
        ("input", "no_match '7'"), ("input", "no_match 'weather'"), ("input", "no_match '9'"),
    ]  # fmt: skip


async def test_menu_no_input_retries_then_exit() -> None:
    result, channel = await run(MENU, [SILENCE, SILENCE, SILENCE])
    assert result.path == ["menu", "silent"]
    assert flow_said(channel) == [
        "Press 1 for billing or 2 for support.",
        "I did not hear you.", "One billing, two support.",
        "I did not hear you.", "One billing, two support.",
        "Silent.",
    ]  # fmt: skip


async def test_menu_counts_silence_and_wrong_answers_separately() -> None:
    result, channel = await run(MENU, [SILENCE, keys("5"), SILENCE, keys("6"), keys("1")])
    assert result.path == ["menu", "billing"]
    assert len(channel.requests) == 5


async def test_menu_retry_counts_come_from_the_node() -> None:
    retries = "      retries: {no_input: 0, no_match: 1}\n"
    text = MENU.replace("      on: {no_input", retries + "      on: {no_input")
    result, channel = await run(text, [keys("5"), SILENCE])
    assert result.path == ["menu", "silent"]
    assert len(channel.requests) == 2


async def test_menu_question_exit_takes_free_speech() -> None:
    text = MENU.replace("no_match: confused}", "no_match: confused, question: faq}")
    text += "  faq: {hangup: FAQ.}\n"
    result, _ = await run(text, [speech("Can I keep my number?")])
    assert result.path == ["menu", "faq"]
    assert result.variables["question"] == "Can I keep my number?"
    # keys that are no option are still a no_match, not a question
    result, _ = await run(text, [keys("8"), keys("8"), keys("8")])
    assert result.path == ["menu", "confused"]


async def test_menu_missing_exit_falls_back_to_next() -> None:
    result, _ = await run("""
        flow: t
        start: menu
        nodes:
          menu:
            menu:
              options: {"1": {next: one}}
              retries: {no_input: 0, no_match: 0}
            next: fallback
          one: {say: One.}
          fallback: {say: Fallback.}
    """, [SILENCE])  # fmt: skip
    assert result.path == ["menu", "fallback"]


# ---- input --------------------------------------------------------------------------------------------
INPUT = """
flow: t
start: account
defaults: {inter_digit_timeout: 2}
nodes:
  account:
    input:
      store: account
      min_length: 3
      max_length: 6
      finish_on_key: "#"
      prompt: Your account number?
      no_match_prompt: Invalid.
      on: {no_input: silent, no_match: invalid}
    next: done
  done: {say: "Account {{ account }}."}
  silent: {say: Silent.}
  invalid: {say: Gave up.}
"""


async def test_input_digits_with_finish_key() -> None:
    result, channel = await run(INPUT, [keys("1234#")])
    assert result.path == ["account", "done"]
    assert result.variables["account"] == "1234"
    assert flow_said(channel) == ["Your account number?", "Account 1234."]
    [request] = channel.requests
    assert (request.max_digits, request.finish_on_key, request.inter_digit_timeout) == (7, "#", 2.0)


async def test_input_length_limits() -> None:
    result, channel = await run(INPUT, [keys("12#"), keys("1234567#"), keys("123")])
    assert result.variables["account"] == "123"
    assert flow_said(channel) == ["Your account number?", "Invalid.", "Your account number?", "Invalid.",
                                  "Your account number?", "Account 123."]  # fmt: skip


async def test_input_too_many_bad_values_take_no_match() -> None:
    result, _ = await run(INPUT, [keys("1#"), keys("#"), keys("1234567")])
    assert result.path == ["account", "invalid"]
    assert "account" not in result.variables


async def test_input_pattern_rejects_then_accepts() -> None:
    text = INPUT.replace("min_length: 3", 'min_length: 3\n      pattern: "4[0-9]{3}"')
    result, _ = await run(text, [keys("1234#"), keys("42#"), keys("4321#")])
    assert result.variables["account"] == "4321"
    assert result.path == ["account", "done"]


@pytest.mark.parametrize(("said", "value"), [("four two one", "421"), ("Oh, five 5 six!", "0556")])
async def test_input_spoken_digits(said: str, value: str) -> None:
    result, _ = await run(INPUT, [speech(said)])
    assert result.variables["account"] == value


async def test_input_speech_mode_keeps_the_text() -> None:
    text = INPUT.replace("store: account", "store: account\n      mode: speech")
    result, _ = await run(text, [keys("123#"), speech("  Ann Lee  ")])
    assert result.variables["account"] == "Ann Lee"
    assert result.path == ["account", "done"]


async def test_input_no_input_exit() -> None:
    result, _ = await run(INPUT, [SILENCE, SILENCE, SILENCE])
    assert result.path == ["account", "silent"]


async def test_input_sentence_without_digits_is_no_match() -> None:
    text = INPUT.replace("min_length: 3", "min_length: 1")
    result, _ = await run(text, [speech("I want to talk to an agent"), keys("#"), keys("#")])
    assert result.path == ["account", "invalid"]


# ---- ask ----------------------------------------------------------------------------------------------
ASK = """
flow: t
start: faq
nodes:
  faq:
    ask:
      prompt: Your question?
      retries: {no_input: 1, no_match: 0}
      on: {answered: thanks, no_answer: sorry, handoff: agent, no_input: silent}
  thanks: {say: "Anything else?"}
  sorry: {say: Sorry.}
  agent: {say: Agent.}
  silent: {say: Silent.}
"""
BOT = KeywordBot({"puk": (["puk", "code"], "Your PUK code is on the SIM card holder.")})


async def test_ask_answered() -> None:
    result, channel = await run(ASK, [speech("Where is my PUK code?")], bot=BOT)
    assert result.path == ["faq", "thanks"]
    assert flow_said(channel) == [
        "Your question?",
        "Your PUK code is on the SIM card holder.",
        "Anything else?",
    ]
    assert result.variables["bot"] == {
        "question": "Where is my PUK code?",
        "entry_id": "puk",
        "answer": "Your PUK code is on the SIM card holder.",
        "confidence": 0.9,
        "handoff": False,
    }
    [request] = channel.requests
    assert (request.max_digits, request.grammar) == (0, ())


async def test_ask_answer_not_spoken_when_told_so() -> None:
    options = "\n      speak_answer: false\n      store: kb"
    text = ASK.replace("prompt: Your question?", "prompt: Your question?" + options)
    result, channel = await run(text, [speech("puk code")], bot=BOT)
    assert flow_said(channel) == ["Your question?", "Anything else?"]
    assert result.variables["kb"]["entry_id"] == "puk"


@pytest.mark.parametrize(
    ("inputs", "path"),
    [
        ([speech("Can I keep my number?")], ["faq", "sorry"]),
        ([speech("Let me speak to an agent")], ["faq", "agent"]),
        ([SILENCE, SILENCE], ["faq", "silent"]),
    ],
)
async def test_ask_no_answer_handoff_no_input(inputs: list[Heard], path: list[str]) -> None:
    result, _ = await run(ASK, inputs, bot=BOT)
    assert result.path == path


async def test_ask_handoff_and_no_input_fall_back_to_no_answer() -> None:
    text = ASK.replace("handoff: agent, no_input: silent", "")
    result, _ = await run(text, [speech("a real person please")], bot=BOT)
    assert result.path == ["faq", "sorry"]
    assert result.variables["bot"]["handoff"] is True
    result, _ = await run(text, [SILENCE, SILENCE], bot=BOT)
    assert result.path == ["faq", "sorry"]


async def test_ask_without_a_bot_is_an_error() -> None:
    result, channel = await run(ASK, [speech("hello")])
    assert result.outcome == "error"
    assert "no bot" in (result.error or "")
    assert channel.hangups == ["flow_error"]


# ---- transfer -----------------------------------------------------------------------------------------
TRANSFER = """
flow: t
start: out
nodes:
  out:
    transfer:
      queue: "{{ team }}"
      priority: 5
      skills: [billing, mandarin]
      prompt: Please hold.
      on: {failed: busy}
  busy: {hangup: All busy.}
"""


async def test_transfer_to_a_queue() -> None:
    result, channel = await run(TRANSFER, variables={"team": "billing"})
    assert (result.outcome, result.end_node, result.path) == ("transferred", "out", ["out"])
    skills = ("billing", "mandarin")
    expected = TransferRequest(queue="billing", to=None, method="bridge", priority=5, skills=skills)
    assert result.transfer == expected
    assert channel.transfers == [expected]
    assert flow_said(channel) == ["Please hold."]
    assert channel.hangups == []  # the call now belongs to the queue


async def test_transfer_to_a_sip_uri_by_refer() -> None:
    result, channel = await run(
        """
        flow: t
        start: out
        nodes:
          out: {transfer: {to: "sip:{{ ext }}@pbx.example", method: refer}}
        """,
        variables={"ext": "2001"},
    )
    assert result.outcome == "transferred"
    assert channel.transfers == [TransferRequest(to="sip:2001@pbx.example", method="refer")]


async def test_transfer_refused_takes_failed() -> None:
    channel = FakeChannel(transfer=TransferResult(False, "queue closed"))
    result, _ = await run(TRANSFER, channel=channel, variables={"team": "billing"})
    assert (result.outcome, result.path) == ("hangup", ["out", "busy"])
    assert result.variables["transfer"] == {"ok": False, "detail": "queue closed"}
    assert flow_said(channel) == ["Please hold.", "All busy."]
    assert ("transfer", "failed: queue closed") in channel.notes


async def test_transfer_refused_without_failed_exit_ends_the_flow() -> None:
    channel = FakeChannel(transfer=TransferResult(False, "no route"))
    text = TRANSFER.replace("on: {failed: busy}", "")
    result, _ = await run(text, channel=channel, variables={"team": "x"})
    assert (result.outcome, result.end_node) == ("ended", "out")
    assert channel.hangups == ["flow_end"]


# ---- set, branch, switch, goto -----------------------------------------------------------------------
async def test_set_keeps_types_and_renders_text() -> None:
    result, _ = await run(
        """
        flow: t
        start: s
        nodes:
          s:
            set:
              three: "{{ 1 + 2 }}"
              half: "{{ 1 / 2 }}"
              flag: "{{ name == 'Ann' }}"
              greeting: "Hello {{ name }}!"
              plain: just text
              number: 7
              items: ["{{ name }}", 2]
              nested: {who: "{{ name }}", vip: true}
            next: again
          again: {set: {three: "{{ three * 2 }}"}}
        """,
        variables={"name": "Ann"},
    )
    v = result.variables
    assert (v["three"], v["half"], v["flag"]) == (6, 0.5, True)
    assert type(v["three"]) is int
    assert (v["greeting"], v["plain"], v["number"]) == ("Hello Ann!", "just text", 7)
    assert v["items"] == ["Ann", 2]
    assert v["nested"] == {"who": "Ann", "vip": True}


async def test_set_text_with_two_expressions() -> None:
    result, _ = await run(
        """
        flow: t
        start: s
        nodes:
          s: {set: {full: "{{ first }} {{ last }}"}}
        """,
        variables={"first": "Ann", "last": "Lee"},
    )
    assert result.outcome == "ended", result.error
    assert result.variables["full"] == "Ann Lee"


BRANCH = """
flow: t
start: b
nodes:
  b:
    branch:
      cases:
        - when: caller.number.startswith('+44') and tries < 3
          next: uk
        - when: tries < 3
          next: world
      else: many
  uk: {say: UK.}
  world: {say: World.}
  many: {say: Many.}
"""


@pytest.mark.parametrize(
    ("caller", "tries", "end"),
    [("+441632960000", 0, "uk"), ("+15550100", 2, "world"), ("+441632960000", 3, "many")],
)
async def test_branch_takes_the_first_true_case(caller: str, tries: int, end: str) -> None:
    result, _ = await run(BRANCH, channel=FakeChannel(caller=caller), variables={"tries": tries})
    assert result.path == ["b", end]


async def test_branch_on_an_unset_variable_is_an_error() -> None:
    result, _ = await run(BRANCH)
    assert (result.outcome, result.end_node) == ("error", "b")
    assert "tries" in (result.error or "")


async def test_branch_without_else_uses_next() -> None:
    text = BRANCH.replace("      else: many", "    next: many")
    result, _ = await run(text, variables={"tries": 9})
    assert result.path == ["b", "many"]


SWITCH = """
flow: t
start: sw
nodes:
  sw:
    switch:
      value: "{{ plan }}"
      cases: {gold: gold, "1": one}
      default: other
  gold: {say: Gold.}
  one: {say: One.}
  other: {say: Other.}
"""


@pytest.mark.parametrize(("plan", "end"), [("gold", "gold"), (1, "one"), ("silver", "other")])
async def test_switch(plan: Any, end: str) -> None:
    result, channel = await run(SWITCH, variables={"plan": plan})
    assert result.path == ["sw", end]
    assert ("switch", str(plan)) in channel.notes


async def test_switch_without_default_uses_next() -> None:
    text = SWITCH.replace("      default: other", "    next: other")
    result, _ = await run(text, variables={"plan": "x"})
    assert result.path == ["sw", "other"]


async def test_goto() -> None:
    result, _ = await run("""
        flow: t
        start: a
        nodes:
          a: {goto: c}
          b: {say: Skipped.}
          c: {say: C.}
    """)
    assert result.path == ["a", "c"]


# ---- hangup, record, hours, language ------------------------------------------------------------------
async def test_hangup_with_prompt_and_reason() -> None:
    result, channel = await run("""
        flow: t
        start: bye
        nodes:
          bye: {hangup: {prompt: "Goodbye {{ caller.number }}.", reason: done}}
          never: {say: Never.}
    """)
    assert (result.outcome, result.end_node) == ("hangup", "bye")
    assert channel.said == [{"text": "Goodbye +441632960000.", "interruptible": False, "language": "en",
                             "voice": None}]  # fmt: skip
    assert channel.hangups == ["done"]


async def test_hangup_without_prompt() -> None:
    result, channel = await run("flow: t\nstart: bye\nnodes:\n  bye: {hangup: true}\n")
    assert (result.outcome, channel.transcript, channel.hangups) == ("hangup", [], ["flow_hangup"])


async def test_record() -> None:
    result, channel = await run(
        """
        flow: t
        start: vm
        nodes:
          vm:
            record:
              {prompt: After the beep., beep: true, max_seconds: 90, finish_on_key: "*", silence_timeout: 4,
               store: message}
            next: bye
          bye: {hangup: "Thanks ({{ message.seconds }} s)."}
        """,
        channel=FakeChannel(recording=RecordResult("rec-9", 12.345, {"path": "/tmp/rec-9.wav"})),
    )
    expected = RecordRequest(beep=True, max_seconds=90, finish_on_key="*", silence_timeout=4.0)
    assert channel.records == [expected]
    assert result.variables["message"] == {"id": "rec-9", "seconds": 12.35, "path": "/tmp/rec-9.wav"}
    assert flow_said(channel) == ["After the beep.", "Thanks (12.35 s)."]
    assert channel.said[0]["interruptible"] is False


HOURS = """
flow: t
start: h
nodes:
  h:
    hours:
      timezone: Europe/London
      weekly: {mon: ["09:00-17:00"]}
      holidays: [2026-04-06]
      on: {closed: shut}
    next: open
  open: {say: Open.}
  shut: {say: Shut.}
"""


@pytest.mark.parametrize(
    ("moment", "end"),
    [
        (datetime(2026, 3, 30, 8, 0, tzinfo=UTC), "open"),  # Monday 09:00 BST
        (datetime(2026, 3, 30, 7, 59, tzinfo=UTC), "shut"),
        (datetime(2026, 3, 30, 16, 0, tzinfo=UTC), "shut"),  # 17:00 BST: the span's end is excluded
        (datetime(2026, 4, 6, 10, 0, tzinfo=UTC), "shut"),  # Easter Monday holiday
    ],
)
async def test_hours(moment: datetime, end: str) -> None:
    result, channel = await run(HOURS, clock=lambda: moment)
    assert result.path == ["h", end]
    assert ("hours", "open" if end == "open" else "closed") in channel.notes


async def test_language_node_renders_and_is_visible_to_templates() -> None:
    result, channel = await run(
        """
        flow: t
        start: lang
        nodes:
          lang: {language: "{{ preferred }}", next: ask}
          ask:
            menu:
              prompt: {en: "Press 1 ({{ language }}).", zh: "请按1（{{ language }}）。"}
              options: {"1": {say_as: [一, one], next: done}}
              on: {no_input: done, no_match: done}
          done: {say: {en: Done., zh: 好的。}}
        """,
        [speech("一")],
        variables={"preferred": "zh"},
    )
    assert flow_said(channel) == ["请按1（zh）。", "好的。"]
    assert {s["language"] for s in channel.said} == {"zh"}
    assert result.variables["language"] == "zh"


# ---- subflows -----------------------------------------------------------------------------------------
MAIN = """
flow: main
start: hello
nodes:
  hello: {say: Main starts., next: call}
  call: {subflow: middle, next: after}
  after: {say: "Back in main with {{ got }}."}
"""
MIDDLE = """
flow: middle
start: m1
nodes:
  m1: {set: {got: middle}, next: m2}
  m2: {subflow: {flow: inner}, next: m3}
  m3: {say: "Middle again, inner said {{ inner_value }}."}
"""
INNER = """
flow: inner
start: i1
nodes:
  i1: {say: Inner., next: i2}
  i2: {set: {inner_value: 42}}
"""


def lookup_of(*texts: str) -> Any:
    flows = {f.flow: f for f in (flow(t) for t in texts)}
    return lambda name: (flows[name], 3) if name in flows else None


async def test_nested_subflows_return_to_next() -> None:
    result, channel = await run(MAIN, flows=lookup_of(MIDDLE, INNER))
    assert result.outcome == "ended"
    assert result.path == [
        "hello",
        "call",
        "middle:m1",
        "middle:m2",
        "inner:i1",
        "inner:i2",
        "middle:m3",
        "after",
    ]
    assert flow_said(channel) == [
        "Main starts.",
        "Inner.",
        "Middle again, inner said 42.",
        "Back in main with middle.",
    ]
    assert [n for n in channel.notes if n[0] == "flow"] == [
        ("flow", "subflow middle@3"), ("flow", "subflow inner@3"), ("flow", "return to middle"),
        ("flow", "return to main"),
    ]  # fmt: skip
    assert channel.hangups == ["flow_end"]


async def test_subflow_as_last_node_ends_the_call_after_it() -> None:
    text = MAIN.replace("call: {subflow: middle, next: after}", "call: {subflow: inner}")
    result, _ = await run(text, flows=lookup_of(INNER))
    assert (result.outcome, result.path[-1]) == ("ended", "inner:i2")


async def test_unknown_subflow_is_an_error() -> None:
    result, _ = await run(MAIN, flows=lookup_of(INNER))
    assert (result.outcome, result.end_node) == ("error", "call")
    assert "middle" in (result.error or "")


async def test_recursive_subflow_is_stopped() -> None:
    loop = "flow: loop\nstart: again\nnodes:\n  again: {subflow: loop}\n"
    result, _ = await run(loop, flows=lookup_of(loop))
    assert result.outcome == "error"
    assert "nested" in (result.error or "")


async def test_subflow_uses_the_pinned_snapshot() -> None:
    """A call resolves subflows in the snapshot taken when it started, not in what went live since."""
    registry = FlowRegistry()
    for version, word in ((1, "old"), (2, "new")):
        text = f"flow: inner\nstart: i\nnodes:\n  i: {{say: {word}.}}\n"
        registry.add("inner", version, flow(text), text)
    registry.set_live("inner", 1)
    snapshot = registry.snapshot()
    registry.set_live("inner", 2)
    _, channel = await run(MAIN.replace("subflow: middle", "subflow: inner"), flows=snapshot)
    assert flow_said(channel) == ["Main starts.", "old.", "Back in main with ."]
    assert ("flow", "subflow inner@1") in channel.notes
    _, channel = await run(MAIN.replace("subflow: middle", "subflow: inner"), flows=registry.snapshot())
    assert "new." in flow_said(channel)


async def test_hangup_inside_a_subflow_names_the_subflow_node() -> None:
    inner = "flow: inner\nstart: bye\nnodes:\n  bye: {hangup: Bye.}\n"
    result, _ = await run(MAIN.replace("subflow: middle", "subflow: inner"), flows=lookup_of(inner))
    assert result.outcome == "hangup"
    assert result.end_node == result.path[-1] == "inner:bye"


# ---- errors and endings -------------------------------------------------------------------------------
async def test_loop_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "MAX_STEPS", 25)
    result, channel = await run("""
        flow: t
        start: a
        nodes:
          a: {set: {n: "{{ n + 1 }}"}, next: b}
          b: {goto: a}
    """, variables={"n": 0})  # fmt: skip
    assert result.outcome == "error"
    assert "looping" in (result.error or "")
    assert len(result.path) == 25
    assert result.variables["n"] == 13
    assert channel.hangups == ["flow_error"]


@pytest.mark.parametrize(
    "prompt",
    [
        "{{ 1 + }}",
        "{{ caller.number.nope.deeper }}",
        "{{ 'x' | no_such_filter }}",
        "{{ 1 / 0 }}",
        "{{ ().__class__.__mro__ }}",
    ],
)
async def test_template_errors_end_the_call_with_error(prompt: str) -> None:
    text = f'flow: t\nstart: s\nnodes:\n  s: {{say: "{prompt}", next: t}}\n  t: {{say: T.}}\n'
    result, channel = await run(text)
    assert (result.outcome, result.end_node) == ("error", "s"), result
    assert result.error
    assert channel.transcript == []
    assert channel.hangups == ["flow_error"]
    assert channel.notes[-1][0] == "error"


async def test_goto_a_missing_node_is_an_error() -> None:
    result, _ = await run("flow: t\nstart: a\nnodes:\n  a: {goto: nowhere}\n")
    assert (result.outcome, result.path) == ("error", ["a"])
    assert "nowhere" in (result.error or "")


async def test_caller_hangup_when_the_input_runs_out() -> None:
    result, channel = await run(MENU, [keys("5")])
    assert (result.outcome, result.end_node, result.path) == ("caller_hangup", "menu", ["menu"])
    assert len(channel.requests) == 2
    assert channel.hangups == []


async def test_caller_hangup_during_a_prompt() -> None:
    class Gone(FakeChannel):
        async def say(self, text: str, **kwargs: Any) -> bool:
            raise ChannelClosed("gone")

    result, _ = await run("flow: t\nstart: s\nnodes:\n  s: {say: Hello.}\n", channel=Gone())
    assert (result.outcome, result.end_node) == ("caller_hangup", "s")


async def test_result_variables_leave_out_call_metadata() -> None:
    text = "flow: t\nstart: s\nnodes:\n  s: {set: {x: 1}}\n"
    result, _ = await run(text, variables={"vip": True})
    assert not {"caller", "call", "flow"} & set(result.variables)
    assert {k: result.variables[k] for k in ("last", "language", "vip", "x")} == {
        "last": {},
        "language": "en",
        "vip": True,
        "x": 1,
    }


async def test_templates_see_the_flow_clock() -> None:
    moment = datetime(2026, 3, 30, 9, 5, tzinfo=UTC)
    text = "flow: t\nstart: s\nnodes:\n  s: {say: \"It is {{ now.strftime('%H:%M') }} UTC.\"}\n"
    _, channel = await run(text, clock=lambda: moment)
    assert flow_said(channel) == ["It is 09:05 UTC."]
