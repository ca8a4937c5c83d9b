"""The one thing a flow sees of a conversation: a `Channel`.

Voice calls, the text simulator and chat all implement it, so one flow runner serves every channel and the
flow engine never imports telephony. Prompting and listening are one call (`prompt_and_listen`) because on a
phone they overlap: the caller may answer (barge in) while the prompt is still playing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


class ChannelClosed(Exception):
    """The other party left (hang-up, chat closed); the flow stops."""


@dataclass(frozen=True)
class ListenRequest:
    timeout: float = 5.0  # seconds for the caller to start answering
    max_digits: int = 1  # 0 = no keypad input wanted
    finish_on_key: str | None = None
    inter_digit_timeout: float = 3.0
    speech: bool = True  # accept spoken answers
    grammar: tuple[str, ...] = ()  # phrases a spoken answer should be one of (menus); empty = free speech
    endpointing_ms: int = 300
    interruptible: bool = True  # may the answer cut the prompt short (barge-in)


@dataclass(frozen=True)
class Heard:
    kind: Literal["dtmf", "speech", "no_input"]
    digits: str = ""
    text: str = ""
    confidence: float = 0.0


@dataclass(frozen=True)
class TransferRequest:
    queue: str | None = None
    to: str | None = None
    method: str = "bridge"
    priority: int = 0
    skills: tuple[str, ...] = ()
    language: str = "en"  # the caller's language: agents are matched on it


@dataclass(frozen=True)
class TransferResult:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class RecordRequest:
    beep: bool = True
    max_seconds: int = 120
    finish_on_key: str | None = "#"
    silence_timeout: float = 5.0


@dataclass(frozen=True)
class RecordResult:
    recording_id: str | None
    seconds: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    @property
    def conversation_id(self) -> str: ...

    @property
    def caller(self) -> str | None:
        """The caller's number or chat identity, when known."""

    @property
    def kind(self) -> str:
        """ "voice", "text" (simulator) or "chat"."""

    async def say(
        self, text: str, *, interruptible: bool = True, language: str = "en", voice: str | None = None
    ) -> bool:
        """Speak or send `text`; False if the caller interrupted it (barge-in)."""

    async def prompt_and_listen(
        self, prompts: list[str], request: ListenRequest, *, language: str = "en", voice: str | None = None
    ) -> Heard:
        """Play the prompts (interruptible as the request says) and wait for the caller's answer."""

    async def transfer(self, request: TransferRequest) -> TransferResult: ...

    async def record(self, request: RecordRequest) -> RecordResult: ...

    async def hangup(self, reason: str = "flow_hangup") -> None:
        """End the conversation from our side."""

    def note(self, type: str, value: str) -> None:
        """Record a step of the conversation (state changes, decisions) in its history."""
