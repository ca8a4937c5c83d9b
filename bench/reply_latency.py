"""End of the caller's speech → first packet of our spoken reply, on a live call, from packet timestamps.

One sipp caller streams N turns of flite speech ("billing", "support", ...) each followed by silence into a
flow that recognizes the word (menu grammar, 300 ms endpointing) and answers with a short prompt. tcpdump
captures both directions on loopback; for every turn we take the caller's last voiced packet and our first
non-silent packet after it. Prints p50 / p95 / max over the turns.

    python -m bench.reply_latency [--turns 50]

Needs root (tcpdump), sipp, flite and tcpdump (scripts/install.sh --test).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import soxr

from bench.common import machine, read_udp
from bench.sip_load import free_port, start_server
from telephony.g711 import ulaw_decode, ulaw_encode

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "e2e" / "scenarios" / "t_uac_speak_wait_bye.xml"
RTP = (42000, 42099)
WORDS = ("billing", "support")
FLOW = """\
flow: latency
start: listen
defaults: {timeout: 20, retries: {no_input: 3, no_match: 0}, endpointing_ms: 300}
nodes:
  listen:
    menu:
      options:
        "1": {say_as: [billing], next: reply}
        "2": {say_as: [support], next: reply}
      on: {no_input: bye, no_match: reply}
  reply:
    say: Got it.
    next: listen
  bye:
    hangup: Goodbye.
"""


def flite_word(word: str, workdir: Path) -> np.ndarray:
    out = workdir / f"{word}.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", word, "-o", str(out)], check=True)
    with wave.open(str(out)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        rate = wav.getframerate()
    return np.clip(soxr.resample(pcm.astype(np.float32), rate, 8000), -32768, 32767).astype(np.int16)


def loud(payload: bytes, threshold: float = 400.0) -> bool:
    pcm = ulaw_decode(payload).astype(np.float64)
    return float(np.sqrt(np.mean(pcm * pcm))) > threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--gap", type=float, default=2.4, help="seconds of silence after each word")
    args = parser.parse_args()
    for tool in ("sipp", "tcpdump", "flite"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run scripts/install.sh --test")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="hotline-latency-") as tmp:
        workdir = Path(tmp)
        flows = workdir / "flows"
        flows.mkdir()
        (flows / "latency.yaml").write_text(FLOW)
        words = [flite_word(word, workdir) for word in WORDS]
        gap = np.zeros(int(8000 * args.gap), dtype=np.int16)
        turns = [np.concatenate([words[i % len(words)], gap]) for i in range(args.turns)]
        audio = np.concatenate([np.zeros(8000, dtype=np.int16), *turns])
        (workdir / "caller_audio.ulaw").write_bytes(ulaw_encode(audio))
        # the shared scenario waits 30 s for our BYE; this caller talks for longer
        scenario = workdir / "caller.xml"
        wait_ms = int((len(audio) / 8000 + 30) * 1000)
        scenario.write_text(SCENARIO.read_text().replace('timeout="30000"', f'timeout="{wait_ms}"'))
        ports = {"sip": free_port(avoid=RTP), "http": free_port(avoid=RTP)}
        server = start_server(workdir, ports["sip"], ports["http"], RTP, extra=["--flows", str(flows)])
        capture = workdir / "rtp.pcap"
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-s", "256", "-B", "16384", "-w", str(capture), "-U",
             f"udp and (src portrange {RTP[0]}-{RTP[1]} or dst portrange {RTP[0]}-{RTP[1]})"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
        try:
            subprocess.run(
                ["sipp", f"127.0.0.1:{ports['sip']}", "-sf", str(scenario), "-s", "latency", "-i", "127.0.0.1",
                 "-p", str(free_port(avoid=RTP)), "-mp", str(free_port(avoid=RTP)), "-m", "1", "-nostdin",
                 "-timeout", str(int(len(audio) / 8000 + 60)), "-timeout_error"],
                cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=len(audio) / 8000 + 90, check=False,
            )  # fmt: skip
        finally:
            time.sleep(1.0)
            tcpdump.send_signal(signal.SIGINT)
            tcpdump.wait(timeout=10)
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        latencies = measure([(t, src, dst, udp[12:]) for t, src, dst, udp in read_udp(capture) if len(udp) > 12])
    if not latencies:
        raise SystemExit("no turns measured")
    values = np.asarray(latencies)
    print(f"turns measured: {len(values)} of {args.turns}")
    print(f"end of speech -> first reply packet: p50 {np.percentile(values, 50):.0f} ms, "
          f"p95 {np.percentile(values, 95):.0f} ms, max {values.max():.0f} ms, min {values.min():.0f} ms")


def measure(packets: list[tuple[float, int, int, bytes]]) -> list[float]:
    inbound = [(t, loud(p)) for t, src, dst, p in packets if RTP[0] <= dst <= RTP[1] and len(p) == 160]
    outbound = [(t, loud(p)) for t, src, dst, p in packets if RTP[0] <= src <= RTP[1] and len(p) == 160]
    # the caller's speech bursts: a voiced packet followed by >= 500 ms without one ends a turn
    ends: list[float] = []
    last_voiced: float | None = None
    for t, voiced in inbound:
        if voiced:
            last_voiced = t
        elif last_voiced is not None and t - last_voiced >= 0.5:
            ends.append(last_voiced)
            last_voiced = None
    latencies = []
    out_index = 0
    for end in ends:
        while out_index < len(outbound) and outbound[out_index][0] <= end:
            out_index += 1
        for t, voiced in outbound[out_index:]:
            if voiced:
                if t - end < 2.0:
                    latencies.append((t - end) * 1000)
                break
    return latencies


if __name__ == "__main__":
    sys.exit(main())
