"""Registering hotline with an upstream registrar/PBX (RFC 3261 §10), answering digest challenges.

Sans-IO like the rest of telephony.sip: `start()` queues a REGISTER through the core; responses arrive via
`on_response`; the asyncio endpoint re-registers before `expires` runs out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telephony.sip.auth import digest_response, parse_challenge
from telephony.sip.dialog import new_call_id, new_tag
from telephony.sip.message import Request, Response
from telephony.sip.transaction import Address, new_branch

if TYPE_CHECKING:
    from telephony.sip.useragent import UserAgentCore

log = logging.getLogger(__name__)


@dataclass
class RegistrationChanged:
    registration: Registration
    registered: bool
    status: int
    expires: int


class Registration:
    def __init__(
        self,
        core: UserAgentCore,
        *,
        registrar: Address,
        aor: str,
        username: str | None = None,
        password: str | None = None,
        expires: int = 300,
    ) -> None:
        self.core = core
        self.registrar = registrar
        self.aor = aor  # sip:hotline@pbx.example.com
        self.username = username
        self.password = password
        self.expires = expires
        self.call_id = new_call_id(core.local_ip_for(registrar))
        self.tag = new_tag()
        self.cseq = 0
        self.registered = False
        self.granted_expires = 0
        self._auth_attempts = 0
        self._nc = 0

    def start(self, *, expires: int | None = None, authorization: tuple[str, str] | None = None) -> None:
        """Send a REGISTER (expires=0 unregisters)."""
        self.cseq += 1
        host = self.core.local_ip_for(self.registrar)
        domain = self.aor.split("@", 1)[1] if "@" in self.aor else self.aor.split(":", 1)[1]
        request = Request(method="REGISTER", uri=f"sip:{domain}")
        request.headers.add("Via", f"SIP/2.0/UDP {host}:{self.core.local[1]};branch={new_branch()};rport")
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", f"<{self.aor}>;tag={self.tag}")
        request.headers.add("To", f"<{self.aor}>")
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{self.cseq} REGISTER")
        request.headers.add("Contact", self.core.contact_for(self.registrar))
        request.headers.add("Expires", str(self.expires if expires is None else expires))
        request.headers.add("User-Agent", self.core.user_agent)
        if authorization is not None:
            request.headers.add(*authorization)
        self._last_expires = self.expires if expires is None else expires
        self.core._start_client(request, self.registrar, self, "register")

    def on_response(self, response: Response, request: Request) -> None:
        status = response.status
        if status < 200:
            return
        if status in (401, 407) and self.username and self.password and self._auth_attempts < 2:
            header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            try:
                challenge = parse_challenge(response.headers.get(header) or "")
            except ValueError as exc:
                log.warning("registrar challenge not usable: %s", exc)
            else:
                self._auth_attempts += 1
                self._nc += 1
                value = digest_response(
                    challenge,
                    method="REGISTER",
                    uri=request.uri,
                    username=self.username,
                    password=self.password,
                    nc=self._nc,
                )
                name = "Authorization" if status == 401 else "Proxy-Authorization"
                self.start(expires=self._last_expires, authorization=(name, value))
                return
        self._auth_attempts = 0
        if 200 <= status < 300:
            self.granted_expires = self._granted(response)
            self.registered = self.granted_expires > 0
        else:
            self.registered = False
            log.warning("registration of %s refused: %s %s", self.aor, status, response.reason)
        self.core.events.append(RegistrationChanged(self, self.registered, status, self.granted_expires))

    def on_timeout(self) -> None:
        self.registered = False
        self.core.events.append(RegistrationChanged(self, False, 408, 0))

    def _granted(self, response: Response) -> int:
        for contact in response.contacts():
            value = contact.params.get("expires")
            if value and value.isdigit():
                return int(value)
        value = response.headers.get("Expires")
        return int(value) if value and value.isdigit() else self._last_expires
