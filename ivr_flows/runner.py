"""The flow runner: executes one flow version for one conversation against a `Channel`.

One runner serves every channel (phone, text simulator, chat). It owns the retry counters, the variables
and the path taken; the channel owns audio, text and timing. Exits follow ivr_flows.graph's rules: an outcome
in the action's `on:` map goes there, otherwise to the node's `next`, otherwise the flow ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.interface import Bot, BotRequest
from ivr_flows import hours as hours_check
from ivr_flows.channel import Channel, ChannelClosed, Heard, ListenRequest, RecordRequest, TransferRequest
from ivr_flows.schema import (
    AskNode,
    BranchNode,
    Flow,
    GotoNode,
    HangupNode,
    HoursNode,
    HttpNode,
    InputNode,
    InputSettings,
    LanguageNode,
    MenuNode,
    NodeBase,
    Prompt,
    RecordNode,
    SayNode,
    SetNode,
    SubflowNode,
    SwitchNode,
    TransferNode,
)
from ivr_flows.templating import TemplateError, evaluate, render, render_value
from ivr_flows.webhook import call_webhook

log = logging.getLogger(__name__)

MAX_STEPS = 10_000  # a flow that runs this many nodes in one conversation is looping
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)
_SPOKEN_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "star": "*", "pound": "#", "hash": "#",
    "零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6",
    "七": "7", "八": "8", "九": "9",
}  # fmt: skip

FlowLookup = Callable[[str], "tuple[Flow, int | None] | None"]


@dataclass
class RunResult:
    outcome: str  # ended | hangup | transferred | caller_hangup | error
    end_node: str | None
    path: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    transfer: TransferRequest | None = None


class FlowRunError(RuntimeError):
    pass


class _Frame:
    """One flow on the subflow stack."""

    def __init__(self, flow: Flow, version: int | None, return_to: str | None) -> None:
        self.flow = flow
        self.version = version
        self.return_to = return_to


class FlowRunner:
    def __init__(
        self, flow: Flow, channel: Channel, *, version: int | None = None, bot: Bot | None = None,
        flows: FlowLookup | None = None, clock: Callable[[], datetime] | None = None,
        variables: dict[str, Any] | None = None, http_client: Any = None,
    ) -> None:  # fmt: skip
        self.channel = channel
        self.bot = bot
        self.flows = flows
        self.clock = clock or (lambda: datetime.now(UTC))
        self.http_client = http_client
        self.stack = [_Frame(flow, version, None)]
        self.language = flow.language
        self.path: list[str] = []
        self._pending_question: str | None = None
        self.vars: dict[str, Any] = {
            "caller": {"number": channel.caller},
            "call": {"id": channel.conversation_id, "channel": channel.kind},
            "flow": {"name": flow.flow, "version": version},
            "last": {},
            **(variables or {}),
        }

    @property
    def flow(self) -> Flow:
        return self.stack[-1].flow

    # ---- main loop -------------------------------------------------------------------------
    async def run(self) -> RunResult:
        node_name: str | None = self.flow.start
        try:
            for _ in range(MAX_STEPS):
                if node_name is None:
                    frame = self.stack.pop()
                    if not self.stack:
                        await self.channel.hangup("flow_end")
                        return self._result("ended", self.path[-1] if self.path else None)
                    node_name = frame.return_to
                    self._note("flow", f"return to {self.flow.flow}")
                    continue
                node = self.flow.nodes.get(node_name)
                if node is None:
                    raise FlowRunError(f"node {node_name!r} does not exist in flow {self.flow.flow!r}")
                self.path.append(node_name if len(self.stack) == 1 else f"{self.flow.flow}:{node_name}")
                self._note("node", self.path[-1])
                self.vars["language"] = self.language
                self.vars["now"] = self.clock()
                outcome = await self._step(node_name, node)
                if isinstance(outcome, RunResult):
                    return outcome
                node_name = outcome
            raise FlowRunError(f"more than {MAX_STEPS} steps: the flow is looping")
        except ChannelClosed:
            return self._result("caller_hangup", self.path[-1] if self.path else None)
        except (FlowRunError, TemplateError) as exc:
            log.error("flow %s failed at %s: %s", self.flow.flow, self.path[-1] if self.path else "-", exc)
            self._note("error", str(exc))
            with contextlib.suppress(ChannelClosed):
                await self.channel.hangup("flow_error")
            return self._result("error", self.path[-1] if self.path else None, error=str(exc))

    def _result(self, outcome: str, end: str | None, **extra: Any) -> RunResult:
        variables = {k: v for k, v in self.vars.items() if k not in ("caller", "call", "flow", "now")}
        return RunResult(outcome, end, list(self.path), variables, **extra)

    def _note(self, type: str, value: str) -> None:
        self.channel.note(type, value)

    @staticmethod
    def _exit(node: NodeBase, on: Any, outcome: str, *fallbacks: str) -> str | None:
        """on.<outcome>, then on.<fallback>..., then the node's next."""
        for name in (outcome, *fallbacks):
            target = getattr(on, name, None) if on is not None else None
            if target:
                return target
        return node.next

    # ---- prompts ---------------------------------------------------------------------------
    def _texts(self, prompt: Prompt | None) -> list[str]:
        if prompt is None:
            return []
        if isinstance(prompt, dict):
            chosen = prompt.get(self.language) or prompt.get(self.flow.language) or next(iter(prompt.values()))
            prompt = chosen
        items = [prompt] if isinstance(prompt, str) else list(prompt)
        return [text for text in (render(item, self.vars).strip() for item in items) if text]

    async def _say(self, prompt: Prompt | None, *, interruptible: bool | None = None, voice: str | None = None) -> None:
        allow = self.flow.defaults.interruptible if interruptible is None else interruptible
        for text in self._texts(prompt):
            await self.channel.say(
                text, interruptible=allow, language=self.language, voice=voice or self.flow.defaults.voice
            )

    def _listen_request(self, spec: InputSettings, **overrides: Any) -> ListenRequest:
        defaults = self.flow.defaults
        interruptible = defaults.interruptible if spec.interruptible is None else spec.interruptible
        values: dict[str, Any] = {
            "timeout": spec.timeout or defaults.timeout, "inter_digit_timeout": defaults.inter_digit_timeout,
            "endpointing_ms": defaults.endpointing_ms, "interruptible": interruptible,
        }  # fmt: skip
        values.update(overrides)
        return ListenRequest(**values)

    async def _collect(
        self, spec: InputSettings, request: ListenRequest, accept: Callable[[Heard], Any | None], node_name: str
    ) -> tuple[str, Heard, Any]:
        """Prompt, listen, validate, re-prompt: returns ("ok" | "no_input" | "no_match", heard, accepted value)."""
        retries = spec.retries or self.flow.defaults.retries
        no_inputs = no_matches = 0
        preface: list[str] = []
        first = True
        while True:
            prompt = spec.prompt if first or spec.reprompt is None else spec.reprompt
            texts = preface + self._texts(prompt)
            heard = await self.channel.prompt_and_listen(
                texts, request, language=self.language, voice=self.flow.defaults.voice
            )
            first = False
            self.vars["last"] = {
                "kind": heard.kind, "digits": heard.digits, "text": heard.text, "confidence": heard.confidence,
                "input": heard.digits or heard.text, "node": node_name,
            }  # fmt: skip
            if heard.kind == "no_input":
                no_inputs += 1
                self._note("input", "no_input")
                if no_inputs > retries.no_input:
                    return "no_input", heard, None
                preface = self._texts(spec.no_input_prompt or self.flow.defaults.no_input_prompt)
                continue
            value = accept(heard)
            if value is not None:
                return "ok", heard, value
            no_matches += 1
            self._note("input", f"no_match {heard.digits or heard.text!r}")
            if no_matches > retries.no_match:
                return "no_match", heard, None
            preface = self._texts(spec.no_match_prompt or self.flow.defaults.no_match_prompt)

    # ---- node kinds ------------------------------------------------------------------------
    async def _step(self, name: str, node: NodeBase) -> str | RunResult | None:
        handler = getattr(self, f"_run_{type(node).__name__}")
        return await handler(name, node)

    async def _run_SayNode(self, name: str, node: SayNode) -> str | None:
        action = node.say
        saved = self.language
        if action.language:
            self.language = action.language
        await self._say(action.text, interruptible=action.interruptible, voice=action.voice)
        self.language = saved
        return node.next

    async def _run_MenuNode(self, name: str, node: MenuNode) -> str | None:
        menu = node.menu
        phrases: dict[str, str] = {}
        for key, option in menu.options.items():
            for phrase in option.say_as:
                phrases[_normalize(phrase)] = key
        question: list[str] = []

        def accept(heard: Heard) -> str | None:
            if heard.kind == "dtmf":
                return heard.digits[:1] if heard.digits[:1] in menu.options else None
            said = _normalize(heard.text)
            if said in phrases:
                return phrases[said]
            for phrase, key in sorted(phrases.items(), key=lambda item: -len(item[0])):
                if phrase and _contains_phrase(said, phrase):
                    return key
            if menu.on.question and said:
                question.append(heard.text)
                return "?question"
            return None

        # With a `question` exit the caller may say anything, so recognize freely and look for the synonyms in
        # the text; otherwise restrict recognition to the synonyms (far more accurate on 8 kHz audio).
        grammar = () if menu.on.question else tuple(phrase for o in menu.options.values() for phrase in o.say_as)
        request = self._listen_request(menu, max_digits=1, grammar=grammar)
        outcome, _heard, key = await self._collect(menu, request, accept, name)
        if outcome == "ok" and key == "?question":
            self.vars["question"] = question[-1]
            self._pending_question = question[-1]  # an `ask` node next uses it instead of asking again
            self._note("menu", f"question {question[-1]!r}")
            return menu.on.question
        if outcome == "ok":
            self._note("menu", f"option {key}")
            return menu.options[key].next
        return self._exit(node, menu.on, outcome)

    async def _run_InputNode(self, name: str, node: InputNode) -> str | None:
        spec = node.input
        pattern = re.compile(spec.pattern) if spec.pattern else None

        def accept(heard: Heard) -> str | None:
            if heard.kind == "dtmf" and spec.mode in ("digits", "any"):
                value = heard.digits
                if spec.finish_on_key:
                    value = value.split(spec.finish_on_key, 1)[0]
            elif heard.kind == "speech" and spec.mode in ("digits", "any"):
                value = _spoken_digits(heard.text)  # "four two" -> "42"
                if not value and spec.mode == "any":
                    value = heard.text.strip()
            elif heard.kind == "speech":
                value = heard.text.strip()
            else:
                return None
            if not value:
                return None
            if value.isdigit() and not spec.min_length <= len(value) <= spec.max_length:
                return None
            if pattern is not None and not pattern.fullmatch(value):
                return None
            return value

        request = self._listen_request(
            spec, max_digits=spec.max_length + (1 if spec.finish_on_key else 0), finish_on_key=spec.finish_on_key,
            inter_digit_timeout=spec.inter_digit_timeout or self.flow.defaults.inter_digit_timeout,
        )  # fmt: skip
        outcome, _, value = await self._collect(spec, request, accept, name)
        if outcome == "ok":
            self.vars[spec.store] = value
            self._note("input", f"{spec.store}={value}")
            return node.next
        return self._exit(node, spec.on, outcome)

    async def _run_AskNode(self, name: str, node: AskNode) -> str | None:
        spec = node.ask
        pending, self._pending_question = self._pending_question, None
        if pending:
            heard = Heard("speech", text=pending, confidence=1.0)
        else:
            request = self._listen_request(spec, max_digits=0, grammar=())
            outcome, heard, _ = await self._collect(spec, request, lambda h: h.text or None, name)
            if outcome != "ok":
                return self._exit(node, spec.on, "no_input", "no_answer")
        if self.bot is None:
            raise FlowRunError("this flow asks the bot, but no bot is configured")
        answer = await self.bot.ask(
            BotRequest(heard.text, self.language, self.channel.conversation_id, self.channel.kind)
        )
        self.vars[spec.store] = {
            "question": heard.text, "entry_id": answer.entry_id, "answer": answer.answer,
            "confidence": answer.confidence, "handoff": answer.handoff,
        }  # fmt: skip
        self._note("bot", json.dumps({
            "question": heard.text, "entry_id": answer.entry_id, "confidence": round(answer.confidence, 3),
            "handoff": answer.handoff, "context": answer.extra.get("context"),
        }, ensure_ascii=False))  # fmt: skip
        if answer.handoff:
            return self._exit(node, spec.on, "handoff", "no_answer")
        if answer.answered:
            if spec.speak_answer and answer.answer:
                await self.channel.say(answer.answer, interruptible=True, language=self.language)
            return self._exit(node, spec.on, "answered")
        return self._exit(node, spec.on, "no_answer")

    async def _run_TransferNode(self, name: str, node: TransferNode) -> str | RunResult | None:
        spec = node.transfer
        await self._say(spec.prompt)
        request = TransferRequest(
            queue=render(spec.queue, self.vars) if spec.queue else None,
            to=render(spec.to, self.vars) if spec.to else None,
            method=spec.method, priority=spec.priority, skills=tuple(spec.skills), language=self.language,
        )  # fmt: skip
        self._note("transfer", (request.queue and f"queue {request.queue}") or f"{request.method} {request.to}")
        result = await self.channel.transfer(request)
        if result.ok:
            return self._result("transferred", self.path[-1], transfer=request)
        self._note("transfer", f"failed: {result.detail}")
        self.vars["transfer"] = {"ok": False, "detail": result.detail}
        target = self._exit(node, spec.on, "failed")
        return target

    async def _run_SetNode(self, name: str, node: SetNode) -> str | None:
        for variable, value in node.set.items():
            self.vars[variable] = self._value(value)
        return node.next

    def _value(self, value: Any) -> Any:
        """A lone `{{ expr }}` keeps its type (numbers stay numbers); other strings render to text."""
        if isinstance(value, str):
            match = _SINGLE_EXPRESSION.match(value)
            if match:
                return evaluate(match.group(1), self.vars)
        return render_value(value, self.vars)

    async def _run_BranchNode(self, name: str, node: BranchNode) -> str | None:
        for case in node.branch.cases:
            if evaluate(case.when, self.vars):
                self._note("branch", case.when)
                return case.next
        return node.branch.otherwise or node.next

    async def _run_SwitchNode(self, name: str, node: SwitchNode) -> str | None:
        value = render(node.switch.value, self.vars).strip()
        self._note("switch", value)
        return node.switch.cases.get(value) or node.switch.default or node.next

    async def _run_GotoNode(self, name: str, node: GotoNode) -> str | None:
        return node.goto

    async def _run_HangupNode(self, name: str, node: HangupNode) -> RunResult:
        await self._say(node.hangup.prompt, interruptible=False)
        await self.channel.hangup(node.hangup.reason)
        return self._result("hangup", self.path[-1])

    async def _run_SubflowNode(self, name: str, node: SubflowNode) -> str | None:
        target = node.subflow.flow
        found = self.flows(target) if self.flows else None
        if found is None:
            raise FlowRunError(f"subflow {target!r} is not loaded")
        flow, version = found
        if len(self.stack) > 16:
            raise FlowRunError("subflows nested more than 16 deep")
        self.stack.append(_Frame(flow, version, node.next))
        self._note("flow", f"subflow {flow.flow}@{version}")
        return flow.start

    async def _run_HttpNode(self, name: str, node: HttpNode) -> str | None:
        spec = node.http
        outcome, stored = await call_webhook(spec, self.vars, client=self.http_client)
        self.vars[spec.store] = stored
        if outcome == "ok":  # a failed lookup must not wipe values the flow already has
            for variable, dotted in spec.map.items():
                self.vars[variable] = _dig(stored.get("json"), dotted)
        self._note("http", f"{outcome} {stored.get('status')}")
        return self._exit(node, spec.on, outcome, *(("error",) if outcome == "timeout" else ()))

    async def _run_HoursNode(self, name: str, node: HoursNode) -> str | None:
        is_open = hours_check.is_open(node.hours, self.clock())
        self._note("hours", "open" if is_open else "closed")
        return self._exit(node, node.hours.on, "open" if is_open else "closed")

    async def _run_RecordNode(self, name: str, node: RecordNode) -> str | None:
        spec = node.record
        await self._say(spec.prompt, interruptible=False)
        result = await self.channel.record(
            RecordRequest(spec.beep, spec.max_seconds, spec.finish_on_key, spec.silence_timeout)
        )
        self.vars[spec.store] = {"id": result.recording_id, "seconds": round(result.seconds, 2), **result.extra}
        return node.next

    async def _run_LanguageNode(self, name: str, node: LanguageNode) -> str | None:
        self.language = render(node.language, self.vars)
        self._note("language", self.language)
        return node.next


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _contains_phrase(said: str, phrase: str) -> bool:
    """Whole-word containment; Chinese/Japanese/Korean have no spaces, so there any substring counts."""
    if _CJK.search(phrase):
        return phrase.replace(" ", "") in said.replace(" ", "")
    return re.search(rf"\b{re.escape(phrase)}\b", said) is not None


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _spoken_digits(text: str) -> str:
    """"four two" -> "42", "一二三" -> "123"; anything that is not all digits gives "" (a no_match, not a guess)."""
    words = _normalize(text).split()
    if len(words) == 1 and _CJK.search(words[0]):
        words = list(words[0])
    out = []
    for word in words:
        if word.isdigit():
            out.append(word)
        elif word in _SPOKEN_DIGITS:
            out.append(_SPOKEN_DIGITS[word])
        else:
            return ""
    return "".join(out)


def _dig(data: Any, dotted: str) -> Any:
    current = data
    for part in dotted.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current
