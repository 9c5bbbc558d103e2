"""Request dependencies, as Annotated aliases routes declare."""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.fingerprints import FingerprintMismatch
from supportdesk_platform.logs import bind
from supportdesk_sessions.records import SessionRecord, is_session_id


def _context(request: Request) -> GatewayContext:
    context: GatewayContext = request.app.state.context
    return context


Context = Annotated[GatewayContext, Depends(_context)]


# Declared as security schemes, so the OpenAPI document says which calls take
# a session's token and which the admin key (and no client sends it as data).
# Not auto_error: a missing token is answered below, with our words.
_session_token = HTTPBearer(scheme_name="sessionToken", description="The token of the session.", auto_error=False)
_admin_key = HTTPBearer(scheme_name="adminKey", description="The operator's ADMIN_API_KEY.", auto_error=False)
Bearer = HTTPAuthorizationCredentials | None


def bearer(credentials: Bearer) -> str | None:
    if credentials is None:
        return None
    return credentials.credentials.strip() or None


async def _current_session(
    session_id: str,
    context: Context,
    request: Request,
    credentials: Annotated[Bearer, Depends(_session_token)],
) -> SessionRecord:
    token = bearer(credentials)
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


async def _require_admin(context: Context, credentials: Annotated[Bearer, Depends(_admin_key)]) -> None:
    token = bearer(credentials)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "admin key required", headers={"WWW-Authenticate": "Bearer"})
    expected = context.settings.admin_api_key.get_secret_value()
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong admin key")


AdminKey = Depends(_require_admin)


_operator_key = HTTPBearer(
    scheme_name="operatorKey", description="A human agent's key (OPERATOR_KEYS) or the admin key.", auto_error=False
)


async def _current_operator(context: Context, credentials: Annotated[Bearer, Depends(_operator_key)]) -> str:
    """The name of the human agent acting."""
    token = bearer(credentials)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "operator key required", headers={"WWW-Authenticate": "Bearer"}
        )
    for key, name in context.settings.operators().items():
        if hmac.compare_digest(token.encode(), key.encode()):
            return name
    raise HTTPException(status.HTTP_403_FORBIDDEN, "not an operator key")


CurrentOperator = Annotated[str, Depends(_current_operator)]
