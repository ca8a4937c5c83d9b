"""The supervisor's figures: queues (waiting, longest wait, agents by state, service level, abandon rate,
handle and wait times) and flows (containment, the bot's unanswered questions), read from the database.

Everything is computed from the shared tables, so every worker shows the same call center. "Now" figures
(waiting, longest wait, agents by state, conversations in progress) are the current rows; period figures
cover the queue entries enqueued (and the conversations started) since `since`, by default the last 24 hours.
The period's rows are read with their timestamps only and the durations computed here: SQLite and
PostgreSQL subtract timestamps differently, and a day of one call center's entries is a few thousand rows.

Definitions (as contact-center reports count them):
- service level: of the entries answered by an agent, the share answered within the queue's
  `service_level_seconds` of entering the queue (null while nothing was answered);
- abandon rate: of the entries that left the queue (answered, abandoned, overflowed, voicemail), the share
  that hung up before an agent answered;
- average handle time: answered -> ended, over the entries whose conversation with the agent ended;
- average wait: entered the queue -> answered, over the answered entries (the "average speed of answer");
- containment (per flow): ended voice conversations of the flow whose disposition is `contained` (the bot or
  the IVR finished the call, nobody was transferred), over all ended ones; web chats are reported as the
  pseudo-flow `webchat`;
- unanswered questions: the system notes "bot: no confident answer" that the voice channel writes for an
  `ask` node and the chat channel for a message the bot could not answer (their meta has the customer's
  question), grouped by the question folded to lower case.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter_api.history.notes import NO_ANSWER_NOTE
from callcenter_api.models import Agent, Conversation, Message, Queue, QueueEntry
from callcenter_api.routing.states import AGENT_STATES

DEFAULT_WINDOW = timedelta(hours=24)
WAITING = ("waiting", "offered")  # on the line (or in the chat), not yet with an agent
LEFT_QUEUE = ("done", "abandoned", "overflowed", "voicemail")
STALE_AFTER = timedelta(hours=24)  # an open conversation older than this is a crashed worker's, not live
TOP_QUESTIONS = 10


class UnansweredQuestion(BaseModel):
    question: str = Field(description="the most recent wording of the question")
    count: int
    last_asked: datetime
    flows: list[str] = Field(description="flows it was asked in")


class QueueStats(BaseModel):
    name: str
    waiting: int = Field(description="customers waiting now (ringing an agent included), not callbacks")
    callbacks: int = Field(description="callers who chose to be called back and keep their place")
    longest_wait_seconds: float | None = Field(description="the longest current wait, null when nobody waits")
    agents: dict[str, int] = Field(description="agents who can take this queue, by state")
    entered: int = Field(description="entries enqueued in the period")
    answered: int
    abandoned: int = Field(description="hung up (or left the chat) before an agent answered")
    service_level_seconds: int
    service_level: float | None = Field(description="share of answered entries answered within the target")
    abandon_rate: float | None
    average_handle_seconds: float | None
    average_wait_seconds: float | None = Field(description="enqueued -> answered")


class FlowStats(BaseModel):
    flow: str = Field(description="flow name (all versions), or 'webchat' for the chat bot")
    channel: str
    ended: int = Field(description="conversations started in the period that have ended")
    contained: int
    transferred: int
    abandoned: int
    voicemail: int
    containment_rate: float | None
    unanswered: list[UnansweredQuestion] = Field(description="the bot's top questions without an answer")


class CallCenterStats(BaseModel):
    at: datetime
    since: datetime
    agents: dict[str, int] = Field(description="all agents by state")
    calls_in_progress: int = Field(description="voice conversations going on now")
    chats_in_progress: int = Field(description="web chats not closed")
    queues: list[QueueStats]
    flows: list[FlowStats]
    unanswered: list[UnansweredQuestion] = Field(description="top questions without an answer, all flows")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def can_take(agent: Agent, queue: Queue) -> bool:
    """The agent has the queue's required skills (and language, when both say one)."""
    if any((agent.skills or {}).get(skill, 0) < level for skill, level in (queue.required_skills or {}).items()):
        return False
    return not (queue.language and agent.languages and queue.language not in agent.languages)


def _by_state(agents: Iterable[Agent]) -> dict[str, int]:
    counts = dict.fromkeys(AGENT_STATES, 0)
    for agent in agents:
        counts[agent.state] = counts.get(agent.state, 0) + 1
    return counts


def queue_stats(session: Session, *, now: datetime, since: datetime) -> list[QueueStats]:
    queues = list(session.scalars(select(Queue).order_by(Queue.name)))
    agents = list(session.scalars(select(Agent)))
    waiting_now: dict[str, tuple[int, datetime | None]] = {}
    for name, count, oldest in session.execute(
        select(QueueEntry.queue, func.count(), func.min(QueueEntry.enqueued_at))
        .where(QueueEntry.state.in_(WAITING)).group_by(QueueEntry.queue)
    ):  # fmt: skip
        waiting_now[name] = (count, _aware(oldest))
    held = select(QueueEntry.queue, func.count()).where(QueueEntry.state == "callback").group_by(QueueEntry.queue)
    callbacks: dict[str, int] = {name: count for name, count in session.execute(held)}
    period: dict[str, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(QueueEntry.queue, QueueEntry.state, QueueEntry.enqueued_at, QueueEntry.answered_at,
               QueueEntry.ended_at).where(QueueEntry.enqueued_at >= since)
    ):  # fmt: skip
        period[row.queue].append(row)
    out = []
    for queue in queues:
        count, oldest = waiting_now.get(queue.name, (0, None))
        rows = period.get(queue.name, [])
        answered = [r for r in rows if r.answered_at is not None]
        waits = [(_aware(r.answered_at) - _aware(r.enqueued_at)).total_seconds() for r in answered]  # type: ignore[operator]
        handles = [(_aware(r.ended_at) - _aware(r.answered_at)).total_seconds()  # type: ignore[operator]
                   for r in answered if r.ended_at is not None]  # fmt: skip
        abandoned = [r for r in rows if r.state == "abandoned" and r.answered_at is None]
        left = [r for r in rows if r.answered_at is not None or r.state in LEFT_QUEUE]
        within = sum(1 for w in waits if w <= queue.service_level_seconds)
        out.append(QueueStats(
            name=queue.name, waiting=count, callbacks=callbacks.get(queue.name, 0),
            longest_wait_seconds=round((now - oldest).total_seconds(), 1) if oldest else None,
            agents=_by_state(a for a in agents if can_take(a, queue)), entered=len(rows), answered=len(answered),
            abandoned=len(abandoned), service_level_seconds=queue.service_level_seconds,
            service_level=_ratio(within, len(answered)), abandon_rate=_ratio(len(abandoned), len(left)),
            average_handle_seconds=_mean(handles), average_wait_seconds=_mean(waits),
        ))  # fmt: skip
    return out


def _fold(question: str) -> str:
    return re.sub(r"\s+", " ", question.casefold()).strip(" ?.!,;:。？！，")


def _flow_name(flow: str | None, channel: str) -> str:
    if channel != "voice":
        return channel
    return (flow or "(no flow)").split("@", 1)[0]


def unanswered_questions(
    session: Session, *, since: datetime, limit: int = TOP_QUESTIONS
) -> tuple[list[UnansweredQuestion], dict[str, list[UnansweredQuestion]]]:
    """Top questions overall and per flow name."""
    rows = session.execute(
        select(Message.text, Message.meta, Message.at, Conversation.flow, Conversation.channel)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.sender == "system", Message.kind == "note", Message.text == NO_ANSWER_NOTE,
               Message.at >= since)
        .order_by(Message.at)
    ).all()  # fmt: skip
    overall: dict[str, dict[str, Any]] = {}
    per_flow: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        question = (row.meta or {}).get("question") if isinstance(row.meta, dict) else None
        if not question or not str(question).strip():
            continue
        key = _fold(str(question))
        flow = _flow_name(row.flow, row.channel)
        for bucket in (overall, per_flow[flow]):
            item = bucket.setdefault(key, {"count": 0, "flows": set()})
            item["count"] += 1
            item["question"] = str(question).strip()  # rows are in time order: the latest wording wins
            item["last_asked"] = _aware(row.at)
            item["flows"].add(flow)

    def top(bucket: dict[str, dict[str, Any]]) -> list[UnansweredQuestion]:
        ranked = sorted(bucket.values(), key=lambda i: (-i["count"], -i["last_asked"].timestamp(), i["question"]))
        return [UnansweredQuestion(question=i["question"], count=i["count"], last_asked=i["last_asked"],
                                   flows=sorted(i["flows"])) for i in ranked[:limit]]  # fmt: skip

    return top(overall), {flow: top(bucket) for flow, bucket in per_flow.items()}


def flow_stats(
    session: Session, *, since: datetime, limit: int = TOP_QUESTIONS
) -> tuple[list[FlowStats], list[UnansweredQuestion]]:
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for flow, channel, disposition in session.execute(
        select(Conversation.flow, Conversation.channel, Conversation.disposition)
        .where(Conversation.started_at >= since, Conversation.ended_at.is_not(None))
    ):  # fmt: skip
        key = (_flow_name(flow, channel), channel)
        counts[key]["ended"] += 1
        counts[key][disposition or "unknown"] += 1
    overall, per_flow = unanswered_questions(session, since=since, limit=limit)
    for flow in per_flow:
        counts.setdefault((flow, "webchat" if flow == "webchat" else "voice"), Counter())
    out = [
        FlowStats(
            flow=flow, channel=channel, ended=c["ended"], contained=c["contained"], transferred=c["transferred"],
            abandoned=c["abandoned"], voicemail=c["voicemail"], containment_rate=_ratio(c["contained"], c["ended"]),
            unanswered=per_flow.get(flow, []),
        )
        for (flow, channel), c in sorted(counts.items())
    ]  # fmt: skip
    return out, overall


def in_progress(session: Session, *, now: datetime) -> tuple[int, int]:
    """(voice conversations going on, web chats not closed), ignoring rows a crashed worker left open."""
    fresh = now - STALE_AFTER
    recent = select(func.count()).select_from(Conversation).where(Conversation.started_at >= fresh)
    calls = session.scalar(recent.where(Conversation.channel == "voice", Conversation.ended_at.is_(None)))
    chats = session.scalar(recent.where(Conversation.channel == "webchat", Conversation.status != "closed"))
    return calls or 0, chats or 0


def call_center_stats(session: Session, *, now: datetime | None = None, since: datetime | None = None,
                      limit: int = TOP_QUESTIONS) -> CallCenterStats:  # fmt: skip
    now = now or datetime.now(UTC)
    since = _aware(since) or now - DEFAULT_WINDOW
    calls, chats = in_progress(session, now=now)
    flows, unanswered = flow_stats(session, since=since, limit=limit)
    return CallCenterStats(
        at=now, since=since, agents=_by_state(session.scalars(select(Agent))), calls_in_progress=calls,
        chats_in_progress=chats, queues=queue_stats(session, now=now, since=since), flows=flows,
        unanswered=unanswered,
    )  # fmt: skip
