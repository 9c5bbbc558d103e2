"""Every HTTP request has an id: the client's `X-Request-ID` when it is a
sane one, a new one otherwise. It is returned in the response, bound to every
log line of the request, and quoted by the error handler, so a user's
"it failed" can be found in the logs."""

import json
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk_platform.logs import bind

HEADER = "X-Request-ID"
SCOPE_KEY = "supportdesk.request_id"
# Ids are echoed into headers and logs: a bounded, harmless alphabet only.
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(scope: Scope) -> str | None:
    value = scope.get(SCOPE_KEY)
    return value if isinstance(value, str) else None


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER.lower(), "")
        request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex
        scope[SCOPE_KEY] = request_id
        bind(request_id=request_id)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, with_id)


def _is_json(start: Message) -> bool:
    return Headers(raw=start.get("headers", [])).get("content-type", "").startswith("application/json")


class JsonTooLarge:
    """Starlette's body limit answers a declared Content-Length over the limit
    by itself, in plain text, before any exception handler runs: that 413 is
    rewritten into the JSON problem every other error is (found by the
    fuzzing pass: the 413 did not match the documented content type)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None

        async def as_json(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] == 413 and not _is_json(message):
                held = message
                return
            if held is None:
                await send(message)
                return
            if message.get("more_body"):
                return  # the plain text is replaced whole
            limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            detail = f"the request body is larger than the {limit} bytes allowed here"
            body = json.dumps({"detail": detail}).encode()
            headers = MutableHeaders(raw=list(held.get("headers", [])))
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(body))
            await send({**held, "headers": headers.raw})
            await send({"type": "http.response.body", "body": body})
            held = None

        await self.app(scope, receive, as_json)
