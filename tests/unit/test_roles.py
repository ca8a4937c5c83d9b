"""Roles through the real app (SQLite and PostgreSQL), with sign-in tokens from `POST /api/v1/auth/login` and
real WAV files: an agent sees only their own offers, conversations and recordings and gets 403 on supervisor
routes; supervisors see everything; only admins manage users. Then `hotline users add/passwd/list`.

(tests/unit/test_stats_and_roles.py covers the agent's live WebSocket, the screen-pop and wrap-up in depth.)
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from callcenter_api.app import create_app
from callcenter_api.events import EventHub
from callcenter_api.models import Agent, Conversation, Queue, Recording, User
from callcenter_api.people import create_user
from callcenter_api.routing.router import Router
from hotline.cli import main
from recordings.writer import RecordingWriter

ADMIN = "roles-admin-token"
PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
QUEUE = {
    "required_skills": {}, "language": None, "priority": 0, "strategy": "longest_idle", "ring_timeout": 20,
    "max_wait": 600, "max_size": 50, "overflow": None, "music": None, "announce_period": 30, "transfer": "bridge",
    "wrap_up_seconds": 10, "max_missed_offers": 2, "service_level_seconds": 20,
}  # fmt: skip


@dataclass
class World:
    client: TestClient
    router: Router
    factory: sessionmaker[Session]
    tokens: dict[str, str]
    offers: dict[str, str]  # agent -> the conversation offered to them
    recordings: dict[str, str]  # conversation -> its recording's id

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str) -> object:
        return self.client.get(path, headers=self.headers(who))


def _wav(writer: RecordingWriter, conversation_id: str, freq: float) -> tuple[str, str]:
    recording = writer.open(conversation_id, kind="call", channels=2)
    tone = (8000 * np.sin(2 * np.pi * freq * np.arange(160) / 8000)).astype(np.int16)
    for _ in range(50):
        recording.write(tone, tone)
    info = recording.close()
    return info.recording_id, info.path


@pytest.fixture
def world(session_factory: sessionmaker[Session], tmp_path: Path) -> Iterator[World]:
    writer = RecordingWriter(tmp_path / "recordings")
    with session_factory() as s, s.begin():
        s.add(Queue(name="support", **QUEUE))
        people = (("ann", "agent"), ("bob", "agent"), ("sue", "supervisor"), ("ada", "admin"))
        users = {name: create_user(s, name, PASSWORD, role=role).id for name, role in people}
        for name in ("ann", "bob"):
            s.add(Agent(id=name, name=name.title(), sip_uri=f"sip:{name}@127.0.0.1", skills={}, languages=["en"],
                        max_chats=2, state="available", state_since=T0, missed_offers=0, active_chats=0,
                        user_id=users[name], last_idle_at=T0))  # fmt: skip
        for cid in ("conv1", "conv2", "conv3"):
            s.add(Conversation(id=cid, contact_id=None, channel="voice", started_at=T0, status="bot"))
        s.flush()
        recordings = {}
        for cid, freq in (("conv1", 440.0), ("conv2", 660.0), ("conv3", 880.0)):
            recording_id, path = _wav(writer, cid, freq)
            s.add(Recording(id=recording_id, conversation_id=cid, kind="call", path=path, created_at=T0, seconds=1.0))
            recordings[cid] = recording_id
    writer.drain()
    hub = EventHub()
    router = Router(session_factory, worker="w1", publish=hub.publish)
    for cid in ("conv1", "conv2", "conv3"):
        router.enqueue("support", cid, channel="voice")
    offers = {offer.agent_id: offer.conversation_id for offer in router.reserve()}  # conv3 stays waiting
    assert len(offers) == 2
    app = create_app(session_factory=session_factory, admin_token=ADMIN, hub=hub, router=router,
                     recordings_dir=tmp_path / "recordings")  # fmt: skip
    with TestClient(app) as client:
        tokens = {"admin": ADMIN}
        for name in ("ann", "bob", "sue", "ada"):
            response = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            assert response.status_code == 200, response.text
            tokens[name] = response.json()["token"]
        yield World(client, router, session_factory, tokens, offers, recordings)


def _channels(data: bytes) -> int:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels()


def test_an_agent_sees_only_their_own_offers_conversations_and_recordings(world: World) -> None:
    mine, theirs = world.offers["ann"], world.offers["bob"]
    offers = world.client.get("/api/v1/agents/me/offers", headers=world.headers("ann")).json()
    assert [o["conversation_id"] for o in offers] == [mine]
    listed = world.client.get("/api/v1/conversations", headers=world.headers("ann")).json()
    assert [c["id"] for c in listed] == [mine]
    detail = world.client.get(f"/api/v1/conversations/{mine}", headers=world.headers("ann"))
    assert detail.status_code == 200
    assert [r["id"] for r in detail.json()["recordings"]] == [world.recordings[mine]]
    for cid in (theirs, "conv3"):  # another agent's, and one offered to nobody yet
        assert world.client.get(f"/api/v1/conversations/{cid}", headers=world.headers("ann")).status_code == 404

    own = world.client.get(f"/api/v1/recordings/{world.recordings[mine]}", headers=world.headers("ann"))
    assert own.status_code == 200 and own.headers["content-type"] == "audio/wav" and _channels(own.content) == 2
    for cid in (theirs, "conv3"):
        refused = world.client.get(f"/api/v1/recordings/{world.recordings[cid]}", headers=world.headers("ann"))
        assert refused.status_code == 404, refused.text  # not even told that it exists
    assert world.client.get(f"/api/v1/recordings/{world.recordings[mine]}").status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert world.client.get(f"/api/v1/recordings/{world.recordings[mine]}", headers=bad).status_code == 401


@pytest.mark.parametrize("who", ["sue", "ada", "admin"])
def test_supervisors_and_admins_see_every_conversation_and_recording(world: World, who: str) -> None:
    listed = {c["id"] for c in world.client.get("/api/v1/conversations", headers=world.headers(who)).json()}
    assert listed == {"conv1", "conv2", "conv3"}
    for cid, recording_id in world.recordings.items():
        assert world.client.get(f"/api/v1/conversations/{cid}", headers=world.headers(who)).status_code == 200
        response = world.client.get(f"/api/v1/recordings/{recording_id}", headers=world.headers(who))
        assert response.status_code == 200 and _channels(response.content) == 2


# More supervisor routes than test_stats_and_roles.py checks (agents, queues, stats, calls), with the answer a
# supervisor gets: the route's own (Bob's phone is ringing, so he cannot be put on break: 409).
SUPERVISOR_ROUTES = [
    ("POST", "/api/v1/agents", {"name": "Eve"}, 201),
    ("POST", "/api/v1/agents/bob/state", {"state": "break"}, 409),
    ("GET", "/api/v1/contacts?phone=%2B447700900123", None, 200),
    ("GET", "/api/v1/flows", None, 200),
]


@pytest.mark.parametrize(("method", "path", "body", "supervisor_gets"), SUPERVISOR_ROUTES)
def test_agents_get_403_on_supervisor_routes(
    world: World, method: str, path: str, body: object, supervisor_gets: int
) -> None:
    refused = world.client.request(method, path, json=body, headers=world.headers("ann"))
    assert refused.status_code == 403, refused.text
    assert world.client.request(method, path, json=body).status_code == 401  # no token at all
    allowed = world.client.request(method, path, json=body, headers=world.headers("sue"))
    assert allowed.status_code == supervisor_gets, allowed.text


def test_only_admins_manage_users(world: World) -> None:
    new = {"username": "carl", "password": "another long one", "role": "agent"}
    for who in ("ann", "sue"):
        assert world.client.get("/api/v1/users", headers=world.headers(who)).status_code == 403
        assert world.client.post("/api/v1/users", json=new, headers=world.headers(who)).status_code == 403
    assert world.client.post("/api/v1/users", json=new).status_code == 401
    with world.factory() as session:
        assert session.scalar(select(User).where(User.username == "carl")) is None  # nothing was created

    created = world.client.post("/api/v1/users", json=new, headers=world.headers("ada"))  # a signed-in admin
    assert created.status_code == 201 and created.json()["role"] == "agent", created.text
    again = world.client.post("/api/v1/users", json={**new, "role": "admin"}, headers=world.headers("admin"))
    assert again.status_code == 409
    user_id = created.json()["id"]
    promote = {"role": "supervisor"}
    for who in ("ann", "sue"):
        response = world.client.patch(f"/api/v1/users/{user_id}", json=promote, headers=world.headers(who))
        assert response.status_code == 403
    assert world.client.patch(f"/api/v1/users/{user_id}", json=promote, headers=world.headers("admin")).json()[
        "role"] == "supervisor"  # fmt: skip
    login = world.client.post("/api/v1/auth/login", json={"username": "carl", "password": new["password"]})
    assert login.status_code == 200 and login.json()["role"] == "supervisor"
    names = [u["username"] for u in world.client.get("/api/v1/users", headers=world.headers("admin")).json()]
    assert names == ["ada", "ann", "bob", "carl", "sue"]


# ---- hotline users ----------------------------------------------------------------------------------------------


def test_the_users_command_adds_users_and_sets_passwords(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hotline.db'}"
    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "sue", "--role", "supervisor", "--password-stdin", "--db", db],
                          input="s3cret-enough\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added supervisor sue") and "s3cret" not in added.output
    agent = runner.invoke(main, ["users", "add", "ann", "--role", "agent", "--display-name", "Ann Agent",
                                 "--password-stdin", "--db", db], input="ann-password\r\n")  # fmt: skip
    assert agent.exit_code == 0, agent.output

    refused = [
        (["users", "add", "sue", "--role", "agent", "--password-stdin"], "pw-long-enough\n", "exists"),
        (["users", "add", "bo", "--role", "owner", "--password-stdin"], "pw-long-enough\n", "Invalid value"),
        (["users", "add", "bo", "--role", "agent", "--password-stdin"], "short\n", "at least 8"),
        (["users", "add", "bo", "--role", "agent", "--password-stdin"], "\n", "no password"),
        (["users", "add", "bo", "--role", "agent"], "", "use --password-stdin"),  # no terminal to ask on
        (["users", "passwd", "nobody", "--password-stdin"], "pw-long-enough\n", "no user"),
    ]
    for args, stdin, message in refused:
        result = runner.invoke(main, [*args, "--db", db], input=stdin)
        assert result.exit_code != 0 and message in result.output, (args, result.output)

    from callcenter_api.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(db))
    app = create_app(session_factory=factory, admin_token=ADMIN)
    with TestClient(app) as client:

        def login(username: str, password: str) -> int:
            return client.post("/api/v1/auth/login", json={"username": username, "password": password}).status_code

        assert login("sue", "s3cret-enough") == 200 and login("ann", "ann-password") == 200  # "\r\n" stripped
        token = client.post("/api/v1/auth/login", json={"username": "sue", "password": "s3cret-enough"}).json()["token"]
        assert (
            client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["role"] == "supervisor"
        )
        with factory() as session, session.begin():  # as if the call-center file created it without a password
            session.scalar(select(User).where(User.username == "ann")).disabled = True  # type: ignore[union-attr]
        assert login("ann", "ann-password") == 401

        changed = runner.invoke(
            main, ["users", "passwd", "sue", "--password-stdin", "--db", db], input="new-secret-1\n"
        )
        assert changed.exit_code == 0 and changed.output.strip() == "password of sue changed", changed.output
        assert login("sue", "s3cret-enough") == 401 and login("sue", "new-secret-1") == 200
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        enabled = runner.invoke(main, ["users", "passwd", "ann", "--password-stdin", "--db", db], input="ann-again-1\n")
        assert enabled.exit_code == 0 and "(account enabled)" in enabled.output
        assert login("ann", "ann-again-1") == 200

    with factory() as session:
        ann = session.scalar(select(User).where(User.username == "ann"))
        assert ann is not None and ann.display_name == "Ann Agent" and ann.role == "agent"
    listed = runner.invoke(main, ["users", "list", "--db", db])
    assert listed.exit_code == 0 and listed.output.splitlines() == ["ann\tagent", "sue\tsupervisor"], listed.output
