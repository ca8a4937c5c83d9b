"""One customer history across channels: a real sipp call and web chats for the same phone number.

The caller dials from +447700900123 (the From user of uac_dtmf_caller.xml); the customer later types the same
number differently ("+44 7700 900123") into a chat. Both must land on one contact whose timeline holds the
call (with its live-written transcript) and the chat. A chat with only an email is a second contact until an
explicit merge, after which nothing of either is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from chat_client import Chat, admin_post, customer_say, start_chat, texts
from harness import HotlineServer, SippProcess, call_answered, call_ended, start_sipp

pytestmark = pytest.mark.e2e

CALLER = "+447700900123"
CALLER_TYPED = "+44 7700 900123"  # how the customer writes it into the chat form
GREETING = "Thanks for calling hotline. Press any key and I will say it back. Press pound to hang up."
QUESTION = "How do I set up my voicemail?"  # the demo knowledge base answers it with voicemail-setup
# start-up imports the demo knowledge base and builds the bot's index before /healthz says ok: seconds, more on
# a busy machine
STARTUP_TIMEOUT = 120.0


def _at(value: str) -> datetime:
    """An API timestamp as a datetime (ISO strings do not sort: a whole second has no fraction)."""
    return datetime.fromisoformat(value)


def _get(server: HotlineServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}{path}", params=params, headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10.0,
    )  # fmt: skip


def _wait_conversation(
    server: HotlineServer, conversation_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    """Poll GET /api/v1/conversations/{id} until the detail satisfies `predicate` (404 = not written yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        response = _get(server, f"/api/v1/conversations/{conversation_id}")
        if response.status_code == 200:
            last = response.json()
            if predicate(last):
                return last
        elif response.status_code != 404:
            raise AssertionError(f"GET conversation {conversation_id} -> {response.status_code}: {response.text}")
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"conversation {conversation_id} never matched {predicate.__name__} within {timeout}s; last: {last!r}"
                f"\n--- server log ---\n{server.log_tail(40)}"
            )
        time.sleep(0.1)


def _call(server: HotlineServer, *, hold_ms: int, call_id: str) -> SippProcess:
    """Start the caller in the background: greeting, digits 1 2 3, `hold_ms` on the line, BYE."""
    return start_sipp(
        "uac_dtmf_caller.xml", server, call_id=call_id, keys={"caller": CALLER}, duration=hold_ms, timeout=60
    )


def _finish(server: HotlineServer, sipp: SippProcess, call_id: str) -> dict[str, Any]:
    with sipp:
        result = sipp.wait(timeout=75)
    assert result.ok, result.describe()
    return server.wait_for_call(call_id, call_ended, timeout=15)


def _one_contact(server: HotlineServer, **query: str) -> dict[str, Any]:
    response = _get(server, "/api/v1/contacts", **query)
    assert response.status_code == 200, response.text
    found = response.json()
    assert len(found) == 1, f"contacts for {query}: {found}"
    return found[0]


def _timeline(server: HotlineServer, contact_id: str, **params: Any) -> dict[str, Any]:
    response = _get(server, f"/api/v1/contacts/{contact_id}/timeline", **params)
    assert response.status_code == 200, response.text
    return response.json()


def _chat_about_voicemail(server: HotlineServer, **identity: str) -> Chat:
    chat = start_chat(server, **identity)
    reply = customer_say(server, chat, QUESTION)
    assert reply["status"] == "bot"
    answers = [m for m in reply["messages"] if m["sender"] == "bot" and m["kind"] == "answer"]
    assert answers and answers[0]["meta"]["entry_id"] == "voicemail-setup", reply
    return chat


def _voice_item_ok(item: dict[str, Any], call: dict[str, Any]) -> None:
    assert item["channel"] == "voice"
    assert item["id"] == call["id"] and item["call_id"] == call["id"]
    assert item["status"] == "closed"
    assert item["disposition"] == "contained"  # answered, no transfer, the caller hung up
    assert item["ended_at"] is not None and _at(item["ended_at"]) >= _at(item["started_at"])
    prompts = texts(item, sender="bot", kind="prompt")
    assert prompts and prompts[0] == GREETING
    assert "You pressed 1." in prompts and "You pressed 3." in prompts
    assert texts(item, sender="caller", kind="dtmf") == ["1", "2", "3"]
    offsets = [m["offset_ms"] for m in item["messages"]]
    assert offsets == sorted(offsets), "transcript messages out of call order"


def test_call_and_chat_for_one_number_share_one_timeline(start_hotline: Callable[..., HotlineServer]) -> None:
    server = start_hotline(startup_timeout=STARTUP_TIMEOUT)
    sipp = _call(server, hold_ms=6000, call_id="e2e-history-call")

    # while the call is up: the conversation and its transcript are already in the database
    live = server.wait_for_call("e2e-history-call", call_answered, timeout=15)

    def transcript_started(detail: dict[str, Any]) -> bool:
        return GREETING in texts(detail, sender="bot", kind="prompt") and "1" in texts(detail, kind="dtmf")

    mid_call = _wait_conversation(server, live["id"], transcript_started)
    assert mid_call["ended_at"] is None and mid_call["status"] != "closed", mid_call
    assert mid_call["channel"] == "voice" and mid_call["call_id"] == live["id"]
    assert mid_call["contact_id"], "the call's conversation is not linked to the caller's contact"

    call = _finish(server, sipp, "e2e-history-call")
    assert call["end_reason"] == "caller_bye"

    # the same number, typed another way, in a chat
    chat = _chat_about_voicemail(server, name="Ann Caller", phone=CALLER_TYPED)
    assert chat.contact_id == mid_call["contact_id"]
    closed = httpx.post(
        f"{server.base_url}/api/v1/chat/conversations/{chat.conversation_id}/close", headers=chat.auth, timeout=10
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text

    contact = _one_contact(server, phone=CALLER)
    assert contact["id"] == chat.contact_id
    assert {"kind": "phone", "value": CALLER} in contact["identities"]
    assert contact["name"] == "Ann Caller"
    for query in ({"phone": CALLER_TYPED}, {"phone": "07700 900123", "region": "GB"}):
        assert _one_contact(server, **query)["id"] == contact["id"], query

    page = _timeline(server, contact["id"])
    assert page["total"] == 2 and page["next_offset"] is None
    assert [item["channel"] for item in page["items"]] == ["voice", "webchat"]
    voice, webchat = page["items"]
    assert _at(voice["started_at"]) < _at(webchat["started_at"])
    _voice_item_ok(voice, call)

    assert webchat["id"] == chat.conversation_id and webchat["call_id"] is None
    assert webchat["status"] == "closed" and webchat["disposition"] == "contained"
    assert texts(webchat, sender="caller") == [QUESTION]
    assert [m["kind"] for m in webchat["messages"] if m["sender"] == "bot"] == ["text", "answer"]  # greeting, answer
    assert texts(webchat, sender="bot")[0] == chat.greeting[0]["text"]

    # newest first, and one at a time
    newest = _timeline(server, contact["id"], order="desc")
    assert [item["id"] for item in newest["items"]] == [webchat["id"], voice["id"]]
    first = _timeline(server, contact["id"], limit=1)
    second = _timeline(server, contact["id"], limit=1, offset=first["next_offset"])
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [voice["id"], webchat["id"]]
    assert second["next_offset"] is None


def test_merge_keeps_every_conversation_and_identity(start_hotline: Callable[..., HotlineServer]) -> None:
    server = start_hotline(startup_timeout=STARTUP_TIMEOUT)
    call = _finish(server, _call(server, hold_ms=1500, call_id="e2e-merge-call"), "e2e-merge-call")
    phone_chat = _chat_about_voicemail(server, phone=CALLER_TYPED)
    phone_contact = _one_contact(server, phone=CALLER)
    assert phone_chat.contact_id == phone_contact["id"]

    # only an email: nothing ties it to the phone number, so it is a contact of its own (no silent merge)
    email_chat = _chat_about_voicemail(server, name="Ann", email="Ann.Caller@Example.com")
    email_contact = _one_contact(server, email="ann.caller@example.com")
    assert email_chat.contact_id == email_contact["id"] != phone_contact["id"]

    before = {
        item["id"]: item
        for contact_id in (phone_contact["id"], email_contact["id"])
        for item in _timeline(server, contact_id)["items"]
    }
    assert set(before) == {call["id"], phone_chat.conversation_id, email_chat.conversation_id}

    merged = admin_post(server, f"/api/v1/contacts/{phone_contact['id']}/merge", {"merge": email_contact["id"]})
    assert merged["survivor"]["id"] == phone_contact["id"]
    assert merged["merged_id"] == email_contact["id"]
    assert merged["moved_conversations"] == [email_chat.conversation_id]
    assert len(merged["moved_identities"]) == 1

    survivor = _timeline(server, phone_contact["id"])
    assert survivor["total"] == 3
    assert [item["id"] for item in survivor["items"]] == [call["id"], phone_chat.conversation_id,
                                                          email_chat.conversation_id]  # fmt: skip
    starts = [_at(item["started_at"]) for item in survivor["items"]]
    assert starts == sorted(starts)
    for item in survivor["items"]:  # every conversation whole: same messages, same ids, same order
        assert item["contact_id"] == phone_contact["id"]
        assert item["messages"] == before[item["id"]]["messages"], item["id"]
    _voice_item_ok(survivor["items"][0], call)

    identities = {(i["kind"], i["value"]) for i in survivor["contact"]["identities"]}
    assert identities == {("phone", CALLER), ("email", "ann.caller@example.com")}
    assert survivor["contact"]["name"] == "Ann"  # the survivor had no name; the merged one's is kept

    # the merged id keeps working and resolves to the survivor; look-ups by either identity find it
    old = _get(server, f"/api/v1/contacts/{email_contact['id']}")
    assert old.status_code == 200 and old.json()["id"] == phone_contact["id"], old.text
    assert _timeline(server, email_contact["id"])["contact"]["id"] == phone_contact["id"]
    assert _one_contact(server, email="ann.caller@example.com")["id"] == phone_contact["id"]
    assert _one_contact(server, phone=CALLER_TYPED)["id"] == phone_contact["id"]

    # merging it again is refused and changes nothing
    again = httpx.post(
        f"{server.base_url}/api/v1/contacts/{phone_contact['id']}/merge", json={"merge": email_contact["id"]},
        headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10,
    )  # fmt: skip
    assert again.status_code == 409, again.text
    assert _timeline(server, phone_contact["id"])["total"] == 3

    # the email customer's chat still works after the merge and its new messages join the survivor's history
    customer_say(server, email_chat, "thanks")
    latest = _timeline(server, phone_contact["id"], order="desc", limit=1)["items"][0]
    assert latest["id"] == email_chat.conversation_id
    assert texts(latest, sender="caller") == [QUESTION, "thanks"]
