"""Real-peer harness for end-to-end tests: loopback ports, `hotline serve`, sipp runs, test audio.

Tests talk to the server only as a SIP peer and an API client would, so they prove the wire contract
rather than internals. The baresip driver is in `baresip.py`. Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self

import httpx
import numpy as np

LOOPBACK = "127.0.0.1"
DEFAULT_ADMIN_TOKEN = "e2e-admin-token"

# Ports handed out by this process, with when: the probe sockets are closed again at once, so without this
# two callers could get the same "free" port before either binds it. After REUSE_AFTER seconds a port that is
# bindable again is free for reuse: a whole suite run needs more ports than the range below holds.
_handed_out: dict[int, float] = {}
REUSE_AFTER = 120.0


class PortRange(NamedTuple):
    """Inclusive range of consecutive ports, e.g. for `--rtp-ports A-B`."""

    first: int
    last: int

    @property
    def spec(self) -> str:
        return f"{self.first}-{self.last}"

    def __len__(self) -> int:  # type: ignore[override]
        return self.last - self.first + 1


def _candidate_ports() -> Iterator[int]:
    """Random ports below the kernel's ephemeral range, so outgoing sockets never race for them."""
    low = 20000
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        high = int(text[0]) - 1
    except (OSError, ValueError, IndexError):
        high = 32767
    if high - low < 1000:
        low, high = 10000, max(high, 11000)
    for _ in range(2000):
        yield random.randint(low, high)


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # a TCP port in TIME_WAIT is fine for a listener that sets SO_REUSEADDR (uvicorn does)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port_range(n: int, *, udp: bool = True, tcp: bool = False) -> PortRange:
    """n consecutive loopback ports that are free right now (for UDP and/or TCP) and not yet handed out."""
    if n < 1:
        raise ValueError("n must be >= 1")
    kinds = [k for k, wanted in ((socket.SOCK_DGRAM, udp), (socket.SOCK_STREAM, tcp)) if wanted]
    for first in _candidate_ports():
        ports = range(first, first + n)
        now = time.monotonic()
        if ports[-1] > 65535 or any(now - _handed_out.get(p, -REUSE_AFTER) < REUSE_AFTER for p in ports):
            continue
        if all(_bindable(p, kind) for p in ports for kind in kinds):
            _handed_out.update(dict.fromkeys(ports, now))
            return PortRange(ports[0], ports[-1])
    raise RuntimeError(f"no {n} consecutive free loopback ports found")


def free_udp_port() -> int:
    return free_port_range(1).first


def free_tcp_port() -> int:
    return free_port_range(1, udp=False, tcp=True).first


def udp_port_bound(port: int, host: str = LOOPBACK) -> bool:
    """True when some process has bound UDP host:port (read-only check of /proc/net/udp).

    Probing by binding would steal the port from a sipp that is still starting.
    """
    a, b, c, d = (int(x) for x in host.split("."))
    wanted = {f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}", f"00000000:{port:04X}"}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            if line.split()[1] in wanted:
                return True
    return False


# --- test audio -----------------------------------------------------------------------------------

_ULAW_BIAS = 0x84
# segment of a 14-bit biased magnitude (33..8191), indexed by magnitude >> 5
_ULAW_SEGMENT = np.array([max(0, int(v).bit_length() - 1) for v in range(256)], dtype=np.int32)


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """G.711 mu-law from 16-bit PCM, bit-exact with the classic reference coder (and audioop).

    Written here so the harness never depends on the code under test. The reference works on the
    14-bit value x >> 2, which rounds negative samples away from zero.
    """
    v = np.asarray(pcm, dtype=np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    # 8159 + 33 = 8192 would be "segment 8": the reference clips it to the top code, as 8191 does
    magnitude = np.minimum(np.minimum(np.abs(v), 8159) + (_ULAW_BIAS >> 2), 8191)
    segment = _ULAW_SEGMENT[magnitude >> 5]
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    return (code ^ mask).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    segment = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + _ULAW_BIAS) << segment) - _ULAW_BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def tone_pcm(freq_hz: float, seconds: float, *, rate: int = 8000, amplitude: float = 0.4) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype(np.int16)


def tone_ulaw(freq_hz: float = 1000.0, seconds: float = 3.0, *, amplitude: float = 0.4) -> bytes:
    """Raw 8 kHz mu-law for sipp's rtp_stream (160 bytes per 20 ms packet)."""
    return ulaw_encode(tone_pcm(freq_hz, seconds, amplitude=amplitude))


def silence_ulaw(seconds: float) -> bytes:
    return b"\xff" * round(seconds * 8000)


def ulaw_duration_ms(data: bytes) -> int:
    return len(data) // 8


# --- hotline serve ----------------------------------------------------------------------------------


class HotlineStartError(RuntimeError):
    pass


CallRecord = dict[str, Any]


def call_ended(record: CallRecord) -> bool:
    return record.get("ended_at") is not None


def call_answered(record: CallRecord) -> bool:
    return record.get("answered_at") is not None


def event_values(record: CallRecord, event_type: str) -> list[str]:
    return [str(e.get("value")) for e in record.get("events", []) if e.get("type") == event_type]


def dtmf_digits(record: CallRecord) -> str:
    return "".join(event_values(record, "dtmf"))


class HotlineServer:
    """`hotline serve` on free loopback ports with its own SQLite file and log.

    Startup retries with fresh ports when the server dies of EADDRINUSE, because port probing and
    the server's bind can never be atomic.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        answer_delay_ms: int = 0,
        flows_dir: Path | None = None,
        rtp_port_count: int = 64,
        admin_token: str = DEFAULT_ADMIN_TOKEN,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 90.0,  # generous: on a loaded machine imports + KB index + ASR take > 30 s
        command: Sequence[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hotline-e2e-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.answer_delay_ms = answer_delay_ms
        self.flows_dir = flows_dir
        self.rtp_port_count = rtp_port_count
        self.admin_token = admin_token
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.command = list(command) if command else [sys.executable, "-m", "hotline"]
        self.db_path = self.workdir / "hotline.sqlite3"
        self.log_path = self.workdir / "hotline.log"
        self.sip_port = 0
        self.http_port = 0
        self.rtp_ports = PortRange(0, -1)
        self.process: subprocess.Popen[bytes] | None = None

    # addresses
    @property
    def sip_addr(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    def sip_uri(self, user: str = "hotline") -> str:
        return f"sip:{user}@{self.sip_addr}"

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def argv(self) -> list[str]:
        args = [
            *self.command,
            "serve",
            "--sip-host", LOOPBACK, "--sip-port", str(self.sip_port),
            "--http-host", LOOPBACK, "--http-port", str(self.http_port),
            "--db", self.db_url,
            "--rtp-ports", self.rtp_ports.spec,
            "--answer-delay", str(self.answer_delay_ms),
            "--admin-token", self.admin_token,
        ]  # fmt: skip
        if self.flows_dir is not None:
            args += ["--flows", str(self.flows_dir)]
        return args + self.extra_args

    # lifecycle
    def start(self, attempts: int = 3) -> Self:
        for attempt in range(1, attempts + 1):
            self.sip_port = free_port_range(1, udp=True, tcp=True).first
            self.http_port = free_tcp_port()
            self.rtp_ports = free_port_range(self.rtp_port_count)
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                log.write(f"\n=== attempt {attempt}: {' '.join(self.argv())}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    self.argv(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                )
            if self._wait_healthy():
                return self
            self.stop(timeout=5)
            attempt_log = self.log_path.read_bytes()[log_start:].decode(errors="replace")
            if "Address already in use" not in attempt_log and "EADDRINUSE" not in attempt_log:
                break
        raise HotlineStartError(
            f"hotline serve did not become healthy at {self.base_url}/healthz within "
            f"{self.startup_timeout}s (exit code {self.returncode}).\n--- log tail ---\n{self.log_tail()}"
        )

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return True
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (so calls end with end_reason=shutdown), then SIGKILL after `timeout` seconds."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        return proc.returncode

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # API
    def api_get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.base_url}{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10.0,
        )
        if response.status_code >= 400:
            raise AssertionError(f"GET {path} {params} -> {response.status_code}: {response.text[:2000]}")
        return response.json()

    def calls(self, sip_call_id: str | None = None) -> list[CallRecord]:
        records = self.api_get("/api/v1/calls", sip_call_id=sip_call_id)
        if not isinstance(records, list):
            raise AssertionError(f"/api/v1/calls must return a list of call records, got: {records!r}")
        return records

    def wait_for_call(
        self,
        sip_call_id: str,
        predicate: Callable[[CallRecord], bool] | None = None,
        timeout: float = 10.0,
        interval: float = 0.1,
    ) -> CallRecord:
        """Poll the API until a record for this Call-ID satisfies `predicate` (default: it exists)."""
        check = predicate or (lambda _record: True)
        deadline = time.monotonic() + timeout
        seen: list[CallRecord] = []
        while True:
            seen = self.calls(sip_call_id=sip_call_id)
            for record in seen:
                if check(record):
                    return record
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        name = getattr(predicate, "__name__", repr(predicate)) if predicate else "exists"
        raise AssertionError(
            f"no call record for sip_call_id={sip_call_id!r} matched {name} within {timeout}s.\n"
            f"last records: {seen!r}\n--- server log tail ---\n{self.log_tail(40)}"
        )


# --- sipp -----------------------------------------------------------------------------------------

SIPP = "sipp"
SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
BUILTIN_SCENARIOS = frozenset({"uac", "uas", "regexp", "branchc", "branchs", "uac_pcap"})
# rtp_stream files the scenarios name; written into sipp's working directory unless the test gives them
DEFAULT_STREAM_TONES_HZ = {"caller_audio.ulaw": 1000.0, "agent_audio.ulaw": 440.0, "target_audio.ulaw": 660.0}
_RTP_STREAM = re.compile(r'rtp_stream="([^",]+),(-?\d+),')
STILL_RUNNING = -999  # SippResult.returncode of a sipp that has not exited


class SipPeer(Protocol):
    """Anything sipp can call: HotlineServer, SippProcess (a UAS), baresip.BaresipPhone."""

    @property
    def sip_addr(self) -> str: ...


class SippError(AssertionError):
    pass


class SippTimeout(SippError):
    pass


@dataclass
class SippResult:
    scenario: str
    command: list[str]
    returncode: int
    workdir: Path
    call_ids: list[str]
    stdout: str = ""
    stderr: str = ""
    error_log: str = ""
    message_log: str = ""
    screen: str = ""
    stats: dict[str, str] = field(default_factory=dict)

    @property
    def successful(self) -> int:
        return _stat_int(self.stats, "SuccessfulCall(C)", self.screen, "Successful call")

    @property
    def failed(self) -> int:
        return _stat_int(self.stats, "FailedCall(C)", self.screen, "Failed call")

    @property
    def call_id(self) -> str:
        return self.call_ids[0]

    @property
    def ok(self) -> bool:
        """sipp exits 0 only when every call passed; a failed count double-checks a killed UAS."""
        return self.returncode == 0 and self.failed == 0

    def check(self, calls: int | None = None) -> Self:
        if not self.ok or (calls is not None and self.successful != calls):
            raise SippError(self.describe())
        return self

    def describe(self, tail: int = 60) -> str:
        def last(text: str) -> str:
            return "\n".join(text.splitlines()[-tail:]) or "(empty)"

        status = "still running" if self.returncode == STILL_RUNNING else f"exit {self.returncode}"
        return (
            f"sipp {self.scenario}: {status}, successful {self.successful}, "
            f"failed {self.failed}, Call-IDs {self.call_ids[:3]}{'...' if len(self.call_ids) > 3 else ''}\n"
            f"command: {' '.join(self.command)}\nworkdir: {self.workdir}\n"
            f"--- error log ---\n{last(self.error_log)}\n--- stderr ---\n{last(self.stderr)}\n"
            f"--- screen ---\n{last(self.screen)}\n--- messages ---\n{last(self.message_log)}"
        )


def _stat_int(stats: Mapping[str, str], key: str, screen: str, label: str) -> int:
    if key in stats:
        with contextlib.suppress(ValueError):
            return int(float(stats[key]))
    # screen line: "  Successful call        |        0                  |        1"
    found = re.findall(rf"^\s*{label}\s*\|\s*\d+\s*\|\s*(\d+)", screen, re.MULTILINE)
    return int(found[-1]) if found else 0


def parse_stat_csv(text: str) -> dict[str, str]:
    """Last row of sipp's -trace_stat file (cumulative counters are the "(C)" columns)."""
    rows = [line for line in text.splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0].split(";"), rows[-1].split(";"), strict=False))


def resolve_scenario(scenario: str | Path) -> Path | str:
    """A path, a file in scenarios/ (with or without .xml), or the name of a built-in (-sn)."""
    path = Path(scenario)
    if path.is_file():
        return path.resolve()
    for candidate in (SCENARIOS_DIR / path, SCENARIOS_DIR / f"{path}.xml"):
        if candidate.is_file():
            return candidate
    if str(scenario) in BUILTIN_SCENARIOS:
        return str(scenario)
    raise FileNotFoundError(f"no sipp scenario {scenario!r} (looked in {SCENARIOS_DIR})")


def _expand_cid(template: str, number: int, pid: int) -> str:
    """Mirror sipp's -cid_str expansion (%u call number, %p pid, %s local IP, %% percent)."""
    out = {"u": str(number), "p": str(pid), "s": LOOPBACK, "%": "%"}
    return re.sub(r"%(.)", lambda m: out.get(m.group(1), m.group(0)), template)


class SippProcess:
    """A running sipp; UAS instances are started first and stopped (or awaited) at the end."""

    def __init__(
        self, *, command: list[str], scenario: str, workdir: Path, port: int, cid_template: str, calls: int
    ) -> None:
        self.command = command
        self.scenario = scenario
        self.workdir = workdir
        self.port = port
        self.cid_template = cid_template
        self.calls = calls
        self._stdout = (workdir / "stdout.txt").open("wb")
        self._stderr = (workdir / "stderr.txt").open("wb")
        self.process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr
        )

    @property
    def sip_addr(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def sip_uri(self, user: str = "agent") -> str:
        return f"sip:{user}@{self.sip_addr}"

    def wait_listening(self, timeout: float = 5.0) -> Self:
        deadline = time.monotonic() + timeout
        while not udp_port_bound(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SippError(
                    f"sipp did not start listening on {self.sip_addr}\n{self.result().describe()}"
                )
            time.sleep(0.02)
        return self

    def wait(self, timeout: float = 60.0) -> SippResult:
        """Wait for sipp to finish; on timeout stop it and raise SippTimeout with its logs."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SippTimeout(f"sipp still running after {timeout}s\n{self.result().describe()}") from None
        result = self.result()
        if "timed out after" in result.error_log:  # sipp's own -timeout fired
            raise SippTimeout(result.describe())
        return result

    def stop(self, grace: float = 3.0) -> SippResult:
        """SIGUSR1 (sipp's soft quit: no new calls, dump screens), then SIGTERM, then SIGKILL."""
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        return self.result()

    def result(self) -> SippResult:
        returncode = self.process.poll()
        for handle in (self._stdout, self._stderr):
            handle.flush()

        def read(name: str) -> str:
            path = self.workdir / name
            return path.read_text(errors="replace") if path.exists() else ""

        return SippResult(
            scenario=self.scenario,
            command=self.command,
            returncode=STILL_RUNNING if returncode is None else returncode,
            workdir=self.workdir,
            call_ids=[_expand_cid(self.cid_template, n, self.process.pid) for n in range(1, self.calls + 1)]
            if self.cid_template
            else [],
            stdout=read("stdout.txt"),
            stderr=read("stderr.txt"),
            error_log=read("errors.log"),
            message_log=read("messages.log"),
            screen=read("screen.log"),
            stats=parse_stat_csv(read("stats.csv")),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._stdout.close()
        self._stderr.close()


def start_sipp(
    scenario: str | Path,
    target: SipPeer | str | None = None,
    *,
    calls: int = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    limit: int | None = None,
    duration: int | None = None,
    service: str = "hotline",
    call_id: str | None = None,
    keys: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    files: Mapping[str, bytes] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
    workdir: Path | None = None,
    trace_messages: bool = True,
) -> SippProcess:
    """Start sipp as a UAC toward `target`, or as a UAS (target None) on a free port.

    duration is sipp's -d in ms (the length of `<pause/>` without milliseconds); left None, it is
    the length of a play-once rtp_stream file so the BYE does not cut the audio off. keys become
    `-key k v` ([k] in messages), variables `-set k v` (<Global> variables). files are written into
    sipp's working directory, where relative rtp_stream paths resolve; missing ones get a 3 s tone.
    timeout is also sipp's own -timeout, so a long-lived UAS needs a long one.
    """
    resolved = resolve_scenario(scenario)
    name = resolved.stem if isinstance(resolved, Path) else str(resolved)
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"sipp-{name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stream_files = dict(files or {})
    if isinstance(resolved, Path):
        for needed, loops in _RTP_STREAM.findall(resolved.read_text()):
            if not Path(needed).is_absolute() and needed not in stream_files:
                stream_files[needed] = tone_ulaw(DEFAULT_STREAM_TONES_HZ.get(needed, 1000.0), 3.0)
            if duration is None and loops == "1" and needed in stream_files:
                duration = ulaw_duration_ms(stream_files[needed])
    for file_name, data in stream_files.items():
        (workdir / file_name).write_bytes(data)

    port = free_udp_port()
    media = free_port_range(4)  # sipp binds -mp (audio) and -mp + 2 (video)
    control = free_udp_port()
    if call_id is None:
        call_id = f"e2e-{uuid.uuid4().hex[:12]}"
    cid_template = call_id if "%" in call_id or calls == 1 else f"{call_id}-%u"

    command = [SIPP]
    if target is not None:
        command.append(target if isinstance(target, str) else target.sip_addr)
    command += ["-sf", str(resolved)] if isinstance(resolved, Path) else ["-sn", str(resolved)]
    command += [
        "-i", LOOPBACK, "-p", str(port), "-mi", LOOPBACK, "-mp", str(media.first),
        "-ci", LOOPBACK, "-cp", str(control), "-nostdin",
        "-m", str(calls), "-s", service,
        "-trace_err", "-error_file", "errors.log",
        "-trace_screen", "-screen_file", "screen.log",
        "-trace_stat", "-stf", "stats.csv", "-fd", "1",
        "-timeout", f"{max(1, round(timeout))}s", "-timeout_error",
    ]  # fmt: skip
    if target is not None:
        command += ["-cid_str", cid_template]
    if trace_messages:
        command += ["-trace_msg", "-message_file", "messages.log"]
    for flag, value in (("-r", rate), ("-rp", rate_period_ms), ("-l", limit), ("-d", duration)):
        if value is not None:
            command += [flag, str(value)]
    for flag, pairs in (("-key", keys), ("-set", variables)):
        for key, value in (pairs or {}).items():
            command += [flag, key, str(value)]
    command += list(extra_args)
    process = SippProcess(
        command=command,
        scenario=name,
        workdir=workdir,
        port=port,
        cid_template=cid_template if target is not None else "",
        calls=calls,
    )
    return process.wait_listening() if target is None else process


def run_sipp(
    scenario: str | Path,
    server: SipPeer | str,
    *,
    calls: int = 1,
    rate: float | None = None,
    duration: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
    call_id: str | None = None,
    **options: Any,
) -> SippResult:
    """Run a UAC scenario to the end and return its result (raise SippTimeout if it hangs).

    A failed call does not raise: use `result.check()` or `assert result.ok, result.describe()`.
    """
    process = start_sipp(
        scenario, server, calls=calls, rate=rate, duration=duration, extra_args=extra_args,
        timeout=timeout, call_id=call_id, **options,
    )  # fmt: skip
    with process:
        # sipp's own -timeout fires first and leaves its logs; the margin covers startup and teardown
        return process.wait(timeout=timeout + 15)
