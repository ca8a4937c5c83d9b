"""Reading YAML documents uploaded as a request body (flows, knowledge files)."""

from __future__ import annotations

import json

from fastapi import HTTPException, Request, status

YAML_TYPES = frozenset(["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"])


async def read_yaml_body(request: Request, *, what: str, max_bytes: int) -> str:
    """The uploaded YAML, from a YAML/text body or JSON {"source": ...}.

    Read in chunks and capped, so one request cannot make the service hold an arbitrarily large body.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in YAML_TYPES and content_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f'send the {what} as Content-Type: application/yaml or text/plain, or JSON {{"source": ...}}',
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            too_big = f"a {what} is at most {max_bytes} bytes"
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=too_big)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"not UTF-8: {exc}") from None
    if content_type != "application/json":
        return text
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"invalid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("source"), str) or set(data) != {"source"}:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f'a JSON body must be {{"source": "<{what} YAML>"}}'
        )
    source: str = data["source"]
    return source
