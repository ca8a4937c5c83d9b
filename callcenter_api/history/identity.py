"""Identity normalisation: the same customer must produce the same key on every channel.

Phone numbers become E.164 (libphonenumber via `phonenumbers`), so ``07700 900123`` dialled in the UK and
``+44 7700 900123`` typed into a chat form are one identity. A national number needs the deployment's region
(`--phone-region GB`); without one only international numbers are phone numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers

IdentityKind = Literal["phone", "email", "chat", "sip"]
KINDS: tuple[IdentityKind, ...] = ("phone", "email", "chat", "sip")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InvalidIdentity(ValueError):
    """The value is not a usable identity of its kind (the message says why)."""


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def normalize_phone(raw: str, region: str | None = None) -> str:
    """E.164 for anything libphonenumber considers a possible number; `InvalidIdentity` otherwise."""
    text = raw.strip()
    if not text or len(text) > 64:
        raise InvalidIdentity(f"{raw!r} is not a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region or text.startswith("+") else " (national numbers need a region: --phone-region)"
        raise InvalidIdentity(f"{raw!r} is not a phone number{hint}") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, raw: str, *, region: str | None = None) -> Identity:
    """The canonical form of one identity, or `InvalidIdentity` naming what is wrong."""
    if not isinstance(raw, str):
        raise InvalidIdentity(f"{kind} must be a string")
    value = raw.strip()
    if kind == "phone":
        return Identity("phone", normalize_phone(value, region))
    if kind == "email":
        value = value.lower()
        if len(value) > 320 or not _EMAIL.fullmatch(value):
            raise InvalidIdentity(f"{raw!r} is not an email address")
        return Identity("email", value)
    if kind in ("chat", "sip"):
        if not value or len(value) > 320 or any(c.isspace() for c in value):
            raise InvalidIdentity(f"{kind} id must be 1-320 characters without spaces")
        return Identity(kind, value if kind == "chat" else value.lower())  # type: ignore[arg-type]
    raise InvalidIdentity(f"unknown identity kind {kind!r} (one of {', '.join(KINDS)})")


def caller_identity(caller_number: str | None, from_uri: str, *, region: str | None = None) -> Identity | None:
    """Who is calling, from the SIP From header: a phone number when it is one, else the SIP user@host."""
    if caller_number:
        try:
            return Identity("phone", normalize_phone(caller_number, region))
        except InvalidIdentity:
            pass
    uri = from_uri.strip()
    if "<" in uri and ">" in uri:
        uri = uri[uri.index("<") + 1 : uri.index(">")]
    scheme, _, rest = uri.partition(":")
    if scheme.lower() not in ("sip", "sips"):
        return None
    address = re.split(r"[;?]", rest, maxsplit=1)[0].strip().lower()
    if "@" not in address or address.startswith("@"):
        return None
    user, _, host = address.partition("@")
    if user in ("anonymous", "restricted", "unknown") or not host:
        return None  # withheld numbers must not all become one customer
    return Identity("sip", address[:320])
