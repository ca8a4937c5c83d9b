"""The endpoint's sans-IO core learns the time only from datagrams and timers. Actions we start
ourselves (a ring timeout's CANCEL) must arm their timers from the real clock, or a CANCEL sent after
seconds of quiet is retransmitted at once — a strict peer (sipp) treats the copy as a new CANCEL and
fails the call. Real sockets on loopback; the peer is a plain UDP socket answering by hand."""

from __future__ import annotations

import asyncio
import socket

import pytest

from telephony.endpoint import CallFailed, SipEndpoint

RING_SECONDS = 1.5


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {message!r}")


def _reply(request: str, status: str, to_tag: str = "peer1") -> bytes:
    headers = [f"SIP/2.0 {status}"]
    for name in ("Via", "From", "Call-ID", "CSeq"):
        headers.append(f"{name}: {_header(request, name)}")
    headers.append(f"To: {_header(request, 'To')};tag={to_tag}")
    headers.append("Content-Length: 0")
    return ("\r\n".join(headers) + "\r\n\r\n").encode()


async def test_a_cancel_after_a_quiet_ring_is_sent_once() -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    port = peer.getsockname()[1]
    endpoint = SipEndpoint(host="127.0.0.1", port=0, rtp_ports=(41000, 41100))
    await endpoint.start()
    cancels: list[float] = []
    try:
        dial = asyncio.ensure_future(endpoint.dial(f"sip:agent@127.0.0.1:{port}", timeout=RING_SECONDS))
        data, source = await asyncio.wait_for(loop.sock_recvfrom(peer, 65535), 5)
        invite = data.decode()
        assert invite.startswith("INVITE "), invite
        peer.sendto(_reply(invite, "180 Ringing"), source)  # then silence until the dial times out
        with pytest.raises((TimeoutError, CallFailed)):
            await dial
        deadline = loop.time() + 1.0  # Timer E is 500 ms: one CANCEL in the first 400 ms, not two
        while loop.time() < deadline:
            try:
                data, source = await asyncio.wait_for(loop.sock_recvfrom(peer, 65535), deadline - loop.time())
            except TimeoutError:
                break
            message = data.decode()
            if message.startswith("CANCEL "):
                cancels.append(loop.time())
                if len(cancels) == 1:
                    await asyncio.sleep(0.3)  # a slow peer: the 200 comes after 300 ms
                    peer.sendto(_reply(message, "200 OK"), source)
                    peer.sendto(_reply(invite, "487 Request Terminated"), source)
    finally:
        await endpoint.close(grace=0.5)
        peer.close()
    assert len(cancels) == 1, f"CANCEL sent {len(cancels)} times: {[round(t - cancels[0], 3) for t in cancels]}"
