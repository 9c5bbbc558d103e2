"""The ceiling of the transport benchmark: a bare FastAPI WebSocket on
uvicorn that answers each chat message with a `reply` frame at once, no
broker and no workers. `make bench` drives it with the same client as the
real pipeline, on the same machine, in the same run.

    python tools/echo_server.py PORT
"""

import json
import sys

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            frame = json.loads(await websocket.receive_text())
            reply = {"type": "reply", "reply_to": frame.get("message_id"), "content": frame.get("content")}
            await websocket.send_text(json.dumps(reply))
    except WebSocketDisconnect:
        return


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
