"""A small OpenAI-compatible server that answers as it is told, for faults
the real one cannot be made to show on demand: 429, 500, a stream cut
mid-way, a hang. It keeps every request, so a test sees what the model was
sent and how often it was called."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from devstack import free_port

Behaviour = Literal["answer", "429", "500", "cut", "hang", "garbled"]


@dataclass
class ScriptedLlm:
    """Answers `script` in order, then `then` for every later call."""

    script: list[Behaviour] = field(default_factory=list)
    then: Behaviour = "answer"
    answer: str = "Standard shipping takes 3-5 business days."
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    slow_when: str | None = None
    """A question containing this is answered after `slow_seconds`."""
    slow_seconds: float = 0.0
    word_seconds: float = 0.0
    """Pause between streamed words (a slow model, for interrupting it)."""

    def next_behaviour(self) -> Behaviour:
        return self.script.pop(0) if self.script else self.then

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        behaviour = self.next_behaviour()
        if self.slow_when and self.slow_when in str(body["messages"][-1]["content"]):
            await asyncio.sleep(self.slow_seconds)
        if behaviour == "429":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0"})
        if behaviour == "500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if behaviour == "hang":
            await asyncio.sleep(3600)
        if behaviour == "garbled":
            # 200, but no chat completion: an event stream to a plain call, as
            # an endpoint that always streams answers.
            return Response("data: [DONE]\n\n", media_type="text/event-stream")
        if not body.get("stream"):
            return JSONResponse(self._whole())
        return StreamingResponse(self._chunks(cut=behaviour == "cut"), media_type="text/event-stream")

    def _whole(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.answer}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return {"id": "c1", "object": "chat.completion", "created": 0, "model": "scripted", "choices": [choice]}

    async def _chunks(self, cut: bool) -> AsyncIterator[str]:
        words = self.answer.split(" ")
        for i, word in enumerate(words):
            if cut and i == len(words) // 2:
                raise ConnectionResetError("cut mid-way")  # the server drops the connection
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "scripted",
                "choices": [{"index": 0, "delta": {"content": word + (" " if i < len(words) - 1 else "")}}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
            if self.word_seconds:
                await asyncio.sleep(self.word_seconds)
        yield "data: [DONE]\n\n"


async def serve(llm: ScriptedLlm) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    port = free_port()
    app = Starlette(routes=[Route("/v1/chat/completions", llm.completions, methods=["POST"])])
    # A hung request must not hold the server's shutdown.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    llm.url = f"http://127.0.0.1:{port}/v1"
    return server, task
