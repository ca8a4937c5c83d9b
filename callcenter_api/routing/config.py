"""The call center as a file: queues, agents and users, applied (created or updated) at start-up.

```yaml
queues:
  support: {required_skills: {support: 1}, ring_timeout: 20, wrap_up_seconds: 10, announce_period: 30}
  billing: {required_skills: {billing: 2}, overflow: {kind: voicemail}}
agents:
  - {name: Ann, sip_uri: "sip:ann@10.0.0.5", skills: {support: 3, billing: 2}, languages: [en], username: ann}
users:
  - {username: sue, role: supervisor}
```

Passwords never live in the file: a user's password comes from the environment variable named by
`password_env` (default `HOTLINE_PASSWORD_<USERNAME>`), and a user without one is created disabled until an
admin sets one. Agents are matched by name, queues by name, users by username; nothing is deleted.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter_api.models import Agent, Queue, User
from callcenter_api.people import create_user


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueConfig(_Strict):
    required_skills: dict[str, int] = Field(default_factory=dict)
    language: str | None = None
    priority: int = 0
    strategy: str = Field("longest_idle", pattern="^(longest_idle|round_robin)$")
    ring_timeout: int = Field(20, ge=3, le=120)
    max_wait: int = Field(600, ge=5, le=7200)
    max_size: int = Field(50, ge=1, le=10_000)
    overflow: dict[str, str] | None = None
    music: str | None = None
    announce_period: int = Field(30, ge=3, le=600)
    transfer: str = Field("bridge", pattern="^(bridge|refer)$")
    wrap_up_seconds: int = Field(10, ge=0, le=600)
    max_missed_offers: int = Field(2, ge=1, le=20)
    service_level_seconds: int = Field(20, ge=1, le=600)


class AgentConfig(_Strict):
    name: str = Field(min_length=1, max_length=200)
    sip_uri: str | None = Field(None, pattern=r"^sips?:")
    skills: dict[str, int] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=lambda: ["en"])
    max_chats: int = Field(3, ge=0, le=20)
    username: str | None = None
    password_env: str | None = None
    state: str = Field("offline", pattern="^(offline|available|break)$", description="state at start-up")


class UserConfig(_Strict):
    username: str
    role: str = Field(pattern="^(admin|supervisor|agent)$")
    display_name: str | None = None
    password_env: str | None = None


class CallCenterConfig(_Strict):
    queues: dict[str, QueueConfig] = Field(default_factory=dict)
    agents: list[AgentConfig] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)


class CallCenterConfigError(ValueError):
    pass


def load(path: Path) -> CallCenterConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CallCenterConfigError(f"{path}: {exc}") from None
    try:
        config = CallCenterConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CallCenterConfigError(f"{path}: {problems}") from None
    for name, queue in config.queues.items():
        if queue.music:  # relative to the file, so the file and its music can move together
            music = (path.parent / queue.music).resolve()
            if not music.is_file():
                raise CallCenterConfigError(f"{path}: queues.{name}.music: {music} does not exist")
            queue.music = str(music)
    return config


def _password(username: str, env: str | None) -> str | None:
    name = env or "HOTLINE_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", username.upper())
    return os.environ.get(name)


def _user(session: Session, username: str, role: str, display: str | None, env: str | None, now: datetime) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is not None:
        user.role = role
        return user
    password = _password(username, env)
    user = create_user(session, username, password or secrets.token_urlsafe(24), role=role, display_name=display,
                       now=now)  # fmt: skip
    user.disabled = password is None  # no password given: an admin must set one first
    return user


def apply(session: Session, config: CallCenterConfig, *, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    for name, spec in config.queues.items():
        queue = session.get(Queue, name) or Queue(name=name)
        for key, value in spec.model_dump().items():
            setattr(queue, key, value)
        session.add(queue)
    for spec in config.users:
        _user(session, spec.username, spec.role, spec.display_name, spec.password_env, now)
    for spec in config.agents:
        agent = session.scalar(select(Agent).where(Agent.name == spec.name))
        if agent is None:
            agent = Agent(id=uuid.uuid4().hex, name=spec.name, state=spec.state, state_since=now, missed_offers=0,
                          active_chats=0, last_idle_at=now if spec.state == "available" else None)  # fmt: skip
            session.add(agent)
        agent.sip_uri = spec.sip_uri
        agent.skills = spec.skills
        agent.languages = spec.languages
        agent.max_chats = spec.max_chats
        if spec.username:
            agent.user_id = _user(session, spec.username, "agent", spec.name, spec.password_env, now).id
    session.flush()
    return {"queues": len(config.queues), "agents": len(config.agents), "users": len(config.users)}


def summary(counts: dict[str, Any]) -> str:
    return ", ".join(f"{n} {what}" for what, n in counts.items())
