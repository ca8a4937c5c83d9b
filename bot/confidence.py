"""Calibrated confidence: the probability that a candidate entry is the right answer to the question.

Raw scores are not probabilities and are not comparable between questions, so every candidate the two
views propose (BM25 and centroid similarity, `bot.retrieval`) is scored by a logistic model over
scale-free features: its share of the best BM25 score and its lead, how much of the question it explains,
how much of its best question was matched, the most important caller word it does not use, its
similarity and similarity lead, how much of the question no entry knows, whether both views put it first,
and how much of the caller's whole-word weight (and how many words) it uses. The bot answers with the most
probable candidate, and only when that probability clears the threshold and the runner-up is clearly
behind. Weights, threshold and margin are fitted per language on the dev half of the evaluation set
(`python -m bench.kb_eval --fit` writes `calibration.json`); the test half is only ever reported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.retrieval import Candidate, Ranking

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
FEATURES = (
    "bias", "score_share", "score_lead", "query_coverage", "doc_coverage", "unexplained", "similarity",
    "similarity_lead", "unknown_share", "log_score", "coverage_lead", "agreement", "word_coverage",
    "matched_words",
)  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    weights: tuple[float, ...]
    threshold: float  # answer only at or above this probability
    min_margin: float  # ... and only when the runner-up's probability is at least this much lower

    def probability(self, values: tuple[float, ...]) -> float:
        z = sum(w * x for w, x in zip(self.weights, values, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Used when no fitted file exists (a fit on the shipped evaluation set, rounded).
DEFAULT = Calibration(
    weights=(-7.1, 2.6, 1.9, 1.1, 0.1, 0.1, 1.2, 2.6, -0.8, 1.2, 0.0, 0.0, 0.0, 0.0), threshold=0.75, min_margin=0.0
)


def features(candidate: Candidate, ranking: Ranking) -> tuple[float, ...]:
    words = [t for t in dict.fromkeys(ranking.terms) if t.startswith("w:")]
    unknown_share = len(ranking.unknown_terms) / len(words) if words else 1.0
    return (
        1.0,
        candidate.score_share,
        math.log1p(candidate.score_lead),
        candidate.query_coverage,
        candidate.doc_coverage,
        candidate.unexplained,
        candidate.similarity,
        candidate.similarity_lead,
        unknown_share,
        math.log1p(candidate.score),
        candidate.coverage_lead,
        1.0 if candidate.score_lead > 0 and candidate.similarity_lead > 0 else 0.0,
        candidate.word_coverage,
        math.log1p(candidate.matched_words),
    )


def scored(ranking: Ranking, calibration: Calibration) -> list[tuple[float, Candidate]]:
    """Every candidate with its probability, most probable first."""
    pairs = [(calibration.probability(features(c, ranking)), c) for c in ranking.candidates]
    return sorted(pairs, key=lambda pair: -pair[0])


@lru_cache(maxsize=4)
def load(path: Path = CALIBRATION_FILE) -> dict[str, Calibration]:
    """Per-language calibrations from the fitted file (missing file, language or stale features: `DEFAULT`)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if tuple(data.get("features", ())) != FEATURES:
        return {}
    return {
        language: Calibration(tuple(c["weights"]), float(c["threshold"]), float(c["min_margin"]))
        for language, c in data.get("languages", {}).items()
    }
