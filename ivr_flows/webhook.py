"""The `http` node's request: templated, time-limited, async (never blocks the media path).

Outcome: "ok" for a 2xx response (JSON decoded when it is JSON), "timeout" when no response came in time,
"error" for anything else (connection refused, non-2xx status, a body that `map:` needs but is not JSON).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from ivr_flows.schema import HttpAction
from ivr_flows.templating import render, render_value

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


async def call_webhook(
    spec: HttpAction, variables: dict[str, Any], *, client: httpx.AsyncClient | None = None
) -> tuple[str, dict[str, Any]]:
    url = render(spec.url, variables)
    headers = {name: render(value, variables) for name, value in spec.headers.items()}
    body = render_value(spec.json_body, variables) if spec.json_body is not None else None
    owns = client is None
    client = client or httpx.AsyncClient()
    try:
        # httpx's timeout limits each phase; wait_for makes `timeout` bound the whole exchange (slow bodies too)
        response = await asyncio.wait_for(
            client.request(spec.method, url, headers=headers, json=body, timeout=httpx.Timeout(spec.timeout)),
            spec.timeout,
        )
    except (httpx.TimeoutException, TimeoutError):
        log.info("webhook %s %s timed out after %.1f s", spec.method, url, spec.timeout)
        return "timeout", {"status": None, "json": None, "text": "", "error": "timeout"}
    except Exception as exc:  # bad URLs, refused connections, TLS errors: all the flow's `error` exit
        log.info("webhook %s %s failed: %s", spec.method, url, exc)
        return "error", {"status": None, "json": None, "text": "", "error": str(exc) or type(exc).__name__}
    finally:
        if owns:
            await client.aclose()
    text = response.text[:MAX_BODY]
    try:
        data = json.loads(text) if text.strip() else None
        is_json = True
    except ValueError:
        data, is_json = None, False
    stored = {"status": response.status_code, "json": data, "text": text, "error": None}
    if not response.is_success:
        stored["error"] = f"HTTP {response.status_code}"
        return "error", stored
    if spec.map and not is_json:
        stored["error"] = "response is not JSON"
        return "error", stored
    return "ok", stored
