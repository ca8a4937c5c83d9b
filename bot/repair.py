"""Repairing what 8 kHz speech recognition and hurried typing do to words, against the knowledge base's own
vocabulary.

Two systematic damages, both measured on the evaluation set's dev split:
- a word split in two or three ("net work", "con tract", "a count", "pass word"): when adjacent tokens
  together make a word the knowledge base uses, that word is added; the pieces stay too when each means
  something on its own ("out age": both readings go to the ranking, which picks), else they are replaced;
- a word mis-spelled or mis-heard into a non-word ("contrct", "dater", "wrking"): a word the knowledge base
  does not know is replaced by its closest known word when they are very similar (rapidfuzz ratio >= 80,
  words of four letters or more), so short words and real words of other topics are left alone.
Known words are never touched, so a correctly recognized question is analysed exactly as before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from rapidfuzz import fuzz, process

MIN_FUZZY_LENGTH = 4
FUZZY_CUTOFF = 80.0


class Vocabulary:
    def __init__(self, words: Iterable[str], stem: Callable[[str], str], stopwords: frozenset[str]) -> None:
        self._stem = stem
        self._stop = stopwords
        counts = Counter(w for w in words if w not in stopwords and len(w) >= 2)
        self.surface = sorted(counts)
        self.frequency: Counter[str] = Counter()
        for word, n in counts.items():
            self.frequency[stem(word)] += n
        self.stems = set(self.frequency)
        self._fuzzy_choices = [w for w in self.surface if len(w) >= MIN_FUZZY_LENGTH]
        self._cache: dict[str, str | None] = {}

    def known(self, word: str) -> bool:
        return word in self._stop or self._stem(word) in self.stems

    def repair(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            joined = self._join(tokens, i)
            if joined is not None:
                word, parts = joined
                out.append(word)
                if all(self._meaningful(part) for part in parts):
                    out.extend(parts)  # keep the split reading as well
                i += len(parts)
                continue
            word = tokens[i]
            out.append(word if self.known(word) or word.isdigit() else (self._closest(word) or word))
            i += 1
        return out

    def _meaningful(self, word: str) -> bool:
        return word not in self._stop and self._stem(word) in self.stems

    def _join(self, tokens: list[str], i: int) -> tuple[str, list[str]] | None:
        for n in (3, 2):
            if i + n > len(tokens):
                continue
            parts = tokens[i : i + n]
            word = "".join(parts)
            if word in self._stop or self._stem(word) not in self.stems:
                continue
            if len(word) >= 5 or not all(self._meaningful(part) for part in parts):
                return word, parts
        return None

    def _closest(self, word: str) -> str | None:
        if len(word) < MIN_FUZZY_LENGTH:
            return None
        if word not in self._cache:
            match = process.extractOne(word, self._fuzzy_choices, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
            if len(self._cache) < 50_000:
                self._cache[word] = match[0] if match else None
            return match[0] if match else None
        return self._cache[word]
