"""What flows (and chat) ask of the bot, and what they get back.

A bot never guesses: when it is not confident it returns no answer (`entry_id is None`), and an explicit
request for a person sets `handoff`. The `ask` node maps those to its `answered` / `no_answer` / `handoff` exits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BotRequest:
    text: str
    language: str = "en"
    conversation_id: str | None = None  # lets the bot resolve follow-ups against the previous topic
    channel: str = "voice"


@dataclass(frozen=True)
class Suggestion:
    """A candidate the bot could not choose alone; chat offers them back as "did you mean...?"."""

    entry_id: str
    question: str


@dataclass(frozen=True)
class BotAnswer:
    entry_id: str | None
    answer: str | None
    confidence: float
    handoff: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    suggestions: tuple[Suggestion, ...] = ()  # set when the top candidates were too close to call

    @property
    def answered(self) -> bool:
        return self.entry_id is not None and self.answer is not None and not self.handoff


class Bot(Protocol):
    async def ask(self, request: BotRequest) -> BotAnswer: ...


_HANDOFF = re.compile(
    r"\b(agent|operator|representative|real person|human|someone)\b|转人工|人工客服|人工", re.IGNORECASE
)


class KeywordBot:
    """A minimal bot until the knowledge engine lands: exact keyword rules, explicit handoff detection.

    `rules` maps an entry id to (keywords, answer); an entry answers when all of its keywords occur.
    """

    def __init__(self, rules: dict[str, tuple[list[str], str]] | None = None) -> None:
        self.rules = rules or {}

    async def ask(self, request: BotRequest) -> BotAnswer:
        return self.answer(request)

    def answer(self, request: BotRequest) -> BotAnswer:
        text = request.text.lower()
        if _HANDOFF.search(text):
            return BotAnswer(None, None, 1.0, handoff=True)
        for entry_id, (keywords, answer) in self.rules.items():
            if keywords and all(word.lower() in text for word in keywords):
                return BotAnswer(entry_id, answer, 0.9)
        return BotAnswer(None, None, 0.0)
