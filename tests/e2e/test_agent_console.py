"""The agent console (/agent) and the supervisor live view (/supervisor) in headless Chromium, against a real
`hotline serve` with a call-center file, a real auto-answering baresip agent phone and a sipp caller.

The caller (+447700900456, who chatted with the bot earlier) asks the IVR's bot a question and is put in the
`support` queue. Ann, signed in on /agent and available, gets the offer: the page shows the screen-pop (caller,
queue, IVR path, the IVR transcript with the caller's words and the bot's, the earlier chat), her baresip phone
auto-answers the bridged call, and her words on the phone appear in the live transcript. When the caller hangs
up the console shows the wrap-up form, which posts the disposition. A supervisor then sees the queue's figures
on /supervisor. Chromium is Debian's (/usr/bin/chromium) driven by playwright; nothing is downloaded.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from baresip import BaresipPhone, write_wav
from harness import LOOPBACK, HotlineServer, SippProcess, call_ended, start_sipp, ulaw_encode
from playwright.sync_api import expect, sync_playwright
from test_chat_page import CHROMIUM, CHROMIUM_ARGS
from test_speech import silence, speech

pytestmark = pytest.mark.e2e

STARTUP_TIMEOUT = 120.0  # start-up imports the demo knowledge base and loads the recognizer first
UI_TIMEOUT_MS = 90_000  # generous: the IVR speaks, the bot answers and the agent is rung before the pop
CALLER = "+447700900456"
AGENT_PASSWORD = "ann-secret-password"
SUPERVISOR_PASSWORD = "sue-secret-password"
QUESTION = "where can I find my puk code"
AGENT_WORDS = "hello this is ann from support how can I help you today"

FLOW = """\
flow: helpdesk
language: en
start: menu
defaults: {timeout: 6, retries: {no_input: 0, no_match: 0}}
nodes:
  menu:
    menu:
      prompt: Welcome to the help desk. Ask me your question.
      options:
        "1": {say_as: [billing], next: agent}
      on: {no_input: agent, no_match: agent, question: faq}
  faq:
    ask: {on: {answered: agent, no_answer: agent, handoff: agent}}
  agent:
    transfer:
      queue: support
      prompt: Let me put you through to an adviser.
"""


def callcenter_file(path: Path, agent_uri: str) -> Path:
    path.write_text(
        "queues:\n"
        "  support: {ring_timeout: 30, wrap_up_seconds: 300, service_level_seconds: 60, announce_period: 60}\n"
        "agents:\n"
        f'  - {{name: Ann, sip_uri: "{agent_uri}", languages: [en], username: ann}}\n'
        "users:\n"
        "  - {username: sue, role: supervisor}\n"
    )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found; install Debian's chromium (scripts/install.sh --test)", pytrace=False)
    expect.set_options(timeout=UI_TIMEOUT_MS)  # waiting for the page, never a measured assertion
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    expect.set_options(timeout=5_000)  # playwright's default, for the other modules


def new_page(browser: Any) -> Any:
    page = browser.new_context().new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    return page


def admin(server: HotlineServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=10.0, **kwargs)


def earlier_chat(server: HotlineServer) -> str:
    """The caller chatted with the bot before (same phone number): the screen-pop's history shows it."""
    started = httpx.post(f"{server.base_url}/api/v1/chat/conversations",
                         json={"phone": "+44 7700 900456", "name": "Pat Caller"}, timeout=10.0)  # fmt: skip
    assert started.status_code == 201, started.text
    chat = started.json()
    posted = httpx.post(
        f"{server.base_url}/api/v1/chat/conversations/{chat['conversation_id']}/messages",
        json={"text": "How do I set up my voicemail?"}, headers={"Authorization": f"Bearer {chat['token']}"},
        timeout=10.0,
    )  # fmt: skip
    assert posted.status_code == 200, posted.text
    closed = httpx.post(f"{server.base_url}/api/v1/chat/conversations/{chat['conversation_id']}/close",
                        headers={"Authorization": f"Bearer {chat['token']}"}, timeout=10.0)  # fmt: skip
    assert closed.status_code == 200, closed.text
    return str(chat["conversation_id"])


def hang_up_caller(caller: SippProcess, call_id: str) -> None:
    """An in-dialog INFO (the caller's Call-ID) tells the sipp scenario to hang up now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
        message = (
            f"INFO sip:caller@{LOOPBACK}:{caller.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK-{uuid.uuid4().hex}\r\n"
            f"From: <sip:test@{LOOPBACK}:{port}>;tag=test\r\nTo: <sip:caller@{LOOPBACK}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 900 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), (LOOPBACK, caller.port))


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_test_id("sign-in").click()


def test_agent_console_screen_pop_bridge_live_transcript_and_wrap_up(
    start_hotline: Callable[..., HotlineServer], baresip_phone: Callable[..., BaresipPhone], browser: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    agent_voice = np.concatenate([silence(2.0), speech(AGENT_WORDS, voice="slt"), silence(3.0)])
    phone = baresip_phone(user="ann", auto_answer=True, audio_source=write_wav(tmp_path / "ann.wav", agent_voice))
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "helpdesk.yaml").write_text(FLOW)
    server = start_hotline(
        flows_dir=flows, startup_timeout=STARTUP_TIMEOUT,
        extra_args=["--callcenter", str(callcenter_file(tmp_path / "callcenter.yaml", phone.sip_uri))],
        env={"HOTLINE_PASSWORD_ANN": AGENT_PASSWORD, "HOTLINE_PASSWORD_SUE": SUPERVISOR_PASSWORD},
    )  # fmt: skip
    chat_id = earlier_chat(server)

    # Ann signs in and goes available
    page = new_page(browser)
    sign_in(page, f"{server.base_url}/agent", "ann", AGENT_PASSWORD)
    expect(page.get_by_test_id("me")).to_have_text("Ann")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-connected", "true")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
    assert page.evaluate("sessionStorage.getItem('hotline.agent.token')"), "the token is kept in sessionStorage"

    # the caller asks the bot, then waits in the queue; the audio outlasts the call so RTP never stops
    caller_audio = np.concatenate([silence(3.5), speech(QUESTION), silence(170.0)])
    call_id = f"e2e-console-{uuid.uuid4().hex[:8]}"
    caller = start_sipp("t_uac_queue_caller", server, service="helpdesk", call_id=call_id, keys={"caller": CALLER},
                        files={"caller_audio.ulaw": ulaw_encode(caller_audio)}, timeout=200,
                        workdir=tmp_path / "sipp-caller")  # fmt: skip
    with caller:
        time.sleep(1.0)
        assert caller.process.poll() is None, f"the sipp caller did not start:\n{caller.result().describe()}"
        # the screen-pop
        item = page.get_by_test_id("work-item").first
        expect(item).to_have_attribute("data-channel", "voice")
        pop = page.get_by_test_id("screen-pop")
        expect(pop.get_by_test_id("caller")).to_have_text(CALLER)
        expect(pop.get_by_test_id("queue")).to_have_text("support")
        expect(pop.get_by_test_id("flow")).to_contain_text("helpdesk@")
        transcript = pop.get_by_test_id("transcript")
        expect(transcript.locator('[data-sender="bot"][data-kind="prompt"]').first).to_contain_text("help desk")
        said = transcript.locator('[data-sender="caller"][data-kind="utterance"]').first
        expect(said).to_contain_text(re.compile(r"\w+ \w+ \w+"))  # the recognized question, however heard
        expect(pop.get_by_test_id("ivr-path")).to_contain_text("bot: ")  # the bot's decision on it
        expect(pop.get_by_test_id("contact")).to_contain_text(CALLER)
        expect(page.get_by_test_id("history-item").first).to_contain_text("Chat")

        # Ann's phone rings and auto-answers: the caller is bridged to it
        established = phone.wait_for_event("CALL_ESTABLISHED", timeout=120)
        expect(page.get_by_test_id("offer-state")).to_have_attribute("data-state", "connected")
        expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "busy")
        record = server.wait_for_call(call_id)
        conversation = admin(server, "GET", f"/api/v1/conversations/{record['id']}").json()
        notes = [m["text"] for m in conversation["messages"] if m["sender"] == "system"]
        assert f"transfer: bridged to Ann <{phone.sip_uri}>" in notes, notes
        assert established.get("peeruri", "").startswith(f"sip:{CALLER}@"), established

        # what Ann says on the phone is transcribed live into the console
        live = page.get_by_test_id("live-transcript")
        expect(live.locator('[data-sender="agent"][data-kind="utterance"]').first).to_be_visible()

        hang_up_caller(caller, call_id)
        result = caller.wait(timeout=60)
        assert result.ok, result.describe()
    phone.wait_for_event("CALL_CLOSED", timeout=30)
    ended = server.wait_for_call(call_id, call_ended, timeout=30)
    assert ended["end_reason"] == "caller_bye", ended

    # wrap-up: the form appears, Ann picks a disposition and writes a note
    form = page.get_by_test_id("wrap-up-form")
    expect(form).to_be_visible()
    expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "wrap_up")
    page.get_by_label("Disposition").select_option("resolved")
    page.get_by_label("Notes").fill("Gave the caller the PUK location in the app.")
    page.get_by_test_id("wrap-up-submit").click()
    expect(page.get_by_test_id("wrap-up-saved")).to_contain_text("resolved")
    expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
    conversation = admin(server, "GET", f"/api/v1/conversations/{ended['id']}").json()
    wrap = [m for m in conversation["messages"] if m["sender"] == "agent" and m["kind"] == "note"]
    assert wrap and wrap[-1]["meta"]["wrap_up"] == "resolved", conversation["messages"]
    assert wrap[-1]["text"] == "Gave the caller the PUK location in the app."
    assert conversation["disposition"] == "transferred"

    # the supervisor's live view shows the queue's figures
    supervisor = new_page(browser)
    sign_in(supervisor, f"{server.base_url}/supervisor", "sue", SUPERVISOR_PASSWORD)
    row = supervisor.locator('[data-testid="queue-row"][data-queue="support"]')
    expect(row.get_by_test_id("entered")).to_have_text("1")
    expect(row.get_by_test_id("answered")).to_have_text("1")
    expect(row.get_by_test_id("waiting")).to_have_text("0")
    expect(row.get_by_test_id("service-level")).to_contain_text("100%")
    expect(row.get_by_test_id("abandoned")).to_contain_text("0 (0%)")
    expect(row.get_by_test_id("queue-agents")).to_have_text("1 / 0 / 1")
    expect(row.get_by_test_id("handle-time")).not_to_have_text("–")
    flow = supervisor.locator('[data-testid="flow-row"][data-flow="helpdesk"]')
    expect(flow.get_by_test_id("flow-ended")).to_have_text("1")
    expect(flow.get_by_test_id("flow-transferred")).to_have_text("1")
    expect(flow.get_by_test_id("containment")).to_have_text("0%")
    expect(supervisor.locator('[data-testid="agent-row"][data-agent="Ann"]')).to_have_attribute(
        "data-state", "available"
    )
    expect(supervisor.get_by_test_id("calls-in-progress")).to_have_text("0")

    # an agent's token is refused by the supervisor API, and Prometheus sees the answered call
    agent_token = page.evaluate("sessionStorage.getItem('hotline.agent.token')")
    refused = httpx.get(f"{server.base_url}/api/v1/stats", headers={"Authorization": f"Bearer {agent_token}"})
    assert refused.status_code == 403, refused.text
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=10.0).text
    assert 'hotline_queue_answered_total{queue="support"} 1.0' in metrics, metrics
    assert 'hotline_queue_waiting{queue="support"} 0.0' in metrics
    assert 'hotline_calls_total{direction="inbound"} 1.0' in metrics
    assert re.search(r'hotline_bot_decisions_total\{channel="voice",outcome="\w+"\} 1\.0', metrics), metrics
    assert "process_resident_memory_bytes" in metrics
    assert chat_id  # the earlier chat is the one the history showed


def test_a_chat_handed_off_by_the_bot_is_accepted_answered_and_closed_in_the_console(
    start_hotline: Callable[..., HotlineServer], browser: Any, tmp_path: Path
) -> None:
    config = tmp_path / "callcenter.yaml"
    config.write_text("queues:\n  general: {ring_timeout: 120, wrap_up_seconds: 0}\n"
                      "agents:\n  - {name: Ann, languages: [en], username: ann}\n")  # fmt: skip
    server = start_hotline(startup_timeout=STARTUP_TIMEOUT, extra_args=["--callcenter", str(config)],
                           env={"HOTLINE_PASSWORD_ANN": AGENT_PASSWORD})  # fmt: skip
    page = new_page(browser)
    sign_in(page, f"{server.base_url}/agent", "ann", AGENT_PASSWORD)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-connected", "true")
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")

    base = f"{server.base_url}/api/v1/chat/conversations"
    chat = httpx.post(base, json={"email": "pat@example.com", "name": "Pat"}, timeout=10.0).json()
    customer = {"Authorization": f"Bearer {chat['token']}"}
    cid = chat["conversation_id"]
    said = httpx.post(f"{base}/{cid}/messages", json={"text": "can I speak to a real person please"},
                      headers=customer, timeout=10.0)  # fmt: skip
    assert said.json()["status"] == "queued", said.text

    item = page.locator('[data-testid="work-item"][data-channel="webchat"]')
    expect(item).to_have_attribute("data-state", "offered")
    expect(page.get_by_test_id("contact")).to_contain_text("pat@example.com")
    transcript = page.get_by_test_id("transcript")
    expect(transcript.locator('[data-sender="caller"]').first).to_have_text(re.compile("real person"))
    page.get_by_test_id("accept").click()
    expect(item).to_have_attribute("data-state", "connected")
    page.get_by_label("Reply").fill("Hi Pat, Ann here. How can I help?")
    page.get_by_label("Reply").press("Enter")
    expect(transcript.locator('[data-sender="agent"]').last).to_have_text(re.compile("Ann here"))
    seen = httpx.get(f"{base}/{cid}/messages", headers=customer, timeout=10.0).json()["messages"]
    assert "Hi Pat, Ann here. How can I help?" in [m["text"] for m in seen]
    httpx.post(f"{base}/{cid}/messages", json={"text": "My SIM is blocked"}, headers=customer, timeout=10.0)
    expect(transcript.locator('[data-sender="caller"]').last).to_have_text(re.compile("SIM is blocked"))

    page.get_by_test_id("close-chat").click()
    expect(page.get_by_test_id("wrap-up-form")).to_be_visible()
    page.get_by_label("Disposition").select_option("follow-up")
    page.get_by_test_id("wrap-up-submit").click()
    expect(page.get_by_test_id("wrap-up-saved")).to_contain_text("follow-up")
    closed = admin(server, "GET", f"/api/v1/conversations/{cid}").json()
    assert closed["status"] == "closed" and closed["disposition"] == "transferred", closed
    agents = admin(server, "GET", "/api/v1/agents").json()
    assert [(a["name"], a["state"], a["active_chats"]) for a in agents] == [("Ann", "available", 0)]
