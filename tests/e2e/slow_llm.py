"""A deliberately slow OpenAI-compatible chat endpoint: it streams a fixed
answer one word every DELAY seconds, so a turn stays in flight long enough to
stop a service in the middle of it.

    python tests/e2e/slow_llm.py PORT DELAY
"""

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ANSWER = "Standard shipping takes three to five business days, as our shipping guide says."


async def completions(request: Request) -> Response:
    delay = request.app.state.delay
    if not (await request.json()).get("stream"):
        # A plain call (the memory condenser's, a follow-up's rewrite): the whole answer at once.
        await asyncio.sleep(delay * len(ANSWER.split(" ")))
        message = {"role": "assistant", "content": ANSWER}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return JSONResponse(
            {"id": "slow", "object": "chat.completion", "created": 0, "model": "slow", "choices": [choice]}
        )

    async def chunks() -> AsyncIterator[str]:
        for i, word in enumerate(ANSWER.split(" ")):
            await asyncio.sleep(delay)
            chunk = {
                "id": "slow",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "slow",
                "choices": [{"index": 0, "delta": {"content": word if i == 0 else f" {word}"}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def models(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": [{"id": "slow", "object": "model"}]})


def main() -> None:
    port, delay = int(sys.argv[1]), float(sys.argv[2])
    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]), Route("/v1/models", models)])
    app.state.delay = delay
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
