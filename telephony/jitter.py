"""Fixed-delay jitter buffer driven by the media clock.

The clock pops one frame per 20 ms tick, so playout is paced by our clock, not by packet arrival.
Frames are slotted by RTP sequence number: a packet fills its slot if it arrives before the slot is
played, otherwise it is late. The buffer starts playing once ``depth`` frames are queued (the fixed
playout delay) and goes back to priming when it runs dry, so a sender that pauses (hold, DTX) and
resumes with the next sequence number is picked up again instead of being judged late forever.
"""

from __future__ import annotations

from dataclasses import dataclass

_SEQ_MOD = 1 << 16
_HALF = 1 << 15
# Sequence distances (RFC 3550 A.1 uses the same magnitudes) beyond which a packet is taken to belong
# to a restarted stream rather than to be merely lost-in-between or reordered.
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_HISTORY_BITS = 64  # how many played slots we remember to tell duplicates from late packets
_HISTORY_MASK = (1 << _HISTORY_BITS) - 1


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0  # slots that came up with nothing to play
    late: int = 0  # arrived after their slot was played (or skipped)
    duplicates: int = 0
    reordered: int = 0  # arrived after a higher sequence number, still in time
    resets: int = 0  # new SSRC or confirmed sequence jump
    overflow: int = 0  # buffered frames dropped to stay within capacity


class JitterBuffer:
    """Reorders one inbound stream; ``pop`` returns None where the consumer substitutes silence."""

    __slots__ = (
        "_bad_packet",
        "_buf",
        "_highest",
        "_history",
        "_next",
        "_playing",
        "_ssrc",
        "_started",
        "capacity",
        "depth",
        "stats",
    )

    def __init__(self, depth: int = 2, capacity: int = 64) -> None:
        if depth < 1 or capacity < depth:
            raise ValueError(f"need 1 <= depth <= capacity, got depth={depth} capacity={capacity}")
        self.depth = depth
        self.capacity = capacity
        self.stats = JitterStats()
        self._ssrc: int | None = None
        self._buf: dict[int, bytes] = {}
        self._next: int | None = None  # sequence number of the next slot to play
        self._highest = 0  # highest sequence number received (valid once _next is set)
        self._playing = False
        self._started = False  # has anything been played since the last reset
        self._history = 0  # bit i set: slot _next-1-i was played
        self._bad_packet: tuple[int, bytes] | None = None  # candidate first packet of a jumped stream

    def __len__(self) -> int:
        return len(self._buf)

    @property
    def playing(self) -> bool:
        return self._playing

    def _reset(self, ssrc: int) -> None:
        if self._ssrc is not None:
            self.stats.resets += 1
        self._ssrc = ssrc
        self._buf.clear()
        self._next = None
        self._playing = False
        self._started = False
        self._history = 0
        self._bad_packet = None

    def push(self, sequence: int, timestamp: int, ssrc: int, payload: bytes) -> None:
        self.stats.received += 1
        if ssrc != self._ssrc:
            self._reset(ssrc)
        nxt = self._next
        if nxt is None:
            self._next = self._highest = sequence
            self._buf[sequence] = payload
            return
        delta = (sequence - nxt) & 0xFFFF
        if delta >= _HALF:
            delta -= _SEQ_MOD
        if delta >= _MAX_DROPOUT or delta < -_MAX_MISORDER:
            self._jump(sequence, ssrc, payload)
            return
        self._bad_packet = None
        if delta < 0:
            if self._started:
                back = -delta - 1
                if back < _HISTORY_BITS and (self._history >> back) & 1:
                    self.stats.duplicates += 1
                else:
                    self.stats.late += 1
                return
            if (self._highest - sequence) & 0xFFFF >= self.capacity:
                self.stats.late += 1  # would push newer frames out of the window
                return
            # Nothing played yet: an earlier packet simply moves the start of playout back.
            self._next = sequence
        elif sequence in self._buf:
            self.stats.duplicates += 1
            return
        elif delta >= self.capacity:
            self._slide(sequence)
        ahead = (sequence - self._highest) & 0xFFFF
        if ahead and ahead < _HALF:
            self._highest = sequence
        elif ahead:
            self.stats.reordered += 1
        self._buf[sequence] = payload

    def _jump(self, sequence: int, ssrc: int, payload: bytes) -> None:
        """A far-away sequence number: restart only once a second packet confirms the new numbering."""
        bad = self._bad_packet
        if bad is not None and sequence == (bad[0] + 1) & 0xFFFF:
            self._reset(ssrc)
            self._next = bad[0]
            self._highest = sequence
            self._buf[bad[0]] = bad[1]
            self._buf[sequence] = payload
        else:
            self._bad_packet = (sequence, payload)

    def _slide(self, sequence: int) -> None:
        """Move the window forward so ``sequence`` fits, dropping the oldest frames."""
        new_next = (sequence - self.capacity + 1) & 0xFFFF
        nxt = self._next
        assert nxt is not None
        shift = (new_next - nxt) & 0xFFFF
        dropped = 0
        for seq in list(self._buf):
            if (seq - nxt) & 0xFFFF < shift:
                del self._buf[seq]
                dropped += 1
        self.stats.overflow += dropped
        if self._started:
            self.stats.lost += shift - dropped  # skipped slots that never arrived
        self._history = (self._history << shift) & _HISTORY_MASK if shift < _HISTORY_BITS else 0
        self._next = new_next

    def pop(self) -> bytes | None:
        if not self._playing:
            if len(self._buf) < self.depth:
                return None
            self._start()
        nxt = self._next
        if nxt is None:
            return None
        payload = self._buf.pop(nxt, None)
        if payload is None and not self._buf:
            # Ran dry: prime again rather than advancing through slots the sender may never fill.
            self._playing = False
            return None
        self._next = (nxt + 1) & 0xFFFF
        self._started = True
        if payload is None:
            self._history = (self._history << 1) & _HISTORY_MASK
            self.stats.lost += 1
            return None
        self._history = ((self._history << 1) | 1) & _HISTORY_MASK
        self.stats.played += 1
        return payload

    def _start(self) -> None:
        """Begin (or resume) playout at the oldest buffered frame; skipped slots were lost."""
        nxt = self._next
        assert nxt is not None
        skip = min((seq - nxt) & 0xFFFF for seq in self._buf)
        if skip:
            if self._started:
                self.stats.lost += skip
            self._history = (self._history << skip) & _HISTORY_MASK if skip < _HISTORY_BITS else 0
            self._next = (nxt + skip) & 0xFFFF
        self._playing = True
