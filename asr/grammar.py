"""Grammar phrases: normalizing them for the engines and mapping what an engine heard back to one phrase.

Flows write phrases the way people read them ("Technical support", "I'd like to pay"); engines want
lower-case words without punctuation. The result must come back as the flow's own phrase, so the flow can
compare it with its `say_as` list, and a grammar result is always exactly one phrase or nothing: Vosk's
grammar graph is a loop (it can output "no billing no"), so the heard words are split into phrases and the
most confident one wins.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from asr.recognizer import Word


def normalize(phrase: str) -> str:
    """Case-folded words separated by single spaces; punctuation becomes a space (apostrophes inside words
    stay: "don't"). Letters of every script are kept, so Chinese or Korean phrases survive unchanged."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKC", phrase).casefold():
        cat = unicodedata.category(ch)
        if cat[0] in "LNM" or ch == "'":
            out.append(ch)
        else:
            out.append(" ")
    words = ("".join(out)).split()
    return " ".join(w.strip("'") for w in words if w.strip("'"))


@dataclass(frozen=True, slots=True)
class Match:
    phrase: str  # the grammar's phrase as the flow wrote it
    words: list[Word]
    confidence: float


class Grammar:
    """The phrases of one prompt, normalized; `phrases` maps each normalized form to the flow's phrase."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases: dict[str, str] = {}
        for phrase in phrases:
            norm = normalize(phrase)
            if norm and norm not in self.phrases:
                self.phrases[norm] = phrase
        self._tokens = sorted((tuple(p.split()) for p in self.phrases), key=len, reverse=True)

    @classmethod
    def spelled(cls, pairs: Iterable[tuple[str, str]]) -> Grammar:
        """A grammar from (engine spelling, flow phrase) pairs, e.g. Chinese phrases split into the model's
        words: the engine hears "查询 账单", the flow gets back "查询账单"."""
        grammar = cls(())
        for norm, phrase in pairs:
            if norm and norm not in grammar.phrases:
                grammar.phrases[norm] = phrase
        grammar._tokens = sorted((tuple(p.split()) for p in grammar.phrases), key=len, reverse=True)
        return grammar

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def words(self) -> set[str]:
        return {w for p in self.phrases for w in p.split()}

    def restrict(self, allowed: Sequence[str]) -> Grammar:
        """A grammar with only the normalized phrases in `allowed` (those every word of which the engine
        knows), keeping the original spellings."""
        return Grammar(self.phrases[p] for p in allowed if p in self.phrases)

    def match(self, words: Sequence[Word]) -> Match | None:
        """Split recognized words into grammar phrases (longest first, left to right, skipping words that
        start no phrase, such as [unk]) and return the most confident phrase, if any."""
        texts = [normalize(w.text) for w in words]
        best: Match | None = None
        i = 0
        while i < len(words):
            for tokens in self._tokens:
                n = len(tokens)
                if tuple(texts[i : i + n]) == tokens:
                    span = list(words[i : i + n])
                    conf = min(w.confidence for w in span)
                    cand = Match(self.phrases[" ".join(tokens)], span, conf)
                    if best is None or _better(cand, best):
                        best = cand
                    i += n
                    break
            else:
                i += 1
        return best


def _better(a: Match, b: Match) -> bool:
    if a.confidence != b.confidence:
        return a.confidence > b.confidence
    return (a.words[-1].end - a.words[0].start) > (b.words[-1].end - b.words[0].start)
