"""The knowledge bot at 5,000 entries: import time, index build time and size, answer latency.

    python -m bench.kb_latency                      # 5,000 entries, SQLite and PostgreSQL imports, latency
    python -m bench.kb_latency --no-pg              # skip PostgreSQL
    python -m bench.kb_latency --profile            # also cProfile one pass and print where the time goes

The knowledge base is bot/examples/northwind_kb.yaml expanded, deterministically, into per-device,
per-country, per-plan and per-store variants of its topics (distinct ids, questions and answers; half
English, half Chinese), generated here and never committed as data. Questions are the caller questions of
bench/kb_data/questions.yaml, repeated, plus follow-ups ("and how much does it cost?") in the same
conversation. Figures:
- `hotline kb import` of the 5,000 entries into a fresh SQLite file and a throwaway PostgreSQL schema
  (wall-clock of the CLI process, and in-process: parse + migrate + import transaction), then the same
  file again (idempotent: nothing changes);
- `KnowledgeBot(entries)` build time, `.replace(entries)` time, RSS of the built index;
- `KnowledgeBot.answer` latency p50/p95/p99/max, single thread after a warm-up pass, and with two threads
  answering at once (the service answers on worker threads). Target (design.md): p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from bench.common import machine
from bot.knowledge import KnowledgeEntry, dump, parse

ROOT = Path(__file__).resolve().parents[1]
KB_FILE = ROOT / "bot" / "examples" / "northwind_kb.yaml"
QUESTIONS_FILE = ROOT / "bench" / "kb_data" / "questions.yaml"
TARGET_P99_MS = 20.0

# ---- variants ---------------------------------------------------------------------------------------------

DEVICES_EN = (
    "iPhone 16 Pro", "iPhone 16", "iPhone 15", "iPhone 14", "iPhone SE", "Galaxy S24 Ultra", "Galaxy S24",
    "Galaxy A55", "Galaxy Z Flip6", "Galaxy Z Fold6", "Pixel 9 Pro", "Pixel 9", "Pixel 8a", "Motorola Edge 50",
    "Moto G85", "Xiaomi 14T", "Redmi Note 13", "OnePlus 12", "Nothing Phone 2a", "Sony Xperia 10 VI",
    "Nokia G42", "Honor Magic6 Pro", "Oppo Find X8", "Doro 8100",
)  # fmt: skip
COUNTRIES_EN = (
    "France", "Spain", "Italy", "Germany", "Portugal", "Greece", "Ireland", "the Netherlands", "Belgium",
    "Austria", "Switzerland", "Norway", "Sweden", "Denmark", "Finland", "Poland", "Croatia", "Turkey", "Cyprus",
    "Malta", "the USA", "Canada", "Mexico", "Brazil", "Australia", "New Zealand", "Japan", "China",
    "South Korea", "Thailand", "Vietnam", "India", "the UAE", "Egypt", "Morocco", "South Africa", "Kenya",
    "Singapore", "Indonesia", "Iceland",
)  # fmt: skip
PLANS_EN = (
    "Essential 5GB", "Essential 15GB", "Smart 30GB", "Smart 60GB", "Unlimited", "Unlimited Max",
    "Unlimited Plus", "SIM Only 12", "SIM Only 24", "Family Share", "Student 40GB", "Business Starter",
    "Business Pro", "Pay As You Go Lite", "Pay As You Go Plus", "Kids Safe",
)  # fmt: skip
STORES_EN = (
    "Manchester Arndale", "Leeds Trinity", "Birmingham Bullring", "London Oxford Street", "London Westfield",
    "Liverpool One", "Glasgow Buchanan", "Edinburgh Princes Street", "Cardiff Queen Street",
    "Bristol Cabot Circus", "Newcastle Eldon Square", "Sheffield Meadowhall", "Nottingham Victoria",
    "Leicester Highcross", "Belfast Victoria Square", "Aberdeen Union Square", "Southampton WestQuay",
    "Brighton Churchill Square", "Norwich Chapelfield", "Cambridge Grand Arcade", "Oxford Westgate",
    "York Coppergate", "Exeter Princesshay", "Plymouth Drake Circus", "Milton Keynes Centre", "Reading Oracle",
    "Coventry West Orchards", "Derby Eagle Market", "Hull St Stephens", "Swansea Quadrant", "Dundee Overgate",
    "Inverness Eastgate", "Bath SouthGate", "Chester Grosvenor", "Preston Fishergate", "Bolton Market Place",
    "Stoke Potteries", "Wolverhampton Mander", "Sunderland Bridges", "Bournemouth Castlepoint",
)  # fmt: skip
DEVICES_ZH = (
    "iPhone 16 Pro", "华为Mate 60", "华为P70", "荣耀Magic6", "小米14", "红米K70", "OPPO Find X7", "vivo X100",
    "一加12", "三星Galaxy S24", "iPhone 15", "魅族21", "realme GT5", "中兴Axon 60", "努比亚Z60", "华为nova 12",
    "小米Civi 4", "vivo S18", "OPPO Reno11", "荣耀X50", "iQOO 12", "红米Note 13", "三星Galaxy Z Flip5",
    "华为Pura 70",
)  # fmt: skip
COUNTRIES_ZH = (
    "法国", "西班牙", "意大利", "德国", "葡萄牙", "希腊", "爱尔兰", "荷兰", "比利时", "奥地利", "瑞士", "挪威", "瑞典",
    "丹麦", "芬兰", "波兰", "克罗地亚", "土耳其", "塞浦路斯", "马耳他", "美国", "加拿大", "墨西哥", "巴西", "澳大利亚",
    "新西兰", "日本", "韩国", "泰国", "越南", "印度", "阿联酋", "埃及", "摩洛哥", "南非", "肯尼亚", "新加坡",
    "印度尼西亚", "冰岛", "马来西亚",
)  # fmt: skip
PLANS_ZH = (
    "畅享58元", "畅享88元", "畅享128元", "畅享198元", "5G尊享", "5G畅联", "家庭共享", "校园卡", "青春卡", "商务精英",
    "商务标准", "预付费轻享", "预付费畅享", "老年关怀", "儿童安全", "无限流量",
)  # fmt: skip
STORES_ZH = (
    "北京王府井", "北京西单", "上海南京路", "上海陆家嘴", "广州天河", "广州北京路", "深圳华强北",
    "深圳福田", "杭州西湖", "杭州武林", "成都春熙路", "重庆解放碑", "武汉江汉路", "南京新街口",
    "西安钟楼", "天津滨江道", "苏州观前街", "长沙五一广场", "郑州二七", "青岛台东", "沈阳中街",
    "大连青泥洼", "厦门中山路", "福州东街口", "昆明南屏街", "合肥淮河路", "济南泉城路", "哈尔滨中央大街",
    "南宁朝阳", "贵阳喷水池", "宁波天一", "无锡崇安寺", "东莞东城", "佛山祖庙", "石家庄北国",
    "太原柳巷", "南昌中山路", "兰州西关", "海口骑楼", "乌鲁木齐大巴扎",
)  # fmt: skip
DIMENSIONS = {
    "en": {"device": DEVICES_EN, "country": COUNTRIES_EN, "plan": PLANS_EN, "store": STORES_EN},
    "zh": {"device": DEVICES_ZH, "country": COUNTRIES_ZH, "plan": PLANS_ZH, "store": STORES_ZH},
}
# which kind of variant a topic (by its first tag) most naturally has; the others follow
PREFERRED = {
    "device": "device", "insurance": "device", "sim": "device", "esim": "device", "data": "device",
    "network": "device", "calls": "device", "security": "device", "account": "device", "roaming": "country",
    "contract": "plan", "billing": "plan", "payments": "plan", "payg": "plan", "pricing": "plan",
    "hotline": "store", "orders": "store",
}  # fmt: skip
MENUS_EN = ("Settings, Mobile Service", "Settings, Connections", "Settings, Network and internet",
            "Settings, SIM cards", "Settings, Phone", "Settings, Apps, Phone")  # fmt: skip
MENUS_ZH = ("设置-移动网络", "设置-蜂窝网络", "设置-双卡与移动网络", "设置-电话", "设置-SIM卡管理", "设置-连接与共享")


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def _slug(value: str) -> str:
    ascii_part = "".join(c.lower() if c.isascii() and c.isalnum() else "-" for c in value).strip("-")
    ascii_part = "-".join(p for p in ascii_part.split("-") if p)
    if value.isascii():
        return ascii_part
    return f"{ascii_part}-{_h(value) % 10_000:04d}" if ascii_part else f"zh{_h(value) % 10_000:04d}"


def _question_en(question: str, kind: str, value: str) -> str:
    phrase = {"device": f"on my {value}", "country": f"in {value}", "plan": f"on the {value} plan",
              "store": f"at the {value} store"}[kind]  # fmt: skip
    body = question.rstrip()
    end = body[-1] if body and body[-1] in "?.!" else ""
    return f"{body[: len(body) - len(end)]} {phrase}{end or '?'}"


def _question_zh(question: str, kind: str, value: str) -> str:
    prefix = {"device": f"我用的是{value}，", "country": f"在{value}，", "plan": f"我是{value}套餐，",
              "store": f"{value}店，"}[kind]  # fmt: skip
    return prefix + question


def _answer(base: KnowledgeEntry, kind: str, value: str) -> str:
    n = _h(base.id, kind, value)
    if base.language == "en":
        extra = {
            "device": f"On the {value}, you'll find the setting under {MENUS_EN[n % len(MENUS_EN)]}, and our "
                      f"step-by-step {value} guide is in the Northwind app under Help.",
            "country": f"In {value}, calls home cost {10 + n % 90} pence a minute and data is {1 + n % 9} pounds "
                       f"a day unless a pass covers it.",
            "plan": f"On the {value} plan, which costs {8 + n % 40} pounds a month, this comes at no extra cost.",
            "store": f"Our {value} store is open from {8 + n % 3} am to {5 + n % 4} pm, and you can book an "
                     f"appointment there in the Northwind app.",
        }[kind]  # fmt: skip
        return f"{base.answer} {extra}"
    extra = {
        "device": f"{value}用户请在“{MENUS_ZH[n % len(MENUS_ZH)]}”里操作，App的“帮助”里有{value}的图文教程。",
        "country": f"在{value}，打回国内每分钟{1 + n % 5}元，没有流量包时流量每天{10 + n % 30}元。",
        "plan": f"{value}套餐每月{30 + n % 170}元，这项服务不额外收费。",
        "store": f"{value}店的营业时间是早上{8 + n % 3}点到晚上{8 + n % 3}点，可以在App里预约到店服务。",
    }[kind]  # fmt: skip
    return base.answer + extra


def _variants(base: KnowledgeEntry) -> Iterator[tuple[str, str]]:
    dims = DIMENSIONS[base.language]
    first = PREFERRED.get(base.tags[0] if base.tags else "", "device")
    order = [first, *(k for k in ("device", "country", "plan", "store") if k != first)]
    for kind in order:
        for value in dims[kind]:
            yield kind, value


def expand(base: list[KnowledgeEntry], total: int) -> list[KnowledgeEntry]:
    """`total` entries: the base entries and, round-robin over the topics of each language, their variants
    (half of the total English, half Chinese). Deterministic."""
    entries = list(base)
    per_language = {"en": total // 2, "zh": total - total // 2}
    for language, wanted in per_language.items():
        topics = [e for e in base if e.language == language]
        iterators = [_variants(e) for e in topics]
        count = len(topics)
        while count < wanted:
            progressed = False
            for topic, variants in zip(topics, iterators, strict=True):
                if count >= wanted:
                    break
                pair = next(variants, None)
                if pair is None:
                    continue
                progressed = True
                kind, value = pair
                n = _h(topic.id, kind, value)
                how_many = 4 + n % 3  # 4-6 ways of asking, a rotating subset of the topic's own
                start = n % len(topic.questions)
                picked = [topic.questions[(start + i) % len(topic.questions)] for i in range(how_many)]
                make = _question_en if language == "en" else _question_zh
                questions = tuple(dict.fromkeys(make(q, kind, value) for q in picked))
                entries.append(
                    KnowledgeEntry(
                        id=f"{topic.id}--{kind}-{_slug(value)}", language=language, questions=questions,
                        answer=_answer(topic, kind, value), tags=tuple(dict.fromkeys((*topic.tags, kind, value))),
                    )
                )  # fmt: skip
                count += 1
            if not progressed:
                raise SystemExit(f"not enough variants for {wanted} {language} entries")
    return entries


# ---- questions --------------------------------------------------------------------------------------------

FOLLOW_UPS = {"en": ("and how much does it cost?", "what about in France?", "and on an iPhone?",
                     "ok and how do I do that"),
              "zh": ("那要多少钱？", "在法国呢？", "用华为手机呢？", "那怎么办理？")}  # fmt: skip


@dataclass(frozen=True)
class Ask:
    text: str
    language: str
    conversation: str
    context: str | None = None  # an entry to remember as the previous topic first (the eval set's follow-ups)
    follow_up: bool = False


def load_questions() -> list[dict[str, object]]:
    return yaml.safe_load(QUESTIONS_FILE.read_text(encoding="utf-8"))["questions"]


def workload(questions: list[dict[str, object]], rounds: int, tag: str) -> list[Ask]:
    """Each question of the eval set `rounds` times in its own conversation, every third one followed by a
    follow-up in the same conversation."""
    out: list[Ask] = []
    for r in range(rounds):
        for i, q in enumerate(questions):
            conversation = f"{tag}-{r}-{i}"
            language = str(q["language"])
            context = q.get("context")
            out.append(Ask(str(q["text"]), language, conversation, str(context) if context else None))
            if i % 3 == 0:
                text = FOLLOW_UPS[language][(i // 3 + r) % len(FOLLOW_UPS[language])]
                out.append(Ask(text, language, conversation, follow_up=True))
    return out


def run(bot, asks: list[Ask]) -> list[float]:  # type: ignore[no-untyped-def]
    from bot.interface import BotRequest

    latencies = []
    for ask in asks:
        if ask.context:
            bot.context.remember(ask.conversation, entry_id=ask.context)
        started = time.perf_counter()
        bot.answer(BotRequest(ask.text, ask.language, ask.conversation, "chat"))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def run_threads(bot, asks: list[Ask], threads: int) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    """`threads` threads answering interleaved shares of `asks` at once; latencies and wall-clock seconds."""
    shares = [asks[i::threads] for i in range(threads)]
    results: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = run(bot, shares[i])

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return [x for r in results for x in r], time.perf_counter() - started


def stats(latencies: list[float]) -> str:
    a = np.asarray(latencies)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    verdict = "meets" if p99 <= TARGET_P99_MS else "MISSES"
    return (f"n={a.size} p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms  max {a.max():.2f} ms  "
            f"mean {a.mean():.2f} ms ({verdict} p99 <= {TARGET_P99_MS:.0f} ms)")  # fmt: skip


def check_similarity(bot, questions: list[dict[str, object]]) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """How many eval questions get exactly the similarities of sklearn's own TfidfVectorizer.transform."""
    from scipy import sparse
    from sklearn.preprocessing import normalize

    identical = checked = 0
    index = bot.index
    for q in questions:
        language, text = str(q["language"]), str(q["text"])
        view = index._indexes[language].similarity
        terms, canonical = index.terms(text, language), index.analyzer(language).canonical(text)
        reference = normalize(sparse.hstack([view.words.transform([terms]), view.chars.transform([canonical])]).tocsr())
        expected = np.asarray((reference @ view.centroids).todense()).ravel()
        identical += bool(np.array_equal(view.similarities(terms, canonical), expected))
        checked += 1
    return identical, checked


# ---- import -------------------------------------------------------------------------------------------------


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def time_cli_import(kb_file: Path, db: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "kb", "import", str(kb_file), "--db", db],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kb import failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout.strip().rsplit(": ", 1)[-1]


def time_inprocess_import(kb_file: Path, db: str) -> tuple[float, float, float]:
    """(parse, migrate, import transaction) seconds, as `hotline kb import` does them."""
    from callcenter_api import kb_store
    from callcenter_api.db import make_engine, make_session_factory, migrate

    t0 = time.perf_counter()
    entries = parse(kb_file.read_text(encoding="utf-8"), str(kb_file))
    t1 = time.perf_counter()
    migrate(db)
    t2 = time.perf_counter()
    engine = make_engine(db)
    try:
        with make_session_factory(engine)() as session, session.begin():
            kb_store.import_entries(session, entries, now=datetime.now(UTC))
    finally:
        engine.dispose()
    return t1 - t0, t2 - t1, time.perf_counter() - t2


def import_figures(kb_file: Path, label: str, fresh_db: Iterator[str]) -> None:
    db = next(fresh_db)
    wall, summary = time_cli_import(kb_file, db)
    again, summary_again = time_cli_import(kb_file, db)
    print(f"  {label:10s} hotline kb import (CLI process, fresh DB): {wall:6.2f} s  [{summary}]")
    print(f"  {label:10s} same file again (idempotent):              {again:6.2f} s  [{summary_again}]")
    db2 = next(fresh_db)
    p, m, i = time_inprocess_import(kb_file, db2)
    print(f"  {label:10s} in process: parse {p:.2f} s + migrate {m:.2f} s + import transaction {i:.2f} s")


def _sqlite_dbs(tmp: Path) -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"sqlite:///{tmp / f'kb-{n}.db'}"


def _pg_dbs(stack: list) -> Iterator[str]:  # type: ignore[type-arg]
    from callcenter_api.testing import pg_test_url, scratch_pg_schema

    while True:
        manager = scratch_pg_schema(pg_test_url())
        url = manager.__enter__()
        stack.append(manager)
        yield url.render_as_string(hide_password=False)


# ---- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4, help="passes over the eval questions measured [4]")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL import")
    parser.add_argument("--no-import", action="store_true", help="skip the import figures")
    parser.add_argument("--profile", action="store_true", help="cProfile one pass; print the top functions")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"load average at start: {load_average()}")
    base = parse(KB_FILE.read_text(encoding="utf-8"), str(KB_FILE))
    entries = expand(base, args.entries)
    by_language = {lang: sum(1 for e in entries if e.language == lang) for lang in ("en", "zh")}
    n_questions = sum(len(e.questions) for e in entries)
    print(f"knowledge base: {len(entries)} entries ({by_language['en']} en, {by_language['zh']} zh; "
          f"{len(base)} from {KB_FILE.name}, the rest its variants), {n_questions} questions")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="hotline-kb-bench-") as tmp:
        kb_file = Path(tmp) / "kb5000.yaml"
        kb_file.write_text(dump(entries), encoding="utf-8")
        assert parse(kb_file.read_text(encoding="utf-8")) == entries
        if not args.no_import:
            print(f"\n(a) import of {len(entries)} entries ({kb_file.stat().st_size / 1e6:.1f} MB YAML):")
            import_figures(kb_file, "SQLite", _sqlite_dbs(Path(tmp)))
            if not args.no_pg:
                from callcenter_api.testing import pg_test_url, pg_unreachable_reason

                reason = pg_unreachable_reason(pg_test_url())
                if reason:
                    print(f"  PostgreSQL skipped: {reason}")
                else:
                    stack: list = []  # type: ignore[type-arg]
                    try:
                        import_figures(kb_file, "PostgreSQL", _pg_dbs(stack))
                    finally:
                        for manager in reversed(stack):
                            manager.__exit__(None, None, None)

    from bot.engine import KnowledgeBot
    from bot.interface import BotRequest
    from bot.text import ChineseAnalyzer, EnglishAnalyzer

    # analyzers load jieba's dictionary and the lexicon once per process: not part of an index build
    ChineseAnalyzer(english=EnglishAnalyzer()).terms("你好")
    gc.collect()
    rss0 = rss_mib()
    started = time.perf_counter()
    bot = KnowledgeBot(entries)
    build = time.perf_counter() - started
    gc.collect()
    rss1 = rss_mib()
    started = time.perf_counter()
    bot.replace(entries, revision=2)
    replace = time.perf_counter() - started
    gc.collect()
    print(f"\n(b) index: KnowledgeBot(entries) {build:.2f} s, .replace(entries) {replace:.2f} s; RSS "
          f"{rss0:.0f} -> {rss1:.0f} MiB (index {rss1 - rss0:.0f} MiB), after replace {rss_mib():.0f} MiB")  # fmt: skip

    questions = load_questions()
    identical, checked = check_similarity(bot, questions)
    print(f"    similarity view: fast query vectors bit-identical to sklearn's transform for {identical}/{checked} "
          "eval questions")  # fmt: skip
    warm = workload(questions, 1, "warm")
    asks = workload(questions, args.rounds, "lat")
    bot.answer(BotRequest("hello", "en", None, "chat"))
    print(f"\n(c) answer latency over {len(asks)} questions ({len(questions)} eval questions x {args.rounds}, "
          f"plus {sum(a.follow_up for a in asks)} follow-ups), load average {load_average()}:")  # fmt: skip
    cold = run(bot, warm)
    print(f"  warm-up pass (first sight of each text): {stats(cold)}")
    single = run(bot, asks)
    print(f"  1 thread:  {stats(single)}")
    by_kind = {"question": [x for x, a in zip(single, asks, strict=True) if not a.follow_up],
               "follow-up": [x for x, a in zip(single, asks, strict=True) if a.follow_up]}  # fmt: skip
    for kind, values in by_kind.items():
        print(f"    {kind:9s} {stats(values)}")
    for lang in ("en", "zh"):
        values = [x for x, a in zip(single, asks, strict=True) if a.language == lang]
        print(f"    {lang:9s} {stats(values)}")
    started = time.perf_counter()
    run(bot, asks[: len(asks) // 2])
    one_rate = (len(asks) // 2) / (time.perf_counter() - started)
    two, wall = run_threads(bot, asks, 2)
    print(f"  2 threads: {stats(two)}")
    print(f"    throughput {len(asks) / wall:.0f} answers/s with 2 threads vs {one_rate:.0f}/s with 1 "
          f"(load average {load_average()})")  # fmt: skip

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(bot, asks[: len(asks) // 2])
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print("\nprofile (cumulative, one half pass):")
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
        print(out.getvalue())
    sys.stdout.flush()
    os._exit(0)  # skip tearing down the big index


if __name__ == "__main__":
    main()
