"""Conversation context: what the bot last talked about in each conversation, so follow-ups make sense.

"And how much does it cost?" has no topic of its own; after an answer about roaming in Europe it means
roaming in Europe. The store is small and bounded (least recently used conversations are forgotten, and a
topic expires after `ttl` seconds), and it is keyed by conversation id, so voice and chat behave the same.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.interface import Suggestion


@dataclass
class Topic:
    entry_id: str | None = None  # last entry answered
    suggestions: tuple[Suggestion, ...] = ()  # a clarifying question is waiting for its answer
    at: float = field(default=0.0)


class ContextStore:
    def __init__(
        self, *, max_conversations: int = 50_000, ttl: float = 1800.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._topics: OrderedDict[str, Topic] = OrderedDict()
        self._lock = threading.Lock()  # the bot answers on worker threads
        self._max = max_conversations
        self._ttl = ttl
        self._clock = clock

    def get(self, conversation_id: str | None) -> Topic | None:
        if not conversation_id:
            return None
        with self._lock:
            topic = self._topics.get(conversation_id)
            if topic is None:
                return None
            if self._clock() - topic.at > self._ttl:
                del self._topics[conversation_id]
                return None
            self._topics.move_to_end(conversation_id)
            return Topic(topic.entry_id, topic.suggestions, topic.at)

    def remember(
        self, conversation_id: str | None, *, entry_id: str | None, suggestions: tuple[Suggestion, ...] = ()
    ) -> None:
        if not conversation_id:
            return
        with self._lock:
            previous = self._topics.pop(conversation_id, None)
            # an unanswered question keeps the earlier topic: "how much is it?" may still follow the answer before
            kept = entry_id or (previous.entry_id if previous else None)
            self._topics[conversation_id] = Topic(kept, suggestions, self._clock())
            while len(self._topics) > self._max:
                self._topics.popitem(last=False)

    def forget(self, conversation_id: str) -> None:
        with self._lock:
            self._topics.pop(conversation_id, None)

    def __len__(self) -> int:
        return len(self._topics)
