"""The operator's knowledge base: upload, list, read and delete documents."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from starlette.datastructures import UploadFile

from supportdesk_contracts.events import DOCUMENT_EXTENSIONS, DocumentUploaded
from supportdesk_documents.registry import document_id_for
from supportdesk_gateway.api.deps import AdminKey, Context
from supportdesk_gateway.api.schemas import MAX_OFFSET, DocumentAccepted, DocumentInfo, problems

router = APIRouter(
    prefix="/api/v1/documents", tags=["documents"], dependencies=[AdminKey], responses=problems(401, 403)
)


# The multipart body is read by the handler, not declared as a parameter:
# FastAPI reads declared bodies before it runs dependencies, so an anonymous
# client could make the gateway parse a large upload before the admin check.
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=problems(400, 413, 415, 422),
)
async def upload_document(request: Request, context: Context) -> DocumentAccepted:
    # Closing the form removes the spooled upload at once.
    async with request.form(max_files=1, max_fields=1) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a multipart field `file` is required")
        filename = (file.filename or "").strip()
        content_type = file.content_type or "application/octet-stream"
        data = await _checked_bytes(file, filename, context.settings.max_upload_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    document_id = document_id_for(sha256)
    await context.documents.queue(document_id, filename, content_type, sha256, data)
    await context.events.document_uploaded(
        DocumentUploaded(
            document_id=document_id,
            filename=filename,
            content_type=content_type,
            size=len(data),
            sha256=sha256,
            blob_key=context.documents.blob_key(document_id),
        )
    )
    return DocumentAccepted(document_id=document_id)


async def _checked_bytes(file: UploadFile, filename: str, limit: int) -> bytes:
    if not filename.lower().endswith(DOCUMENT_EXTENSIONS):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"supported file types: {', '.join(DOCUMENT_EXTENSIONS)}"
        )
    # Read one byte past the limit: enough to know it is too large without
    # holding an arbitrarily large body in memory.
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"files are limited to {limit} bytes")
    if not data:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the file is empty")
    return data


@router.get("", responses=problems(422))
async def list_documents(
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[DocumentInfo]:
    return [DocumentInfo.model_validate(r.as_dict()) for r in await context.documents.list(limit, offset)]


@router.get("/{document_id}", responses=problems(404))
async def read_document(document_id: str, context: Context) -> DocumentInfo:
    record = await context.documents.get(document_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "document not found")
    return DocumentInfo.model_validate(record.as_dict())


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
async def delete_document(document_id: str, context: Context) -> Response:
    if await context.documents.get(document_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "document not found")
    await context.events.document_deleted(document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
