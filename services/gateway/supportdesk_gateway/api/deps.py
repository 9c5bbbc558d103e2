"""Request dependencies, as Annotated aliases routes declare."""

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.fingerprints import FingerprintMismatch
from supportdesk_platform.logs import bind
from supportdesk_sessions.records import SessionRecord, is_session_id


def _context(request: Request) -> GatewayContext:
    context: GatewayContext = request.app.state.context
    return context


Context = Annotated[GatewayContext, Depends(_context)]


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


async def _current_session(
    session_id: str, context: Context, request: Request, authorization: Annotated[str | None, Header()] = None
) -> SessionRecord:
    token = bearer(authorization)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token of this session is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not is_session_id(session_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid session id")
    record = await context.sessions.get(session_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found or expired")
    if not await context.sessions.verify_token(session_id, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "token does not belong to this session")
    try:
        context.fingerprints.check(record.fingerprint, request.scope, session_id)
    except FingerprintMismatch as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    bind(session_id=session_id)
    return record


CurrentSession = Annotated[SessionRecord, Depends(_current_session)]


async def _require_admin(context: Context, authorization: Annotated[str | None, Header()] = None) -> None:
    token = bearer(authorization)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "admin key required", headers={"WWW-Authenticate": "Bearer"})
    expected = context.settings.admin_api_key.get_secret_value()
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong admin key")


AdminKey = Depends(_require_admin)
