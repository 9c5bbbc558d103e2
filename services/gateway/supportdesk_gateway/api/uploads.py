"""Reading one uploaded file: an operator's document or a user's attachment,
under the same rules (file types, size limit, a non-empty file)."""

from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from starlette.datastructures import UploadFile

from supportdesk_contracts.events import DOCUMENT_EXTENSIONS

# The multipart body is read by the handler, not declared as a parameter:
# FastAPI reads declared bodies before it runs dependencies, so an anonymous
# client could make the gateway parse a large upload before the auth check.
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


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


MAX_FILENAME_CHARS = 255
"""As the upload topic's contract allows."""


async def read_upload(request: Request, limit: int) -> UploadedFile:
    """The multipart field `file`, checked (415, 413, 422 with the reason)."""
    # Closing the form removes the spooled upload at once.
    async with request.form(max_files=1, max_fields=1) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a multipart field `file` is required")
        filename = (file.filename or "").strip()
        if len(filename) > MAX_FILENAME_CHARS:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"file names are limited to {MAX_FILENAME_CHARS} characters"
            )
        content_type = file.content_type or "application/octet-stream"
        data = await _checked_bytes(file, filename, limit)
    return UploadedFile(filename, content_type, data)


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
