"""Routing decision latency: the ACD (callcenter_api.routing.router) with 500 agents and 2,000 waiting calls.

On SQLite (a file, WAL, as `hotline serve` uses it) and on PostgreSQL (a throwaway schema), schema from the
migrations. Seeds `--agents` available agents (mixed skills and languages), five queues with skill
requirements (one with a higher priority, as in the example flows) and `--waiting` waiting voice entries
(each with its contact and conversation), all owned by this worker, then measures:

  a. one `reserve()` pass over the crowd: wall time, offers made, time per offer; then passes until no
     more offers (every agent that can take a call is reserved), and the agents left idle although a
     caller they could take is waiting (the pass considers only the first RESERVE_BATCH entries);
  b. steady state, the decision an ACD makes all day: every agent busy, `--waiting` callers waiting, one
     agent finishes (ended -> wrap_up -> set_agent_state available) and `reserve()` runs: p50 / p99 / max
     over `--reps` cycles; the caller offered is answered, a new caller is enqueued so the queue stays full;
  c. `position()` of waiting callers (what each caller's announcement asks every announce_period);
  d. `heartbeat()` (renews this worker's entry and agent leases) and `sweep()` (nothing due).

`--history N` first adds N finished entries (done calls), as a live system accumulates them; `--profile`
prints where the time of the steady-state decision and of the heartbeat goes (cProfile).

    python -m bench.routing [--backends sqlite pg] [--agents 500] [--waiting 2000] [--reps 300]
                            [--history 0] [--profile]

PostgreSQL: HOTLINE_TEST_PG_URL or postgresql+psycopg://postgres@127.0.0.1:5432/test (skipped if
unreachable). Bounded: seeds once per backend, runs a fixed number of repetitions, drops what it made.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from bench.common import machine
from callcenter_api.db import make_engine, make_session_factory, migrate
from callcenter_api.models import Agent, Contact, Conversation, Queue, QueueEntry
from callcenter_api.routing import router as router_module
from callcenter_api.routing.router import Router, _eligible
from callcenter_api.testing import pg_test_url, pg_unreachable_reason, scratch_pg_schema

WORKER = "bench-worker"
SKILLS = ("support", "billing", "sales", "tech")
# name: (required skills, language, priority, strategy, share of the waiting callers)
QUEUES = {
    "support": ({"support": 1}, "en", 0, "longest_idle", 0.40),
    "support_zh": ({"support": 1}, "zh", 0, "longest_idle", 0.10),
    "billing": ({"billing": 2}, "en", 5, "round_robin", 0.20),
    "sales": ({"sales": 1}, "es", 0, "longest_idle", 0.15),
    "tech": ({"tech": 3}, "en", 2, "longest_idle", 0.15),
}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stats(samples: list[float]) -> str:
    a = np.asarray(samples) * 1000
    return (f"n={a.size} p50={np.percentile(a, 50):.2f} ms p99={np.percentile(a, 99):.2f} ms "
            f"max={a.max():.2f} ms mean={a.mean():.2f} ms")  # fmt: skip


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


# ---- seeding ------------------------------------------------------------------------------------------
def seed_static(factory: sessionmaker[Session], n_agents: int, rng: random.Random, now: datetime) -> None:
    with factory() as s, s.begin():
        for name, (skills, language, priority, strategy, _share) in QUEUES.items():
            s.add(Queue(name=name, required_skills=skills, language=language, priority=priority,
                        strategy=strategy, ring_timeout=20, max_wait=3600, max_size=10_000, overflow=None,
                        music=None, announce_period=30, transfer="bridge", wrap_up_seconds=10,
                        max_missed_offers=2, service_level_seconds=20))  # fmt: skip
        rows = []
        for i in range(n_agents):
            skills = {k: rng.randint(1, 5) for k in rng.sample(SKILLS, rng.randint(1, 3))}
            roll = rng.random()
            languages = ["en"] if roll < 0.6 else ["en", "es"] if roll < 0.8 else ["zh", "en"]
            rows.append({"id": f"agent{i:04d}", "name": f"Agent {i}", "sip_uri": f"sip:agent{i}@127.0.0.1",
                         "skills": skills, "languages": languages, "max_chats": 3, "state": "available",
                         "state_since": now, "missed_offers": 0, "active_chats": 0,
                         "last_idle_at": now - timedelta(seconds=rng.randint(1, 3600))})  # fmt: skip
        s.execute(insert(Agent), rows)


def new_caller(factory: sessionmaker[Session], now: datetime) -> str:
    """A contact and its voice conversation, as the voice channel creates them before a transfer."""
    contact, conversation = uuid.uuid4().hex, uuid.uuid4().hex
    with factory() as s, s.begin():
        s.add(Contact(id=contact, name=None, created_at=now))
        s.flush()
        s.add(Conversation(id=conversation, contact_id=contact, channel="voice", started_at=now, status="queued"))
    return conversation


def pick_queue(rng: random.Random) -> str:
    roll, acc = rng.random(), 0.0
    for name, spec in QUEUES.items():
        acc += spec[4]
        if roll < acc:
            return name
    return "support"


def enqueue_one(router: Router, factory: sessionmaker[Session], rng: random.Random, now: datetime) -> float:
    """Enqueue one caller; returns the time of `Router.enqueue` alone."""
    conversation = new_caller(factory, now)
    queue = pick_queue(rng)
    caller = f"+4477009{rng.randint(0, 99999):05d}"
    seconds, _ = timed(router.enqueue, queue, conversation, channel="voice", language=QUEUES[queue][1], caller=caller)
    return seconds


def seed_history(factory: sessionmaker[Session], n: int, now: datetime) -> None:
    """N finished calls (queue entries `done`, with their conversations), as a live system keeps them."""
    batch = 5000
    for start in range(0, n, batch):
        size = min(batch, n - start)
        contacts, conversations, entries = [], [], []
        for i in range(size):
            c, v = uuid.uuid4().hex, uuid.uuid4().hex
            at = now - timedelta(days=30) + timedelta(seconds=(start + i) * 30)
            queue = list(QUEUES)[(start + i) % len(QUEUES)]
            contacts.append({"id": c, "name": None, "created_at": at})
            conversations.append({"id": v, "contact_id": c, "channel": "voice", "started_at": at,
                                  "status": "closed"})  # fmt: skip
            entries.append({"id": uuid.uuid4().hex, "queue": queue, "conversation_id": v, "channel": "voice",
                            "priority": 0, "skills": {}, "language": None, "caller": None, "enqueued_at": at,
                            "state": "done", "agent_id": f"agent{(start + i) % 500:04d}", "offered_at": at,
                            "answered_at": at + timedelta(seconds=20), "ended_at": at + timedelta(seconds=200),
                            "worker": WORKER, "lease_expires": None, "attempts": 1, "outcome": "hangup",
                            "declined": []})  # fmt: skip
        with factory() as s, s.begin():
            s.execute(insert(Contact), contacts)
            s.execute(insert(Conversation), conversations)
            s.execute(insert(QueueEntry), entries)


def waiting_count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(QueueEntry).where(QueueEntry.state == "waiting")) or 0


def starved_agents(factory: sessionmaker[Session]) -> tuple[int, int]:
    """(available agents, of them those for whom some waiting entry is eligible): after reserve() found none."""
    with factory() as s:
        agents = list(s.scalars(select(Agent).where(Agent.state == "available")))
        entries = list(s.scalars(select(QueueEntry).where(QueueEntry.state == "waiting")))
        queues = {q.name: q for q in s.scalars(select(Queue))}
    starved = sum(1 for a in agents if any(_eligible(a, e, queues[e.queue]) for e in entries))
    return len(agents), starved


def profile(fn: Callable[[], object], runs: int, title: str, top: int = 18) -> None:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    print(f"  profile: {title} ({runs} runs, sorted by own time)")
    for line in lines[2 : top + 6]:
        print("    " + line.replace(str(Path(router_module.__file__).parents[2]) + "/", "")[:150])


# ---- the benchmark ------------------------------------------------------------------------------------
def run(label: str, url: str | URL, args: argparse.Namespace) -> None:
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rng = random.Random(6)
    now = datetime.now(UTC)
    router = Router(factory, worker=WORKER, lease_seconds=3600)  # nothing expires while we measure
    print(f"\n== {label}: {args.agents} agents, {args.waiting} waiting, history {args.history} done entries "
          f"(load average {loadavg()})", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    seed_static(factory, args.agents, rng, now)
    if args.history:
        seed_history(factory, args.history, now)
    enqueue_times = [enqueue_one(router, factory, rng, now) for _ in range(args.waiting)]
    print(f"seeded in {time.perf_counter() - t0:.1f} s; enqueue (0 -> {args.waiting} waiting): "
          f"{stats(enqueue_times)}")  # fmt: skip

    # a. one pass over the crowd, then passes until nobody else can be matched
    seconds, offers = timed(router.reserve, own_only=True)
    n = len(offers)  # type: ignore[arg-type]
    print(f"a. first reserve() pass: {ms(seconds)} ms wall, {n} offers, "
          f"{ms(seconds / max(1, n))} ms per offer (batch {router_module.RESERVE_BATCH} entries)")  # fmt: skip
    all_offers = list(offers)  # type: ignore[call-overload]
    passes = [seconds]
    while True:
        seconds, more = timed(router.reserve, own_only=True)
        if not more:
            break
        passes.append(seconds)
        all_offers.extend(more)  # type: ignore[arg-type]
    available, starved = starved_agents(factory)
    print(f"   passes until no offer: {len(passes)} passes with offers ({', '.join(ms(p) for p in passes)} ms), "
          f"last empty pass {ms(seconds)} ms; {len(all_offers)} agents reserved, {available} left available, "
          f"{starved} of them with an eligible caller waiting beyond the batch")  # fmt: skip

    if args.profile:  # what the ACD repeats every 0.25 s while those agents stay idle
        profile(lambda: router.reserve(own_only=True), 10, f"reserve(): empty pass, {available} agents available")

    # every reserved agent answers (busy); the idle ones go offline; the queue is refilled
    busy: deque[tuple[str, str]] = deque()
    for offer in all_offers:
        router.answered(offer.entry_id)
        busy.append((offer.agent_id, offer.entry_id))
    with factory() as s:
        idle = list(s.scalars(select(Agent.id).where(Agent.state == "available")))
    for agent_id in idle:
        router.set_agent_state(agent_id, "offline")
    refill = [enqueue_one(router, factory, rng, now) for _ in range(args.waiting - waiting_count(factory))]
    print(f"   {len(busy)} agents busy, {len(idle)} set offline, refilled {len(refill)} callers "
          f"-> {waiting_count(factory)} waiting; enqueue at {args.waiting} waiting: {stats(refill)}")  # fmt: skip

    # b. steady state: one agent frees up, one decision
    decisions, with_offer, no_offer, ends, frees, answers, enqueues = [], [], [], [], [], [], []
    for _ in range(args.reps):
        agent_id, entry_id = busy.popleft()
        ends.append(timed(router.ended, entry_id)[0])  # -> wrap_up
        frees.append(timed(router.set_agent_state, agent_id, "available")[0])  # done early
        seconds, offers = timed(router.reserve, own_only=True)
        decisions.append(seconds)
        if offers:
            (offer,) = offers  # type: ignore[misc]
            with_offer.append(seconds)
            answers.append(timed(router.answered, offer.entry_id)[0])
            busy.append((offer.agent_id, offer.entry_id))
        else:
            no_offer.append(seconds)
            router.set_agent_state(agent_id, "offline")  # keep exactly one agent freeing up per decision
        enqueues.append(enqueue_one(router, factory, rng, now))
    print(f"b. steady state, one agent available, {waiting_count(factory)} waiting (load average {loadavg()}):")
    print(f"   reserve()        {stats(decisions)}")
    print(f"     with an offer  {stats(with_offer) if with_offer else 'n=0'}")
    print(f"     no offer       {stats(no_offer) if no_offer else 'n=0'}  <- agent idle, no eligible caller "
          f"in the first {router_module.RESERVE_BATCH}")  # fmt: skip
    print(f"   ended()          {stats(ends)}")
    print(f"   set_agent_state  {stats(frees)}")
    print(f"   answered()       {stats(answers) if answers else 'n=0'}")
    print(f"   enqueue()        {stats(enqueues)}")
    available, starved = starved_agents(factory)
    offline = args.agents - len(busy)
    print(f"   after: {len(busy)} busy, {offline} offline; decisions without an offer: {len(no_offer)}/"
          f"{args.reps}")  # fmt: skip

    # c. position of waiting callers
    with factory() as s:
        waiting_ids = list(s.scalars(select(QueueEntry.id).where(QueueEntry.state == "waiting")
                                     .order_by(QueueEntry.enqueued_at)))  # fmt: skip
    sample = rng.sample(waiting_ids, min(args.reps, len(waiting_ids)))
    positions = [timed(router.position, e)[0] for e in sample]
    print(f"c. position() with {len(waiting_ids)} waiting: {stats(positions)}; at {len(waiting_ids)} callers "
          f"each asking every 30 s: {len(waiting_ids) / 30 * np.mean(positions) * 100:.1f}% of a core")  # fmt: skip

    # d. heartbeat and sweep
    hb_reps = max(10, args.reps // 10)
    beats, renewed = [], 0
    for _ in range(hb_reps):
        seconds, renewed = timed(router.heartbeat)  # type: ignore[assignment]
        beats.append(seconds)
    sweeps = [timed(router.sweep)[0] for _ in range(hb_reps)]
    print(f"d. heartbeat() renewing {renewed} leases: {stats(beats)}; every 3 s: "
          f"{np.mean(beats) / 3 * 100:.1f}% of a core")  # fmt: skip
    print(f"   sweep() (nothing due):  {stats(sweeps)}")
    idle = [timed(router.reserve, own_only=True)[0] for _ in range(hb_reps)]  # every agent busy or offline
    print(f"   reserve() with no agent available: {stats(idle)}")
    acd_pass = np.mean(beats) + np.mean(sweeps)
    print(f"   ACD loop while nobody frees up (heartbeat + sweep every 3 s, reserve every 0.25 s): "
          f"{(acd_pass / 3 + np.mean(idle) / 0.25) * 100:.1f}% of a core")  # fmt: skip

    if args.profile:
        # nobody available: the part every decision pays (load and lock the batch of waiting entries)
        batch = router_module.RESERVE_BATCH
        profile(lambda: router.reserve(own_only=True), 50, f"reserve(): {batch} entries loaded, no agent available")
        profile(router.heartbeat, 10, f"heartbeat() ({renewed} leases)")
        profile(lambda: router.position(sample[0]), 200, "position()")
    engine.dispose()


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hotline-routing-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'routing.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--waiting", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=300, help="steady-state decisions (and position samples)")
    parser.add_argument("--history", type=int, default=0, help="finished entries in the table before we start")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.reps > args.agents:
        raise SystemExit("--reps must not exceed --agents (each decision may take one agent out)")
    print(f"machine: {machine()}")
    print(f"load average: {loadavg()}")
    for backend in args.backends:
        if backend == "sqlite":
            with sqlite_url() as url:
                run("SQLite (file, WAL)", url, args)
        else:
            pg = pg_test_url()
            reason = pg_unreachable_reason(pg)
            if reason:
                print(f"\n== PostgreSQL: skipped ({reason})")
                continue
            with scratch_pg_schema(pg) as url:
                run("PostgreSQL 127.0.0.1 (scratch schema)", url, args)


if __name__ == "__main__":
    main()
