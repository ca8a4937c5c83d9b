"""SIP messages: parse bytes into Request/Response, serialize back, and validate what a UA relies on.

Parsing happens in two steps so that broken input can still be answered: first the framing (start line,
header lines, unfolding, Content-Length), which yields a message object; then validation of the headers every
transaction needs (Via, CSeq, Call-ID, From, To). A validation failure raises `SipParseError` carrying the
partly parsed message, from which a `400 Bad Request` can be formed (RFC 3261 §8.2.2 / RFC 4475).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from telephony.sip.headers import (
    LIST_HEADERS,
    SINGLE_HEADERS,
    Headers,
    is_token,
    parse_params,
    split_outside_quotes,
)
from telephony.sip.uri import Address, SipUri, UriError, parse_address, parse_uri

SIP_VERSION = "SIP/2.0"
MAX_CSEQ = 2**32 - 1

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    603: "Decline",
}


class SipParseError(ValueError):
    """The datagram is not a valid SIP message. `message` is set when framing worked, so a 400 can be sent."""

    def __init__(self, reason: str, message: SipMessage | None = None, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"SIP/2.0/{self.transport} {self.host}{port}{params}"


def parse_via(value: str) -> Via:
    """Parse one Via value; LWS is allowed around '/' and before parameters (RFC 4475 wsinv)."""
    head, semicolon, param_text = value.partition(";")
    pieces = head.split("/")
    if len(pieces) != 3:
        raise ValueError(f"malformed Via {value!r}")
    name, version, rest = (p.strip() for p in pieces)
    if name.upper() != "SIP" or version != "2.0":
        raise ValueError(f"Via protocol must be SIP/2.0, got {name}/{version}")
    words = rest.split()
    if len(words) != 2:
        raise ValueError(f"Via needs transport and sent-by, got {rest!r}")
    transport, sent_by = words
    if not is_token(transport):
        raise ValueError(f"bad Via transport {transport!r}")
    host, port = _split_sent_by(sent_by)
    params = parse_params(param_text) if semicolon else {}
    return Via(transport=transport.upper(), host=host, port=port, params=params)


def _split_sent_by(sent_by: str) -> tuple[str, int | None]:
    if sent_by.startswith("["):
        end = sent_by.find("]")
        host, tail = sent_by[1:end], sent_by[end + 1 :]
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = sent_by.partition(":")
    if not host:
        raise ValueError("Via has no host")
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ValueError(f"Via has an invalid port {port_text!r}")
    return host, int(port_text) if port_text else None


@dataclass
class SipMessage:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # --- typed accessors; validated once by parse_message, so they don't fail on parsed input ---
    @cached_property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.values("Via")]

    @property
    def top_via(self) -> Via:
        return self.vias[0]

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @cached_property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")

    @cached_property
    def from_address(self) -> Address:
        return parse_address(self.headers.get("From") or "")

    @cached_property
    def to_address(self) -> Address:
        return parse_address(self.headers.get("To") or "")

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()

    def contacts(self) -> list[Address]:
        raw = self.headers.values("Contact")
        if raw == ["*"]:
            return []
        return [parse_address(v) for v in raw]

    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize with CRLF line ends and a Content-Length that always matches the body."""
        lines = [self.start_line()]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass
class Request(SipMessage):
    method: str = ""
    uri: str = ""
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    @cached_property
    def parsed_uri(self) -> SipUri | str:
        return parse_uri(self.uri)


@dataclass
class Response(SipMessage):
    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not is_token(parts[1]):
        raise ValueError(f"malformed CSeq {value!r}")
    number = int(parts[0])
    if number > MAX_CSEQ:
        raise ValueError(f"CSeq number {number} is larger than 2**32-1")
    return number, parts[1]


def parse_message(data: bytes) -> Request | Response:
    """Parse one UDP datagram. Octets after Content-Length are ignored (RFC 3261 §18.3)."""
    head, body = _split_head(data)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = _unfold(text)
    if not lines:
        raise SipParseError("empty message")
    message, start_error = _parse_start_line(lines[0])
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            raise SipParseError(f"malformed header line {line[:40]!r}", message)
        message.headers.add(name, value.strip(" \t"))
    message.body = _frame_body(message, body)
    if start_error is not None:
        start_error.message = message  # headers are known now, so the error can be answered
        raise start_error
    _validate(message)
    return message


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    data = data.lstrip(b"\r\n")  # keep-alive CRLFs before a message are allowed (RFC 3261 §7.5)
    index = data.find(b"\r\n\r\n")
    if index >= 0:
        return data[:index], data[index + 4 :]
    index = data.find(b"\n\n")  # tolerate bare-LF senders
    if index >= 0:
        return data[:index], data[index + 2 :]
    raise SipParseError("no empty line after the headers (truncated message)")


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip(" \t") + " " + raw.strip(" \t")
        else:
            lines.append(raw)
    return lines


def _parse_start_line(line: str) -> tuple[Request | Response, SipParseError | None]:
    """Parse the start line. A request line that is broken but recognisable still yields a Request, with the
    error returned beside it, so the caller can frame the headers and answer 400/505 instead of dropping."""
    if line.startswith("SIP/"):
        parts = line.split(" ", 2)
        if len(parts) < 2 or len(parts[1]) != 3 or not parts[1].isdigit():
            raise SipParseError(f"malformed status line {line[:60]!r}")
        if parts[0] != SIP_VERSION:
            raise SipParseError(f"unsupported version {parts[0]!r}")
        status = int(parts[1])
        if not 100 <= status <= 699:
            raise SipParseError(f"status code {status} out of range")
        return Response(status=status, reason=parts[2] if len(parts) > 2 else ""), None
    parts = line.split(" ")
    method = parts[0]
    if not is_token(method):
        raise SipParseError(f"invalid method {method!r}")
    if len(parts) != 3 or not all(parts):
        words = line.split()
        request = Request(method=method, uri=words[1] if len(words) > 1 else "", version=words[-1])
        return request, SipParseError(f"malformed request line {line[:80]!r}")
    _, uri, version = parts
    request = Request(method=method, uri=uri, version=version)
    if version.upper() != SIP_VERSION:
        if version.upper().startswith("SIP/"):
            return request, SipParseError(f"SIP version {version!r} not supported", status=505)
        return request, SipParseError(f"malformed SIP version {version!r}")
    return request, None


def _frame_body(message: SipMessage, rest: bytes) -> bytes:
    lengths = message.headers.get_all("Content-Length")
    if not lengths:
        return rest  # UDP: the datagram ends the body (RFC 3261 §18.3)
    values = {v.strip() for v in lengths}
    if len(values) != 1:
        raise SipParseError("conflicting Content-Length values", message)
    value = values.pop()
    if not value.isdigit():
        raise SipParseError(f"invalid Content-Length {value!r}", message)
    length = int(value)
    if length > len(rest):
        raise SipParseError(f"Content-Length {length} is larger than the body ({len(rest)} bytes)", message)
    return rest[:length]


def _validate(message: Request | Response) -> None:
    headers = message.headers
    for name in ("Via", "Call-ID", "From", "To", "CSeq"):
        if name not in headers:
            raise SipParseError(f"missing {name} header", message)
    for name in SINGLE_HEADERS:
        if len(headers.get_all(name)) > 1:
            raise SipParseError(f"more than one {name} header", message)
    try:
        for name in LIST_HEADERS:
            for line in headers.get_all(name):
                split_outside_quotes(line, ",")
        if not message.vias:
            raise ValueError("empty Via")
        _number, method = message.cseq
        message.from_address  # noqa: B018 - parse to validate
        message.to_address  # noqa: B018
        if isinstance(message, Request):
            if method != message.method:
                raise ValueError(f"CSeq method {method} does not match request method {message.method}")
            max_forwards = headers.get("Max-Forwards")
            if max_forwards is not None and (not max_forwards.isdigit() or int(max_forwards) > 255):
                raise ValueError(f"invalid Max-Forwards {max_forwards!r}")
            uri = message.parsed_uri
            if isinstance(uri, SipUri) and uri.headers is not None:
                raise ValueError("Request-URI must not contain headers")
            message.contacts()
    except (ValueError, UriError) as exc:
        raise SipParseError(str(exc), message) from None


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response that copies Via, From, To, Call-ID and CSeq from the request (RFC 3261 §8.2.6.2).

    Raw values are copied, so this works for requests that failed validation too.
    """
    response = Response(status=status, reason=reason or REASONS.get(status, "Unknown"))
    for name, value in request.headers:
        if name in ("Via", "From", "Call-ID", "CSeq"):
            response.headers.add(name, value)
        elif name == "To":
            if to_tag and status != 100 and ";tag=" not in value.replace(" ", "").lower():
                value = f"{value};tag={to_tag}"
            response.headers.add(name, value)
    return response
