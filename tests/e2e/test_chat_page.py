"""The customer chat page (GET /chat) in headless Chromium against a real `hotline serve`.

A person opens the page, says who they are, asks a question the demo knowledge base answers, asks for a
person, and sees the agent's reply arrive over the page's WebSocket without reloading. The agent side is the
plain agent API with the admin token. Chromium is Debian's (/usr/bin/chromium) driven by the playwright
package; nothing is downloaded at test time (`playwright install` is never run).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_client import agent_reply, messages, start_chat
from harness import HotlineServer
from playwright.sync_api import expect, sync_playwright  # the test extra; a missing one fails, as sipp would

pytestmark = pytest.mark.e2e


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
STARTUP_TIMEOUT = 120.0  # start-up imports the demo knowledge base and builds the bot's index first
UI_TIMEOUT_MS = 20_000  # how long the page may take to show something (waiting, not a measured assertion)

QUESTION = "How do I set up my voicemail?"  # answered confidently by the demo KB's voicemail-setup entry
ENTRY_ID = "voicemail-setup"
AGENT = "Sam"
AGENT_TEXT = "Hello Ann, this is Sam. I can reset your voicemail PIN for you right now."


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"{CHROMIUM} not found; install Debian's chromium (scripts/install.sh --test)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    context.close()


def _status_event(payload: str | bytes) -> str | None:
    """The status of a WebSocket `conversation` event, None for any other frame."""
    event = json.loads(payload)
    return event["conversation"]["status"] if event.get("type") == "conversation" else None


def _admin_get(server: HotlineServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}{path}", params=params, headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10.0,
    )  # fmt: skip


def _listed(server: HotlineServer, status: str) -> list[str]:
    response = _admin_get(server, "/api/v1/conversations", status=status, channel="webchat")
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


def _say(page: Any, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def _ws_probe(page: Any, path: str, until: str | None = None) -> dict[str, Any]:
    """Open a WebSocket from the page; the frames it got, and its close code (None when `until` was seen first)."""
    return page.evaluate(
        """([path, until]) => new Promise((resolve) => {
            const frames = [];
            const socket = new WebSocket(`ws://${location.host}${path}`);
            socket.onmessage = (event) => {
                frames.push(event.data);
                if (until !== null && event.data.includes(until)) {
                    socket.onclose = null;
                    socket.close();
                    resolve({code: null, frames});
                }
            };
            socket.onclose = (event) => resolve({code: event.code, frames});
        })""",
        [path, until],
    )


def test_chat_page_bot_answer_handoff_and_live_agent_reply(
    start_hotline: Callable[..., HotlineServer], page: Any
) -> None:
    server = start_hotline(startup_timeout=STARTUP_TIMEOUT)
    expected = _admin_get(server, f"/api/v1/kb/entries/{ENTRY_ID}")
    assert expected.status_code == 200, f"the demo knowledge base has no {ENTRY_ID}: {expected.text}"
    answer = expected.json()["answer"]

    navigations: list[str] = []
    page.goto(f"{server.base_url}/chat")
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    expect(page.locator("#status")).to_have_text("not connected")

    page.get_by_label("Name").fill("Ann Caller")
    page.get_by_label("Email").fill("ann.caller@example.com")
    page.get_by_label("Phone").fill("+44 7700 900123")
    with (
        page.expect_websocket() as socket_info,
        page.expect_response(
            lambda r: r.url.endswith("/api/v1/chat/conversations") and r.request.method == "POST"
        ) as started_info,
    ):
        page.get_by_role("button", name="Start chat", exact=True).click()
    started = started_info.value
    socket = socket_info.value
    assert started.status == 201, started.text()
    chat = started.json()
    conversation_id, token = chat["conversation_id"], chat["token"]

    # what the customer typed into the form identifies them: the number in E.164, the email beside it
    found = _admin_get(server, "/api/v1/contacts", phone="+447700900123").json()
    assert [c["id"] for c in found] == [chat["contact_id"]], found
    assert {"kind": "email", "value": "ann.caller@example.com"} in found[0]["identities"]
    assert found[0]["name"] == "Ann Caller"

    log = page.locator("#log")
    expect(page.locator("#start")).to_be_hidden()
    expect(log.locator(".msg.bot").first).to_contain_text(chat["messages"][0]["text"])
    expect(page.locator("#status")).to_have_attribute("data-status", "bot")

    # a question the knowledge base answers: the entry's answer, word for word
    _say(page, QUESTION)
    expect(log.locator(".msg.caller")).to_have_count(1)
    expect(log.locator(".msg.caller")).to_contain_text(QUESTION)
    expect(log.locator(".msg.bot").last).to_contain_text(answer)
    expect(log.locator(".msg.bot").last).to_have_attribute("data-kind", "answer")

    # asking for a person: the handoff is shown and the header says we are waiting
    # (the page's socket carries the status change too: it is live before the agent writes)
    with socket.expect_event("framereceived", predicate=lambda payload: _status_event(payload) == "queued"):
        _say(page, "agent")
    expect(page.locator("#status")).to_have_attribute("data-status", "queued")
    expect(page.locator("#status")).to_contain_text("waiting")
    detail = _admin_get(server, f"/api/v1/conversations/{conversation_id}").json()
    assert detail["status"] == "queued" and detail["queue"], detail
    handoff_notes = [m for m in messages(detail, sender="system") if (m["meta"] or {}).get("handoff")]
    assert len(handoff_notes) == 1, detail["messages"]
    handoff_reply = next(m for m in messages(detail, sender="bot") if m["id"] > handoff_notes[0]["id"])
    expect(log.locator(".msg.bot").last).to_contain_text(handoff_reply["text"])
    assert "agent" in handoff_reply["text"].lower()
    assert [m["text"] for m in messages(detail, kind="answer")] == [answer]
    assert messages(detail, kind="answer")[0]["meta"]["entry_id"] == ENTRY_ID

    # the agents' queue lists it
    assert conversation_id in _listed(server, "queued")
    assert conversation_id not in _listed(server, "agent")
    assert f"/api/v1/chat/conversations/{conversation_id}/ws?token=" in socket.url

    page.evaluate("() => { window.__sameDocument = 'before the agent replied'; }")
    navigated_before = len(navigations)
    with socket.expect_event("framereceived", predicate=lambda payload: AGENT_TEXT in payload) as frame_info:
        sent = agent_reply(server, conversation_id, AGENT_TEXT, agent=AGENT)
    pushed = json.loads(frame_info.value)
    assert pushed["type"] == "message" and pushed["message"]["id"] == sent["id"], pushed

    agent_bubble = log.locator(".msg.agent")
    expect(agent_bubble).to_have_count(1)
    expect(agent_bubble).to_contain_text(AGENT_TEXT)
    expect(agent_bubble.locator(".who")).to_have_text(AGENT)
    expect(page.locator("#status")).to_have_attribute("data-status", "agent")
    # delivered over the WebSocket into the same document: no reload, no navigation
    assert page.evaluate("() => window.__sameDocument") == "before the agent replied"
    assert len(navigations) == navigated_before

    assert conversation_id in _listed(server, "agent")
    assert conversation_id not in _listed(server, "queued")
    agent_view = _ws_probe(page, f"/api/v1/conversations/{conversation_id}/ws?token={server.admin_token}", AGENT_TEXT)
    seen = [json.loads(frame)["message"]["text"] for frame in agent_view["frames"]]
    assert seen[1:3] == [QUESTION, answer] and seen[-1] == AGENT_TEXT, seen

    # the customer's token opens this chat and nothing else
    other = start_chat(server, name="Bob Other", email="bob.other@example.com")
    mine = {"Authorization": f"Bearer {token}"}
    base = f"{server.base_url}/api/v1/chat/conversations"
    assert httpx.get(f"{base}/{conversation_id}/messages", headers=mine, timeout=10).status_code == 200
    for method, url, body in (
        ("GET", f"{base}/{other.conversation_id}/messages", None),
        ("POST", f"{base}/{other.conversation_id}/messages", {"text": "let me in"}),
        ("POST", f"{base}/{other.conversation_id}/close", None),
    ):
        denied = httpx.request(method, url, json=body, headers=mine, timeout=10)
        assert denied.status_code == 401, (method, url, denied.status_code, denied.text)
    assert httpx.get(f"{base}/{other.conversation_id}/messages", timeout=10).status_code == 401  # no token at all
    # nor the other chat's live feed, nor the agent API
    for path in (
        f"/api/v1/chat/conversations/{other.conversation_id}/ws?token={token}",
        f"/api/v1/conversations/{conversation_id}/ws?token={token}",
        "/api/v1/conversations/ws?token=" + token,
    ):
        assert _ws_probe(page, path) == {"code": 4401, "frames": []}, path
    assert httpx.get(f"{server.base_url}/api/v1/conversations", headers=mine, timeout=10).status_code == 401
    other_detail = _admin_get(server, f"/api/v1/conversations/{other.conversation_id}").json()
    assert [m["sender"] for m in other_detail["messages"]] == ["bot"], "the denied POST must not have been stored"
    expect(log).not_to_contain_text("let me in")

    # the customer ends the chat: an agent answered, so it was transferred
    page.get_by_role("button", name="End", exact=True).click()
    expect(page.locator("#status")).to_have_attribute("data-status", "closed")
    expect(page.get_by_label("Message")).to_be_disabled()
    final = _admin_get(server, f"/api/v1/conversations/{conversation_id}").json()
    assert final["status"] == "closed" and final["disposition"] == "transferred" and final["agent"] == AGENT
