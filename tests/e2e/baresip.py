"""Headless baresip 1.0.0 as a real SIP phone for end-to-end tests, driven over its ctrl_tcp module.

baresip 1.0.0 facts this relies on (verified on Debian's build):
- ctrl_tcp frames are netstrings ("<len>:<json>,"); a command is {"command", "params", "token"}
  and gets {"response": true, "ok", "data", "token"}; events arrive unasked as {"event": true,
  "type": "CALL_ESTABLISHED", "id": <SIP Call-ID>, ...}. Commands come from the menu module, so
  menu.so must be loaded; the accounts file is read by account.so (module_tmp).
- aufile is only an audio *source* in 1.0.0 (no player), so received audio is captured by the
  sndfile filter: per call it writes dump-<time>-dec.wav (heard) and dump-<time>-enc.wav (sent)
  into snd_path. The audio player is an aubridge device nobody listens to, i.e. a null sink.
- `net_interface 127.0.0.1` keeps the SDP and media on loopback; sip_listen also opens TCP on the
  port and TLS on port + 1.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from harness import LOOPBACK, free_port_range, free_tcp_port, tone_pcm

Event = dict[str, Any]


class BaresipError(AssertionError):
    pass


# --- WAV helpers ----------------------------------------------------------------------------------


def write_wav(path: Path, pcm: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return path


def tone_wav(path: Path, freq_hz: float = 1000.0, seconds: float = 10.0, amplitude: float = 0.4) -> Path:
    return write_wav(path, tone_pcm(freq_hz, seconds, amplitude=amplitude))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit samples and the sample rate (first channel if there are more)."""
    with wave.open(str(path), "rb") as src:
        frames = src.readframes(src.getnframes())
        channels, rate = src.getnchannels(), src.getframerate()
    return np.frombuffer(frames, dtype="<i2")[::channels], rate


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm.astype(np.float64))))) if len(pcm) else 0.0


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


# --- ctrl_tcp ---------------------------------------------------------------------------------------


def netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringReader:
    """Incremental netstring decoder: feed bytes, get complete payloads."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while b":" in self._buffer:
            head, rest = self._buffer.split(b":", 1)
            if not head.isdigit():
                raise BaresipError(f"bad netstring from ctrl_tcp: {self._buffer[:80]!r}")
            size = int(head)
            if len(rest) < size + 1:
                break
            if rest[size : size + 1] != b",":
                raise BaresipError(f"netstring without trailing comma: {self._buffer[:80]!r}")
            out.append(rest[:size])
            self._buffer = rest[size + 1 :]
        return out


class BaresipPhone:
    """One baresip process with its own config dir, SIP port, ctrl_tcp port and recordings dir.

    auto_answer=True makes it an agent phone (answermode=auto). audio_source is the WAV it sends
    (16-bit; baresip resamples). In 1.0.0 aufile hangs the call up when its file ends ("menu: audio
    error (0,end of file)"), so the source is padded with silence to `source_seconds`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "agent",
        auto_answer: bool = False,
        audio_source: Path | None = None,
        codecs: Sequence[str] = ("PCMU", "PCMA"),
        source_seconds: float = 300.0,
        extra_config: Mapping[str, str] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.auto_answer = auto_answer
        self.codecs = list(codecs)
        self.extra_config = dict(extra_config or {})
        self.startup_timeout = startup_timeout
        self.recordings_dir = self.workdir / "recordings"
        self.recordings_dir.mkdir(exist_ok=True)
        self.audio_source = self._padded_source(audio_source, source_seconds)
        self.log_path = self.workdir / "baresip.log"
        self.sip_port = 0
        self.ctrl_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.events: list[Event] = []
        self._cursor = 0
        self._responses: dict[str, Event] = {}
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._tokens = 0

    def _padded_source(self, source: Path | None, seconds: float) -> Path:
        pcm, rate = read_wav(source) if source else (np.zeros(0, dtype=np.int16), 8000)
        padding = np.zeros(max(0, round(seconds * rate) - len(pcm)), dtype=np.int16)
        return write_wav(self.workdir / "source.wav", np.concatenate([pcm, padding]), rate)

    @property
    def sip_addr(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.user}@{self.sip_addr}"

    def config_text(self) -> str:
        rtp = free_port_range(10)
        lines = {
            "poll_method": "epoll",
            "sip_listen": self.sip_addr,
            "net_interface": LOOPBACK,
            "dns_server": f"{LOOPBACK}:53",
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_player": f"aubridge,null-{self.sip_port}",
            "audio_alert": f"aubridge,null-{self.sip_port}",
            "audio_source": f"aufile,{self.audio_source}",
            "rtp_ports": rtp.spec,
            "module_path": "/usr/lib/baresip/modules",
            "ctrl_tcp_listen": f"{LOOPBACK}:{self.ctrl_port}",
            "snd_path": str(self.recordings_dir),
            "statmode_default": "off",
            **self.extra_config,
        }
        modules = ["module g711.so", "module aufile.so", "module aubridge.so", "module sndfile.so"]
        modules += ["module_tmp account.so", "module_app menu.so", "module_app ctrl_tcp.so"]
        return "\n".join([*(f"{k} {v}" for k, v in lines.items()), *modules]) + "\n"

    def account_line(self) -> str:
        params = ["regint=0", f"answermode={'auto' if self.auto_answer else 'manual'}"]
        if self.codecs:
            params.append("audio_codecs=" + ",".join(self.codecs))
        return f"<sip:{self.user}@{LOOPBACK}>;" + ";".join(params) + "\n"

    # lifecycle
    def start(self) -> Self:
        self.sip_port = free_port_range(2, udp=True, tcp=True).first  # + 1 is baresip's TLS listener
        self.ctrl_port = free_tcp_port()
        (self.workdir / "config").write_text(self.config_text())
        (self.workdir / "accounts").write_text(self.account_line())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["baresip", "-f", str(self.workdir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + self.startup_timeout
        while self._sock is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BaresipError(f"baresip did not open ctrl_tcp on {self.ctrl_port}\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                self._sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=0.5)
            time.sleep(0.05)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name=f"baresip-{self.user}", daemon=True)
        self._reader.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Ask baresip to quit (it hangs up its calls), then terminate it if it lingers."""
        if self._sock is not None and self.running:
            with contextlib.suppress(OSError, BaresipError):
                self._send({"command": "quit", "token": "quit"})
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # ctrl_tcp plumbing
    def _send(self, message: Event) -> None:
        if self._sock is None:
            raise BaresipError("baresip is not running")
        self._sock.sendall(netstring(json.dumps(message).encode()))

    def _read_loop(self) -> None:
        reader = NetstringReader()
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            for payload in reader.feed(data):
                message = json.loads(payload)
                with self._cond:
                    if message.get("response"):
                        self._responses[str(message.get("token"))] = message
                    else:
                        self.events.append(message)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a menu command; returns its text output, raises BaresipError when baresip says not ok."""
        self._tokens += 1
        token = f"t{self._tokens}"
        message: Event = {"command": name, "token": token}
        if params is not None:
            message["params"] = params
        self._send(message)
        with self._cond:
            if not self._cond.wait_for(lambda: token in self._responses, timeout=timeout):
                raise BaresipError(f"no ctrl_tcp response to {name!r} in {timeout}s\n{self.log_tail()}")
            response = self._responses.pop(token)
        if not response.get("ok"):
            raise BaresipError(
                f"baresip {name} {params!r} failed: {response.get('data')}\n{self.log_tail(20)}"
            )
        return str(response.get("data", ""))

    # phone actions
    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def accept(self) -> None:
        self.command("accept")

    def hangup(self) -> None:
        self.command("hangup")

    def send_dtmf(self, digits: str, gap: float = 0.25) -> None:
        """RFC 4733 digits, one `sndcode` each; the gap keeps two equal digits from merging."""
        for digit in digits:
            self.command("sndcode", digit)
            time.sleep(gap)

    def wait_for_event(self, event_type: str, timeout: float = 10.0) -> Event:
        """Next event of this type after the last one returned (earlier events are not lost)."""

        def find() -> int | None:
            for index in range(self._cursor, len(self.events)):
                if self.events[index].get("type") == event_type:
                    return index
            return None

        with self._cond:
            self._cond.wait_for(lambda: find() is not None or not self.running, timeout=timeout)
            index = find()
            if index is None:
                seen = [e.get("type") for e in self.events[self._cursor :]]
                raise BaresipError(
                    f"no {event_type} within {timeout}s (since then: {seen})\n{self.log_tail()}"
                )
            self._cursor = index + 1
            return self.events[index]

    # recordings
    def recordings(self, kind: str = "dec") -> list[Path]:
        return sorted(self.recordings_dir.glob(f"dump-*-{kind}.wav"), key=lambda p: p.stat().st_mtime)

    @property
    def recording_path(self) -> Path:
        """WAV of what this phone heard in its latest call (complete once CALL_CLOSED arrived)."""
        found = self.recordings("dec")
        if not found:
            raise BaresipError(f"no recording in {self.recordings_dir}\n{self.log_tail()}")
        return found[-1]

    @property
    def sent_recording_path(self) -> Path:
        found = self.recordings("enc")
        if not found:
            raise BaresipError(f"no recording in {self.recordings_dir}\n{self.log_tail()}")
        return found[-1]
