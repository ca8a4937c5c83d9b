"""G.711 against an independent scalar transcription of the ITU-T G.191 reference algorithm."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from telephony.g711 import (
    CODECS_BY_NAME,
    FRAME_SAMPLES,
    PCMA,
    PCMU,
    SAMPLE_RATE,
    G711Codec,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

Encode = Callable[[np.ndarray], bytes]
Decode = Callable[[bytes], np.ndarray]
ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


# -- scalar reference (G.191 STL g711.c, one sample at a time) --------------------------------------


def ref_ulaw_compress(x: int) -> int:
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i, segno = absno >> 6, 1
    while i:
        segno += 1
        i >>= 1
    code = ((8 - segno) << 4) | (15 - ((absno >> segno) & 0xF))
    return code | 0x80 if x >= 0 else code


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    inverted = ~code
    exponent = (inverted >> 4) & 7
    mantissa = inverted & 0xF
    step = 4 << (exponent + 1)
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix = ix - 16 + (iexp << 4)
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x55) & 0x7F
    iexp, mant = ix >> 4, ix & 0xF
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 8
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


# -- well-known values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xEF, 132)],
)
def test_ulaw_decode_reference_values(code: int, value: int) -> None:
    assert int(ulaw_decode(bytes([code]))[0]) == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xDA, 248), (0xC5, 264)],
)
def test_alaw_decode_reference_values(code: int, value: int) -> None:
    assert int(alaw_decode(bytes([code]))[0]) == value


def test_encode_reference_values() -> None:
    pcm = np.array([0, -1, 32767, -32768, 8, -9], dtype=np.int16)
    assert ulaw_encode(pcm) == bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E])
    assert alaw_encode(pcm) == bytes([0xD5, 0x55, 0xAA, 0x2A, 0xD5, 0x55])


# -- bit exactness over the whole domain ------------------------------------------------------------


def test_ulaw_matches_reference_for_every_sample() -> None:
    expected = bytes(ref_ulaw_compress(int(x)) for x in ALL_PCM)
    assert ulaw_encode(ALL_PCM) == expected
    assert ulaw_decode(ALL_CODES).tolist() == [ref_ulaw_expand(c) for c in ALL_CODES]


def test_alaw_matches_reference_for_every_sample() -> None:
    expected = bytes(ref_alaw_compress(int(x)) for x in ALL_PCM)
    assert alaw_encode(ALL_PCM) == expected
    assert alaw_decode(ALL_CODES).tolist() == [ref_alaw_expand(c) for c in ALL_CODES]


def test_matches_audioop_where_its_sun_algorithm_agrees() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # gone in Python 3.13
    raw = ALL_PCM.tobytes()
    assert alaw_encode(ALL_PCM) == audioop.lin2alaw(raw, 2)
    assert ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)
    # Sun's μ-law negates instead of complementing negatives; non-negative input is identical.
    positive = ALL_PCM[ALL_PCM >= 0]
    assert ulaw_encode(positive) == audioop.lin2ulaw(positive.tobytes(), 2)


# -- properties -------------------------------------------------------------------------------------


def test_round_trip_all_codes() -> None:
    # μ-law 0x7F is "negative zero": it decodes to 0, which encodes as the positive zero 0xFF.
    assert ulaw_encode(ulaw_decode(ALL_CODES)) == ALL_CODES.replace(b"\x7f", b"\xff")
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES


@pytest.mark.parametrize(("encode", "sign"), [(ulaw_encode, 0x80), (alaw_encode, 0x80)])
def test_sign_symmetry(encode: Encode, sign: int) -> None:
    positive = np.frombuffer(encode(ALL_PCM[ALL_PCM >= 0]), dtype=np.uint8)
    complement = np.frombuffer(encode(~ALL_PCM[ALL_PCM >= 0]), dtype=np.uint8)
    assert np.array_equal(positive ^ sign, complement)


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_quantization_error_is_small_and_monotonic(encode: Encode, decode: Decode) -> None:
    x = ALL_PCM.astype(np.int32)
    y = decode(encode(ALL_PCM)).astype(np.int32)
    assert np.all(np.diff(y) >= 0)  # never reorders loudness
    # Logarithmic companding: the error is a few percent of the amplitude (half a step of the segment).
    inside = np.abs(x) <= 32000  # ignore clipping at the extremes
    assert np.all((np.abs(y - x) <= np.abs(x) // 25 + 16)[inside])
    assert np.all(np.abs(y[np.abs(x) < 8]) <= 8)


def test_codec_frame_round_trip() -> None:
    frame = (np.sin(np.arange(FRAME_SAMPLES) / 5) * 12000).astype(np.int16)
    for codec in (PCMU, PCMA):
        data = codec.encode(frame)
        assert len(data) == FRAME_SAMPLES
        out = codec.decode(data)
        assert out.dtype == np.int16 and out.shape == (FRAME_SAMPLES,)
        assert np.max(np.abs(out.astype(np.int32) - frame)) < 12000 * 0.07


def test_tables_are_read_only() -> None:
    out = ulaw_decode(b"\x00")
    out[0] = 0
    assert int(ulaw_decode(b"\x00")[0]) == -32124


# -- codec objects ----------------------------------------------------------------------------------


def test_codec_constants() -> None:
    assert (PCMU.name, PCMU.payload_type, PCMU.clock_rate) == ("PCMU", 0, SAMPLE_RATE)
    assert (PCMA.name, PCMA.payload_type, PCMA.clock_rate) == ("PCMA", 8, SAMPLE_RATE)
    assert CODECS_BY_NAME == {"PCMU": PCMU, "PCMA": PCMA}
    assert SAMPLE_RATE == 8000 and FRAME_SAMPLES == 160


def test_silence_frames_decode_to_zero() -> None:
    assert PCMU.silence == b"\xff" * FRAME_SAMPLES
    assert PCMA.silence == b"\xd5" * FRAME_SAMPLES
    assert not np.any(PCMU.decode(PCMU.silence))
    assert np.all(np.abs(PCMA.decode(PCMA.silence)) == 8)  # A-law has no zero level


def test_codec_with_dynamic_payload_type_and_validation() -> None:
    dynamic = dataclasses.replace(PCMU, payload_type=96)
    assert dynamic.payload_type == 96 and dynamic.silence == PCMU.silence
    assert dynamic.encode(np.zeros(3, np.int16)) == b"\xff\xff\xff"
    assert G711Codec("pcma", 8) == PCMA
    with pytest.raises(ValueError):
        G711Codec("G729", 18)
    with pytest.raises(ValueError):
        G711Codec("PCMU", 0, clock_rate=16000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PCMU.payload_type = 3  # type: ignore[misc]
