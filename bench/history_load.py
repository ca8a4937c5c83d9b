"""The timeline API under concurrent load: GET /api/v1/contacts/{id}/timeline at a fixed offered rate.

    python -m bench.history_load                          # SQLite and PostgreSQL, 2,000 contacts, 500 req/s, 20 s
    python -m bench.history_load --backends sqlite --rates 500 100 50 --duration 10
    python -m bench.history_load --explain                # also: SQL statements and time split of one request

A fresh SQLite database is seeded with a realistic history through the service's own write paths: per
contact 2-4 voice calls written by `callcenter_api.call_log.CallLog` (CDR, events, a transcript of ~20
messages, disposition) and 1-3 web chats through `callcenter_api.chat.ChatService` (the real knowledge bot
answers each customer message, then the chat is closed). For PostgreSQL the very same rows are copied (Core
bulk inserts, table by table) into a throwaway schema on 127.0.0.1:5432, as callcenter_api/testing.py makes
them, so both backends serve identical data and the seeding is paid once. Then the real `hotline serve` runs
on free loopback ports, and a lean keep-alive HTTP/1.1 client (a pool of connections) offers requests for random
contacts (limit 20) open-loop: request i is due at t0 + i/rate whatever the earlier ones are doing, and its
latency is measured from when it was due, so a server that falls behind shows as latency (no coordinated
omission). Printed per backend: offered and achieved rate, errors, latency p50/p95/p99/max, server and
client CPU. Design target: p99 <= 50 ms at 500 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import cpu_seconds, machine, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
TARGET_P99_MS = 50.0
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

CALLER_LINES = (
    "hi i want to check my bill", "why is my bill higher this month", "i am abroad and my data is not working",
    "how do i top up", "can i keep my number if i leave", "my phone was stolen", "agent please",
    "how much is roaming in spain", "yes", "no thanks that is all", "when does my contract end",
)  # fmt: skip
PROMPTS = (
    "Thanks for calling Northwind. Press 1 for billing, 2 for support, or ask me a question.",
    "Sorry, I didn't catch that.", "Is there anything else I can help you with?",
    "Please hold while I transfer you to an adviser.",
)  # fmt: skip
CHAT_LINES_EN = ("hi", "how do i pay my bill", "what are your opening hours", "can i get an esim",
                 "how much does extra data cost", "thanks", "my data is not working")  # fmt: skip
CHAT_LINES_ZH = ("你好", "怎么交话费", "流量包多少钱", "手机丢了怎么办", "谢谢")
DISPOSITIONS = ("contained", "contained", "contained", "transferred", "abandoned", "voicemail")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---- seeding ------------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    contacts: list[str]
    conversations: int
    messages: int
    calls_s: float
    chats_s: float


def phone(i: int) -> str:
    return f"+4477009{i:05d}"


def seed(db: str, n_contacts: int, rng: random.Random) -> Seeded:
    """Calls through the call log, chats through the chat service, interleaved in time over a year."""

    from bot.engine import KnowledgeBot
    from bot.knowledge import parse
    from callcenter_api.call_log import CallLog
    from callcenter_api.chat import ChatService
    from callcenter_api.db import make_engine, make_session_factory, migrate
    from callcenter_api.events import EventHub
    from callcenter_api.history.identity import Identity

    migrate(db)
    engine = make_engine(db)
    factory = make_session_factory(engine)
    plan: list[tuple[datetime, str, int]] = []  # (start, kind, contact)
    for i in range(n_contacts):
        for _ in range(2 + i % 3):
            plan.append((EPOCH + timedelta(seconds=rng.uniform(0, 365 * 86400)), "voice", i))
        for _ in range(1 + (i * 7) % 3):
            plan.append((EPOCH + timedelta(seconds=rng.uniform(0, 365 * 86400)), "chat", i))
    plan.sort()

    started = time.perf_counter()
    log = CallLog(factory)
    log.start()
    for n, (at, kind, i) in enumerate(plan):
        if kind != "voice":
            continue
        call_id = uuid.uuid4().hex
        number = phone(i)
        log.call_started(
            call_id, sip_call_id=f"{call_id}@bench", from_uri=f'"Caller {i}" <sip:{number}@127.0.0.1>;tag={n}',
            to_uri="<sip:carrier_en@127.0.0.1>", at=at, remote_media="127.0.0.1:40000",
            caller=Identity("phone", number),
        )  # fmt: skip
        t = at + timedelta(milliseconds=300)
        log.call_answered(call_id, at=t, codec="PCMU")
        log.call_updated(call_id, flow="carrier_en@1")
        log.event(call_id, "state", "answered", at=t)
        offset = 0
        for turn in range(10):  # ~20 messages: what we said, what the caller said or pressed
            offset += rng.randint(1500, 6000)
            when = at + timedelta(milliseconds=offset)
            prompt = PROMPTS[0] if turn == 0 else rng.choice(PROMPTS)
            log.event(call_id, "prompt", prompt[:60], at=when)
            log.message(call_id, sender="bot", kind="prompt", text=prompt, at=when, offset_ms=offset)
            offset += rng.randint(1000, 5000)
            when = at + timedelta(milliseconds=offset)
            if rng.random() < 0.25:
                digit = str(rng.randint(1, 9))
                log.event(call_id, "dtmf", digit, at=when)
                log.message(call_id, sender="caller", kind="dtmf", text=digit, at=when, offset_ms=offset)
            else:
                log.message(call_id, sender="caller", kind="utterance", text=rng.choice(CALLER_LINES), at=when,
                            confidence=round(rng.uniform(0.5, 0.99), 3), offset_ms=offset)  # fmt: skip
        end = at + timedelta(milliseconds=offset + 800)
        log.conversation_updated(call_id, ended_at=end, status="closed", language="en",
                                 disposition=DISPOSITIONS[n % len(DISPOSITIONS)])  # fmt: skip
        log.call_ended(call_id, at=end, reason="caller_bye")
        if n % 2000 == 0:
            log.flush_sync(timeout=600)  # keep the queue bounded
    log.flush_sync(timeout=600)
    log.close()
    calls_s = time.perf_counter() - started
    if log.failed_ops:
        raise SystemExit(f"call log failed {log.failed_ops} operations while seeding")

    kb = ROOT / "bot" / "examples" / "northwind_kb.yaml"
    bot = KnowledgeBot(parse(kb.read_text(encoding="utf-8"), str(kb)))
    clock_now = [EPOCH]
    chat = ChatService(factory, bot, EventHub(), clock=lambda: clock_now[0])
    started = time.perf_counter()
    for at, kind, i in plan:
        if kind != "chat":
            continue
        language = "zh" if i % 5 == 0 else "en"
        lines = CHAT_LINES_ZH if language == "zh" else CHAT_LINES_EN
        clock_now[0] = at
        begun = chat.start([Identity("phone", phone(i))], name=f"Customer {i}", language=language)
        for _ in range(rng.randint(2, 4)):
            clock_now[0] += timedelta(seconds=rng.uniform(5, 60))
            chat.post(begun.conversation.id, rng.choice(lines))
        clock_now[0] += timedelta(seconds=30)
        chat.close(begun.conversation.id, by="customer")
    chats_s = time.perf_counter() - started

    engine.dispose()
    seeded = summary(db, calls_s, chats_s)
    if len(seeded.contacts) != n_contacts:
        raise SystemExit(f"expected {n_contacts} contacts, found {len(seeded.contacts)}")
    return seeded


def summary(db: str, calls_s: float = 0.0, chats_s: float = 0.0) -> Seeded:
    from sqlalchemy import func, select

    from callcenter_api.db import make_engine
    from callcenter_api.models import Contact, ContactIdentity, Conversation, Message

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            contact_ids = list(conn.scalars(select(Contact.id).join(ContactIdentity).order_by(ContactIdentity.value)))
            conversations = conn.scalar(select(func.count()).select_from(Conversation)) or 0
            messages = conn.scalar(select(func.count()).select_from(Message)) or 0
    finally:
        engine.dispose()
    return Seeded(contact_ids, conversations, messages, calls_s, chats_s)


def copy_history(source: str, target: str) -> float:
    """Every row of the seeded SQLite database into a freshly migrated `target` (PostgreSQL), table by table in
    foreign-key order, so both backends serve the very same history; serial sequences are moved past the
    copied ids. Returns the seconds it took."""
    from sqlalchemy import Integer, func, insert, inspect, select, text

    from callcenter_api.db import make_engine, migrate
    from callcenter_api.models import Base

    started = time.perf_counter()
    migrate(target)
    src, dst = make_engine(source), make_engine(target)
    try:
        present = set(inspect(src).get_table_names()) & set(inspect(dst).get_table_names())
        with src.connect() as read, dst.begin() as write:
            for table in Base.metadata.sorted_tables:
                if table.name not in present:
                    continue
                write.execute(table.delete())
                rows = [dict(r) for r in read.execute(select(table)).mappings()]
                for chunk in range(0, len(rows), 5000):
                    write.execute(insert(table), rows[chunk : chunk + 5000])
                for column in table.primary_key.columns:
                    if isinstance(column.type, Integer) and column.autoincrement in (True, "auto") and rows:
                        top = write.scalar(select(func.max(column)))
                        write.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                                           f"{int(top)})"))  # fmt: skip
    finally:
        src.dispose()
        dst.dispose()
    return time.perf_counter() - started


# ---- the service -------------------------------------------------------------------------------------------


def start_server(workdir: Path, db: str, http_port: int, worker: int = 0) -> subprocess.Popen[bytes]:
    log = (workdir / f"server-{worker}.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "hotline", "serve", "--sip-host", "127.0.0.1", "--sip-port",
            str(free_port(socket.SOCK_DGRAM)), "--http-port", str(http_port), "--db", db, "--rtp-ports",
            f"{42000 + 100 * worker}-{42099 + 100 * worker}", "--admin-token", TOKEN, "--log-level", "warning",
            "--asr-engine", "off",
            "--tts-cache-dir", str(workdir / "prompts"), "--recordings-dir", str(workdir / "recordings"),
            "--worker-id", f"bench-{worker}",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )  # fmt: skip
    wait_healthy(server, http_port, workdir / f"server-{worker}.log", 90)
    return server


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# ---- load ---------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    offered: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    max_in_flight: int = 0
    send_lag_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request written as prebuilt bytes, a response read by its
    Content-Length. httpx spent more CPU per request than the server (97 % of a core at 260 req/s), so it,
    not the server, set the achievable rate; this does the few things the benchmark needs and nothing else."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, request: bytes) -> tuple[int, int]:
        """(status, body bytes); reconnects once if the server closed the idle connection."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None
            try:
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
                continue
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = next((int(v) for k, _, v in (line.partition(b":") for line in lines[1:])
                           if k.strip().lower() == b"content-length"), None)  # fmt: skip
            if length is None:
                self.close()
                raise ConnectionError("response without Content-Length")
            body = await self.reader.readexactly(length)
            return status, len(body)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def offer(ports: list[int], contacts: list[str], rate: float, duration: float, connections: int,
                rng: random.Random, drain: float) -> LoadResult:  # fmt: skip
    """Request i is due at t0 + i/rate; at most `connections` are on the wire at once (one keep-alive
    connection each, spread evenly over the workers' ports as a load balancer would), later ones wait in a FIFO,
    their latency still counted from when they were due. Requests not done `drain` seconds after the last one
    was due are abandoned and counted as errors."""
    n = int(rate * duration)
    result = LoadResult(offered=n, duration_s=0.0)
    head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"

    def request(contact: str) -> bytes:
        return f"GET /api/v1/contacts/{contact}/timeline?limit=20 HTTP/1.1\r\n{head}".encode()

    idle: asyncio.Queue[_Connection] = asyncio.Queue()  # FIFO of free connections
    pool = [_Connection(ports[i % len(ports)]) for i in range(connections)]
    # open the connections before the clock starts
    warm = await asyncio.gather(*(c.get(request(contact)) for c, contact in zip(pool, contacts, strict=False)),
                                return_exceptions=True)  # fmt: skip
    failed = sum(1 for w in warm if isinstance(w, BaseException) or w[0] != 200)
    if failed:
        print(f"  warm-up: {failed} of {len(warm)} concurrent requests failed", flush=True)
    for connection in pool:
        idle.put_nowait(connection)
    waiting = 0

    async def one(due: float, contact: str) -> None:
        nonlocal waiting
        waiting += 1
        result.max_in_flight = max(result.max_in_flight, waiting)
        connection = await idle.get()
        try:
            result.send_lag_ms.append((time.perf_counter() - due) * 1000)
            status, size = await connection.get(request(contact))
            if status == 200:
                result.latencies_ms.append((time.perf_counter() - due) * 1000)
                result.bytes += size
            else:
                key = f"HTTP {status}"
                result.errors[key] = result.errors.get(key, 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            connection.close()
            key = type(exc).__name__
            result.errors[key] = result.errors.get(key, 0) + 1
        finally:
            waiting -= 1
            idle.put_nowait(connection)

    tasks = []
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due, rng.choice(contacts))))
    _done, pending = await asyncio.wait(tasks, timeout=max(0.0, t0 + duration + drain - time.perf_counter()))
    for task in pending:
        task.cancel()
    if pending:
        result.errors[f"not done {drain:.0f} s after the offer ended"] = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    result.duration_s = time.perf_counter() - t0
    for connection in pool:
        connection.close()
    return result


def percentiles(values: list[float]) -> str:
    if not values:
        return "no successful requests"
    a = np.asarray(values)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return f"p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  max {a.max():.1f} ms"


# ---- explaining one request ------------------------------------------------------------------------------


def explain(db: str, contacts: list[str]) -> None:
    """Statements and where the time goes for timeline requests, in process (the service's own app)."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from callcenter_api.app import create_app
    from callcenter_api.db import make_engine, make_session_factory

    engine = make_engine(db)
    statements: list[float] = []
    starts: dict[int, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        starts[id(cursor)] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(time.perf_counter() - starts.pop(id(cursor), time.perf_counter()))

    app = create_app(session_factory=make_session_factory(engine), admin_token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sample = contacts[:: max(1, len(contacts) // 200)]
    with TestClient(app) as client:
        for contact in sample[:20]:
            client.get(f"/api/v1/contacts/{contact}/timeline?limit=20", headers=headers)
        statements.clear()
        sizes, items, messages = [], [], []
        started = time.perf_counter()
        for contact in sample:
            response = client.get(f"/api/v1/contacts/{contact}/timeline?limit=20", headers=headers)
            body = response.json()
            sizes.append(len(response.content))
            items.append(len(body["items"]))
            messages.append(sum(len(i["messages"]) for i in body["items"]))
        total = time.perf_counter() - started
    engine.dispose()
    per = total / len(sample) * 1000
    sql = sum(statements) / len(sample) * 1000
    print(f"  in process ({len(sample)} requests through the app, TestClient): {per:.2f} ms a request, of which "
          f"{len(statements) / len(sample):.1f} SQL statements take {sql:.2f} ms (driver + database); "
          f"response {np.mean(sizes) / 1024:.1f} KiB, {np.mean(items):.1f} conversations, "
          f"{np.mean(messages):.0f} messages")  # fmt: skip


# ---- main ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'history.db'}"  # the seeded database itself
        return
    from callcenter_api.testing import pg_test_url, pg_unreachable_reason, scratch_pg_schema

    url = pg_test_url()
    reason = pg_unreachable_reason(url)
    if reason:
        raise SystemExit(f"PostgreSQL: {reason}")
    with scratch_pg_schema(url) as scratch:
        yield scratch.render_as_string(hide_password=False)


def run_backend(backend: str, db: str, seeded: Seeded, args: argparse.Namespace, workdir: Path) -> list[str]:
    rng = random.Random(5)
    lines = []
    if args.explain:
        explain(db, seeded.contacts)
    ports = [free_port() for _ in range(args.workers)]
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for worker, port in enumerate(ports):  # one after the other: each migrates the schema at start-up
            servers.append(start_server(workdir, db, port, worker))
        for rate in args.rates:
            time.sleep(2.0)
            lines.append(measure(backend, servers, ports, seeded.contacts, rate, args, rng))
    finally:
        for server in servers:
            stop_server(server)
    return lines


def measure(backend: str, servers: list[subprocess.Popen[bytes]], ports: list[int], contacts: list[str],
            rate: float, args: argparse.Namespace, rng: random.Random) -> str:  # fmt: skip
    load0 = load_average()
    cpu0, wall0 = sum(cpu_seconds(s.pid) for s in servers), time.perf_counter()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    result = asyncio.run(offer(ports, contacts, rate, args.duration, args.connections, rng, args.drain))
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu1, wall1 = sum(cpu_seconds(s.pid) for s in servers), time.perf_counter()
    server_cpu = 100 * (cpu1 - cpu0) / (wall1 - wall0)
    client_cpu = 100 * ((self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)) / (wall1 - wall0)
    errors = sum(result.errors.values())
    achieved = result.ok / result.duration_s
    verdict = ""
    if result.latencies_ms:
        p99 = float(np.percentile(result.latencies_ms, 99))
        verdict = "meets" if p99 <= TARGET_P99_MS and errors == 0 else "MISSES"
        verdict = f" ({verdict} p99 <= {TARGET_P99_MS:.0f} ms)"
    queued = np.percentile(result.send_lag_ms, 99) if result.send_lag_ms else float("nan")
    label = f"{backend} x{len(servers)} workers" if len(servers) > 1 else backend
    line = (
        f"[{label}] offered {rate:.0f} req/s for {args.duration:.0f} s ({result.offered} requests): "
        f"achieved {achieved:.0f} req/s ({result.ok} ok in {result.duration_s:.1f} s), errors {errors}"
        f"{' ' + str(result.errors) if result.errors else ''}; latency {percentiles(result.latencies_ms)}"
        f"{verdict}; {result.bytes / max(1, result.ok) / 1024:.1f} KiB a response; max outstanding "
        f"{result.max_in_flight}, p99 wait for one of the {args.connections} connections {queued:.0f} ms; "
        f"server CPU {server_cpu:.0f}% of a core ({1000 * (cpu1 - cpu0) / max(1, result.ok):.1f} ms a response), "
        f"client CPU {client_cpu:.0f}%; load average {load0} -> "
        f"{load_average()}"
    )  # fmt: skip
    print(line, flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[500.0], help="offered requests/s, each in turn [500]"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load [20]")
    parser.add_argument("--connections", type=int, default=64, help="client connection pool size [64]")
    parser.add_argument("--workers", type=int, default=1,
                        help="hotline serve processes on the same database, connections spread over them [1]")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for late answers [30]")
    parser.add_argument("--seed-cache", type=Path, help="keep the seeded SQLite file here and reuse it next time")
    parser.add_argument("--explain", action="store_true", help="statements and time of one request, in process")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average at start: {load_average()}")
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hotline-history-") as tmp:
        workdir = Path(tmp)
        sqlite_db = f"sqlite:///{workdir / 'history.db'}"
        cached = args.seed_cache / f"history-{args.contacts}.db" if args.seed_cache else None
        if cached is not None and cached.exists():
            shutil.copyfile(cached, workdir / "history.db")
            seeded = summary(sqlite_db)
            print(f"reusing {cached} (seeded earlier by this benchmark): ", end="")
        else:
            seeded = seed(sqlite_db, args.contacts, random.Random(5))
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(workdir / "history.db", cached)
        how = (f"calls through CallLog {seeded.calls_s:.0f} s, chats through ChatService {seeded.chats_s:.0f} s"
               if seeded.calls_s else "calls through CallLog, chats through ChatService")  # fmt: skip
        print(f"seeded {len(seeded.contacts)} contacts, {seeded.conversations} conversations, {seeded.messages} "
              f"messages into SQLite ({how})", flush=True)  # fmt: skip
        with contextlib.ExitStack() as stack:
            dbs = {backend: stack.enter_context(database(backend, workdir)) for backend in args.backends}
            for backend, db in dbs.items():  # before any server writes to the SQLite file
                if backend != "sqlite":
                    copied = copy_history(sqlite_db, db)
                    print(f"[{backend}] the same rows copied from SQLite in {copied:.0f} s", flush=True)
            for backend, db in dbs.items():
                lines += run_backend(backend, db, seeded, args, workdir)
    print("\nsummary:")
    for line in lines:
        print(f"  {line}")


if __name__ == "__main__":
    main()
