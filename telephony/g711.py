"""G.711 μ-law and A-law codecs (ITU-T G.711), table driven.

Every call on every tick encodes and decodes 160 samples, so the per-frame cost must be one numpy
fancy-index and one ``tobytes``: the tables are built once at import, vectorized, from the same
segment arithmetic as the ITU reference encoder, so results are bit-exact with it.
PCM is always 16-bit signed linear; the μ-law path uses its top 14 bits, A-law its top 13 bits,
with negative values taken as one's complement exactly like the ITU-T G.191 reference software.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz

_ULAW_BIAS = 0x84
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _all_int16() -> np.ndarray:
    """Every int16 value, ordered so that index == value viewed as uint16."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> np.ndarray:
    x = _all_int16()
    # Negative magnitudes use the one's complement (~x), as the ITU-T G.191 reference does: it keeps
    # code(~x) == code(x) ^ 0x80, so small negative noise rounds to zero like positive noise does.
    mag = (np.where(x < 0, ~x, x) >> 2) + (_ULAW_BIAS >> 2)  # 14-bit magnitude + bias
    mag = np.minimum(mag, _ULAW_SEG_END[-1])
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")
    code = (seg << 4) | ((mag >> (seg + 1)) & 0xF)
    return (code ^ np.where(x < 0, 0x7F, 0xFF)).astype(np.uint8)


def _build_alaw_encode() -> np.ndarray:
    x = _all_int16()
    mag = np.where(x < 0, ~x, x) >> 3  # 13-bit magnitude, one's complement for negatives
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    seg7 = np.minimum(seg, 7)
    # Segments 0 and 1 share a step size; higher ones double it each time.
    mant = np.where(seg7 < 2, mag >> 1, mag >> seg7) & 0xF
    code = np.where(seg >= 8, 0x7F, (seg7 << 4) | mant)
    return (code ^ np.where(x < 0, 0x55, 0xD5)).astype(np.uint8)


def _build_ulaw_decode() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    t = ((mantissa << 3) + _ULAW_BIAS) << exponent
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_decode() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ALAW_ENC = _build_alaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_DEC = _build_alaw_decode()
for _table in (_ULAW_ENC, _ALAW_ENC, _ULAW_DEC, _ALAW_DEC):
    _table.flags.writeable = False  # shared by every call: nobody may patch them


def _as_index(pcm: np.ndarray) -> np.ndarray:
    # No copy when the caller already hands int16 (the normal case).
    return np.asarray(pcm, dtype=np.int16).view(np.uint16)


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """16-bit linear PCM -> μ-law bytes."""
    return _ULAW_ENC[_as_index(pcm)].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes -> int16 PCM (a new, writable array)."""
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: np.ndarray) -> bytes:
    """16-bit linear PCM -> A-law bytes."""
    return _ALAW_ENC[_as_index(pcm)].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law bytes -> int16 PCM (a new, writable array)."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)]


_TABLES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "PCMU": (_ULAW_ENC, _ULAW_DEC),
    "PCMA": (_ALAW_ENC, _ALAW_DEC),
}


@dataclass(frozen=True)
class G711Codec:
    """One negotiated G.711 flavour; ``payload_type`` may be dynamic if the peer mapped it so."""

    name: str
    payload_type: int
    clock_rate: int = SAMPLE_RATE
    silence: bytes = field(init=False, repr=False, compare=False)
    _enc: np.ndarray = field(init=False, repr=False, compare=False)
    _dec: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tables = _TABLES.get(self.name.upper())
        if tables is None:
            raise ValueError(f"not a G.711 codec: {self.name!r}")
        if self.clock_rate != SAMPLE_RATE:
            raise ValueError(f"G.711 runs at {SAMPLE_RATE} Hz, not {self.clock_rate}")
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type out of range: {self.payload_type}")
        enc, dec = tables
        # Frozen: set the derived fields through object.__setattr__ once.
        object.__setattr__(self, "name", self.name.upper())
        object.__setattr__(self, "_enc", enc)
        object.__setattr__(self, "_dec", dec)
        object.__setattr__(self, "silence", enc[np.zeros(FRAME_SAMPLES, dtype=np.uint16)].tobytes())

    def encode(self, pcm: np.ndarray) -> bytes:
        return self._enc[_as_index(pcm)].tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        return self._dec[np.frombuffer(data, dtype=np.uint8)]


PCMU = G711Codec("PCMU", 0)
PCMA = G711Codec("PCMA", 8)
CODECS_BY_NAME: dict[str, G711Codec] = {PCMU.name: PCMU, PCMA.name: PCMA}
