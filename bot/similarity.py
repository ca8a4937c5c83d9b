"""A second, independent view of how close a question is to each entry: TF-IDF cosine to the entry's
centroid, over its analysed words and over character n-grams.

BM25 (bot.retrieval) rewards shared rare words with the single best question; this view compares with the
whole entry (the average of all its questions and its answer) and, through character n-grams, gives partial
credit to mis-heard and mis-typed words ("insurence", "roming") that share most of their letters. When the
two views agree the answer is very likely right; when they disagree it often is not — the confidence model
(bot.confidence) is fitted on features from both. One sparse matrix product per question: fine for 5,000
entries (bench/kb_latency).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize


def _identity(terms: list[str]) -> list[str]:
    return terms


class CentroidView:
    def __init__(self, term_docs: Sequence[list[str]], text_docs: Sequence[str], owners: Sequence[int], n: int) -> None:
        """`term_docs`/`text_docs`: each document (questions, answers) as analysed terms and canonical text;
        `owners`: the entry index of each document; `n`: number of entries."""
        self.n = n
        self.words = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, lowercase=False)
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, lowercase=False)
        if not term_docs:
            self.centroids = sparse.csr_matrix((0, 0))
            return
        docs = sparse.hstack([self.words.fit_transform(term_docs), self.chars.fit_transform(text_docs)]).tocsr()
        docs = normalize(docs)
        owner = np.asarray(owners)
        membership = sparse.csr_matrix((np.ones(len(owner)), (owner, np.arange(len(owner)))), shape=(n, len(owner)))
        # features x entries, kept in CSR: `query (CSR) @ centroids` converts a CSC operand to CSR on every
        # call, which at 5,000 entries was most of an answer's time (bench/kb_latency)
        self.centroids = normalize(membership @ docs).T.tocsr()
        self._char_ngrams = self.chars.build_analyzer()
        self._n_words = len(self.words.idf_)

    def similarities(self, terms: list[str], text: str) -> np.ndarray:
        """Cosine similarity of the question to every entry (0..1)."""
        if self.n == 0:
            return np.zeros(0)
        return np.asarray((self.query_vector(terms, text) @ self.centroids).todense()).ravel()

    def query_vector(self, terms: list[str], text: str) -> sparse.csr_matrix:
        """The question as one row: the same numbers as
        `normalize(hstack([words.transform([terms]), chars.transform([text])]))` (TF-IDF with sublinear tf, each
        part l2-normalised, then the whole; bench/kb_latency checks they are bit-identical), computed directly:
        sklearn's per-call input validation on a one-row matrix cost more than the ranking itself."""
        word_ids, word_weights = _tfidf(terms, self.words.vocabulary_, self.words.idf_)
        char_ids, char_weights = _tfidf(self._char_ngrams(text), self.chars.vocabulary_, self.chars.idf_)
        indices = np.concatenate([word_ids, char_ids + self._n_words])
        data = _l2_normalized(np.concatenate([word_weights, char_weights]))
        shape = (1, self._n_words + len(self.chars.idf_))
        return sparse.csr_matrix((data, indices, np.array([0, indices.size])), shape=shape)


def _tfidf(tokens: Sequence[str], vocabulary: dict[str, int], idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One document as sorted feature ids and weights, as TfidfVectorizer(sublinear_tf=True).transform does:
    (1 + log count) * idf, l2-normalised; tokens outside the vocabulary are ignored."""
    counts: dict[int, int] = {}
    for token in tokens:
        feature = vocabulary.get(token)
        if feature is not None:
            counts[feature] = counts.get(feature, 0) + 1
    ids = np.array(sorted(counts), dtype=np.int64)
    weights = np.array([counts[i] for i in ids.tolist()], dtype=np.float64)
    np.log(weights, out=weights)
    weights += 1.0
    weights *= idf[ids]
    return ids, _l2_normalized(weights)


def _l2_normalized(values: np.ndarray) -> np.ndarray:
    """sklearn's sparse row l2 normalisation, operation for operation (a sequential sum of squares), so the
    result is bit-identical; an all-zero row stays as it is."""
    total = 0.0
    for value in values.tolist():
        total += value * value
    return values / math.sqrt(total) if total != 0.0 else values
