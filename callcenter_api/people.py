"""Users, passwords and sign-in tokens; who a request is (`Principal`) and what their role lets them do.

Passwords are hashed with argon2id (argon2-cffi). A sign-in gives a random token; only its sha256 is
stored, with an expiry. The admin token from the walking skeleton stays valid for automation and acts as
an admin.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callcenter_api.models import Agent, AuthToken, User

ROLES = ("admin", "supervisor", "agent")
TOKEN_LIFETIME = timedelta(hours=12)
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,119}")
_hasher = PasswordHasher()


class InvalidCredentials(PermissionError):
    pass


class UserExists(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is asking. `agent_id` is set for users who are agents (their own offers and conversations)."""

    role: str
    username: str
    user_id: str | None = None
    agent_id: str | None = None

    @property
    def sees_everything(self) -> bool:
        return self.role in ("admin", "supervisor")


ADMIN_TOKEN_PRINCIPAL = Principal("admin", "admin-token")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> None:
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")


def create_user(
    session: Session, username: str, password: str, *, role: str, display_name: str | None = None,
    now: datetime | None = None,
) -> User:  # fmt: skip
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not _USERNAME.fullmatch(username):
        raise ValueError("usernames are 2-120 letters, digits, '.', '_', '@' or '-'")
    check_password(password)
    if session.scalar(select(User.id).where(User.username == username)):
        raise UserExists(f"user {username!r} exists")
    user = User(
        id=uuid.uuid4().hex, username=username, display_name=display_name or username, role=role,
        password_hash=_hasher.hash(password), created_at=now or datetime.now(UTC), disabled=False,
    )  # fmt: skip
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    check_password(password)
    user.password_hash = _hasher.hash(password)
    session.execute(delete(AuthToken).where(AuthToken.user_id == user.id))  # sign out everywhere


def sign_in(session: Session, username: str, password: str, *, now: datetime | None = None) -> tuple[str, User]:
    """A new token for the user; `InvalidCredentials` with one message for every failure (no user probing)."""
    now = now or datetime.now(UTC)
    user = session.scalar(select(User).where(User.username == username))
    try:
        if user is None or user.disabled:
            raise VerificationError("unknown or disabled")
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials("wrong username or password") from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    expires = now + TOKEN_LIFETIME
    session.add(AuthToken(token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=expires))
    session.execute(delete(AuthToken).where(AuthToken.user_id == user.id, AuthToken.expires_at < now))
    return token, user


def sign_out(session: Session, token: str) -> None:
    session.execute(delete(AuthToken).where(AuthToken.token_hash == token_hash(token)))


def principal_for(session: Session, token: str, *, now: datetime | None = None) -> Principal | None:
    now = now or datetime.now(UTC)
    row = session.execute(
        select(User, AuthToken.expires_at).join(AuthToken, AuthToken.user_id == User.id)
        .where(AuthToken.token_hash == token_hash(token))
    ).first()  # fmt: skip
    if row is None:
        return None
    user, expires = row
    if expires < now or user.disabled:
        return None
    agent_id = session.scalar(select(Agent.id).where(Agent.user_id == user.id))
    return Principal(user.role, user.username, user.id, agent_id)
