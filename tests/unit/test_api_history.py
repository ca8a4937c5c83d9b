"""Contacts, the timeline, merges and the chat channel through the HTTP API and WebSockets,
on SQLite and PostgreSQL, with the real knowledge bot. Voice calls are written by the real call log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bot.engine import KnowledgeBot
from bot.knowledge import parse
from callcenter_api.app import create_app
from callcenter_api.call_log import CallLog
from callcenter_api.call_ops import new_call_id
from callcenter_api.history import contacts
from callcenter_api.history.conversations import timeline
from callcenter_api.history.identity import Identity, InvalidIdentity, caller_identity, normalize
from callcenter_api.models import Recording
from callcenter_api.routes.contacts import contact_out, detail_out
from callcenter_api.schemas.history import TimelineOut

TOKEN = "history-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KB = Path(__file__).resolve().parents[2] / "bot" / "examples" / "northwind_kb.yaml"
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bot() -> KnowledgeBot:
    return KnowledgeBot(parse(KB.read_text(encoding="utf-8")))


@pytest.fixture
def client(session_factory: sessionmaker[Session], bot: KnowledgeBot) -> Iterator[TestClient]:
    app = create_app(session_factory=session_factory, admin_token=TOKEN, bot=bot, phone_region="GB")
    with TestClient(app) as c:
        yield c


def voice_call(session_factory: sessionmaker[Session], caller: str) -> str:
    """A call as the call path writes it: CDR + conversation + transcript messages, through the call log."""
    log = CallLog(session_factory)
    log.start()
    call_id = new_call_id()
    log.call_started(call_id, sip_call_id=f"sip-{call_id}", from_uri=f"<sip:{caller}@pbx>;tag=1",
                     to_uri="<sip:hotline@us>", at=T0, caller=caller_identity(caller, f"sip:{caller}@pbx"))  # fmt: skip
    log.call_answered(call_id, at=T0 + timedelta(seconds=1), codec="PCMU")
    log.message(call_id, sender="bot", kind="prompt", text="Thanks for calling.", at=T0 + timedelta(seconds=1))
    log.message(call_id, sender="caller", kind="dtmf", text="1", at=T0 + timedelta(seconds=3))
    log.call_ended(call_id, at=T0 + timedelta(seconds=9), reason="caller_bye")
    log.conversation_updated(call_id, ended_at=T0 + timedelta(seconds=9), status="closed", disposition="contained")
    log.close()
    return call_id


def start_chat(client: TestClient, **body: object) -> dict[str, str]:
    response = client.post("/api/v1/chat/conversations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def say(client: TestClient, chat: dict[str, str], text: str) -> dict[str, object]:
    response = client.post(f"/api/v1/chat/conversations/{chat['conversation_id']}/messages", json={"text": text},
                           headers={"Authorization": f"Bearer {chat['token']}"})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def test_identities_normalise() -> None:
    assert normalize("phone", "07700 900123", region="GB") == Identity("phone", "+447700900123")
    assert normalize("phone", "+44 (0)7700-900123") == Identity("phone", "+447700900123")
    assert normalize("email", " Ann@Example.COM ") == Identity("email", "ann@example.com")
    with pytest.raises(InvalidIdentity, match="region"):
        normalize("phone", "07700900123")
    with pytest.raises(InvalidIdentity):
        normalize("email", "not an email")
    assert caller_identity("sipp", "<sip:sipp@127.0.0.1:5061>;tag=x") == Identity("sip", "sipp@127.0.0.1:5061")
    assert caller_identity("anonymous", "<sip:anonymous@anonymous.invalid>") is None


def test_call_and_chat_of_one_number_share_one_timeline(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    call_id = voice_call(session_factory, "+447700900123")
    chat = start_chat(client, name="Ann", phone="07700 900123")  # national format: the app's region is GB
    say(client, chat, "What are your opening hours?")
    found = client.get("/api/v1/contacts", params={"phone": "+44 7700 900123"}, headers=AUTH).json()
    assert len(found) == 1 and found[0]["id"] == chat["contact_id"]
    timeline = client.get(f"/api/v1/contacts/{chat['contact_id']}/timeline", headers=AUTH).json()
    assert timeline["total"] == 2 and timeline["next_offset"] is None
    voice, webchat = timeline["items"]
    assert (voice["channel"], voice["id"], voice["call_id"], voice["disposition"]) == (
        "voice",
        call_id,
        call_id,
        "contained",
    )
    assert [(m["sender"], m["kind"], m["text"]) for m in voice["messages"]] == [
        ("bot", "prompt", "Thanks for calling."), ("caller", "dtmf", "1")]  # fmt: skip
    assert webchat["channel"] == "webchat"
    assert [m["sender"] for m in webchat["messages"]] == ["bot", "caller", "bot"]
    assert webchat["messages"][2]["kind"] == "answer" and webchat["messages"][2]["meta"]["entry_id"] == "opening-hours"
    newest_first = client.get(f"/api/v1/contacts/{chat['contact_id']}/timeline", params={"order": "desc", "limit": 1},
                              headers=AUTH).json()  # fmt: skip
    assert [i["channel"] for i in newest_first["items"]] == ["webchat"] and newest_first["next_offset"] == 1


def expected_timeline(
    session_factory: sessionmaker[Session], contact_id: str, *, limit: int = 20, offset: int = 0,
    order: str = "asc", channel: str | None = None,
) -> bytes:  # fmt: skip
    """The page as the models make it from ORM objects: what the route encodes straight from rows must match."""
    with session_factory() as session:
        contact = contacts.current(session, contact_id)
        assert contact is not None
        page = timeline(session, contact.id, limit=limit, offset=offset, order=order, channel=channel)  # type: ignore[arg-type]
        return TimelineOut(
            contact=contact_out(session, contact), total=page.total, limit=limit, offset=offset, order=order,
            next_offset=offset + limit if offset + limit < page.total else None,
            items=[detail_out(item) for item in page.items],
        ).model_dump_json().encode()  # fmt: skip


def test_timeline_bytes_are_the_models_own_json(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    call_id = voice_call(session_factory, "+447700900124")
    log = CallLog(session_factory)
    log.start()
    log.message(call_id, sender="caller", kind="utterance", text="le café, 请", at=T0 + timedelta(seconds=4),
                confidence=0.87, offset_ms=4000, meta={"alternatives": ["le cafe"], "n": 2})  # fmt: skip
    log.close()
    with session_factory.begin() as session:
        for n, seconds in enumerate((12.5, None, 3.0)):
            session.add(Recording(id=f"rec{n}".ljust(32, "0"), conversation_id=call_id, kind="call", path=f"/r/{n}",
                                  created_at=T0 + timedelta(seconds=9 - n), seconds=seconds))  # fmt: skip
    chat = start_chat(client, name="Zoë", phone="07700 900124")
    say(client, chat, "What are your opening hours?")
    other = start_chat(client, email="zoe@example.com")
    merged = client.post(f"/api/v1/contacts/{chat['contact_id']}/merge", json={"merge": other["contact_id"]},
                         headers=AUTH)  # fmt: skip
    assert merged.status_code == 200, merged.text
    pages = [{}, {"limit": 1}, {"limit": 1, "offset": 1}, {"limit": 2, "offset": 1, "order": "desc"},
             {"channel": "voice"}, {"channel": "webchat", "limit": 1}, {"offset": 7}]  # fmt: skip
    for contact_id in (chat["contact_id"], other["contact_id"]):  # the merged id resolves to the survivor
        for params in pages:
            response = client.get(f"/api/v1/contacts/{contact_id}/timeline", params=params, headers=AUTH)
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            assert response.content == expected_timeline(session_factory, contact_id, **params), params  # type: ignore[arg-type]
    voice = client.get(f"/api/v1/contacts/{chat['contact_id']}/timeline", params={"channel": "voice"},
                       headers=AUTH).json()["items"][0]  # fmt: skip
    ids = [f"rec{n}".ljust(32, "0") for n in (2, 1, 0)]  # oldest first
    assert [(r["id"], r["url"]) for r in voice["recordings"]] == [(i, f"/api/v1/recordings/{i}") for i in ids]
    assert voice["messages"][-1]["confidence"] == 0.87 and voice["messages"][-1]["meta"]["n"] == 2


def test_different_identities_are_never_merged_silently_and_merge_loses_nothing(client: TestClient) -> None:
    by_phone = start_chat(client, phone="+447700900999")
    by_email = start_chat(client, email="bob@example.com")
    both = start_chat(client, phone="+447700900999", email="bob@example.com")  # belongs to two contacts: no merge
    assert by_phone["contact_id"] != by_email["contact_id"]
    assert both["contact_id"] == by_phone["contact_id"]
    assert client.get(f"/api/v1/contacts/{by_email['contact_id']}", headers=AUTH).json()["merged_into"] is None
    merged = client.post(f"/api/v1/contacts/{by_phone['contact_id']}/merge", json={"merge": by_email["contact_id"]},
                         headers=AUTH)  # fmt: skip
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["moved_conversations"] == [by_email["conversation_id"]]
    assert {i["kind"] for i in body["survivor"]["identities"]} == {"phone", "email"}
    survivor = client.get(f"/api/v1/contacts/{by_email['contact_id']}", headers=AUTH).json()
    assert survivor["id"] == by_phone["contact_id"]  # the old id resolves to the survivor
    timeline = client.get(f"/api/v1/contacts/{by_phone['contact_id']}/timeline", headers=AUTH).json()
    assert {i["id"] for i in timeline["items"]} == {c["conversation_id"] for c in (by_phone, by_email, both)}
    again = client.post(f"/api/v1/contacts/{by_phone['contact_id']}/merge", json={"merge": by_email["contact_id"]},
                        headers=AUTH)  # fmt: skip
    assert again.status_code == 409 and "already merged" in again.json()["detail"]
    assert client.post(f"/api/v1/contacts/{by_phone['contact_id']}/merge", json={"merge": by_phone["contact_id"]},
                       headers=AUTH).status_code == 409  # fmt: skip
    assert client.post(f"/api/v1/contacts/{by_phone['contact_id']}/merge", json={"merge": "0" * 32},
                       headers=AUTH).status_code == 404  # fmt: skip


def test_chat_answers_offers_choices_hands_off_and_an_agent_takes_over(client: TestClient) -> None:
    chat = start_chat(client, email="cara@example.com", language="en")
    answered = say(client, chat, "I've forgotten my voicemail PIN")
    assert answered["status"] == "bot" and answered["messages"][1]["meta"]["entry_id"] == "voicemail-pin"
    unsure = say(client, chat, "how much does it cost")
    note, clarify = unsure["messages"][1:]
    assert (note["sender"], note["text"], note["meta"]["question"]) == ("system", "bot: no confident answer",
                                                                        "how much does it cost")  # fmt: skip
    assert clarify["text"].startswith("Did you mean:") and "1." in clarify["text"]
    unanswered = client.get("/api/v1/stats", headers=AUTH).json()["unanswered"]  # the supervisor view
    assert [(q["question"], q["flows"]) for q in unanswered] == [("how much does it cost", ["webchat"])]
    chosen = say(client, chat, "1")
    assert chosen["messages"][1]["kind"] == "answer"
    handoff = say(client, chat, "can I speak to a real person please")
    assert handoff["status"] == "queued"
    queued = client.get("/api/v1/conversations", params={"status": "queued"}, headers=AUTH).json()
    assert chat["conversation_id"] in [c["id"] for c in queued]
    cid = chat["conversation_id"]
    with client.websocket_connect(f"/api/v1/chat/conversations/{cid}/ws?token={chat['token']}&after=0") as ws:
        backlog = [ws.receive_json() for _ in range(11)]  # everything so far, in order
        assert (
            backlog[0]["message"]["sender"] == "bot"
            and backlog[1]["message"]["text"] == "I've forgotten my voicemail PIN"
        )
        reply = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Hi, I'm Dan.", "agent": "Dan"},
                            headers=AUTH)  # fmt: skip
        assert reply.status_code == 201
        live = ws.receive_json()
        while live["type"] != "message":
            live = ws.receive_json()
        assert (live["message"]["sender"], live["message"]["text"]) == ("agent", "Hi, I'm Dan.")
    after_agent = say(client, chat, "thanks")
    assert [m["sender"] for m in after_agent["messages"]] == ["caller"] and after_agent["status"] == "agent"
    closed = client.post(f"/api/v1/conversations/{cid}/close", headers=AUTH).json()
    assert (closed["status"], closed["disposition"]) == ("closed", "transferred")
    gone = client.post(f"/api/v1/chat/conversations/{cid}/messages", json={"text": "hello?"},
                       headers={"Authorization": f"Bearer {chat['token']}"})  # fmt: skip
    assert gone.status_code == 409


def test_customer_tokens_open_only_their_own_chat(client: TestClient) -> None:
    mine, theirs = start_chat(client), start_chat(client)
    url = f"/api/v1/chat/conversations/{theirs['conversation_id']}/messages"
    assert client.get(url, headers={"Authorization": f"Bearer {mine['token']}"}).status_code == 401
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {theirs['token']}"}).status_code == 200
    assert (
        client.get("/api/v1/chat/conversations/nope/messages", headers={"Authorization": "Bearer x"}).status_code == 404
    )
    refused = f"/api/v1/chat/conversations/{theirs['conversation_id']}/ws?token={mine['token']}"
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(refused) as ws:
        ws.receive_json()
    assert closed.value.code == 4401
    assert client.get("/api/v1/contacts", params={"phone": "+447700900123"}).status_code == 401  # admin API


def test_bad_chat_input_gets_clear_errors(client: TestClient) -> None:
    bad_phone = client.post("/api/v1/chat/conversations", json={"phone": "call me maybe"})
    assert bad_phone.status_code == 422 and "not a phone number" in bad_phone.json()["detail"]
    assert client.post("/api/v1/chat/conversations", json={"language": "fr"}).status_code == 422
    assert client.post("/api/v1/chat/conversations", json={"nickname": "x"}).status_code == 422
    chat = start_chat(client)
    empty = client.post(f"/api/v1/chat/conversations/{chat['conversation_id']}/messages", json={"text": ""},
                        headers={"Authorization": f"Bearer {chat['token']}"})  # fmt: skip
    assert empty.status_code == 422
    assert client.get("/api/v1/contacts", headers=AUTH).status_code == 422
    assert client.get("/api/v1/contacts", params={"email": "nope"}, headers=AUTH).status_code == 422
    assert client.get("/api/v1/contacts/unknown/timeline", headers=AUTH).status_code == 404


def test_chinese_chat(client: TestClient) -> None:
    chat = start_chat(client, language="zh", chat_user_id="wx-123")
    history = client.get(f"/api/v1/chat/conversations/{chat['conversation_id']}/messages",
                         headers={"Authorization": f"Bearer {chat['token']}"}).json()  # fmt: skip
    assert "北风" in history["messages"][0]["text"]
    assert say(client, chat, "转人工")["status"] == "queued"
