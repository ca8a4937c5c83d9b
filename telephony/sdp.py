"""SDP (RFC 4566) and the offer/answer rules (RFC 3264) for one G.711 audio stream.

The parser keeps what it does not interpret (unknown attributes, b=, i=, other media) so that an SDP
can be inspected and re-serialized, and fails with a line number instead of guessing. Negotiation
only ever accepts one audio stream with PCMU or PCMA (plus telephone-event): that is all the media
layer can play, and the SIP layer answers 488 when even that is impossible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from telephony.g711 import CODECS_BY_NAME, SAMPLE_RATE, G711Codec

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# What we do when the peer does X: its sendonly is our recvonly, and so on.
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_RTP_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF"})
_TELEPHONE_EVENT = "telephone-event"
_EVENTS_FMTP = "0-16"
_PTIME = 20

# RFC 3551 static payload types: they are valid in an m= line without any rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 5: ("DVI4", 8000), 6: ("DVI4", 16000),
    7: ("LPC", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 10: ("L16", 44100), 11: ("L16", 44100),
    12: ("QCELP", 8000), 13: ("CN", 8000), 14: ("MPA", 90000), 15: ("G728", 8000), 16: ("DVI4", 11025),
    17: ("DVI4", 22050), 18: ("G729", 8000), 26: ("JPEG", 90000), 31: ("H261", 90000), 32: ("MPV", 90000),
    34: ("H263", 90000),
}  # fmt: skip


log = logging.getLogger(__name__)


class SdpError(ValueError):
    """The SDP cannot be used; the message says why (it may end up in a SIP Warning header)."""


class NoCommonCodec(SdpError):
    """No audio stream we can play: the SIP layer answers 488 Not Acceptable Here."""


@dataclass(slots=True)
class Origin:
    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    address: str = "0.0.0.0"

    def to_line(self) -> str:
        version = f"{self.session_id} {self.session_version}"
        return f"o={self.username} {version} IN {_addrtype(self.address)} {self.address}"


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int | None = None
    connection: str | None = None
    port_count: int | None = None  # the "/2" of "m=audio 49170/2 ..."
    tokens: list[str] = field(default_factory=list)  # non-numeric formats: t38, webrtc-datachannel, ...
    channels: dict[int, int] = field(default_factory=dict)  # the "/2" of "a=rtpmap:111 opus/48000/2"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)  # a= lines not modelled above
    lines: list[str] = field(default_factory=list)  # raw i=, b=, k= lines

    def encoding(self, payload_type: int) -> tuple[str, int] | None:
        """(name, clock rate) from rtpmap, falling back to the static table."""
        return self.rtpmap.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)

    def attribute(self, name: str) -> str | None:
        """Value of the first other attribute called ``name`` ("" for a flag, None if absent)."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def to_lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        fmts = " ".join([*map(str, self.formats), *self.tokens])
        out = [f"m={self.media} {port} {self.proto} {fmts}".rstrip()]
        out += [line for line in self.lines if line.startswith("i=")]
        if self.connection:
            out.append(f"c=IN {_addrtype(self.connection)} {self.connection}")
        out += [line for line in self.lines if not line.startswith("i=")]
        for pt in self.formats:
            if pt in self.rtpmap:
                name, rate = self.rtpmap[pt]
                ch = f"/{self.channels[pt]}" if pt in self.channels else ""
                out.append(f"a=rtpmap:{pt} {name}/{rate}{ch}")
            if pt in self.fmtp:
                out.append(f"a=fmtp:{pt} {self.fmtp[pt]}")
        if self.ptime is not None:
            out.append(f"a=ptime:{self.ptime}")
        out += [_attr_line(key, value) for key, value in self.attributes]
        if self.port != 0:  # a rejected stream carries no attributes that matter
            out.append(f"a={self.direction}")
        return out


@dataclass(slots=True)
class SessionDescription:
    origin: Origin
    connection: str | None = None
    media: list[MediaDescription] = field(default_factory=list)
    session_name: str = "-"
    timing: str = "0 0"
    direction: str | None = None  # session-level direction; already folded into each media's
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # raw i=, u=, e=, p=, b=, r=, z=, k= lines

    def to_text(self) -> str:
        def raw(kinds: str) -> list[str]:
            return [line for line in self.lines if line[0] in kinds]

        out = ["v=0", self.origin.to_line(), f"s={self.session_name or '-'}", *raw("iuep")]
        if self.connection:
            out.append(f"c=IN {_addrtype(self.connection)} {self.connection}")
        out += [*raw("b"), f"t={self.timing}", *raw("rzk")]
        if self.direction:
            out.append(f"a={self.direction}")
        out += [_attr_line(key, value) for key, value in self.attributes]
        for media in self.media:
            out += media.to_lines()
        return "\r\n".join(out) + "\r\n"

    def to_bytes(self) -> bytes:
        return self.to_text().encode("utf-8")


@dataclass(slots=True)
class MediaAnswer:
    """The outcome of a negotiation, from our side: what to send, where, and whether to send at all."""

    sdp: SessionDescription
    codec: G711Codec
    telephone_event_pt: int | None
    remote_address: tuple[str, int]
    direction: str
    remote_ptime: int | None = None


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _attr_line(key: str, value: str | None) -> str:
    return f"a={key}" if value is None else f"a={key}:{value}"


# -- parsing ---------------------------------------------------------------------------------------


def parse_sdp(text: str | bytes) -> SessionDescription:
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", errors="replace")
    origin: Origin | None = None
    session = SessionDescription(Origin())
    media: MediaDescription | None = None
    first = True
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"line {number}: expected '<type>=<value>', got {line[:40]!r}")
        kind, value = line[0], line[2:]
        if first:
            if kind != "v" or value.strip() != "0":
                raise SdpError(f"line {number}: SDP must start with v=0, got {line[:40]!r}")
            first = False
            continue
        if kind == "o":
            origin = _parse_origin(value, number)
        elif kind == "s":
            session.session_name = value
        elif kind == "t":
            session.timing = value
        elif kind == "c":
            if media is None:
                session.connection = _parse_connection(value, number)
            else:
                media.connection = _parse_connection(value, number)
        elif kind == "m":
            media = _parse_media(value, number)
            session.media.append(media)
        elif kind == "a":
            _parse_attribute(session if media is None else media, value, number)
        elif kind == "v":
            raise SdpError(f"line {number}: second v= line")
        elif media is None:
            session.lines.append(line)
        else:
            media.lines.append(line)
    if first:
        raise SdpError("empty SDP body")
    if origin is None:
        raise SdpError("missing o= line")
    session.origin = origin
    for m in session.media:
        m.direction = m.direction or session.direction or "sendrecv"  # "" until an a= line sets it
    return session


def _parse_origin(value: str, number: int) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"line {number}: o= needs 6 fields, got {len(parts)}")
    try:
        return Origin(parts[0], int(parts[1]), int(parts[2]), parts[5])
    except ValueError:
        raise SdpError(f"line {number}: o= session id and version must be numeric") from None


def _parse_connection(value: str, number: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"line {number}: expected 'c=IN IP4|IP6 <address>', got {value[:40]!r}")
    return parts[2].split("/", 1)[0]  # drop a multicast /ttl


def _parse_media(value: str, number: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"line {number}: m= needs '<media> <port> <proto> <fmt> ...', got {value[:40]!r}")
    port_text, _, count_text = parts[1].partition("/")
    try:
        port = int(port_text)
        count = int(count_text) if count_text else None
    except ValueError:
        raise SdpError(f"line {number}: bad m= port {parts[1]!r}") from None
    if not 0 <= port <= 65535:
        raise SdpError(f"line {number}: m= port {port} out of range")
    formats = [int(tok) for tok in parts[3:] if tok.isdigit()]
    tokens = [tok for tok in parts[3:] if not tok.isdigit()]
    return MediaDescription(parts[0], port, parts[2], formats, direction="", port_count=count, tokens=tokens)


def _parse_attribute(target: SessionDescription | MediaDescription, value: str, number: int) -> None:
    name, colon, arg = value.partition(":")
    if name in DIRECTIONS and not colon:
        target.direction = name
        return
    if isinstance(target, MediaDescription):
        if name == "rtpmap":
            pt_text, _, encoding = arg.partition(" ")
            enc = encoding.strip().split("/")
            try:
                pt, rate = int(pt_text), int(enc[1])
                if len(enc) > 2:
                    target.channels[pt] = int(enc[2])
            except (ValueError, IndexError):
                # RFC 4475 sends `a=rtpmap:31 LPC` (no clock rate) on a stream we decline anyway: ignore the
                # attribute; a codec we need without a usable rtpmap simply isn't offered
                log.debug("line %s: ignoring bad rtpmap %r", number, arg[:40])
                return
            target.rtpmap[pt] = (enc[0], rate)
            return
        if name == "fmtp":
            pt_text, _, params = arg.partition(" ")
            if pt_text.isdigit():
                target.fmtp[int(pt_text)] = params.strip()
                return
        elif name == "ptime":
            try:
                target.ptime = round(float(arg))
            except ValueError:
                raise SdpError(f"line {number}: bad ptime {arg[:20]!r}") from None
            return
    target.attributes.append((name, arg if colon else None))


# -- offer / answer --------------------------------------------------------------------------------


def _allowed(codecs: Sequence[str]) -> list[str]:
    names = [name.upper() for name in codecs]
    unknown = [name for name in names if name not in CODECS_BY_NAME]
    if unknown or not names:
        raise ValueError(f"unsupported codecs {unknown or codecs!r}; choose from {list(CODECS_BY_NAME)}")
    return names


def _codec_for(media: MediaDescription, pt: int, allowed: Sequence[str]) -> G711Codec | None:
    encoding = media.encoding(pt)
    if encoding is None or encoding[1] != SAMPLE_RATE:
        return None
    name = encoding[0].upper()
    if name not in allowed:
        return None
    codec = CODECS_BY_NAME[name]
    # A peer may map G.711 to a dynamic payload type; we must then send with that one.
    return codec if codec.payload_type == pt else replace(codec, payload_type=pt)


def _first_codec(media: MediaDescription, allowed: Sequence[str]) -> G711Codec | None:
    for pt in media.formats:
        codec = _codec_for(media, pt, allowed)
        if codec is not None:
            return codec
    return None


def _telephone_event_pt(media: MediaDescription) -> int | None:
    for pt in media.formats:
        encoding = media.rtpmap.get(pt)
        if encoding and encoding[0].lower() == _TELEPHONE_EVENT and encoding[1] == SAMPLE_RATE:
            return pt
    return None


def _peer_direction(media: MediaDescription, address: str) -> str:
    """The peer's direction; c=0.0.0.0 is RFC 2543 hold: it sends (maybe) but must not be sent to."""
    if address == "0.0.0.0":
        return "sendonly" if media.direction in ("sendrecv", "sendonly") else "inactive"
    return media.direction


def _audio_media(
    port: int, proto: str, codecs: Sequence[G711Codec], te_pt: int | None, direction: str
) -> MediaDescription:
    media = MediaDescription("audio", port, proto, [c.payload_type for c in codecs], ptime=_PTIME)
    media.direction = direction
    for codec in codecs:
        media.rtpmap[codec.payload_type] = (codec.name, codec.clock_rate)
    if te_pt is not None:
        media.formats.append(te_pt)
        media.rtpmap[te_pt] = (_TELEPHONE_EVENT, SAMPLE_RATE)
        media.fmtp[te_pt] = _EVENTS_FMTP
    return media


def _session(local_ip: str, session_id: int, session_version: int) -> SessionDescription:
    return SessionDescription(
        Origin("hotline", session_id, session_version, local_ip), local_ip, [], "hotline"
    )


def _result(
    sdp: SessionDescription, media: MediaDescription, fallback: str | None, codec: G711Codec
) -> MediaAnswer:
    address = media.connection or fallback
    if address is None:
        raise SdpError("no c= line for the audio stream, neither media- nor session-level")
    theirs = _peer_direction(media, address)
    return MediaAnswer(
        sdp, codec, _telephone_event_pt(media), (address, media.port), _REVERSE[theirs], media.ptime
    )


def answer_offer(
    offer: SessionDescription,
    *,
    local_ip: str,
    local_port: int,
    codecs: Sequence[str] = ("PCMU", "PCMA"),
    session_id: int,
    session_version: int,
) -> MediaAnswer:
    """Accept the first audio stream that offers G.711, reject every other m-line (RFC 3264 §6).

    The codec is the first of the offerer's formats we support: the offerer's order is its
    preference, and following it avoids a re-INVITE from peers that insist on their first choice.
    """
    allowed = _allowed(codecs)
    answer = _session(local_ip, session_id, session_version)
    result: MediaAnswer | None = None
    for offered in offer.media:
        codec = None
        if (
            result is None
            and offered.media == "audio"
            and offered.port != 0
            and offered.proto.upper() in _RTP_PROTOS
        ):
            codec = _first_codec(offered, allowed)
        if codec is None:
            answer.media.append(
                MediaDescription(
                    offered.media, 0, offered.proto, list(offered.formats), tokens=list(offered.tokens)
                )
            )
            continue
        result = _result(answer, offered, offer.connection, codec)
        te_pt = result.telephone_event_pt
        answer.media.append(_audio_media(local_port, offered.proto, [codec], te_pt, result.direction))
    if result is None:
        raise NoCommonCodec(f"no audio stream offers {' or '.join(allowed)}")
    return result


def build_offer(
    *,
    local_ip: str,
    local_port: int,
    codecs: Sequence[str] = ("PCMU", "PCMA"),
    session_id: int,
    session_version: int,
    direction: str = "sendrecv",
    telephone_event_pt: int = 101,
) -> SessionDescription:
    """Our offer (outbound calls, transfers, hold): codecs in our order of preference."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not 96 <= telephone_event_pt <= 127:
        raise ValueError(f"telephone-event needs a dynamic payload type 96..127, got {telephone_event_pt}")
    offer = _session(local_ip, session_id, session_version)
    chosen = [CODECS_BY_NAME[name] for name in _allowed(codecs)]
    offer.media.append(_audio_media(local_port, "RTP/AVP", chosen, telephone_event_pt, direction))
    return offer


def accept_answer(answer: SessionDescription, *, codecs: Sequence[str] = ("PCMU", "PCMA")) -> MediaAnswer:
    """What the peer's answer to our offer means for our media: the first accepted audio stream."""
    allowed = _allowed(codecs)
    for media in answer.media:
        if media.media != "audio" or media.port == 0:
            continue
        codec = _first_codec(media, allowed)
        if codec is None:
            raise NoCommonCodec(f"the answer's audio stream has no {' or '.join(allowed)}")
        return _result(answer, media, answer.connection, codec)
    raise NoCommonCodec("the answer rejected every audio stream")
