"""Ranking knowledge entries for a question: BM25 (the `bm25s` library, sparse and vectorised) per language.

An entry's score adds three kinds of evidence: its best-matching question (every canonical question is its
own document: a caller's question usually resembles one way of asking, not the average), all its questions
and tags as one document (the topic's vocabulary), and, weighted least, its answer. Beside the score each
candidate carries how much of the caller's term weight the entry explains (`query_coverage`) and how much
of its best question the caller matched (`doc_coverage`): BM25 scores are not comparable across questions,
coverage is, and confidence is built from both (`bot.confidence`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import bm25s
import numpy as np

from bot.knowledge import KnowledgeEntry
from bot.similarity import CentroidView
from bot.text import Analyzer, ChineseAnalyzer, EnglishAnalyzer


@dataclass(frozen=True, slots=True)
class Candidate:
    entry: KnowledgeEntry
    score: float
    question: str  # the entry's question that matched best
    query_coverage: float  # share of the question's term weight found in that question (0..1)
    doc_coverage: float  # share of that question's term weight the caller's words matched (0..1)
    unexplained: float  # weight of the most important caller word the entry does not use (0..1)
    similarity: float = 0.0  # cosine to the entry's centroid (bot.similarity), 0..1
    score_share: float = 0.0  # BM25 score / the best entry's (1 for the BM25 winner)
    score_lead: float = 0.0  # BM25 points ahead of the best other entry (0 if behind)
    similarity_lead: float = 0.0  # similarity minus the best other entry's (negative if behind)
    coverage_lead: float = 0.0  # doc_coverage minus the best other candidate's (negative if behind)
    word_coverage: float = 0.0  # share of the caller's whole-word (w:) weight the entry uses, unknown words included
    matched_words: int = 0  # distinct caller words (w:) the entry uses


@dataclass(frozen=True, slots=True)
class Ranking:
    terms: tuple[str, ...]
    candidates: tuple[Candidate, ...]  # BM25's best and the similarity view's best, one per entry, by BM25
    unknown_terms: tuple[str, ...]  # content words no entry of this language uses

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


# Weights of the entry-level evidence next to the best-matching question (tuned on the dev split:
# recall@1 is flat within about +-1 point for 0.3-1.0 and 0.1-0.3, so these are not knife-edge values).
ENTRY_WEIGHT = 0.5  # all of the entry's questions and tags as one document: the topic's vocabulary
ANSWER_WEIGHT = 0.2  # the answer text: words callers use that the questions happen not to
K1, B = 1.2, 0.75


class _LanguageIndex:
    def __init__(self, entries: Sequence[KnowledgeEntry], analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.entries = list(entries)
        question_docs: list[list[str]] = []
        self.doc_entry: list[int] = []
        self.doc_question: list[str] = []
        entry_docs: list[list[str]] = []
        answer_docs: list[list[str]] = []
        for index, entry in enumerate(self.entries):
            topic: list[str] = analyzer.terms(" ".join(entry.tags))
            for question in entry.questions:
                terms = analyzer.terms(question) or ["∅"]  # keep positions aligned for a stop-word-only text
                question_docs.append(terms)
                topic += terms
                self.doc_entry.append(index)
                self.doc_question.append(question)
            entry_docs.append(topic or ["∅"])
            answer_docs.append(analyzer.terms(entry.answer) or ["∅"])
        self.doc_terms = [Counter(doc) for doc in question_docs]
        # a caller saying exactly one of the canonical questions (same words) needs no statistics
        self.exact: dict[tuple[str, ...], set[int]] = defaultdict(set)
        for doc, owner in zip(question_docs, self.doc_entry, strict=True):
            if doc != ["∅"]:
                self.exact[tuple(sorted(set(doc)))].add(owner)
        self.entry_terms = [set(doc) for doc in entry_docs]
        self.doc_entry_array = np.asarray(self.doc_entry, dtype=np.int64)
        self.position = {entry.id: i for i, entry in enumerate(self.entries)}
        # an entry's questions are contiguous documents: [first_doc[i], first_doc[i + 1])
        self.first_doc = np.searchsorted(self.doc_entry_array, np.arange(len(self.entries) + 1))
        # ... and none is empty (every entry has a question), so per-entry maxima are one `reduceat`
        self.contiguous = bool(self.doc_entry) and bool(np.all(np.diff(self.first_doc) > 0))
        df: Counter[str] = Counter()
        for counts in self.doc_terms:
            df.update(counts.keys())
        n = max(1, len(question_docs))
        # BM25's own idf (Lucene form); unknown terms get the weight of a term no document has
        self.idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}
        for doc in (*entry_docs, *answer_docs):  # words of tags and answers are known words too
            for term in doc:
                self.idf.setdefault(term, math.log(1 + (n + 0.5) / 1.5))
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)
        self.doc_mass = [sum(self.idf[t] for t in counts) for counts in self.doc_terms]
        self.vocabulary = analyzer.vocabulary([*(q for e in entries for q in e.questions), *(e.answer for e in entries),
                                               *(t for e in entries for t in e.tags)])  # fmt: skip
        self.questions = self._bm25(question_docs)
        self.topics = self._bm25(entry_docs)
        self.answers = self._bm25(answer_docs)
        texts = [*self.doc_question, *(e.answer for e in self.entries)]
        self.similarity = CentroidView(
            [*question_docs, *answer_docs], [analyzer.canonical(t) for t in texts],
            [*self.doc_entry, *range(len(self.entries))], len(self.entries),
        )  # fmt: skip

    @staticmethod
    def _bm25(docs: list[list[str]]) -> bm25s.BM25:
        index = bm25s.BM25(k1=K1, b=B)
        if docs:
            index.index(docs, show_progress=False)
        return index

    def rank(self, terms: list[str], text: str, *, k: int, exclude: str | None = None) -> Ranking:
        """`terms`: the analysed question (with any context terms); `text`: its canonical text; `exclude`: an
        entry that must not be proposed (and does not count as a competitor)."""
        unknown = tuple(t for t in dict.fromkeys(terms) if t not in self.idf and t.startswith("w:"))
        known = [t for t in terms if t in self.idf]
        if not self.doc_entry:
            return Ranking(tuple(terms), (), unknown)
        similarity = self.similarity.similarities(terms, text)
        if known:
            per_question = self.questions.get_scores(known)
            best_question = self._best_per_entry(per_question)
            scores = (
                best_question
                + ENTRY_WEIGHT * self.topics.get_scores(known)
                + ANSWER_WEIGHT * self.answers.get_scores(known)
            )
        else:
            per_question = np.zeros(len(self.doc_entry))
            scores = np.zeros(len(self.entries))
        if exclude is not None and exclude in self.position:
            scores[self.position[exclude]] = 0.0
            similarity[self.position[exclude]] = 0.0
        by_score = np.argsort(-scores, kind="stable")[:k]
        by_similarity = np.argsort(-similarity, kind="stable")[:k]
        pool = [
            int(i)
            for i in dict.fromkeys([*by_score[scores[by_score] > 0], *by_similarity[similarity[by_similarity] > 0]])
        ]
        if not pool:
            return Ranking(tuple(terms), (), unknown)
        top_two = np.sort(scores)[-2:] if len(scores) > 1 else np.array([0.0, scores.max()])
        sim_two = np.sort(similarity)[-2:] if len(similarity) > 1 else np.array([0.0, similarity.max()])
        query_terms = set(terms)
        # Unknown Chinese bigrams/pinyin are mostly segment boundaries, not topic words: only whole words
        # that no entry uses count against the question.
        query_mass = sum(self.idf.get(t, self.unknown_idf if t.startswith("w:") else 0.0) for t in query_terms)
        query_words = [t for t in query_terms if t.startswith("w:")]
        word_mass = sum(self.idf.get(t, self.unknown_idf) for t in query_words)
        candidates = []
        for entry_index in sorted(pool, key=lambda i: -scores[i]):
            first, last = int(self.first_doc[entry_index]), int(self.first_doc[entry_index + 1])
            doc = first + int(np.argmax(per_question[first:last]))  # its best question, for coverage and display
            explained = sum(self.idf[t] for t in query_terms if t in self.entry_terms[entry_index])
            matched = sum(self.idf[t] for t in query_terms if t in self.doc_terms[doc])
            used_words = [t for t in query_words if t in self.entry_terms[entry_index]]
            missing = [self.idf.get(t, self.unknown_idf) for t in query_terms
                       if t.startswith("w:") and t not in self.entry_terms[entry_index]]  # fmt: skip
            score, sim = float(scores[entry_index]), float(similarity[entry_index])
            best_other = top_two[0] if score >= top_two[1] else top_two[1]
            best_other_sim = sim_two[0] if sim >= sim_two[1] else sim_two[1]
            candidates.append(
                Candidate(
                    entry=self.entries[entry_index],
                    score=score,
                    question=self.doc_question[doc],
                    query_coverage=explained / query_mass if query_mass else 0.0,
                    doc_coverage=matched / self.doc_mass[doc] if self.doc_mass[doc] else 0.0,
                    unexplained=max(missing, default=0.0) / self.unknown_idf,
                    similarity=sim,
                    score_share=score / top_two[1] if top_two[1] > 0 else 0.0,
                    score_lead=max(0.0, score - float(best_other)),
                    similarity_lead=sim - float(best_other_sim),
                    word_coverage=sum(self.idf[t] for t in used_words) / word_mass if word_mass else 0.0,
                    matched_words=len(used_words),
                )
            )
        coverages = sorted((c.doc_coverage for c in candidates), reverse=True)
        candidates = [
            replace(c, coverage_lead=c.doc_coverage - (coverages[1] if c.doc_coverage >= coverages[0] and
                                                       len(coverages) > 1 else coverages[0]))
            for c in candidates
        ]  # fmt: skip
        return Ranking(tuple(terms), tuple(candidates), unknown)

    def _best_per_entry(self, per_question: np.ndarray) -> np.ndarray:
        """Each entry's best question score (0 at least). An entry's questions are contiguous documents, so
        this is one `reduceat` over the segments; `np.maximum.at` took ~3 ms at 5,000 entries (bench/kb_latency)."""
        if not self.contiguous:
            best = np.zeros(len(self.entries))
            np.maximum.at(best, self.doc_entry_array, per_question)
            return best
        return np.maximum(np.maximum.reduceat(per_question, self.first_doc[:-1]).astype(np.float64), 0.0)

    def exact_match(self, terms: list[str]) -> KnowledgeEntry | None:
        owners = self.exact.get(tuple(sorted(set(terms))), set()) if terms else set()
        return self.entries[next(iter(owners))] if len(owners) == 1 else None


class KnowledgeIndex:
    """An immutable index over the enabled entries; rebuild (cheap: ~0.1 s per 1,000 entries) on change."""

    def __init__(self, entries: Sequence[KnowledgeEntry]) -> None:
        english = EnglishAnalyzer()
        by_language: dict[str, list[KnowledgeEntry]] = defaultdict(list)
        for entry in entries:
            if entry.enabled:
                by_language[entry.language].append(entry)
        self.entries = {e.id: e for e in entries if e.enabled}
        self._analyzers: dict[str, Analyzer] = {"en": english}
        if "zh" in by_language:
            self._analyzers["zh"] = ChineseAnalyzer(english=english)
        self._indexes = {
            language: _LanguageIndex(items, self.analyzer(language)) for language, items in by_language.items()
        }

    def analyzer(self, language: str) -> Analyzer:
        if language not in self._analyzers:
            english = self._analyzers["en"]
            assert isinstance(english, EnglishAnalyzer)
            self._analyzers[language] = ChineseAnalyzer(english=english) if language == "zh" else english
        return self._analyzers[language]

    @property
    def languages(self) -> list[str]:
        return sorted(self._indexes)

    def terms(self, text: str, language: str) -> list[str]:
        """A caller's words as index terms, with split and mis-heard words repaired against this language's
        knowledge-base vocabulary."""
        index = self._indexes.get(language)
        return self.analyzer(language).terms(text, index.vocabulary if index else None)

    def rank(self, text: str, language: str, *, k: int = 5, context: str = "", exclude: str | None = None) -> Ranking:
        """Candidates for the question; `context` (the previous topic's text) is read as part of it."""
        index = self._indexes.get(language)
        terms = self.terms(text, language) + (self.terms(context, language) if context else [])
        if index is None:
            return Ranking(tuple(terms), (), ())
        canonical = self.analyzer(language).canonical(f"{text} {context}" if context else text)
        return index.rank(terms, canonical, k=k, exclude=exclude)

    def exact_match(self, text: str, language: str) -> KnowledgeEntry | None:
        """The one entry that has a canonical question with exactly the caller's words, if any."""
        index = self._indexes.get(language)
        return index.exact_match(self.terms(text, language)) if index else None

    def __len__(self) -> int:
        return len(self.entries)
