"""A user's attachments: files that are context for their own conversation
only (parsed and embedded by the ingest worker, never indexed)."""

import hashlib

from fastapi import APIRouter, HTTPException, Request, status

from supportdesk_contracts.events import AttachmentUploaded
from supportdesk_gateway.api.deps import Context, CurrentSession
from supportdesk_gateway.api.schemas import AttachmentInfo, problems
from supportdesk_gateway.api.uploads import UPLOAD_BODY, read_upload
from supportdesk_sessions.attachments import TooManyAttachments

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/attachments",
    tags=["attachments"],
    responses=problems(400, 401, 403, 404),
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=problems(409, 413, 415, 422),
)
async def attach_file(request: Request, session: CurrentSession, context: Context) -> AttachmentInfo:
    if context.settings.attachments_per_session < 1:
        raise HTTPException(status.HTTP_409_CONFLICT, "this service accepts no attachments")
    # Counted as a message: an attachment costs what a turn costs, and more.
    await context.limiter.check(context.settings.message_limit, session.session_id)
    upload = await read_upload(request, context.settings.max_upload_bytes)
    sha256 = hashlib.sha256(upload.data).hexdigest()
    try:
        record = await context.attachments.queue(
            session.session_id,
            upload.filename,
            upload.content_type,
            sha256,
            upload.data,
            context.settings.attachments_per_session,
        )
    except TooManyAttachments as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found or expired")
    event = AttachmentUploaded(
        session_id=session.session_id,
        attachment_id=record.attachment_id,
        filename=record.filename,
        content_type=record.content_type,
        size=record.size,
        sha256=sha256,
    )
    try:
        await context.events.attachment_uploaded(event)
    except BaseException:
        # Never announced, never read: it must not hold one of the session's places.
        await context.attachments.discard(session.session_id, record.attachment_id)
        raise
    return AttachmentInfo.model_validate(record.as_dict())


@router.get("")
async def list_attachments(session: CurrentSession, context: Context) -> list[AttachmentInfo]:
    return [AttachmentInfo.model_validate(r.as_dict()) for r in await context.attachments.records(session.session_id)]


@router.get("/{attachment_id}")
async def read_attachment(attachment_id: str, session: CurrentSession, context: Context) -> AttachmentInfo:
    record = await context.attachments.get(session.session_id, attachment_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "attachment not found")
    return AttachmentInfo.model_validate(record.as_dict())
