"""The flow language: pydantic models that reject unknown keys, and the exits each node kind can take.

A flow is a named graph of nodes. Each node has exactly one action key (`say`, `menu`, ...), an optional
node-level `next` (where to continue by default) and, for actions with several outcomes, an `on:` map from
outcome to node. An outcome missing from `on` continues at `next`; an outcome with neither is a lint error.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

NODE_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DTMF_KEYS = "0123456789*#ABCD"

# A prompt is text, a list of texts (played in turn), or a map language -> text or list.
Text = Annotated[str, Field(min_length=1)]
Prompt = Text | list[Text] | dict[str, Text | list[Text]]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retries(Strict):
    no_input: int = Field(2, ge=0, le=10, description="re-prompts after silence before taking the no_input exit")
    no_match: int = Field(2, ge=0, le=10, description="re-prompts after a wrong answer before taking no_match")


class RecordingSettings(Strict):
    """Whether and how this flow's calls are recorded (WAV, one channel per party)."""

    enabled: bool = Field(
        True, description="false: calls of this flow are never recorded, not even with an agent (voicemails are)"
    )
    scope: Literal["call", "agent"] = Field(
        "agent",
        description="call: the whole call from the answer (caller + bot in two channels, then caller + agent); "
        "agent: only the conversation with an agent (caller + agent)",
    )
    consent: Prompt | None = Field(
        None, description="said first on every call, before the start node, e.g. 'This call may be recorded.'"
    )


class Defaults(Strict):
    timeout: float = Field(5.0, gt=0, le=120, description="seconds to wait for the caller to start answering")
    inter_digit_timeout: float = Field(3.0, gt=0, le=60)
    retries: Retries = Field(default_factory=Retries)
    no_input_prompt: Prompt | None = Field(None, description="said before re-prompting after silence")
    no_match_prompt: Prompt | None = Field(None, description="said before re-prompting after a wrong answer")
    voice: str | None = None
    interruptible: bool = True
    endpointing_ms: int = Field(300, ge=100, le=3000, description="silence that ends an utterance")
    recording: RecordingSettings = Field(default_factory=RecordingSettings)


class InputSettings(Strict):
    """What every node that waits for the caller shares; unset values come from the flow's defaults."""

    prompt: Prompt | None = None
    timeout: float | None = Field(None, gt=0, le=120)
    retries: Retries | None = None
    reprompt: Prompt | None = Field(None, description="said instead of `prompt` on retries")
    no_input_prompt: Prompt | None = None
    no_match_prompt: Prompt | None = None
    interruptible: bool | None = None


# ---- actions --------------------------------------------------------------------------------------
class SayAction(Strict):
    text: Prompt
    interruptible: bool | None = None
    language: str | None = None
    voice: str | None = None


class MenuOption(Strict):
    say_as: list[Text] = Field(default_factory=list, description="spoken synonyms of this option")
    next: str = Field(pattern=NODE_NAME)


class MenuExits(Strict):
    no_input: str | None = Field(None, pattern=NODE_NAME)
    no_match: str | None = Field(None, pattern=NODE_NAME)
    question: str | None = Field(None, pattern=NODE_NAME, description="free speech that matches no option")


class MenuAction(InputSettings):
    options: dict[str, MenuOption] = Field(min_length=1)
    on: MenuExits = Field(default_factory=MenuExits)

    @field_validator("options")
    @classmethod
    def _keys_are_dtmf(cls, options: dict[str, MenuOption]) -> dict[str, MenuOption]:
        for key in options:
            if len(key) != 1 or key not in DTMF_KEYS:
                raise ValueError(f"option key {key!r} must be one DTMF key (0-9, *, #, A-D)")
        return options


class InputExits(Strict):
    no_input: str | None = Field(None, pattern=NODE_NAME)
    no_match: str | None = Field(None, pattern=NODE_NAME)


class InputAction(InputSettings):
    store: str = Field(pattern=VARIABLE_NAME, description="variable that receives the value")
    mode: Literal["digits", "speech", "any"] = "digits"
    min_length: int = Field(1, ge=0, le=64)
    max_length: int = Field(16, ge=1, le=64)
    finish_on_key: str | None = Field("#", description="key that ends entry early (not stored)")
    inter_digit_timeout: float | None = Field(None, gt=0, le=60)
    pattern: str | None = Field(None, description="regular expression the whole value must match")
    on: InputExits = Field(default_factory=InputExits)

    @field_validator("pattern")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern

    @field_validator("finish_on_key")
    @classmethod
    def _finish_key(cls, key: str | None) -> str | None:
        if key is not None and (len(key) != 1 or key not in DTMF_KEYS):
            raise ValueError("finish_on_key must be one DTMF key")
        return key

    @model_validator(mode="after")
    def _lengths(self) -> InputAction:
        if self.min_length > self.max_length:
            raise ValueError("min_length is larger than max_length")
        return self


class AskExits(Strict):
    answered: str | None = Field(None, pattern=NODE_NAME)
    no_answer: str | None = Field(None, pattern=NODE_NAME)
    handoff: str | None = Field(None, pattern=NODE_NAME)
    no_input: str | None = Field(None, pattern=NODE_NAME)


class AskAction(InputSettings):
    store: str = Field("bot", pattern=VARIABLE_NAME, description="variable that receives the bot's result")
    speak_answer: bool = Field(True, description="say the bot's answer before taking the answered exit")
    on: AskExits = Field(default_factory=AskExits)


class TransferExits(Strict):
    failed: str | None = Field(None, pattern=NODE_NAME)


class TransferAction(Strict):
    queue: str | None = None
    to: str | None = Field(None, description="SIP URI to bridge or REFER to")
    method: Literal["bridge", "refer"] = "bridge"
    priority: int = Field(0, ge=0, le=100)
    skills: list[str] = Field(default_factory=list)
    prompt: Prompt | None = None
    on: TransferExits = Field(default_factory=TransferExits)

    @model_validator(mode="after")
    def _one_target(self) -> TransferAction:
        if (self.queue is None) == (self.to is None):
            raise ValueError("transfer needs exactly one of `queue` or `to`")
        if self.to is not None and not self.to.startswith(("sip:", "sips:", "{{")):
            raise ValueError("transfer `to` must be a sip: URI")
        return self


class BranchCase(Strict):
    when: str = Field(min_length=1, description="a Jinja expression, e.g. caller.number.startswith('+44')")
    next: str = Field(pattern=NODE_NAME)


class BranchAction(Strict):
    cases: list[BranchCase] = Field(min_length=1)
    otherwise: str | None = Field(None, alias="else", pattern=NODE_NAME)


class SwitchAction(Strict):
    value: str = Field(min_length=1, description="a template whose result selects the case")
    cases: dict[str, str] = Field(min_length=1)
    default: str | None = Field(None, pattern=NODE_NAME)


class HangupAction(Strict):
    prompt: Prompt | None = None
    reason: str = "flow_hangup"


class SubflowAction(Strict):
    flow: str = Field(min_length=1)


class HttpExits(Strict):
    ok: str | None = Field(None, pattern=NODE_NAME)
    error: str | None = Field(None, pattern=NODE_NAME)
    timeout: str | None = Field(None, pattern=NODE_NAME)


class HttpAction(Strict):
    url: str = Field(min_length=1)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(None, alias="json", description="templated JSON body")
    timeout: float = Field(5.0, gt=0, le=60)
    store: str = Field("http", pattern=VARIABLE_NAME, description="variable that receives {status, json}")
    map: dict[str, str] = Field(
        default_factory=dict, description="variable -> dotted path in the JSON response, e.g. account.balance"
    )
    on: HttpExits = Field(default_factory=HttpExits)


class HoursExits(Strict):
    open: str | None = Field(None, pattern=NODE_NAME)
    closed: str | None = Field(None, pattern=NODE_NAME)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class HoursAction(Strict):
    timezone: str
    weekly: dict[str, list[str]] = Field(description="mon..sun -> spans like 08:00-20:00")
    holidays: list[date] = Field(default_factory=list)
    on: HoursExits = Field(default_factory=HoursExits)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/London)") from None
        return name

    @field_validator("weekly")
    @classmethod
    def _spans(cls, weekly: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in weekly.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown day {day!r}; use {', '.join(WEEKDAYS)}")
            for span in spans:
                match = _SPAN.match(span)
                if not match:
                    raise ValueError(f"{day}: {span!r} is not a span like 08:00-20:00")
                start = int(match[1]) * 60 + int(match[2])
                end = int(match[3]) * 60 + int(match[4])
                if end <= start or end > 24 * 60:
                    raise ValueError(f"{day}: {span!r} ends before it starts")
        return weekly


class RecordAction(Strict):
    prompt: Prompt | None = None
    beep: bool = True
    max_seconds: int = Field(120, ge=1, le=3600)
    finish_on_key: str | None = "#"
    silence_timeout: float = Field(5.0, gt=0, le=60)
    store: str = Field("recording", pattern=VARIABLE_NAME)


# ---- nodes ----------------------------------------------------------------------------------------
class NodeBase(Strict):
    next: str | None = Field(None, pattern=NODE_NAME, description="where to continue by default")
    description: str | None = None


def _prompt_action(value: Any) -> Any:
    """`say: "text"` is shorthand for `say: {text: "text"}`."""
    if isinstance(value, str | list) or (isinstance(value, dict) and "text" not in value):
        return {"text": value}
    return value


class SayNode(NodeBase):
    say: SayAction

    @field_validator("say", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _prompt_action(value)


class MenuNode(NodeBase):
    menu: MenuAction


class InputNode(NodeBase):
    input: InputAction


class AskNode(NodeBase):
    ask: AskAction


class TransferNode(NodeBase):
    transfer: TransferAction


class SetNode(NodeBase):
    set: dict[Annotated[str, Field(pattern=VARIABLE_NAME)], Any] = Field(min_length=1)


class BranchNode(NodeBase):
    branch: BranchAction


class SwitchNode(NodeBase):
    switch: SwitchAction


class GotoNode(NodeBase):
    goto: str = Field(pattern=NODE_NAME)


class HangupNode(NodeBase):
    hangup: HangupAction

    @field_validator("hangup", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if value is True or value is None:
            return {}
        if isinstance(value, str):
            return {"prompt": value}
        return value


class SubflowNode(NodeBase):
    subflow: SubflowAction

    @field_validator("subflow", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"flow": value} if isinstance(value, str) else value


class HttpNode(NodeBase):
    http: HttpAction


class HoursNode(NodeBase):
    hours: HoursAction


class RecordNode(NodeBase):
    record: RecordAction


class LanguageNode(NodeBase):
    language: str = Field(min_length=2, max_length=16)


NODE_KINDS: dict[str, type[NodeBase]] = {
    "say": SayNode, "menu": MenuNode, "input": InputNode, "ask": AskNode, "transfer": TransferNode,
    "set": SetNode, "branch": BranchNode, "switch": SwitchNode, "goto": GotoNode, "hangup": HangupNode,
    "subflow": SubflowNode, "http": HttpNode, "hours": HoursNode, "record": RecordNode, "language": LanguageNode,
}  # fmt: skip


def node_kind(value: Any) -> str | None:
    """Which action a raw node has; None when it has none or several (the validator reports which)."""
    if isinstance(value, BaseModel):
        return next(kind for kind in NODE_KINDS if kind in type(value).model_fields)
    if not isinstance(value, dict):
        return None
    kinds = [key for key in value if key in NODE_KINDS]
    return kinds[0] if len(kinds) == 1 else None


Node = Annotated[
    Annotated[SayNode, Tag("say")] | Annotated[MenuNode, Tag("menu")] | Annotated[InputNode, Tag("input")]
    | Annotated[AskNode, Tag("ask")] | Annotated[TransferNode, Tag("transfer")] | Annotated[SetNode, Tag("set")]
    | Annotated[BranchNode, Tag("branch")] | Annotated[SwitchNode, Tag("switch")] | Annotated[GotoNode, Tag("goto")]
    | Annotated[HangupNode, Tag("hangup")] | Annotated[SubflowNode, Tag("subflow")]
    | Annotated[HttpNode, Tag("http")] | Annotated[HoursNode, Tag("hours")] | Annotated[RecordNode, Tag("record")]
    | Annotated[LanguageNode, Tag("language")],
    Discriminator(
        node_kind,
        custom_error_type="node_kind",
        custom_error_message=f"a node needs exactly one action: {', '.join(NODE_KINDS)}",
    ),
]


class Flow(Strict):
    flow: str = Field(pattern=NODE_NAME, description="the flow's name")
    description: str | None = None
    language: str = Field("en", min_length=2, max_length=16)
    languages: list[str] = Field(default_factory=list, description="languages prompts must cover (lint)")
    start: str = Field(pattern=NODE_NAME)
    defaults: Defaults = Field(default_factory=Defaults)
    nodes: dict[Annotated[str, Field(pattern=NODE_NAME)], Node] = Field(min_length=1)

    def node(self, name: str) -> NodeBase:
        return self.nodes[name]


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema editors use (yaml-language-server), generated from the models.

    The shorthands the validators accept (`say: text`, `hangup: text | true`, `subflow: name`) are added by
    hand, since pydantic only describes the long form.
    """
    schema = Flow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hotline IVR flow"
    defs = schema.get("$defs", {})
    prompt = defs["SayAction"]["properties"]["text"]
    shorthands = {
        ("SayNode", "say"): [prompt],
        ("HangupNode", "hangup"): [{"type": "boolean", "const": True}, {"type": "string", "minLength": 1}],
        ("SubflowNode", "subflow"): [{"type": "string", "minLength": 1}],
    }
    for (model, field_name), extra in shorthands.items():
        properties = defs[model]["properties"]
        properties[field_name] = {"anyOf": [properties[field_name], *extra]}
    return schema
