"""Jitter buffer: scripted cases plus seeded randomized network simulations (property style)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from telephony.jitter import JitterBuffer

SSRC = 0x1234


def frame(i: int) -> bytes:
    return i.to_bytes(4, "big")


@dataclass
class Network:
    """Packet i is sent at tick i and arrives at tick i + delay; the clock pushes arrivals, then pops."""

    first_seq: int
    arrivals: dict[int, list[int]] = field(default_factory=dict)  # tick -> packet indexes
    sent: int = 0

    def send(self, index: int, delay: int) -> None:
        self.arrivals.setdefault(index + delay, []).append(index)
        self.sent = max(self.sent, index + 1)

    def run(self, jb: JitterBuffer, *, ssrc: int = SSRC, extra_ticks: int = 20) -> list[int | None]:
        out: list[int | None] = []
        for tick in range(max(self.arrivals) + extra_ticks):
            for index in self.arrivals.get(tick, []):
                jb.push((self.first_seq + index) & 0xFFFF, index * 160, ssrc, frame(index))
            payload = jb.pop()
            out.append(None if payload is None else int.from_bytes(payload, "big"))
        return out


def played(out: list[int | None]) -> list[int]:
    return [i for i in out if i is not None]


def test_in_order_stream_starts_after_depth_frames() -> None:
    jb = JitterBuffer(depth=3)
    out = []
    for i in range(10):
        jb.push(100 + i, i * 160, SSRC, frame(i))
        out.append(jb.pop())
    assert out[:2] == [None, None]
    assert out[2:] == [frame(i) for i in range(8)]
    assert len(jb) == 2 and jb.playing
    assert (jb.stats.received, jb.stats.played, jb.stats.lost, jb.stats.late) == (10, 8, 0, 0)


@pytest.mark.parametrize("seed", range(40))
def test_reordering_duplicates_and_losses_within_the_window(seed: int) -> None:
    rng = random.Random(seed)
    depth = rng.randint(1, 4)
    n = rng.randint(50, 400)
    first_seq = rng.choice([rng.randrange(65536), 65535 - rng.randrange(20)])  # often wraps
    net = Network(first_seq)
    dropped = {i for i in range(1, n - depth - 2) if rng.random() < 0.1}
    duplicates = 0
    for i in range(n):
        if i in dropped:
            continue
        net.send(i, rng.randrange(depth))  # jitter below the playout delay: never late
        if rng.random() < 0.1:
            net.send(i, rng.randrange(depth + 30))  # a duplicate, possibly after the original played
            duplicates += 1
    order = [i for tick in sorted(net.arrivals) for i in net.arrivals[tick]]
    jb = JitterBuffer(depth=depth, capacity=64)
    out = net.run(jb)

    assert played(out) == [i for i in range(n) if i not in dropped]
    stats = jb.stats
    assert stats.received == n - len(dropped) + duplicates
    assert stats.played == n - len(dropped)
    assert stats.lost == len(dropped)
    assert (stats.late, stats.resets, stats.overflow) == (0, 0, 0)
    assert stats.duplicates == duplicates
    seen: set[int] = set()
    expected_reordered = 0
    for i in order:
        if i not in seen and seen and i < max(seen):
            expected_reordered += 1
        seen.add(i)
    assert stats.reordered == expected_reordered
    assert len(jb) == 0


def test_wraparound_at_65535() -> None:
    jb = JitterBuffer(depth=2)
    seqs = [65533, 65535, 65534, 1, 0, 2, 3]
    for seq in seqs:
        jb.push(seq, 0, SSRC, seq.to_bytes(2, "big"))
    got = [jb.pop() for _ in range(len(seqs))]
    assert [int.from_bytes(p, "big") for p in got if p] == [65533, 65534, 65535, 0, 1, 2, 3]
    assert jb.stats.reordered == 2


def test_first_packet_reordered_before_playout_moves_start_back() -> None:
    jb = JitterBuffer(depth=3)
    for seq in (11, 12, 10):
        jb.push(seq, 0, SSRC, frame(seq))
    assert [jb.pop() for _ in range(3)] == [frame(10), frame(11), frame(12)]


def test_late_packet_is_dropped_and_counted() -> None:
    jb = JitterBuffer(depth=2)
    jb.push(0, 0, SSRC, frame(0))
    jb.push(1, 160, SSRC, frame(1))
    assert jb.pop() == frame(0)
    jb.push(3, 480, SSRC, frame(3))
    assert jb.pop() == frame(1)
    jb.push(4, 640, SSRC, frame(4))
    assert jb.pop() is None  # slot 2: nothing there, the consumer plays silence
    jb.push(2, 320, SSRC, frame(2))
    assert [jb.pop(), jb.pop()] == [frame(3), frame(4)]
    assert (jb.stats.lost, jb.stats.late, jb.stats.duplicates) == (1, 1, 0)
    jb.push(3, 480, SSRC, frame(3))  # already played: a duplicate, not a late packet
    assert (jb.stats.late, jb.stats.duplicates) == (1, 1)


def test_sender_pause_then_resume_is_not_loss() -> None:
    jb = JitterBuffer(depth=2)
    seq = 500
    out = []
    for i in range(5):
        jb.push(seq + i, 0, SSRC, frame(i))
        out.append(jb.pop())
    out += [jb.pop() for _ in range(50)]  # on hold / DTX: nothing arrives
    for i in range(5, 10):
        jb.push(seq + i, 0, SSRC, frame(i))
        out.append(jb.pop())
    out += [jb.pop() for _ in range(3)]
    assert [p for p in out if p] == [frame(i) for i in range(10)]
    assert (jb.stats.lost, jb.stats.late, jb.stats.resets) == (0, 0, 0)


@pytest.mark.parametrize("gap", [30, 100, 1000])
def test_network_outage_counts_loss_and_recovers(gap: int) -> None:
    net = Network(first_seq=65000)
    for i in [*range(10), *range(10 + gap, 20 + gap)]:
        net.send(i, 0)
    jb = JitterBuffer(depth=2)
    out = net.run(jb)
    assert played(out) == [*range(10), *range(10 + gap, 20 + gap)]
    assert (jb.stats.lost, jb.stats.late, jb.stats.resets) == (gap, 0, 0)


@pytest.mark.parametrize("new_first_seq", [40000, 103, 98])
def test_ssrc_change_resets(new_first_seq: int) -> None:
    # A new stream may reuse sequence numbers close to the old ones: they must not look like duplicates.
    jb = JitterBuffer(depth=2)
    for i in range(6):
        jb.push(100 + i, 0, SSRC, b"a%d" % i)
    assert jb.pop() == b"a0"
    for i in range(4):
        jb.push(new_first_seq + i, 0, SSRC + 1, b"b%d" % i)
    assert [jb.pop() for _ in range(5)] == [b"b0", b"b1", b"b2", b"b3", None]
    assert (jb.stats.resets, jb.stats.duplicates, jb.stats.late) == (1, 0, 0)
    assert len(jb) == 0


def test_confirmed_sequence_jump_resets_but_a_stray_packet_does_not() -> None:
    jb = JitterBuffer(depth=2)
    for i in range(4):
        jb.push(i, 0, SSRC, frame(i))
    assert jb.pop() == frame(0)
    jb.push(30000, 0, SSRC, b"stray")
    jb.push(4, 0, SSRC, frame(4))
    assert [jb.pop() for _ in range(4)] == [frame(i) for i in range(1, 5)]
    assert jb.stats.resets == 0
    jb.push(5, 0, SSRC, frame(5))
    jb.push(60000, 0, SSRC, b"x0")  # e.g. the peer restarted its stream with the same SSRC
    jb.push(60001, 0, SSRC, b"x1")
    jb.push(60002, 0, SSRC, b"x2")
    assert [jb.pop() for _ in range(3)] == [b"x0", b"x1", b"x2"]
    assert jb.stats.resets == 1


def test_never_grows_past_capacity() -> None:
    jb = JitterBuffer(depth=2, capacity=16)
    for i in range(100):  # consumer stalled
        jb.push((65500 + i) & 0xFFFF, 0, SSRC, frame(i))
        assert len(jb) <= 16
    assert jb.stats.overflow == 84
    out = [jb.pop() for _ in range(20)]
    assert [p for p in out if p] == [frame(i) for i in range(84, 100)]
    jb.push((65500 + 50) & 0xFFFF, 0, SSRC, b"old")  # its slot was dropped
    assert jb.stats.late == 1


def test_earlier_packet_before_playout_moves_start_only_within_capacity() -> None:
    jb = JitterBuffer(depth=4, capacity=4)
    for seq in (11, 12, 13, 10, 9):
        jb.push(seq, 0, SSRC, frame(seq))
        assert len(jb) <= 4
    assert (jb.stats.late, jb.stats.reordered, jb.stats.overflow) == (1, 1, 0)  # 9 would not fit
    assert [jb.pop() for _ in range(4)] == [frame(10), frame(11), frame(12), frame(13)]


def test_pop_on_empty_and_validation() -> None:
    assert JitterBuffer().pop() is None
    with pytest.raises(ValueError):
        JitterBuffer(depth=0)
    with pytest.raises(ValueError):
        JitterBuffer(depth=10, capacity=5)
