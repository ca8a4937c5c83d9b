"""Calibrated confidence: the probability that the top-ranked entry is the right answer.

Raw BM25 scores are not probabilities and are not comparable between questions, so the decision uses a
logistic model over scale-free features of the ranking (how much of the question the entry explains, how
much of the entry's question was matched, how far ahead of the runner-up it is, words no entry knows).
Its weights are fitted per language on the dev half of the evaluation set (`python -m bench.kb_eval --fit`,
which writes `calibration.json`); the test half is only ever reported. With no fitted file the defaults
below, fitted the same way once, are used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.retrieval import Ranking

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
FEATURES = ("bias", "query_coverage", "doc_coverage", "margin", "log_score", "unknown_share", "few_terms")


@dataclass(frozen=True)
class Calibration:
    weights: tuple[float, ...]
    threshold: float  # answer only at or above this probability
    min_margin: float  # and only when the runner-up is at least this far behind (relative score)

    def probability(self, values: tuple[float, ...]) -> float:
        z = sum(w * x for w, x in zip(self.weights, values, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


DEFAULT = Calibration(weights=(-6.0, 5.0, 2.0, 3.0, 0.5, -3.0, -0.5), threshold=0.5, min_margin=0.1)


def features(ranking: Ranking) -> tuple[float, ...]:
    top = ranking.top
    if top is None:
        return (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0)
    second = ranking.candidates[1].score if len(ranking.candidates) > 1 else 0.0
    words = [t for t in dict.fromkeys(ranking.terms) if t.startswith("w:")]
    unknown_share = len(ranking.unknown_terms) / len(words) if words else 1.0
    return (
        1.0,
        top.query_coverage,
        top.doc_coverage,
        margin(ranking),
        math.log1p(top.score) if second >= 0 else 0.0,
        unknown_share,
        1.0 if len(words) <= 1 else 0.0,
    )


def margin(ranking: Ranking) -> float:
    """How far the best entry is ahead of the runner-up, relative to its score (1 = no runner-up)."""
    if not ranking.candidates:
        return 0.0
    if len(ranking.candidates) == 1:
        return 1.0
    first, second = ranking.candidates[0].score, ranking.candidates[1].score
    return (first - second) / first if first > 0 else 0.0


@lru_cache(maxsize=4)
def load(path: Path = CALIBRATION_FILE) -> dict[str, Calibration]:
    """Per-language calibrations from the fitted file (missing file or language: `DEFAULT`)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {
        language: Calibration(tuple(c["weights"]), float(c["threshold"]), float(c["min_margin"]))
        for language, c in data.get("languages", {}).items()
        if len(c["weights"]) == len(FEATURES)
    }
