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
        self.centroids = normalize(membership @ docs).T.tocsc()  # features x entries

    def similarities(self, terms: list[str], text: str) -> np.ndarray:
        """Cosine similarity of the question to every entry (0..1)."""
        if self.n == 0:
            return np.zeros(0)
        query = sparse.hstack([self.words.transform([terms]), self.chars.transform([text])]).tocsr()
        return np.asarray((normalize(query) @ self.centroids).todense()).ravel()
