"""Bridged-call load: N concurrent callers, each queued and bridged to an agent, on one `hotline serve` worker.

The server gets a call-center file (one queue, N available agents whose phones are `--uas` sipp UAS
processes running bench/scenarios/uas_bridge_agent.xml: tests/e2e/scenarios/uas_answer.xml, which answers
and talks back, made tolerant of INVITE retransmissions) and a flow that transfers straight to the queue.
N sipp callers (bench/scenarios/uac_bridge_caller.xml) talk (flite speech, looped: a sentence, then silence)
and stay on the line `--hold` seconds; the server rings an agent for each, and bridges the two legs through
its media path, recording both (2-channel WAV) and transcribing both live (ASR per leg) unless
`--asr-engine off`. We capture RTP on loopback with tcpdump and report, over the window in which the
bridges are up: calls bridged / failed, CPU of the server process and of its ASR worker processes (% of one
core, /proc/<pid>/stat), RSS start -> end, the server's outbound RTP inter-packet interval (mean, p99, max
gap) per leg, caller-facing and agent-facing apart, and how many legs receive their peer's audio; then the
live transcripts written, how long the recognizers stayed busy after the calls ended, and whether every
agent is back in wrap_up/available (GET /api/v1/agents: none stuck reserved or busy).

    python -m bench.bridge_load --calls 25 50 100 [--hold 30] [--rate 20] [--asr-engine auto off] [--uas 2]

Needs root (tcpdump on lo), sipp, tcpdump and flite (scripts/install.sh --test installs them). Each run is
bounded (sipp -m N and -timeout; at most --drain-timeout for the recognizers) and every process it starts is
stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import cpu_seconds, machine, read_udp, start_capture, stop_capture
from bench.sip_load import SERVER_RTP, api, free_port, rss_mib, start_server

ROOT = Path(__file__).resolve().parents[1]
CALLER_SCENARIO = ROOT / "bench" / "scenarios" / "uac_bridge_caller.xml"
AGENT_SCENARIO = ROOT / "bench" / "scenarios" / "uas_bridge_agent.xml"
FLOW = "bench_bridge"
QUEUE = "bench"
WRAP_UP = 3  # seconds
CALLER_TEXT = "Hello, I was charged twice on my last bill, and I would like one of the payments refunded please."
AGENT_TEXT = "Thank you for calling. I can see both payments, and I will refund the second one to your card today."


# ---- audio ----------------------------------------------------------------------------------------------
def speech_ulaw(text: str, lead_silence: float, tail_silence: float) -> bytes:
    """`text` spoken by flite at 8 kHz µ-law, with silence around it (one turn of a conversation)."""
    import soxr

    from telephony.g711 import ulaw_encode

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["flite", "-t", text, "-o", str(path)], check=True, capture_output=True)
        with wave.open(str(path)) as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if rate != 8000:
        pcm = soxr.resample(pcm.astype(np.float32), rate, 8000).clip(-32768, 32767).astype(np.int16)
    silence = np.zeros
    full = np.concatenate(
        [silence(int(lead_silence * 8000), np.int16), pcm, silence(int(tail_silence * 8000), np.int16)]
    )
    full = full[: len(full) // 160 * 160]  # whole 20 ms packets
    return ulaw_encode(full)


def speech_share(ulaw: bytes) -> float:
    """The share of 20 ms packets that carry speech (not digital silence)."""
    from telephony.g711 import ulaw_decode

    frames = ulaw_decode(ulaw).reshape(-1, 160).astype(np.float64)
    return float((np.sqrt((frames**2).mean(axis=1)) > 100).mean())


# ---- process accounting -----------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cpu_of(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # it exited
            out[pid] = cpu_seconds(pid)
    return out


def rss_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += rss_mib(pid)
    return total


# ---- results --------------------------------------------------------------------------------------------
@dataclass
class LegStats:
    legs: int = 0
    mean_ms: float = 0.0
    p99_ms: float = 0.0
    worst_leg_p99_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, streams: list[np.ndarray]) -> LegStats:
        gaps = [np.diff(t) * 1000 for t in streams if len(t) > 2]
        if not gaps:
            return cls()
        every = np.concatenate(gaps)
        return cls(len(gaps), float(every.mean()), float(np.percentile(every, 99)),
                   max(float(np.percentile(g, 99)) for g in gaps), float(every.max()))  # fmt: skip

    def __str__(self) -> str:
        return (f"legs={self.legs} mean={self.mean_ms:.3f} ms p99={self.p99_ms:.2f} ms "
                f"(worst leg {self.worst_leg_p99_ms:.2f}) max={self.max_ms:.2f} ms")  # fmt: skip


@dataclass
class RunResult:
    asr: str
    calls: int
    bridged: int
    failed: int
    up_at_window: int
    cpu_server: float
    cpu_asr: float
    cpu_sipp: float
    rss_start: float
    rss_end: float
    rss_asr_end: float
    rss_asr_peak: float
    guard: str  # what the memory guard did ("" = nothing)
    caller_legs: LegStats
    agent_legs: LegStats
    window_s: float
    transcripts: dict[str, int] = field(default_factory=dict)
    asr_busy_after_s: float = 0.0
    agents_after: dict[str, int] = field(default_factory=dict)
    speech_per_s: float = 0.0  # seconds of speech reaching the recognizers per second (all legs)
    two_way: dict[str, int] = field(default_factory=dict)  # legs whose peer's audio reached us, per side

    @property
    def stuck(self) -> int:
        return sum(n for state, n in self.agents_after.items() if state not in ("available", "wrap_up"))


def agent_states(http_port: int) -> dict[str, int]:
    states: dict[str, int] = {}
    for agent in api(http_port, "/api/v1/agents"):  # type: ignore[union-attr]
        states[agent["state"]] = states.get(agent["state"], 0) + 1
    return dict(sorted(states.items()))


class MemoryGuard:
    """Samples the ASR workers' RSS every 0.5 s (peak) and, on a shared machine, kills them (the engine starts
    replacements; their pending utterances are lost) before the machine runs out of memory."""

    def __init__(self, pids: list[int], min_free_mib: float) -> None:
        self.pids, self.min_free_mib = pids, min_free_mib
        self.peak, self.fired = 0.0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            rss = rss_of(self.pids)
            self.peak = max(self.peak, rss)
            available = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemAvailable:"))  # fmt: skip
            if available < self.min_free_mib and not self.fired:
                self.fired = f"memory guard: ASR workers killed at {rss:.0f} MiB ({available} MiB left)"
                for pid in self.pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def busy_until_idle(pids: list[int], limit_s: float, threshold: float = 0.05) -> float:
    """Seconds until these processes use less than `threshold` of a core over a second (at most limit_s)."""
    start = time.monotonic()
    last = sum(cpu_of(pids).values())
    while time.monotonic() - start < limit_s:
        time.sleep(1.0)
        now = sum(cpu_of(pids).values())
        if now - last < threshold:
            return time.monotonic() - start - 1.0
        last = now
    return time.monotonic() - start


def run_one(n: int, args: argparse.Namespace, workdir: Path, server: subprocess.Popen[bytes], uas_pids: list[int],
            ports: dict[str, int], asr: str) -> RunResult:  # fmt: skip
    capture = workdir / f"rtp-{asr}-{n}.pcap"
    tcpdump = start_capture(capture, SERVER_RTP, both_ways=True, buffer_kib=32768)
    before = {c["id"] for c in api(ports["http"], "/api/v1/calls?limit=500")}  # type: ignore[union-attr]
    ramp = n / args.rate
    workers = descendants(server.pid)  # the ASR worker processes
    guard = MemoryGuard(workers, args.min_free_mib)
    started = time.monotonic()
    sipp = subprocess.Popen(
        ["sipp", f"127.0.0.1:{ports['sip']}", "-sf", str(CALLER_SCENARIO), "-s", FLOW, "-i", "127.0.0.1",
         "-p", str(free_port()), "-mp", str(free_port()), "-r", str(args.rate), "-l", str(n), "-m", str(n),
         "-d", str(args.hold * 1000), "-nostdin", "-trace_stat", "-stf", str(workdir / f"stat-{asr}-{n}.csv"),
         "-max_socket", "2048", "-timeout", str(int(ramp + args.hold + 60)), "-timeout_error"],
        cwd=workdir / "caller", stdout=subprocess.DEVNULL, stderr=(workdir / f"sipp-{asr}-{n}.err").open("wb"),
    )  # fmt: skip
    # all N bridged: the last call is placed at `ramp`, then queued, rung and answered (a second or two);
    # the first call hangs up at about `hold`
    window_start, window_end = started + ramp + 5.0, started + args.hold - 1.0
    if window_end - window_start < 5:
        raise SystemExit(f"--hold {args.hold} is too short for {n} calls at {args.rate}/s (no steady window)")
    time.sleep(max(0.0, window_start - time.monotonic() - 0.5))
    up = agent_states(ports["http"]).get("busy", 0)
    time.sleep(max(0.0, window_start - time.monotonic()))
    cpu0 = cpu_of([server.pid, *workers, sipp.pid, *uas_pids])
    rss0, t0 = rss_mib(server.pid), time.monotonic()
    time.sleep(max(0.0, window_end - time.monotonic()))
    cpu1 = cpu_of([server.pid, *workers, sipp.pid, *uas_pids])
    rss1, rss_workers, t1 = rss_mib(server.pid), rss_of(workers), time.monotonic()
    sipp.wait(timeout=ramp + args.hold + 120)
    ended = time.monotonic()
    # the recognizers finish what is queued (so the next run starts idle); how long that takes is a figure
    asr_busy = busy_until_idle(workers, args.drain_timeout) if workers and asr != "off" else 0.0
    guard.stop()
    time.sleep(max(0.0, ended + 1.0 - time.monotonic()))
    stop_capture(tcpdump)

    def pct(pids: list[int]) -> float:
        return 100 * sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in pids) / (t1 - t0)

    calls = [c for c in api(ports["http"], "/api/v1/calls?limit=500") if c["id"] not in before]  # type: ignore[union-attr]
    inbound = [c for c in calls if f"sip:{FLOW}@" in c["to_uri"]]
    outbound = [c for c in calls if "sip:agent" in c["to_uri"]]
    bridged = [c for c in inbound
               if any(e["type"] == "transfer" and e["value"].startswith("bridged") for e in c["events"])]  # fmt: skip
    sipp_failed = _failed_calls(workdir / f"stat-{asr}-{n}.csv", sipp.returncode, n)

    # streams: one server RTP port = one outbound leg; which side it faces, from where it sends to
    caller_media = {c["remote_media"] for c in inbound if c["remote_media"]}
    agent_media = {c["remote_media"] for c in outbound if c["remote_media"]}
    wall_offset = time.time() - time.monotonic()
    lo, hi = t0 + wall_offset, t1 + wall_offset
    per_stream: dict[int, list[float]] = {}
    received: dict[int, int] = {}  # packets the server got on each of its ports (the peers' audio)
    facing: dict[int, str] = {}
    server_ports = range(SERVER_RTP[0], SERVER_RTP[1] + 1)
    for ts, src, dst, _payload in read_udp(capture):
        if not lo <= ts <= hi:
            continue
        if src in server_ports:
            per_stream.setdefault(src, []).append(ts)
            peer = f"127.0.0.1:{dst}"
            facing[src] = "caller" if peer in caller_media else "agent" if peer in agent_media else "?"
        elif dst in server_ports:
            received[dst] = received.get(dst, 0) + 1
    capture.unlink(missing_ok=True)
    streams = {side: [np.asarray(t) for src, t in per_stream.items() if facing[src] == side]
               for side in ("caller", "agent")}  # fmt: skip
    # a leg "has media both ways" when its peer sent at least 90 % of the 50 packets/s over the window
    full = 0.9 * 50 * (t1 - t0)
    two_way = {side: sum(1 for src in per_stream if facing[src] == side and received.get(src, 0) >= full)
               for side in ("caller", "agent")}  # fmt: skip

    transcripts: dict[str, int] = {}
    if asr != "off":
        for call in bridged:
            detail = api(ports["http"], f"/api/v1/conversations/{call['id']}")
            for m in detail["messages"]:  # type: ignore[index]
                if m["kind"] == "utterance" and (m.get("meta") or {}).get("live"):
                    transcripts[m["sender"]] = transcripts.get(m["sender"], 0) + 1
        # what the legs said: one utterance per loop of each side's audio while bridged
        talk = sum(_bridged_seconds(c) for c in bridged)
        transcripts["expected"] = round(talk / args.caller_loop) + round(talk / args.agent_loop)
    time.sleep(WRAP_UP + 4)  # wrap-up runs out, the sweep (every 3 s) frees them
    return RunResult(
        asr=asr, calls=n, bridged=len(bridged), failed=max(sipp_failed, n - len(bridged)), up_at_window=up,
        cpu_server=pct([server.pid]), cpu_asr=pct(workers), cpu_sipp=pct([sipp.pid, *uas_pids]),
        rss_start=rss0, rss_end=rss1, rss_asr_end=rss_workers, rss_asr_peak=guard.peak, guard=guard.fired,
        caller_legs=LegStats.of(streams["caller"]), agent_legs=LegStats.of(streams["agent"]), window_s=t1 - t0,
        transcripts=transcripts, asr_busy_after_s=asr_busy, agents_after=agent_states(ports["http"]), two_way=two_way,
    )  # fmt: skip


def _bridged_seconds(call: dict) -> float:  # type: ignore[type-arg]
    from datetime import datetime

    at = [e["at"] for e in call["events"] if e["type"] == "transfer" and e["value"].startswith("bridged")]
    if not at or not call["ended_at"]:
        return 0.0
    return (datetime.fromisoformat(call["ended_at"]) - datetime.fromisoformat(at[0])).total_seconds()


def _uas_counts(stat_files: list[Path]) -> str:
    """The UAS processes' cumulative counters (their stat files are rewritten every second)."""
    wanted = ("IncomingCall(C)", "SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)")
    totals = dict.fromkeys(wanted, 0)
    for stat_file in stat_files:
        try:
            lines = stat_file.read_text().splitlines()
            values = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
            for k in wanted:
                totals[k] += int(values.get(k, 0))
        except (OSError, IndexError, ValueError):
            return "no statistics yet"
    return ", ".join(f"{k.split('(')[0]} {v}" for k, v in totals.items())


def _failed_calls(stat_file: Path, returncode: int | None, n: int) -> int:
    try:
        lines = stat_file.read_text().splitlines()
        header = lines[0].split(";")
        return int(lines[-1].split(";")[header.index("FailedCall(C)")])
    except (OSError, ValueError, IndexError):
        return n if returncode else 0


# ---- set-up -------------------------------------------------------------------------------------------
def write_config(workdir: Path, agents: int, uas_ports: list[int]) -> tuple[Path, Path]:
    flows = workdir / "flows"
    flows.mkdir()
    (flows / f"{FLOW}.yaml").write_text(
        f"flow: {FLOW}\ndescription: Straight to the bench queue.\nlanguage: en\nstart: queue\nnodes:\n"
        f"  queue:\n    transfer: {{queue: {QUEUE}, on: {{failed: bye}}}}\n  bye:\n    hangup: {{}}\n"
    )
    lines = ["queues:",
             f"  {QUEUE}: {{ring_timeout: 10, wrap_up_seconds: {WRAP_UP}, max_size: 10000, max_wait: 600, "
             "announce_period: 600}", "agents:"]  # fmt: skip
    for i in range(agents):
        port = uas_ports[i % len(uas_ports)]  # agents spread over the UAS processes
        lines.append(f'  - {{name: "Agent {i:03d}", sip_uri: "sip:agent{i:03d}@127.0.0.1:{port}", '
                     "state: available}")  # fmt: skip
    callcenter = workdir / "callcenter.yaml"
    callcenter.write_text("\n".join(lines) + "\n")
    return flows, callcenter


def start_uas(agent_dir: Path, port: int, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", "-sf", str(AGENT_SCENARIO), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
         "-mp", str(free_port()), "-nostdin", "-max_socket", "2048", "-trace_stat", "-stf",
         str(agent_dir / "stat.csv"), "-fd", "1", "-trace_err", "-error_file", str(agent_dir / "errors.log"),
         "-timeout", f"{int(seconds)}s"],
        cwd=agent_dir, stdout=subprocess.DEVNULL, stderr=(agent_dir / "sipp.err").open("wb"),
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def describe(r: RunResult) -> str:
    return (
        f"asr={r.asr} calls={r.calls} bridged={r.bridged} failed={r.failed} (busy agents at window start "
        f"{r.up_at_window}) window={r.window_s:.0f}s load={os.getloadavg()[0]:.2f}\n"
        f"  cpu: server {r.cpu_server:.1f}% + asr workers {r.cpu_asr:.1f}% (sipp peers {r.cpu_sipp:.1f}%); "
        f"rss server {r.rss_start:.0f}->{r.rss_end:.0f} MiB, asr workers {r.rss_asr_end:.0f} MiB at window end, "
        f"peak {r.rss_asr_peak:.0f} MiB{' — ' + r.guard if r.guard else ''}\n"
        f"  rtp to callers: {r.caller_legs}\n  rtp to agents:  {r.agent_legs}\n"
        f"  legs receiving their peer's audio (>= 90% of packets): callers {r.two_way.get('caller', 0)}, "
        f"agents {r.two_way.get('agent', 0)}\n"
        + (
            f"  asr input {r.speech_per_s:.1f} s of speech per s; asr cpu per second of speech "
            f"{r.cpu_asr / 100 / r.speech_per_s:.3f} (effective RTF)\n"
            if r.asr != "off" and r.speech_per_s
            else ""
        )
        + f"  live transcripts: {r.transcripts or 'n/a'}; asr busy {r.asr_busy_after_s:.0f} s after the calls "
        f"ended; agents after: {r.agents_after} (stuck: {r.stuck})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[100])
    parser.add_argument("--hold", type=int, default=30, help="seconds each caller stays on the line")
    parser.add_argument("--rate", type=float, default=20, help="new calls per second")
    parser.add_argument("--uas", type=int, default=2, help="sipp UAS processes the agents' phones are spread over")
    parser.add_argument("--min-free-mib", type=float, default=3072,
                        help="memory guard: kill the ASR workers when the machine has less available")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (logs, sipp stats)")
    parser.add_argument("--drain-timeout", type=float, default=600,
                        help="at most this long to wait, after the calls, for the recognizers to go idle")  # fmt: skip
    parser.add_argument("--asr-engine", nargs="+", default=["auto"], choices=["auto", "pocketsphinx", "off"],
                        help="the server's --asr-engine (several: one server each, in turn)")  # fmt: skip
    args = parser.parse_args()
    for tool in ("sipp", "tcpdump", "flite"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run scripts/install.sh --test")
    print(f"machine: {machine()}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    agents = max(args.calls)
    rows: list[RunResult] = []
    for asr in args.asr_engine:
        with tempfile.TemporaryDirectory(prefix="hotline-bridge-") as tmp:
            workdir = Path(tmp) if args.keep is None else args.keep / asr
            workdir.mkdir(parents=True, exist_ok=True)
            agent_dirs = [workdir / f"agent{k}" for k in range(args.uas)]
            for sub in (workdir / "caller", *agent_dirs):
                sub.mkdir()
            caller_audio = speech_ulaw(CALLER_TEXT, 0.0, 7.0)
            agent_audio = speech_ulaw(AGENT_TEXT, 3.5, 3.5)
            (workdir / "caller" / "caller_audio.ulaw").write_bytes(caller_audio)
            for agent_dir in agent_dirs:
                (agent_dir / "agent_audio.ulaw").write_bytes(agent_audio)
            speech = {"caller": speech_share(caller_audio), "agent": speech_share(agent_audio)}
            args.caller_loop, args.agent_loop = len(caller_audio) / 8000, len(agent_audio) / 8000
            print(f"audio: caller {len(caller_audio) / 8000:.1f} s loop, {speech['caller']:.0%} speech; agent "
                  f"{len(agent_audio) / 8000:.1f} s loop, {speech['agent']:.0%} speech (flite)")  # fmt: skip
            ports = {"sip": free_port(), "http": free_port(socket.SOCK_STREAM)}
            uas_ports = [free_port() for _ in agent_dirs]
            flows, callcenter = write_config(workdir, agents, uas_ports)
            total = sum(n / args.rate + args.hold + 200 for n in args.calls)
            uas = [start_uas(d, port, total) for d, port in zip(agent_dirs, uas_ports, strict=True)]
            server = start_server(workdir, ports["sip"], ports["http"], SERVER_RTP, [
                "--callcenter", str(callcenter), "--flows", str(flows), "--default-flow", FLOW,
                "--asr-engine", asr, "--recordings-dir", str(workdir / "recordings"), "--kb-seed", "none",
            ])  # fmt: skip
            try:
                workers = descendants(server.pid) or "none"
                print(f"\nserver --asr-engine {asr}: pid {server.pid}, ASR/worker processes {workers}; "
                      f"{agents} agents on {args.uas} sipp UAS", flush=True)  # fmt: skip
                for n in args.calls:
                    r = run_one(n, args, workdir, server, [u.pid for u in uas], ports, asr)
                    r.speech_per_s = r.caller_legs.legs * speech["caller"] + r.agent_legs.legs * speech["agent"]
                    rows.append(r)
                    print(describe(r), flush=True)
                    phones = _uas_counts([d / "stat.csv" for d in agent_dirs])
                    print(f"  agent phones ({args.uas} sipp UAS), all runs so far: {phones}", flush=True)
            finally:
                stop(server)
                for u in uas:
                    stop(u, signal.SIGINT)  # sipp writes its stats and exits on SIGINT
    print("\n| ASR | calls | bridged / failed | server CPU (% of 1 core) | ASR workers CPU | RSS start → end (MiB) "
          "| to callers: mean / p99 / max (ms) | to agents: mean / p99 / max (ms) | live transcripts caller/agent "
          "| agents stuck |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c, a = r.caller_legs, r.agent_legs
        t = r.transcripts
        drain = r.asr_busy_after_s
        words = (f"{t.get('caller', 0)}/{t.get('agent', 0)} of ~{t.get('expected', 0)} (drain {drain:.0f} s)"
                 if r.asr != "off" else "—")  # fmt: skip
        print(f"| {r.asr} | {r.calls} | {r.bridged} / {r.failed} | {r.cpu_server:.1f} | {r.cpu_asr:.1f} | "
              f"{r.rss_start:.0f} → {r.rss_end:.0f} | {c.mean_ms:.3f} / {c.p99_ms:.2f} / {c.max_ms:.2f} | "
              f"{a.mean_ms:.3f} / {a.p99_ms:.2f} / {a.max_ms:.2f} | {words} | {r.stuck} |")  # fmt: skip


if __name__ == "__main__":
    main()
