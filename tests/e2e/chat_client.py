"""A small HTTP client for the chat channel and the agent/history API of a running `hotline serve`.

The customer side uses only the per-conversation token `POST /api/v1/chat/conversations` hands out; the
agent side uses the admin bearer token, as an agent console would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from harness import HotlineServer


@dataclass(frozen=True)
class Chat:
    """A started chat as the customer holds it."""

    conversation_id: str
    token: str
    contact_id: str | None
    greeting: list[dict[str, Any]]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _check(response: httpx.Response, expected: int) -> Any:
    if response.status_code != expected:
        raise AssertionError(
            f"{response.request.method} {response.request.url} -> {response.status_code} (wanted {expected}): "
            f"{response.text[:2000]}"
        )
    return response.json() if response.content else None


def start_chat(server: HotlineServer, **identity: str) -> Chat:
    """Start a chat as a customer (no admin token): name=, phone=, email=, chat_user_id=, language=."""
    body = _check(httpx.post(f"{server.base_url}/api/v1/chat/conversations", json=identity, timeout=10.0), 201)
    return Chat(body["conversation_id"], body["token"], body["contact_id"], body["messages"])


def customer_say(server: HotlineServer, chat: Chat, text: str) -> dict[str, Any]:
    """Post a customer message; the answer holds the conversation's status and the new messages."""
    url = f"{server.base_url}/api/v1/chat/conversations/{chat.conversation_id}/messages"
    return _check(httpx.post(url, json={"text": text}, headers=chat.auth, timeout=10.0), 200)


def admin_post(server: HotlineServer, path: str, body: Any, expected: int = 200) -> Any:
    response = httpx.post(
        f"{server.base_url}{path}", json=body, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10.0
    )
    return _check(response, expected)


def agent_reply(server: HotlineServer, conversation_id: str, text: str, agent: str = "agent") -> dict[str, Any]:
    return admin_post(server, f"/api/v1/conversations/{conversation_id}/messages", {"text": text, "agent": agent}, 201)


def messages(detail: dict[str, Any], *, sender: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Messages of a conversation detail / timeline item, filtered by sender and kind."""
    return [
        m for m in detail["messages"]
        if (sender is None or m["sender"] == sender) and (kind is None or m["kind"] == kind)
    ]  # fmt: skip


def texts(detail: dict[str, Any], *, sender: str | None = None, kind: str | None = None) -> list[str]:
    return [m["text"] for m in messages(detail, sender=sender, kind=kind)]
