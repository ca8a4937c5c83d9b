"""HTTP digest authentication for requests we send (RFC 2617 / RFC 3261 §22), e.g. REGISTER upstream."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from telephony.sip.headers import split_outside_quotes


@dataclass
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = None
    opaque: str | None = None
    stale: bool = False


def parse_challenge(value: str) -> Challenge:
    """Parse a WWW-Authenticate / Proxy-Authenticate value; only the Digest scheme is understood."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"unsupported authentication scheme {scheme!r}")
    params: dict[str, str] = {}
    for item in split_outside_quotes(rest, ","):
        name, _, raw = item.strip().partition("=")
        params[name.strip().lower()] = raw.strip().strip('"')
    if "nonce" not in params or "realm" not in params:
        raise ValueError("digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() not in ("MD5", "MD5-SESS"):
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=algorithm,
        qop="auth" if "auth" in qops else None,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_response(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization header value answering `challenge`."""
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = _md5(f"{username}:{challenge.realm}:{password}")
    if challenge.algorithm.upper() == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = _md5(f"{method}:{uri}")
    nc_text = f"{nc:08x}"
    if challenge.qop:
        response = _md5(f"{ha1}:{challenge.nonce}:{nc_text}:{cnonce}:{challenge.qop}:{ha2}")
    else:
        response = _md5(f"{ha1}:{challenge.nonce}:{ha2}")
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.qop:
        parts += [f"qop={challenge.qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
