"""Reading Server-Sent Events from an httpx streaming response."""

import json
from typing import Any

import httpx


async def read_events(stream: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) pairs, in the order they arrived."""
    events: list[tuple[str, dict[str, Any]]] = []
    event = None
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            events.append((event, json.loads(line[6:])))
    return events
