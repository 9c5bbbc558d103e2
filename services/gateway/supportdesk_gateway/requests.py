"""Every HTTP request has an id: the client's `X-Request-ID` when it is a
sane one, a new one otherwise. It is returned in the response, bound to every
log line of the request, and quoted by the error handler, so a user's
"it failed" can be found in the logs."""

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
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
