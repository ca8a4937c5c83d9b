"""The knowledge bot: one engine for voice and chat, that answers only when it is confident.

Order of decisions for one question:
1. an explicit request for a person is a handoff, whatever else was said;
2. an answer to our own clarifying question ("the first one") picks that entry, and a question with
   exactly the words of one canonical question gets that entry;
3. the question is ranked against the knowledge base; a follow-up ("and how much is it?") is ranked again
   with the previous topic of the conversation folded in, and the better-supported reading wins;
4. the calibrated confidence must reach the threshold and the best entry must be clearly ahead of the
   runner-up; otherwise there is no answer. When several entries are plausible but none is sure, the
   answer carries them as suggestions (chat asks "did you mean...?"; voice takes the no-answer exit).

Ranking is CPU work (about a millisecond); `ask` runs it on a worker thread so the event loop carrying the
calls' media never waits for it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot import confidence
from bot.context import ContextStore, Topic
from bot.handoff import is_handoff_request
from bot.interface import BotAnswer, BotRequest, Suggestion
from bot.knowledge import KnowledgeEntry
from bot.retrieval import Candidate, KnowledgeIndex, Ranking
from bot.text import normalize

_FOLLOW_UP = re.compile(
    r"^\W*(?:and|also|so|but|what about|how about|and what about|then|ok and|okay and)\b|\b(?:it|that|this|they|"
    r"them|those|there)\b|^\W*(?:那|那么|还有|另外|它|这个|那个)|(?:呢|的话)\W*$"
)
_CHOICE = re.compile(r"^\W*(?:number\s*)?(1|2|3|one|two|three|first|second|third|第一个|第二个|第三个|一|二|三)\W*$")
_CHOICE_INDEX = {"1": 0, "one": 0, "first": 0, "第一个": 0, "一": 0, "2": 1, "two": 1, "second": 1,
                 "第二个": 1, "二": 1, "3": 2, "three": 2, "third": 2, "第三个": 2, "三": 2}  # fmt: skip


EXACT_CONFIDENCE = 0.99  # the caller said one of the entry's own questions (same words, after analysis)


@dataclass(frozen=True)
class Reading:
    ranking: Ranking
    best: Candidate | None
    probability: float  # of `best` being right
    runner_up: float  # probability of the next most probable candidate
    context: str | None = None

    @property
    def margin(self) -> float:
        return self.probability - self.runner_up


class KnowledgeBot:
    def __init__(
        self, entries: Sequence[KnowledgeEntry] = (), *, context: ContextStore | None = None,
        suggestion_floor: float = 0.2, calibrations: dict[str, confidence.Calibration] | None = None,
    ) -> None:  # fmt: skip
        self.index = KnowledgeIndex(entries)
        self.calibrations = confidence.load() if calibrations is None else calibrations
        self.context = context if context is not None else ContextStore()
        self.suggestion_floor = suggestion_floor  # both candidates at least this likely to offer a choice
        self.revision: int | None = None

    def replace(self, entries: Sequence[KnowledgeEntry], revision: int | None = None) -> None:
        """Swap in a new knowledge base (built first, then swapped: questions in flight use the old one)."""
        self.index = KnowledgeIndex(entries)
        self.revision = revision

    async def ask(self, request: BotRequest) -> BotAnswer:
        return await asyncio.to_thread(self.answer, request)

    def answer(self, request: BotRequest) -> BotAnswer:
        text = request.text.strip()
        if not text:
            return BotAnswer(None, None, 0.0)
        if is_handoff_request(text, request.language):
            self.context.remember(request.conversation_id, entry_id=None)
            return BotAnswer(None, None, 1.0, handoff=True)
        index = self.index
        topic = self.context.get(request.conversation_id)
        chosen = self._choice(text, topic, index)
        if chosen is not None:
            self.context.remember(request.conversation_id, entry_id=chosen.id)
            return BotAnswer(chosen.id, chosen.answer, 1.0, extra={"context": "clarified"})
        exact = index.exact_match(text, request.language)
        if exact is not None:
            self.context.remember(request.conversation_id, entry_id=exact.id)
            return BotAnswer(exact.id, exact.answer, EXACT_CONFIDENCE, extra={"match": "exact"})
        reading = self._read(index, text, request.language, topic)
        calibration = self.calibration(request.language)
        best = reading.best
        if (
            best is not None
            and reading.probability >= calibration.threshold
            and reading.margin >= calibration.min_margin
        ):
            self.context.remember(request.conversation_id, entry_id=best.entry.id)
            extra = {"context": reading.context} if reading.context else {}
            return BotAnswer(best.entry.id, best.entry.answer, reading.probability, extra=extra)
        suggestions = self._suggestions(reading, calibration)
        self.context.remember(request.conversation_id, entry_id=None, suggestions=suggestions)
        return BotAnswer(None, None, reading.probability, suggestions=suggestions)

    def calibration(self, language: str) -> confidence.Calibration:
        return self.calibrations.get(language, confidence.DEFAULT)

    # ---- steps -------------------------------------------------------------------------------------------
    def _read(self, index: KnowledgeIndex, text: str, language: str, topic: Topic | None) -> Reading:
        plain = self._reading(index.rank(text, language), language)
        previous = index.entries.get(topic.entry_id) if topic and topic.entry_id else None
        if previous is None or previous.language != language:
            return plain
        calibration = self.calibration(language)
        looks_like_follow_up = bool(_FOLLOW_UP.search(normalize(text)))
        if plain.probability >= calibration.threshold and not looks_like_follow_up:
            return plain  # a complete question of its own: no need for the previous topic
        context = " ".join((*previous.tags, previous.questions[0]))
        # the previous topic's own terms favour the entry already answered; a follow-up asks something new
        ranking = index.rank(text, language, context=context, exclude=previous.id)
        folded = self._reading(ranking, language, previous.id)
        return folded if folded.probability > plain.probability else plain

    def _reading(self, ranking: Ranking, language: str, context: str | None = None) -> Reading:
        ranked = confidence.scored(ranking, self.calibration(language))
        if not ranked:
            return Reading(ranking, None, 0.0, 0.0, context)
        return Reading(ranking, ranked[0][1], ranked[0][0], ranked[1][0] if len(ranked) > 1 else 0.0, context)

    def _choice(self, text: str, topic: Topic | None, index: KnowledgeIndex) -> KnowledgeEntry | None:
        if topic is None or not topic.suggestions:
            return None
        said = normalize(text)
        match = _CHOICE.match(said)
        if match:
            position = _CHOICE_INDEX.get(match.group(1))
            if position is not None and position < len(topic.suggestions):
                return index.entries.get(topic.suggestions[position].entry_id)
        for suggestion in topic.suggestions:
            if normalize(suggestion.question).strip(" ?？") == said.strip(" ?？"):
                return index.entries.get(suggestion.entry_id)
        return None

    def _suggestions(self, reading: Reading, calibration: confidence.Calibration) -> tuple[Suggestion, ...]:
        """The most probable entries (up to three) when none is sure enough but several are plausible."""
        if reading.runner_up < self.suggestion_floor:
            return ()
        ranked = confidence.scored(reading.ranking, calibration)
        return tuple(Suggestion(c.entry.id, c.question) for p, c in ranked[:3] if p >= self.suggestion_floor)
