"""What every benchmark prints first: the machine its figures come from."""

from __future__ import annotations

import os
import platform
import signal
import struct
import subprocess
import time
import urllib.request
from pathlib import Path


def machine() -> str:
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} · nproc {os.cpu_count()} · {model} · Python {platform.python_version()}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_healthy(server: subprocess.Popen[bytes], http_port: int, log: Path, timeout: float) -> None:
    """Until the started `hotline serve` answers /healthz; SystemExit with the end of its log if it dies
    or does not come up in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    server.kill()
    raise SystemExit(f"server did not start; log:\n{log.read_text()[-3000:]}")


def start_capture(path: Path, ports: tuple[int, int], *, both_ways: bool, snaplen: int = 64,
                  buffer_kib: int = 16384) -> subprocess.Popen[bytes]:
    """tcpdump of UDP on loopback from the port range (and to it, `both_ways`) into `path`, ready when this
    returns (needs root). Stop it with `stop_capture`, which lets it write out what it buffered."""
    ranges = f"portrange {ports[0]}-{ports[1]}"
    expression = f"udp and (src {ranges} or dst {ranges})" if both_ways else f"udp and src {ranges}"
    capture = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-s", str(snaplen), "-B", str(buffer_kib), "-w", str(path), "-U", expression],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # tcpdump listening before the first packet is due
    return capture


def stop_capture(capture: subprocess.Popen[bytes]) -> None:
    capture.send_signal(signal.SIGINT)
    capture.wait(timeout=10)


def read_udp(path: Path) -> list[tuple[float, int, int, bytes]]:
    """(time, src port, dst port, UDP payload as captured) of each IPv4/UDP packet in a pcap file
    (Ethernet or Linux cooked link, micro- or nanosecond timestamps)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    scale = 1e-9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e-6
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_len = {1: 14, 113: 16, 276: 20, 0: 4}.get(linktype)
    if link_len is None:
        raise ValueError(f"unsupported pcap link type {linktype}")
    out: list[tuple[float, int, int, bytes]] = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        ip = offset + link_len
        if data[ip] >> 4 == 4 and data[ip + 9] == 17:
            udp = ip + (data[ip] & 0x0F) * 4
            src, dst = struct.unpack_from("!HH", data, udp)
            out.append((sec + frac * scale, src, dst, data[udp + 8 : offset + incl]))
        offset += incl
    return out
