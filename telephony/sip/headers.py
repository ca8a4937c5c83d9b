"""Header names, the header list, and the small grammar pieces many headers share.

SIP headers are case-insensitive, have compact forms, may repeat, and may pack several values into one
line separated by commas. We keep the raw values in wire order (so responses can copy them byte for byte)
and split or parse them only when asked.
"""

from __future__ import annotations

from collections.abc import Iterator

COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_WELL_KNOWN = [
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "Session-Expires",
    "RSeq",
    "RAck",
    "P-Asserted-Identity",
    "Reason",
]
_CANONICAL: dict[str, str] = {name.lower(): name for name in _WELL_KNOWN}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1). Others (auth, Date, From, ...) may
# contain commas as data and must never be split.
LIST_HEADERS = frozenset(
    {
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "Content-Encoding",
        "Content-Language",
        "In-Reply-To",
        "Warning",
        "Alert-Info",
        "Call-Info",
        "Error-Info",
    }
)

# Headers that must appear at most once in a request (RFC 3261 §7.3 and the torture test multi01).
SINGLE_HEADERS = frozenset({"Call-ID", "From", "To", "CSeq", "Max-Forwards", "Content-Type"})

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def canonical_name(name: str) -> str:
    """Map any spelling or compact form of a header name to one canonical spelling."""
    if len(name) == 1:
        full = COMPACT_FORMS.get(name.lower())
        if full:
            return full
    return _CANONICAL.get(name.lower(), name)


def is_token(text: str) -> bool:
    return bool(text) and all(ch in TOKEN_CHARS for ch in text)


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator` except inside quoted strings and <...>, honouring backslash escapes."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            current.append(ch)
            continue
        if ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == separator and not in_angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if in_quotes:
        raise ValueError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def parse_params(text: str, *, strict: bool = True) -> dict[str, str | None]:
    """Parse `;name=value;flag` generic parameters (the text after the first ';').

    Parameter names are case-insensitive; values keep their case. Empty parameters (`;;`) are a syntax error
    in strict mode (torture test badinv01).
    """
    params: dict[str, str | None] = {}
    if not text.strip():
        if strict:
            raise ValueError("empty parameter")
        return params
    for raw in split_outside_quotes(text, ";"):
        item = raw.strip()
        if not item:
            if strict:
                raise ValueError("empty parameter")
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not is_token(name):
            raise ValueError(f"bad parameter name {name!r}")
        if sep:
            value = value.strip()
            if not value:
                raise ValueError(f"parameter {name!r} has an empty value")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


class Headers:
    """An ordered multi-map of header fields with canonical names.

    Values are stored raw (unfolded, trimmed). `values(name)` splits list headers on commas.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in (items or [])]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)
        return any(n == key for n, _ in self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every raw line of this header, in order (not split on commas)."""
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def values(self, name: str) -> list[str]:
        """Every value of a list header, split on commas and trimmed, in order."""
        out: list[str] = []
        for line in self.get_all(name):
            for part in split_outside_quotes(line, ","):
                out.append(part.strip())
        return out

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace all occurrences with one value, keeping the position of the first."""
        key = canonical_name(name)
        for index, (n, _) in enumerate(self._items):
            if n == key:
                self._items[index] = (key, value)
                self._items = [item for i, item in enumerate(self._items) if i <= index or item[0] != key]
                return
        self._items.append((key, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [item for item in self._items if item[0] != key]

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        return clone
