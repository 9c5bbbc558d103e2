from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from supportdesk_gateway.api.deps import Context, CurrentSession
from supportdesk_gateway.api.schemas import HistoryMessage, SessionCreate, SessionCreated, SessionInfo

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_session(body: SessionCreate, context: Context) -> SessionCreated:
    recovered = None
    if body.user_id is not None and not body.is_new_chat:
        recovered = await context.sessions.recover(body.user_id)
    record, token = recovered or await context.sessions.create(body.user_id)
    return SessionCreated(
        session_id=record.session_id,
        token=token,
        message=context.settings.welcome_message,
        expires_at=record.expires_at,
        recovered=recovered is not None,
    )


@router.get("/{session_id}")
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
    )


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(session: CurrentSession, context: Context) -> Response:
    await context.sessions.delete(session.session_id)
    await context.events.session_closed(session.session_id, "deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{session_id}/messages")
async def read_messages(
    session: CurrentSession,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[HistoryMessage]:
    messages = await context.sessions.history(session.session_id, limit, offset)
    return [HistoryMessage.model_validate(m) for m in messages]
