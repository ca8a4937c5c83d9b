"""Who is calling the API, and whether their role allows the route.

Two kinds of bearer token: the admin token configured for the service (automation; acts as an admin) and
the tokens users get by signing in (`POST /api/v1/auth/login`). Routers declare the roles they admit with
`require(...)`; routes that agents may use also check ownership (an agent sees only their own offers and
conversations) with the `Principal` they are given.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from callcenter_api.people import ADMIN_TOKEN_PRINCIPAL, Principal, principal_for

_bearer = HTTPBearer(auto_error=False, description="The admin token, or a token from POST /api/v1/auth/login.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def resolve(app_state: object, token: str) -> Principal | None:
    """The principal behind a token (admin token or a user's), or None."""
    expected: str = app_state.admin_token  # type: ignore[attr-defined]
    if secrets.compare_digest(token.encode(), expected.encode()):  # constant time: no guessing by timing
        return ADMIN_TOKEN_PRINCIPAL
    with app_state.session_factory() as session:  # type: ignore[attr-defined]
        return principal_for(session, token)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Async, so the admin token (automation, most API traffic) costs no worker-thread hop; a user's token
    is looked up in the database in a worker thread."""
    if credentials is None:
        raise _unauthorized("missing bearer token (send 'Authorization: Bearer <token>')")
    state = request.app.state
    if secrets.compare_digest(credentials.credentials.encode(), state.admin_token.encode()):
        return ADMIN_TOKEN_PRINCIPAL
    principal = await run_in_threadpool(resolve, state, credentials.credentials)
    if principal is None:
        raise _unauthorized("invalid or expired bearer token")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency admitting only these roles (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:  # async: a role check needs no thread
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"needs role {' or '.join(roles)}")
        return principal

    return check


def websocket_principal(websocket: WebSocket, token: str | None) -> Principal | None:
    """Browsers cannot set headers on WebSockets, so they pass the token as `?token=`."""
    if not token:
        return None
    return resolve(websocket.app.state, token)


def require_token(admin_token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    """Only `Authorization: Bearer <admin_token>` (kept for embedders that mount single routers)."""
    if not admin_token:
        raise ValueError("admin_token must not be empty")
    expected = admin_token.encode()

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None:
            raise _unauthorized("missing bearer token (send 'Authorization: Bearer <token>')")
        if not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise _unauthorized("invalid bearer token")

    return check
