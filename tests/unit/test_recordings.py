"""Recordings on real files: the WAV writer (playable while it grows, one channel per party), the whole-call
recorder (caller in channel 1, what we send in channel 2), the stream hook it uses, and retention
(`hotline recordings prune`) against a real database and real files."""

from __future__ import annotations

import os
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.db import make_engine, make_session_factory, migrate
from callcenter_api.models import Conversation, Recording
from hotline.cli import main
from hotline.cli_recordings import prune_recordings
from hotline.taps import CallRecorder
from recordings import retention
from recordings.writer import RecordingWriter
from telephony.g711 import PCMU
from telephony.media import PortAllocator, RtpStream

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def tone(freq: float, frames: int = 1) -> np.ndarray:
    t = np.arange(160 * frames) / 8000
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def read(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth()) == (8000, 2)
        channels = wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return channels, data.reshape(-1, channels)


# --- the writer ------------------------------------------------------------------------------------------


def test_a_recording_is_a_playable_wav_while_it_grows_and_keeps_each_party_in_its_channel(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec")
    recording = writer.open("call1", kind="call", channels=2)
    assert Path(recording.path).is_absolute() and Path(recording.path).is_relative_to(tmp_path / "rec")
    caller, other = tone(440), tone(660)
    for _ in range(75):  # 1.5 s: one flush after 1 s, half a second still buffered
        recording.write(caller, other)
    writer.drain()
    channels, frames = read(recording.path)
    assert channels == 2 and len(frames) == 50 * 160  # the first second is on disk, header included
    assert np.array_equal(frames[:160, 0], caller) and np.array_equal(frames[:160, 1], other)
    recording.write(None, other)  # a gap on one side is silence, the other side keeps its audio
    info = recording.close()
    writer.drain()
    _, frames = read(recording.path)
    assert len(frames) == 76 * 160 and info.seconds == pytest.approx(76 * 0.02)
    assert not frames[-160:, 0].any() and np.array_equal(frames[-160:, 1], other)
    recording.write(caller, other)  # closed: ignored
    writer.drain()
    assert len(read(recording.path)[1]) == 76 * 160


class _Leg:
    """What CallRecorder needs of a call: its id and the two consumer lists."""

    def __init__(self) -> None:
        self.id = "c" * 32
        self.received: list[object] = []
        self.sent: list[object] = []

    def add_audio_consumer(self, consumer: object) -> None:
        self.received.append(consumer)

    def remove_audio_consumer(self, consumer: object) -> None:
        if consumer in self.received:
            self.received.remove(consumer)

    def add_sent_audio_consumer(self, consumer: object) -> None:
        self.sent.append(consumer)

    def remove_sent_audio_consumer(self, consumer: object) -> None:
        if consumer in self.sent:
            self.sent.remove(consumer)


def test_the_call_recorder_pairs_each_tick_of_the_caller_with_what_we_sent(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path)
    leg = _Leg()
    recorder = CallRecorder.start(leg, writer)  # type: ignore[arg-type]
    (received,), (sent,) = leg.received, leg.sent
    for tick in range(10):
        received(tone(440) if tick % 2 == 0 else None)  # the caller, every other tick
        sent(tone(660) if tick >= 5 else None)  # we start a prompt at tick 5
    info = recorder.stop()
    assert info is not None and info["kind"] == "call" and info["channels"] == 2
    assert leg.received == [] and leg.sent == [] and recorder.stop() is None
    writer.drain()
    _, frames = read(Path(str(info["path"])))
    ticks = frames.reshape(10, 160, 2)
    assert [bool(t[:, 0].any()) for t in ticks] == [i % 2 == 0 for i in range(10)]
    assert [bool(t[:, 1].any()) for t in ticks] == [i >= 5 for i in range(10)]


async def test_a_stream_hands_what_it_sends_to_its_sent_consumers() -> None:
    stream = RtpStream(PortAllocator(40000, 40100), "127.0.0.1")
    await stream.open()
    try:
        stream.configure(PCMU, ("127.0.0.1", 9), telephone_event_pt=101, direction="sendrecv")
        sent: list[np.ndarray | None] = []
        stream.sent_consumers.append(sent.append)
        prompt = tone(1000, 2)
        stream.play(prompt)
        stream.send_dtmf("5", duration_ms=40)
        for _ in range(8):
            stream.send()
        assert stream.packets_sent == 8
        # DTMF goes first (ticks without an audio frame), then the prompt's two frames as the peer decodes
        # them, then silence
        assert len(sent) == 8
        first = next(i for i, f in enumerate(sent) if f is not None)
        assert first > 0 and all(f is None for f in sent[:first])
        decoded = PCMU.decode(PCMU.encode(prompt))
        assert np.array_equal(sent[first], decoded[:160]) and np.array_equal(sent[first + 1], decoded[160:])
        rest = sent[first + 2 :]
        assert rest and all(f is not None and np.abs(f).max() <= 8 for f in rest)  # mu-law silence
    finally:
        stream.close()


# --- retention ---------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> tuple[sessionmaker[Session], str]:
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    migrate(url)
    factory = make_session_factory(make_engine(url))
    with factory() as session, session.begin():
        session.add(Conversation(id="v" * 32, channel="webchat", started_at=NOW - timedelta(days=90), status="closed"))
    return factory, url


def _recording(factory: sessionmaker[Session], writer: RecordingWriter, name: str, age_days: float,
               path: Path | None = None, now: datetime = NOW) -> Path:  # fmt: skip
    """A real one-second WAV and its row, as if it ended `age_days` ago."""
    if path is None:
        recording = writer.open(name, kind="call", channels=2)
        for _ in range(50):
            recording.write(tone(440), tone(660))
        recording.close()
        path = Path(recording.path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF....WAVE")
    with factory() as session, session.begin():
        session.add(Recording(id=name.ljust(32, "0"), conversation_id="v" * 32, kind="call", path=str(path),
                              created_at=now - timedelta(days=age_days), seconds=1.0))  # fmt: skip
    return path


def _orphan(root: Path, name: str, age_days: float) -> Path:
    path = root / "2026" / "08" / "01" / f"{name}-call-0000.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    stamp = (NOW - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_prune_deletes_expired_recordings_files_and_rows_and_keeps_the_rest(
    tmp_path: Path, store: tuple[sessionmaker[Session], str]
) -> None:
    factory, _url = store
    root = tmp_path / "recordings"
    writer = RecordingWriter(root)
    old = _recording(factory, writer, "old", 40)
    new = _recording(factory, writer, "new", 5)
    gone = _recording(factory, writer, "gone", 50)
    writer.drain()
    gone.unlink()  # its file was removed by hand: the row still goes
    outside = _recording(factory, writer, "outside", 60, path=tmp_path / "elsewhere" / "x.wav")
    stray = _orphan(root, "stray", 45)  # a WAV no row knows (the service crashed before writing it)
    recent_stray = _orphan(root, "recent", 1)

    dry = prune_recordings(factory, root, older_than_days=30, dry_run=True, now=NOW)
    assert sorted(p for _, p in dry.deleted) == sorted(map(str, (old, gone, stray)))
    assert all(p.exists() for p in (old, new, outside, stray, recent_stray))
    with factory() as session:
        assert len(session.scalars(select(Recording)).all()) == 4

    sizes = old.stat().st_size + stray.stat().st_size
    report = prune_recordings(factory, root, older_than_days=30, now=NOW)
    assert sorted(p for _, p in report.deleted) == sorted(map(str, (old, gone, stray)))
    assert report.freed_bytes == sizes
    assert not old.exists() and not stray.exists()
    assert new.exists() and recent_stray.exists() and outside.exists()  # never outside the recordings dir
    assert [(rid.rstrip("0"), why) for rid, _, why in report.kept] == [("outside", f"not under {root}")]
    with factory() as session:
        left = sorted(r.id.rstrip("0") for r in session.scalars(select(Recording)))
    assert left == ["new", "outside"]
    assert not stray.parent.exists() or any(stray.parent.iterdir())  # emptied day folders go
    assert prune_recordings(factory, root, older_than_days=30, now=NOW).deleted == []  # idempotent


def test_retention_never_deletes_outside_the_directory_or_anything_but_a_wav(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    root.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"x")
    (root / "notes.txt").write_bytes(b"x")
    with pytest.raises(ValueError):
        retention.delete(root, root / ".." / "secret.wav")
    with pytest.raises(ValueError):
        retention.delete(root, root / "notes.txt")
    assert retention.delete(root, root / "missing.wav") == 0
    assert (tmp_path / "secret.wav").exists() and (root / "notes.txt").exists()


def test_the_prune_command(tmp_path: Path, store: tuple[sessionmaker[Session], str],
                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    factory, url = store
    root = tmp_path / "recordings"
    writer = RecordingWriter(root)
    now = datetime.now(UTC)  # the command prunes against the real clock
    old = _recording(factory, writer, "old", 400, now=now)
    new = _recording(factory, writer, "new", 1, now=now)
    writer.drain()
    runner = CliRunner()
    monkeypatch.delenv("HOTLINE_RECORDINGS_RETENTION_DAYS", raising=False)
    args = ["recordings", "prune", "--db", url, "--recordings-dir", str(root)]
    refused = runner.invoke(main, args)
    assert refused.exit_code == 2 and "--older-than" in refused.output

    dry = runner.invoke(main, [*args, "--older-than", "30", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete {old}" in dry.output and "would delete 1 recording(s)" in dry.output
    assert old.exists()

    monkeypatch.setenv("HOTLINE_RECORDINGS_RETENTION_DAYS", "30")  # the setting, as the service reads it
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    assert f"deleted {old} (recording old" in done.output and "deleted 1 recording(s)" in done.output
    assert not old.exists() and new.exists()


async def test_live_transcription_is_bounded_and_sheds_the_excess() -> None:
    """At most `concurrent` decodes run and `backlog` wait; the rest is shed, and nothing leaks."""
    import asyncio

    from hotline.taps import LiveBudget

    budget = LiveBudget(concurrent=2, backlog=4)
    running = 0
    peak = 0
    release = asyncio.Event()

    async def utterance() -> None:
        nonlocal running, peak
        try:
            async with budget:
                running += 1
                peak = max(peak, running)
                await release.wait()
                running -= 1
        finally:
            budget.done()

    admitted = [asyncio.ensure_future(utterance()) for _ in range(10) if budget.admit()]
    await asyncio.sleep(0)
    assert (len(admitted), budget.shed, peak) == (4, 6, 2)
    admitted[-1].cancel()  # a call ending while its utterance waits
    release.set()
    await asyncio.gather(*admitted, return_exceptions=True)
    assert budget.pending == 0 and peak == 2
