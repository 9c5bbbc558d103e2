"""The operator's knowledge base: upload, list, read and delete documents."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from supportdesk_contracts.events import DocumentUploaded
from supportdesk_documents.registry import document_id_for
from supportdesk_gateway.api.deps import AdminKey, Context
from supportdesk_gateway.api.schemas import MAX_OFFSET, DocumentAccepted, DocumentInfo, problems
from supportdesk_gateway.api.uploads import UPLOAD_BODY, read_upload

router = APIRouter(
    prefix="/api/v1/documents", tags=["documents"], dependencies=[AdminKey], responses=problems(401, 403)
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=problems(400, 413, 415, 422),
)
async def upload_document(request: Request, context: Context) -> DocumentAccepted:
    upload = await read_upload(request, context.settings.max_upload_bytes)
    filename, content_type, data = upload.filename, upload.content_type, upload.data
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
