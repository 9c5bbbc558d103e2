from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from supportdesk_gateway.api.deps import Context

router = APIRouter(tags=["meta"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def chat_page() -> HTMLResponse:
    return HTMLResponse(files("supportdesk_gateway").joinpath("static/index.html").read_text())


@router.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
async def inbox_page() -> HTMLResponse:
    """The human agents' inbox; it asks for an operator key and calls the API with it."""
    return HTMLResponse(files("supportdesk_gateway").joinpath("static/inbox.html").read_text())


@router.get("/api/v1/info")
async def info(context: Context) -> dict[str, object]:
    return {
        "name": "SupportDesk",
        "version": "0.1.0",
        "gateway_id": context.settings.replica_id,
        "environment": context.settings.environment,
        "websocket": "/ws?session_id=<id>&token=<token>",
        "session_timeout_minutes": context.settings.session_timeout_minutes,
        "max_message_chars": context.settings.max_message_chars,
        "connections": context.hub.socket_count,
    }
