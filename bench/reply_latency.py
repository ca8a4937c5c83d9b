"""End of the caller's speech → first packet of our spoken reply, on a live call, from packet timestamps.

One sipp caller streams N turns of flite speech ("billing", "support", ...) each followed by silence into a
flow that recognizes the word (menu grammar, 300 ms endpointing) and answers with a short prompt. tcpdump
captures both directions on loopback; for every turn we take the caller's last voiced packet and our first
voiced packet after it. Prints p50 / p95 / max / min over the turns, overall and per word.

Which packet is "voiced": a burst of speech (the caller's word, our reply) is found as packets louder than
RMS 400 (-38 dBFS); within it, a packet carries speech when it is within 30 dB of the burst's loudest packet
(the weakest speech sounds, /f/ /θ/, are ~28 dB below the strongest). RMS 400 alone ended "support" before
its final /t/: that release reaches RMS 340-380 (22 dB below the word's peak), so the caller's last 40-60 ms
of speech were counted as our delay. The old measure (first/last packet above RMS 400) is printed too.

    python -m bench.reply_latency [--turns 50] [--keep DIR]

Needs root (tcpdump), sipp, flite and tcpdump (scripts/install.sh --test).
"""

from __future__ import annotations

import argparse
import contextlib
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

from bench.common import machine, read_udp, start_capture, stop_capture
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


LOUD_RMS = 400.0  # what surely is speech: finds the bursts
SPEECH_DB = 30.0  # within a burst, packets this close to its loudest carry speech
GAP = 0.5  # seconds without a loud packet that end a burst


def rms(payload: bytes) -> float:
    pcm = ulaw_decode(payload).astype(np.float64)
    return float(np.sqrt(np.mean(pcm * pcm)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--gap", type=float, default=2.4, help="seconds of silence after each word")
    parser.add_argument("--keep", type=Path, help="keep the capture, server log and database in this directory")
    args = parser.parse_args()
    for tool in ("sipp", "tcpdump", "flite"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run scripts/install.sh --test")
    print(f"machine: {machine()}")
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-latency-")))
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
        tcpdump = start_capture(capture, RTP, both_ways=True, snaplen=256)
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
            stop_capture(tcpdump)
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        packets = [(t, src, dst, udp[12:]) for t, src, dst, udp in read_udp(capture) if len(udp) > 12]
    turns = measure(packets)
    if not turns:
        raise SystemExit("no turns measured")
    print(f"turns measured: {len(turns)} of {args.turns}")
    report("end of speech -> first reply packet", [ms for _, ms in turns])
    for i, word in enumerate(WORDS):
        report(f"  {word}", [ms for turn, ms in turns if turn % len(WORDS) == i])
    report("(old measure, RMS > 400 both ways)", [ms for _, ms in measure(packets, relative=False)])


def report(label: str, latencies: list[float]) -> None:
    values = np.asarray(latencies)
    print(f"{label}: p50 {np.percentile(values, 50):.0f} ms, p95 {np.percentile(values, 95):.0f} ms, "
          f"max {values.max():.0f} ms, min {values.min():.0f} ms ({len(values)} turns)")  # fmt: skip


Stream = list[tuple[float, float]]  # (capture time, RMS) per 20 ms packet


def bursts(stream: Stream) -> list[Stream]:
    """Runs of speech: from a loud packet to the last loud one before >= GAP s without one."""
    out: list[Stream] = []
    start: int | None = None
    last = 0
    for i, (t, level) in enumerate(stream):
        if level > LOUD_RMS:
            if start is None:
                start = i
            last = i
        elif start is not None and t - stream[last][0] >= GAP:
            out.append(stream[start:i])
            start = None
    return out


def speech(burst: Stream, around: Stream | None = None) -> list[float]:
    """Times of the packets (of `around`, default the burst itself) that carry speech: within SPEECH_DB of
    the burst's loudest packet."""
    floor = max(level for _, level in burst) * 10 ** (-SPEECH_DB / 20)
    return [t for t, level in (around or burst) if level >= floor]


def measure(packets: list[tuple[float, int, int, bytes]], *, relative: bool = True) -> list[tuple[int, float]]:
    """(turn number, ms from the caller's last voiced packet to our first voiced packet) per answered turn."""
    inbound = [(t, rms(p)) for t, src, dst, p in packets if RTP[0] <= dst <= RTP[1] and len(p) == 160]
    outbound = [(t, rms(p)) for t, src, dst, p in packets if RTP[0] <= src <= RTP[1] and len(p) == 160]
    replies = bursts(outbound)
    turns = []
    for n, burst in enumerate(bursts(inbound)):
        end = max(speech(burst)) if relative else max(t for t, level in burst if level > LOUD_RMS)
        reply = next((b for b in replies if b[-1][0] > end), None)
        if reply is None:
            continue
        # the reply's quiet onset (before its first loud packet) counts as speech too, if it is within range
        window = [(t, level) for t, level in outbound if end < t <= reply[-1][0]]
        voiced = speech(reply, window) if relative else [t for t, level in reply if level > LOUD_RMS]
        start = next((t for t in voiced if t > end), None)
        if start is not None and start - end < 2.0:
            turns.append((n, (start - end) * 1000))
    return turns


if __name__ == "__main__":
    sys.exit(main())
