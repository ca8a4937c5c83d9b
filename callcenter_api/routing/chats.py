"""Chats in the same queues as calls: a chat the bot hands off is queued for an agent, and closing it frees
the agent's chat slot (or takes it out of the queue when nobody has answered yet).

The chat channel (`callcenter_api.chat`) does not know the router; its routes call these after the chat's
own transaction. A chat belongs to no worker (`owned=False`), so whichever worker's ACD runs next offers it,
and the agent takes it in the console (`POST /api/v1/agents/me/offers/{id}/accept`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.models import ContactIdentity, Conversation, QueueEntry
from callcenter_api.routing.router import QueueFull, QueueNotFound, Router
from callcenter_api.routing.states import FINAL_ENTRY_STATES

log = logging.getLogger(__name__)


def _active_entries(session: Session, conversation_id: str) -> list[QueueEntry]:
    return list(session.scalars(select(QueueEntry).where(
        QueueEntry.conversation_id == conversation_id, QueueEntry.state.not_in(FINAL_ENTRY_STATES))))  # fmt: skip


def queue_handed_off_chat(router: Router | None, factory: sessionmaker[Session], conversation_id: str) -> str | None:
    """Enqueue the chat if the bot handed it off and it is not queued yet; the entry id, or None."""
    if router is None:
        return None
    with factory() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.status != "queued" or _active_entries(session, conversation_id):
            return None
        caller = session.scalar(
            select(ContactIdentity.value).where(ContactIdentity.contact_id == conversation.contact_id)
            .order_by(ContactIdentity.id).limit(1)
        ) if conversation.contact_id else None  # fmt: skip
        queue, language = conversation.queue or "general", conversation.language
    try:
        entry = router.enqueue(queue, conversation_id, channel="webchat", language=language, caller=caller,
                               owned=False)  # fmt: skip
    except (QueueNotFound, QueueFull) as exc:  # the chat stays "queued"; supervisors see it in /conversations
        log.warning("chat %s handed off but not queued: %s", conversation_id, exc)
        return None
    return entry.id


def chat_closed(router: Router | None, factory: sessionmaker[Session], conversation_id: str, *, by: str) -> None:
    """The chat ended: an agent's chat is done (slot freed), one still waiting or offered is abandoned."""
    if router is None:
        return
    with factory() as session:
        entries = [(e.id, e.state) for e in _active_entries(session, conversation_id)]
    for entry_id, state in entries:
        if state == "connected":
            router.ended(entry_id, f"closed by {by}")
        else:
            router.caller_left(entry_id)
