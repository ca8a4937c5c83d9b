"""Text analysis for retrieval: turning what a caller said (or typed) into index terms.

Callers do not speak like knowledge-base authors, and 8 kHz ASR mis-hears them. The analyzers therefore
- normalise (Unicode NFKC, case, contractions, full-width forms),
- rewrite known variants to one canonical form (`lexicon.yaml`: domain synonyms and common mis-hearings,
  e.g. "voice male" → voicemail, "how much" → cost, 话费/电话费),
- drop fillers and function words ("um", "yeah hi", "could you tell me"), which carry no topic,
- English: Snowball stemming (PyStemmer), so "charges", "charged" and "charging" meet;
- Chinese: jieba word segmentation plus character bigrams (robust when segmentation differs) plus toneless
  pinyin bigrams (robust to 同音字 mis-recognitions such as 花费 for 话费); Latin words inside Chinese
  (eSIM, PUK, 5G) go through the English analyzer.
Terms carry a family prefix (``w:``, ``b:``, ``p:``) so the families never collide in one index.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import yaml

from bot.repair import Vocabulary

LEXICON_FILE = Path(__file__).with_name("lexicon.yaml")


_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (re.compile(r"\b(\w+)'(re|ve|ll|d|m|s)\b"), r"\1"),
)
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_OR_DIGIT = re.compile(r"[a-z0-9]+(?:[ '-][a-z0-9]+)*")


class Analyzer(Protocol):
    language: str

    def canonical(self, text: str) -> str: ...

    def terms(self, text: str, vocabulary: Vocabulary | None = None) -> list[str]: ...

    def vocabulary(self, texts: Iterable[str]) -> Vocabulary: ...


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("`", "'")


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, dict[str, list]]:  # type: ignore[type-arg]
    data = yaml.safe_load(LEXICON_FILE.read_text(encoding="utf-8")) or {}
    return {"stopwords": data.get("stopwords") or {}, "synonyms": data.get("synonyms") or {}}


def _synonym_groups() -> dict[str, list[list[str]]]:
    groups = _lexicon()["synonyms"]
    return {lang: [[normalize(str(v)) for v in group] for group in items] for lang, items in groups.items()}


def _stopwords(language: str) -> frozenset[str]:
    return frozenset(normalize(str(w)) for w in _lexicon()["stopwords"].get(language, []))


def _rewriter(groups: Iterable[list[str]], *, word_boundaries: bool) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One regex for every variant (longest first), mapping each to its group's canonical (first) form."""
    mapping: dict[str, str] = {}
    for group in groups:
        canonical = group[0]
        for variant in group[1:]:
            mapping.setdefault(variant, canonical)
    if not mapping:
        return None, mapping
    alternatives = "|".join(re.escape(v) for v in sorted(mapping, key=len, reverse=True))
    pattern = rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])" if word_boundaries else f"(?:{alternatives})"
    return re.compile(pattern), mapping


class EnglishAnalyzer:
    language = "en"

    def __init__(self, synonyms: Iterable[list[str]] | None = None) -> None:
        import Stemmer  # PyStemmer: Snowball stemmers in C

        self._stemmer = Stemmer.Stemmer("english")
        self._stem_cache: dict[str, str] = {}
        groups = list(synonyms) if synonyms is not None else _synonym_groups().get("en", [])
        self._rewrite, self._mapping = _rewriter(groups, word_boundaries=True)
        self._stop = _stopwords("en")

    def _stem(self, word: str) -> str:
        stem = self._stem_cache.get(word)
        if stem is None:
            stem = self._stemmer.stemWord(word)
            if len(self._stem_cache) < 100_000:
                self._stem_cache[word] = stem
        return stem

    def canonical(self, text: str) -> str:
        text = normalize(text)
        for pattern, replacement in _CONTRACTIONS:
            text = pattern.sub(replacement, text)
        text = re.sub(r"[^a-z0-9' ]+", " ", text).replace("'", "")
        text = " ".join(text.split())
        if self._rewrite is not None:
            text = self._rewrite.sub(lambda m: self._mapping[m.group(0)], text)
        return text

    def tokens(self, text: str) -> list[str]:
        """Surface words after normalisation and synonyms, stop words included (repair needs them)."""
        return _WORD.findall(self.canonical(text))

    def words(self, text: str, vocabulary: Vocabulary | None = None) -> list[str]:
        """Content words, stemmed, without family prefix (the Chinese analyzer reuses it for Latin runs).

        With a `vocabulary` (questions, not knowledge-base text) split and mis-heard words are repaired first.
        """
        tokens = self.tokens(text)
        if vocabulary is not None:
            tokens = vocabulary.repair(tokens)
        return [self._stem(w) for w in tokens if w not in self._stop]

    def vocabulary(self, texts: Iterable[str]) -> Vocabulary:
        return Vocabulary((w for text in texts for w in self.tokens(text)), self._stem, self._stop)

    def terms(self, text: str, vocabulary: Vocabulary | None = None) -> list[str]:
        return ["w:" + w for w in self.words(text, vocabulary)]


_jieba_lock = threading.Lock()


def _jieba():  # type: ignore[no-untyped-def]
    """jieba builds its dictionary on first use (about a second); do it once, quietly, thread-safely."""
    import jieba

    with _jieba_lock:
        if not getattr(_jieba, "ready", False):
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba.ready = True  # type: ignore[attr-defined]
    return jieba


class ChineseAnalyzer:
    language = "zh"

    def __init__(self, synonyms: Iterable[list[str]] | None = None, english: EnglishAnalyzer | None = None) -> None:
        from pypinyin import lazy_pinyin

        self._pinyin = lazy_pinyin
        self._jieba = _jieba()
        self._english = english or EnglishAnalyzer()
        groups = list(synonyms) if synonyms is not None else _synonym_groups().get("zh", [])
        self._rewrite, self._mapping = _rewriter(groups, word_boundaries=False)
        self._stop = _stopwords("zh")
        for group in groups:  # canonical forms must stay whole words for jieba
            self._jieba.add_word(group[0], freq=2000)

    def canonical(self, text: str) -> str:
        text = normalize(text)
        if self._rewrite is not None:
            text = self._rewrite.sub(lambda m: self._mapping[m.group(0)], text)
        return text

    def vocabulary(self, texts: Iterable[str]) -> Vocabulary:
        return self._english.vocabulary(_LATIN_OR_DIGIT.findall(" ".join(self.canonical(t) for t in texts)))

    def terms(self, text: str, vocabulary: Vocabulary | None = None) -> list[str]:
        text = self.canonical(text)
        terms: list[str] = []
        for latin in _LATIN_OR_DIGIT.findall(text):
            # all three families, so a Latin word (eSIM, PUK) weighs as much as a Chinese one
            for word in self._english.words(latin, vocabulary):
                terms.extend(("w:" + word, "b:" + word, "p:" + word))
        for run in _CJK.findall(text):
            words = [w for w in self._jieba.lcut(run) if w.strip() and w not in self._stop]
            terms.extend("w:" + w for w in words)
            content = "".join(words)  # bigrams over content words only: fillers make no bigrams
            if len(content) == 1:
                terms.append("b:" + content)
            terms.extend("b:" + content[i : i + 2] for i in range(len(content) - 1))
            syllables = self._pinyin(content)
            terms.extend("p:" + syllables[i] + syllables[i + 1] for i in range(len(syllables) - 1))
        return terms


def detect_language(text: str) -> str:
    """zh when the text has Chinese characters, else en (the two languages the bot speaks)."""
    return "zh" if _CJK.search(text) else "en"


def analyzer_for(language: str) -> Analyzer:
    if language == "zh":
        return ChineseAnalyzer()
    return EnglishAnalyzer()
