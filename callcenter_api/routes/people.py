"""Sign-in, and users (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter_api.auth import PrincipalDep, require
from callcenter_api.deps import SessionDep
from callcenter_api.models import User
from callcenter_api.people import InvalidCredentials, UserExists, create_user, set_password, sign_in, sign_out
from callcenter_api.schemas import ErrorOut

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(require("admin"))])
_bearer = HTTPBearer(auto_error=False)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1000)


class MeOut(BaseModel):
    username: str
    role: str = Field(description="admin, supervisor or agent")
    user_id: str | None
    agent_id: str | None = Field(description="set when this user is an agent")


class LoginOut(MeOut):
    token: str = Field(description="send as 'Authorization: Bearer <token>'; valid 12 hours")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=120)
    password: str = Field(min_length=8, max_length=1000)
    role: str = Field(pattern="^(admin|supervisor|agent)$")
    display_name: str | None = Field(None, max_length=200)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(None, min_length=8, max_length=1000)
    role: str | None = Field(None, pattern="^(admin|supervisor|agent)$")
    display_name: str | None = Field(None, max_length=200)
    disabled: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    display_name: str
    role: str
    created_at: datetime
    disabled: bool


@auth_router.post("/login", summary="Sign in (no token needed)",
                  responses={status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut}})  # fmt: skip
def login(body: LoginIn, session: SessionDep) -> LoginOut:
    try:
        with session.begin():
            token, user = sign_in(session, body.username, body.password)
    except InvalidCredentials as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc)) from None
    from callcenter_api.people import principal_for

    principal = principal_for(session, token)
    assert principal is not None
    return LoginOut(token=token, username=user.username, role=user.role, user_id=user.id,
                    agent_id=principal.agent_id)  # fmt: skip


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out (this token)")
def logout(
    session: SessionDep, principal: PrincipalDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:  # fmt: skip
    if credentials is not None and principal.user_id is not None:
        with session.begin():
            sign_out(session, credentials.credentials)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth_router.get("/me", summary="Who this token is")
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(username=principal.username, role=principal.role, user_id=principal.user_id,
                 agent_id=principal.agent_id)  # fmt: skip


@users_router.get("", summary="List users")
def list_users(session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in session.scalars(select(User).order_by(User.username))]


@users_router.post("", status_code=status.HTTP_201_CREATED, summary="Add a user",
                   responses={status.HTTP_409_CONFLICT: {"model": ErrorOut}})  # fmt: skip
def add_user(body: UserIn, session: SessionDep) -> UserOut:
    try:
        with session.begin():
            user = create_user(session, body.username, body.password, role=body.role,
                               display_name=body.display_name, now=datetime.now(UTC))  # fmt: skip
    except UserExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return UserOut.model_validate(user)


@users_router.patch("/{user_id}", summary="Change a user (password, role, name, disabled)",
                    responses={status.HTTP_404_NOT_FOUND: {"model": ErrorOut}})  # fmt: skip
def change_user(user_id: str, body: UserPatch, session: SessionDep) -> UserOut:
    with session.begin():
        user = session.get(User, user_id)
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"user {user_id} not found")
        if body.password is not None:
            set_password(session, user, body.password)
        if body.role is not None:
            user.role = body.role
        if body.display_name is not None:
            user.display_name = body.display_name
        if body.disabled is not None:
            user.disabled = body.disabled
    return UserOut.model_validate(user)
