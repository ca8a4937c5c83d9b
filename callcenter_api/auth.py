"""Bearer-token authentication for the API.

A single admin token is enough for the walking skeleton; agents and roles come later. The token check is
a dependency so every router that includes it is protected and documented in OpenAPI the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="The admin token configured for this hotline.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def require_token(admin_token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    """Build the dependency that accepts only `Authorization: Bearer <admin_token>`."""
    if not admin_token:
        raise ValueError("admin_token must not be empty")
    expected = admin_token.encode()

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None:
            raise _unauthorized("missing bearer token (send 'Authorization: Bearer <token>')")
        # Constant-time comparison so response timing does not reveal how much of a guess was right.
        if not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise _unauthorized("invalid bearer token")

    return check
