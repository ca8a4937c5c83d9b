"""SIP URIs (RFC 3261 §19.1) and name-addr / addr-spec header values (From, To, Contact, Route)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from telephony.sip.headers import format_params, is_token, parse_params, split_outside_quotes

SIP_SCHEMES = frozenset({"sip", "sips"})
_WHITESPACE = frozenset(" \t\r\n")


class UriError(ValueError):
    """A URI or address that does not follow the grammar."""


@dataclass
class SipUri:
    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %HEX escapes decoded once (never recursively; RFC 4475 esc01)."""
        return None if self.user is None else unquote(self.user)

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        text = f"{self.scheme}:{userinfo}{self.host_port}{format_params(self.params)}"
        if self.headers:
            text += "?" + self.headers
        return text


def parse_uri(text: str) -> SipUri | str:
    """Parse a sip/sips URI; any other absolute URI (tel:, mailto:, ...) is returned as its text.

    Raises UriError for whitespace, a missing scheme or a malformed sip URI.
    """
    if not text or any(ch in _WHITESPACE for ch in text):
        raise UriError(f"URI {text!r} is empty or contains whitespace")
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isalpha():
        raise UriError(f"URI {text!r} has no scheme")
    if not all(ch.isalnum() or ch in "+-." for ch in scheme):
        raise UriError(f"URI {text!r} has an invalid scheme")
    if scheme.lower() not in SIP_SCHEMES:
        return text
    # '@' appears unescaped only between userinfo and host, while the user part may hold ';', '?' and ','
    # (RFC 4475 semiuri, intmeth): so split there first, then take headers and parameters off the host part.
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, hostpart = rest[:at], rest[at + 1 :]
        if not userinfo:
            raise UriError(f"URI {text!r} has an empty user part")
        user, pcolon, pw = userinfo.partition(":")
        password = pw if pcolon else None
    else:
        hostpart = rest
    hostpart, question, headers = hostpart.partition("?")
    hostport, semicolon, param_text = hostpart.partition(";")
    params = parse_params(param_text) if semicolon else {}
    host, port = _split_host_port(hostport, text)
    return SipUri(
        scheme=scheme.lower(),
        host=host,
        user=user,
        password=password,
        port=port,
        params=params,
        headers=headers if question else None,
    )


def _split_host_port(hostport: str, whole: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise UriError(f"URI {whole!r} has an unterminated IPv6 reference")
        host, tail = hostport[1:end], hostport[end + 1 :]
        if tail and not tail.startswith(":"):
            raise UriError(f"URI {whole!r} has junk after the IPv6 host")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = hostport.partition(":")
    if not host or not all(ch.isalnum() or ch in "-._:" for ch in host):
        raise UriError(f"URI {whole!r} has an invalid host {host!r}")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UriError(f"URI {whole!r} has an invalid port {port_text!r}")
        port = int(port_text)
    return host.lower(), port


@dataclass
class Address:
    """A name-addr or addr-spec with header parameters (tag, expires, q, ...)."""

    uri: SipUri | str
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        name = f"{_quote(self.display_name)} " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


def _quote(display: str) -> str:
    escaped = display.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def parse_address(text: str) -> Address:
    """Parse `"Name" <uri>;params`, `Name <uri>;params` or `uri;params` (addr-spec).

    In the addr-spec form, parameters after the URI belong to the header, not the URI (RFC 3261 §20.10), and
    the URI must not contain ',', '?' or ';' ambiguity — so an addr-spec with URI headers is rejected (RFC 4475
    regbadct).
    """
    text = text.strip()
    if not text:
        raise UriError("empty address")
    display: str | None = None
    if text.startswith('"'):
        end = _closing_quote(text)
        display = _unescape(text[1:end])
        text = text[end + 1 :].lstrip()
        if not text.startswith("<"):
            raise UriError("quoted display name must be followed by <URI>")
    lt = text.find("<")
    if lt >= 0:
        token_part = text[:lt].strip()
        if token_part:
            words = token_part.split()
            if not all(is_token(word) for word in words):
                raise UriError(f"display name {token_part!r} must be quoted")
            display = " ".join(words)
        gt = text.find(">", lt)
        if gt < 0:
            raise UriError("unterminated <URI>")
        uri_text = text[lt + 1 : gt]
        rest = text[gt + 1 :].strip()
        if rest and not rest.startswith(";"):
            raise UriError(f"unexpected text after URI: {rest!r}")
        params = parse_params(rest[1:]) if rest else {}
    else:
        uri_text, semicolon, param_text = text.partition(";")
        if any(ch in _WHITESPACE for ch in uri_text.strip()) or '"' in uri_text:
            raise UriError(f"address {text!r} is not a valid addr-spec")
        uri_text = uri_text.strip()
        if "?" in uri_text or "," in uri_text:
            raise UriError("an addr-spec with URI headers must be enclosed in <>")
        params = parse_params(param_text) if semicolon else {}
    return Address(uri=parse_uri(uri_text), display_name=display, params=params)


def _closing_quote(text: str) -> int:
    index = 1
    while index < len(text):
        ch = text[index]
        if ch == "\\":
            index += 2
            continue
        if ch == '"':
            return index
        index += 1
    raise UriError("unterminated quoted string in display name")


def _unescape(quoted: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in quoted:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def parse_address_list(text: str) -> list[Address]:
    """Contact/Route style comma-separated addresses; `*` is returned as an empty list by the caller."""
    return [parse_address(part) for part in split_outside_quotes(text, ",")]
