from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from supportdesk_gateway.api.deps import Context, CurrentSession
from supportdesk_gateway.api.schemas import (
    MAX_OFFSET,
    HistoryMessage,
    Problem,
    SessionCreate,
    SessionCreated,
    SessionInfo,
    problems,
)
from supportdesk_sessions.identity import IdentityMismatch

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])
# What every call on one session may answer (deps.py: CurrentSession).
SESSION_PROBLEMS = problems(400, 401, 403, 404, 422)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problems(400, 413, 422),
        403: {"model": Problem, "description": "user_hash was given and does not verify user_id"},
        429: {"model": Problem, "description": "too many sessions created from this address; see Retry-After"},
    },
)
async def create_session(body: SessionCreate, context: Context, request: Request) -> SessionCreated:
    """A new session, or with a verified user (user_id and its user_hash) and
    is_new_chat false, that user's active session with a new token. A user id
    without proof is ignored: it never recovers or repoints anything."""
    await context.limiter.check(context.settings.session_limit, context.clients.of(request.scope))
    try:
        user_id = context.sessions.identity.verified(body.user_id, body.user_hash)
    except IdentityMismatch as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    fingerprint = context.fingerprints.of(request.scope)
    recovered = None
    if user_id is not None and not body.is_new_chat:
        recovered = await context.sessions.recover(user_id, fingerprint)
    record, token = recovered or await context.sessions.create(user_id, fingerprint)
    return SessionCreated(
        session_id=record.session_id,
        token=token,
        message=context.settings.welcome_message,
        expires_at=record.expires_at,
        recovered=recovered is not None,
        verified=user_id is not None,
    )


@router.get("/{session_id}", responses=SESSION_PROBLEMS)
async def read_session(session: CurrentSession) -> SessionInfo:
    return SessionInfo(
        session_id=session.session_id,
        status=session.status,
        created_at=session.created_at,
        last_activity=session.last_activity,
        expires_at=session.expires_at,
        message_count=session.message_count,
        escalated=session.escalated,
        escalation_reason=session.escalation_reason,
        handoff=session.handoff,
        operator=session.operator,
    )


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=SESSION_PROBLEMS)
async def delete_session(session: CurrentSession, context: Context) -> Response:
    await context.sessions.delete(session.session_id)
    # Its sockets here close now; other replicas' within a sweep (sweeper.py).
    context.hub.end_session(session.session_id)
    await context.events.session_closed(session.session_id, "deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{session_id}/messages", responses=SESSION_PROBLEMS)
async def read_messages(
    session: CurrentSession,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[HistoryMessage]:
    messages = await context.sessions.history(session.session_id, limit, offset)
    return [HistoryMessage.model_validate(m) for m in messages]
