"""SIP/RTP load benchmark: N concurrent sipp callers against one `hotline serve` worker.

Each caller (tests/e2e/scenarios/uac_load.xml) streams audio and presses ten RFC 4733 digits, then holds.
We capture the server's outbound RTP on loopback with tcpdump and report, for the window in which all N
calls are up: server CPU (% of one core), RSS at start and end, outbound RTP inter-packet interval mean /
p99 / max gap, digits detected / sent, failed calls.

    python -m bench.sip_load --calls 100 200 400 [--hold 10]

Needs root (tcpdump on lo), sipp and tcpdump (scripts/install.sh --test installs them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import cpu_seconds, machine, read_udp, start_capture, stop_capture, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "e2e" / "scenarios" / "uac_load.xml"
DIGITS_PER_CALL = 10
RATE = 50  # new calls per second
TOKEN = "bench-token"
SERVER_RTP = (40000, 41999)


def free_port(kind: int = socket.SOCK_DGRAM, *, avoid: tuple[int, int] = SERVER_RTP) -> int:
    """A free loopback port outside the server's RTP range (the capture filter must only see the server)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not avoid[0] - 4 <= port <= avoid[1] + 4:
            return port




def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class RunResult:
    calls: int
    failed: int
    cpu_pct: float
    rss_start: float
    rss_end: float
    mean_ms: float
    p99_ms: float
    max_ms: float
    streams: int
    digits_sent: int
    digits_detected: int
    window_s: float


def api(http_port: int, path: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start_server(
    workdir: Path, sip_port: int, http_port: int, rtp: tuple[int, int], extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotline",
            "serve",
            "--sip-host",
            "127.0.0.1",
            "--sip-port",
            str(sip_port),
            "--http-port",
            str(http_port),
            "--db",
            f"sqlite:///{workdir / 'bench.db'}",
            "--rtp-ports",
            f"{rtp[0]}-{rtp[1]}",
            "--admin-token",
            TOKEN,
            "--log-level",
            "warning",
            "--tts-cache-dir",
            str(workdir / "prompts"),
            *(extra or []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    wait_healthy(server, http_port, workdir / "server.log", 60)
    return server


def write_caller_audio(path: Path) -> None:
    """10 s of a speech-like signal (tone bursts over noise), µ-law, for rtp_stream."""
    from telephony.g711 import ulaw_encode

    t = np.arange(80_000) / 8000
    envelope = (np.sin(2 * np.pi * 0.7 * t) > 0).astype(np.float64)
    signal_ = 6000 * np.sin(2 * np.pi * 440 * t) * envelope + np.random.default_rng(1).normal(0, 300, t.size)
    path.write_bytes(ulaw_encode(np.clip(signal_, -32768, 32767).astype(np.int16)))


def run_one(
    n: int,
    hold_s: int,
    workdir: Path,
    server: subprocess.Popen[bytes],
    ports: dict[str, int],
    rtp: tuple[int, int],
) -> RunResult:
    capture = workdir / f"rtp-{n}.pcap"
    tcpdump = start_capture(capture, rtp, both_ways=False)
    before = {c["sip_call_id"] for c in api(ports["http"], "/api/v1/calls?limit=500")}  # type: ignore[union-attr]
    ramp = n / RATE
    call_length = 1 + 2 * DIGITS_PER_CALL + hold_s
    started = time.monotonic()
    sipp = subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{ports['sip']}",
            "-sf",
            str(SCENARIO),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mp",
            str(free_port()),
            "-r",
            str(RATE),
            "-l",
            str(n),
            "-m",
            str(n),
            "-d",
            str(hold_s * 1000),
            "-nostdin",
            "-trace_stat",
            "-stf",
            str(workdir / f"stat-{n}.csv"),
            "-max_socket",
            "2048",
            "-timeout",
            str(int(ramp + call_length + 60)),
            "-timeout_error",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / f"sipp-{n}.err").open("wb"),
    )
    window_start = started + ramp + 2.0
    window_end = started + call_length - 1.0
    time.sleep(max(0.0, window_start - time.monotonic()))
    cpu0, rss0, t0 = cpu_seconds(server.pid), rss_mib(server.pid), time.monotonic()
    time.sleep(max(0.0, window_end - time.monotonic()))
    cpu1, rss1, t1 = cpu_seconds(server.pid), rss_mib(server.pid), time.monotonic()
    sipp.wait(timeout=ramp + call_length + 120)
    time.sleep(1.0)
    stop_capture(tcpdump)

    failed = _failed_calls(workdir / f"stat-{n}.csv", sipp.returncode, n)
    calls = [c for c in api(ports["http"], "/api/v1/calls?limit=500") if c["sip_call_id"] not in before]  # type: ignore[union-attr]
    detected = sum(1 for c in calls for e in c["events"] if e["type"] == "dtmf")
    answered = sum(1 for c in calls if c["answered_at"])

    # inter-packet gaps per outbound stream, only for packets inside the steady window
    wall_offset = time.time() - time.monotonic()
    lo, hi = t0 + wall_offset, t1 + wall_offset
    per_stream: dict[int, list[float]] = {}
    for ts, src, _dst, _payload in read_udp(capture):
        if lo <= ts <= hi:
            per_stream.setdefault(src, []).append(ts)  # one server RTP port = one outbound stream
    gaps: list[float] = []
    for times in per_stream.values():
        if len(times) > 2:
            gaps.extend(np.diff(np.asarray(times)) * 1000)
    gaps_arr = np.asarray(gaps) if gaps else np.asarray([0.0])
    capture.unlink(missing_ok=True)
    return RunResult(
        calls=n,
        failed=max(failed, n - answered),
        cpu_pct=100 * (cpu1 - cpu0) / (t1 - t0),
        rss_start=rss0,
        rss_end=rss1,
        mean_ms=float(gaps_arr.mean()),
        p99_ms=float(np.percentile(gaps_arr, 99)),
        max_ms=float(gaps_arr.max()),
        streams=len(per_stream),
        digits_sent=DIGITS_PER_CALL * answered,
        digits_detected=detected,
        window_s=t1 - t0,
    )


def _failed_calls(stat_file: Path, returncode: int | None, n: int) -> int:
    try:
        lines = stat_file.read_text().splitlines()
        header = lines[0].split(";")
        last = lines[-1].split(";")
        return int(last[header.index("FailedCall(C)")])
    except (OSError, ValueError, IndexError):
        return n if returncode else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--hold", type=int, default=10, help="seconds each call holds after its digits")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (server log, captures)")
    parser.add_argument("--asr-engine", default="auto", choices=["auto", "off"],
                        help="the server's ASR: auto listens for spoken digits in every input node [auto]")
    args = parser.parse_args()
    for tool in ("sipp", "tcpdump"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run scripts/install.sh --test")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        write_caller_audio(workdir / "caller_audio.ulaw")
        ports = {"sip": free_port(), "http": free_port(socket.SOCK_STREAM)}
        rtp = SERVER_RTP
        server = start_server(workdir, ports["sip"], ports["http"], rtp, ["--asr-engine", args.asr_engine])
        try:
            rows = []
            for n in args.calls:
                result = run_one(n, args.hold, workdir, server, ports, rtp)
                rows.append(result)
                print(
                    f"calls={result.calls:4d} failed={result.failed} cpu={result.cpu_pct:5.1f}% "
                    f"rss={result.rss_start:.0f}->{result.rss_end:.0f} MiB streams={result.streams} "
                    f"rtp mean={result.mean_ms:.3f} ms p99={result.p99_ms:.2f} ms max={result.max_ms:.2f} ms "
                    f"digits={result.digits_detected}/{result.digits_sent} window={result.window_s:.0f}s",
                    flush=True,
                )
                time.sleep(3)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        print(
            "\n| calls | failed | server CPU (% of 1 core) | RSS start → end (MiB) | RTP mean (ms) | p99 (ms) "
            "| max gap (ms) | digits detected/sent |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r.calls} | {r.failed} | {r.cpu_pct:.1f} | {r.rss_start:.0f} → {r.rss_end:.0f} | "
                f"{r.mean_ms:.3f} | {r.p99_ms:.2f} | {r.max_ms:.2f} | {r.digits_detected}/{r.digits_sent} |"
            )


if __name__ == "__main__":
    main()
