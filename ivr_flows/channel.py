"""The one thing a flow sees of a conversation: a `Channel`.

Voice calls, the text simulator and chat all implement it, so one flow runner serves every channel and the
flow engine never imports telephony.
"""

from __future__ import annotations

from typing import Protocol


class ChannelClosed(Exception):
    """The other party left (hang-up, chat closed); the flow stops."""


class Channel(Protocol):
    @property
    def conversation_id(self) -> str: ...

    @property
    def caller(self) -> str | None:
        """The caller's number or chat identity, when known."""

    async def say(self, text: str, *, interruptible: bool = True, language: str = "en") -> bool:
        """Speak or send `text`; False if the caller interrupted it (barge-in)."""

    async def next_digit(self, timeout: float | None) -> str | None:
        """The next key the caller pressed, or None after `timeout` seconds of nothing."""

    async def hangup(self) -> None:
        """End the conversation from our side."""

    def note(self, type: str, value: str) -> None:
        """Record a step of the conversation (state changes, decisions) in its history."""
