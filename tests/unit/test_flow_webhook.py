"""The `http` node against a real HTTP server on loopback: what the server receives, which exit the flow
takes for each kind of answer, and that waiting for a webhook never stalls the event loop (the media path
of every other call runs on it).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ivr_flows.channel import Heard, ListenRequest
from ivr_flows.loader import parse_flow
from ivr_flows.runner import FlowRunner, RunResult
from ivr_flows.simulator import TextChannel

ACCOUNT = {"account": {"balance": 12.5, "owner": {"name": "Ann"}}, "items": [{"id": "a"}, {"id": "b"}]}
SLOW_SECONDS = 1.5


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    url: str
    requests: list[Request] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server_state: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server_state.requests.append(
            Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
        )
        if parts.path == "/json":
            self._send(200, json.dumps(ACCOUNT).encode())
        elif parts.path == "/fail":
            self._send(500, b'{"error": "boom"}')
        elif parts.path == "/text":
            self._send(200, b"OK fine", "text/plain")
        elif parts.path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, json.dumps(ACCOUNT).encode())
        elif parts.path == "/trickle":  # headers at once, then one byte of body every 0.3 s
            payload = b'{"a": 1}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            for index in range(len(payload)):
                time.sleep(0.3)
                self.wfile.write(payload[index : index + 1])
        else:
            self._send(404, b'{"error": "not found"}')

    do_GET = do_POST = do_PUT = _handle


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    _Handler.server_state = state
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _fresh(server: Server) -> None:
    server.requests.clear()


def _no_input(request: ListenRequest) -> Heard:
    raise AssertionError("these flows never listen")


ALL_EXITS = "on: {ok: ok, error: failed, timeout: slow}"


def http_flow(http: str, *, exits: str = ALL_EXITS, next_: str = "") -> str:
    return f"""
flow: hook
start: call
nodes:
  call:
    http:
{http}
      {exits}
    {next_}
  ok: {{say: "ok"}}
  failed: {{say: "failed"}}
  slow: {{say: "slow"}}
  after: {{say: "after"}}
"""


async def run(text: str, **variables: Any) -> RunResult:
    flow, _ = parse_flow(text)
    channel = TextChannel(_no_input, caller="+441632960000", conversation_id="call-42")
    return await FlowRunner(flow, channel, variables=variables).run()


def free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- ok ----------------------------------------------------------------------------------------------
async def test_json_ok_maps_variables_and_sends_the_templated_request(server: Server) -> None:
    result = await run(
        http_flow("""
      method: POST
      url: "{{ api }}/json?who={{ caller.number | urlencode }}"
      headers: {Authorization: "Bearer {{ token }}", X-Call-Id: "{{ call.id }}"}
      json:
        account: "{{ account }}"
        nested: {language: "{{ language }}", list: ["{{ account }}", 5, true, null]}
      timeout: 2
      store: lookup
      map:
        balance: account.balance
        owner: account.owner.name
        second: items.1.id
        missing: account.nope"""),
        api=server.url, token="s3cret", account="123456",
    )  # fmt: skip
    assert (result.outcome, result.path) == ("ended", ["call", "ok"])
    [request] = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/json", {"who": ["+441632960000"]})
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Call-Id"] == "call-42"
    assert request.headers["Content-Type"] == "application/json"
    expected_body = {"account": "123456", "nested": {"language": "en", "list": ["123456", 5, True, None]}}
    assert json.loads(request.body) == expected_body
    v = result.variables
    assert (v["balance"], v["owner"], v["second"], v["missing"]) == (12.5, "Ann", "b", None)
    assert v["lookup"] == {"status": 200, "json": ACCOUNT, "text": json.dumps(ACCOUNT), "error": None}


async def test_get_sends_no_body_and_ok_falls_back_to_next(server: Server) -> None:
    result = await run(
        http_flow('      method: GET\n      url: "{{ api }}/json"', exits="on: {}", next_="next: after"),
        api=server.url,
    )
    assert result.path == ["call", "after"]
    [request] = server.requests
    assert (request.method, request.body) == ("GET", b"")
    assert result.variables["http"]["json"] == ACCOUNT  # the default store


async def test_non_json_without_map_is_ok_with_text(server: Server) -> None:
    result = await run(http_flow('      url: "{{ api }}/text"'), api=server.url)
    assert result.path == ["call", "ok"]
    assert result.variables["http"] == {"status": 200, "json": None, "text": "OK fine", "error": None}


# ---- error --------------------------------------------------------------------------------------------
async def test_server_error_takes_error(server: Server) -> None:
    text = http_flow('      url: "{{ api }}/fail"\n      map: {balance: account.balance}')
    result = await run(text, api=server.url)
    assert result.path == ["call", "failed"]
    assert result.variables["http"]["status"] == 500
    assert result.variables["http"]["error"] == "HTTP 500"
    assert "balance" not in result.variables  # a failed lookup maps nothing (and wipes nothing)


async def test_non_json_with_map_is_an_error(server: Server) -> None:
    text = http_flow('      url: "{{ api }}/text"\n      map: {balance: account.balance}')
    result = await run(text, api=server.url)
    assert result.path == ["call", "failed"]
    assert result.variables["http"]["error"] == "response is not JSON"
    assert result.variables["http"]["status"] == 200


async def test_connection_refused_takes_error() -> None:
    result = await run(http_flow(f'      url: "http://127.0.0.1:{free_closed_port()}/json"'))
    assert result.path == ["call", "failed"]
    assert result.variables["http"]["status"] is None
    assert result.variables["http"]["error"]


# ---- timeout ------------------------------------------------------------------------------------------
async def test_slow_response_takes_timeout(server: Server) -> None:
    started = time.monotonic()
    result = await run(http_flow('      url: "{{ api }}/slow"\n      timeout: 0.3'), api=server.url)
    elapsed = time.monotonic() - started
    assert result.path == ["call", "slow"]
    assert result.variables["http"] == {"status": None, "json": None, "text": "", "error": "timeout"}
    assert 0.25 <= elapsed < SLOW_SECONDS


async def test_timeout_falls_back_to_error_then_next(server: Server) -> None:
    text = http_flow('      url: "{{ api }}/slow"\n      timeout: 0.3', exits="on: {ok: ok, error: failed}")
    assert (await run(text, api=server.url)).path == ["call", "failed"]
    slow = '      url: "{{ api }}/slow"\n      timeout: 0.3'
    text = http_flow(slow, exits="on: {ok: ok}", next_="next: after")
    assert (await run(text, api=server.url)).path == ["call", "after"]


@pytest.mark.parametrize(("path", "timeout", "end"), [("/slow", 0.4, "slow"), ("/slow", 3, "ok")])
async def test_the_event_loop_keeps_running(server: Server, path: str, timeout: float, end: str) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        text = http_flow(f'      url: "{{{{ api }}}}{path}"\n      timeout: {timeout}')
        result = await run(text, api=server.url)
    finally:
        task.cancel()
    elapsed = time.monotonic() - started
    assert result.path == ["call", end]
    # a blocked loop would tick once or twice; a free one ticks about every 10 ms of the wait
    assert ticks >= elapsed / 0.01 * 0.25, (ticks, elapsed)


# ---- known webhook bugs ----------------------------------------------------------------------------
async def test_timeout_bounds_the_whole_request(server: Server) -> None:
    started = time.monotonic()
    result = await run(http_flow('      url: "{{ api }}/trickle"\n      timeout: 0.5'), api=server.url)
    elapsed = time.monotonic() - started
    assert result.path == ["call", "slow"]
    assert elapsed < 1.5


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/json", "http://127.0.0.1:99999/json"])
async def test_invalid_url_takes_error(url: str) -> None:
    result = await run(http_flow('      url: "{{ api }}"'), api=url)
    assert result.path == ["call", "failed"]
