"""A chat turn as the gateway sees it, whatever the channel: the message is
checked, published, and followed until its reply or error."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from supportdesk_contracts.events import Channel, HandoffStatus
from supportdesk_contracts.frames import AckFrame, DeltaFrame, ErrorFrame, ReplyFrame, ServerFrame
from supportdesk_gateway.context import GatewayContext
from supportdesk_platform.logs import bind


class InvalidMessage(ValueError):
    """A chat message the gateway refuses; `code` is the error frame's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def checked_content(content: str, max_chars: int) -> str:
    """The message text to publish, or InvalidMessage (one rule for every channel)."""
    text = content.strip()
    if not text:
        raise InvalidMessage("empty_message", "message content is empty")
    if len(text) > max_chars:
        raise InvalidMessage("message_too_long", f"message longer than {max_chars} characters")
    return text


async def publish_message(
    context: GatewayContext, session_id: str, message_id: str, content: str, channel: Channel
) -> None:
    bind(session_id=session_id, correlation_id=message_id)
    await context.events.message_received(session_id, message_id, content, channel)
    context.metrics.messages.labels(channel).inc()


@dataclass(frozen=True)
class HumanAnswers:
    """The turn ends at its ack: a human has the session and answers later
    (the reply comes to the session's sockets and history, not to this call)."""

    status: HandoffStatus


async def turn_frames(
    context: GatewayContext, session_id: str, message_id: str, content: str, channel: Channel
) -> AsyncIterator[ServerFrame | HumanAnswers]:
    """Publishes the message and yields its frames until the reply or an
    error, or HumanAnswers after the ack; raises TimeoutError when no frame
    comes within the reply timeout."""
    began = time.perf_counter()
    outcome = "timeout"
    first_delta = True
    try:
        async with context.hub.watch_turn(session_id, message_id) as frames:
            await publish_message(context, session_id, message_id, content, channel)
            while True:
                frame = await asyncio.wait_for(frames.get(), context.settings.reply_timeout_seconds)
                if first_delta and isinstance(frame, DeltaFrame | ReplyFrame):
                    first_delta = False
                    context.metrics.first_delta_seconds.labels(channel).observe(time.perf_counter() - began)
                if isinstance(frame, ReplyFrame | ErrorFrame):
                    outcome = frame.type
                yield frame
                if outcome != "timeout":
                    return
                if isinstance(frame, AckFrame) and frame.handoff is not None:
                    outcome = "human"
                    yield HumanAnswers(frame.handoff)
                    return
    finally:
        context.metrics.turn_seconds.labels(channel, outcome).observe(time.perf_counter() - began)
