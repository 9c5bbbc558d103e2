"""The WebSocket frame protocol: one typed model per frame, built from the
outbound events by one function, identical on the wire whichever path it took."""

import pytest
from pydantic import ValidationError

from supportdesk_contracts.events import (
    MessageAccepted,
    Reply,
    ReplyDeltaProduced,
    ReplyRecorded,
    SessionEscalated,
    SessionStatusChanged,
    Source,
    TurnFailed,
)
from supportdesk_contracts.frames import CLIENT_FRAME, SERVER_FRAME, MessageFrame, PongFrame, frame_of

SOURCE = Source(document_id="d1", title="Shipping", snippet="3-5 days", score=0.7)
EVENTS = [
    MessageAccepted(session_id="s", message_id="m", seq=1, duplicate=True),
    ReplyDeltaProduced(session_id="s", reply_to="m", index=0, content="Standard "),
    ReplyRecorded(
        session_id="s",
        reply_to="m",
        reply=Reply(id="r", content="3-5 days.", confidence=0.7, sources=[SOURCE]),
        role="agent",
        seq=2,
    ),
    SessionEscalated(session_id="s", reason="keywords: sue", reply_to="m", seq=3),
    TurnFailed(session_id="s", reply_to="m", code="agent_failed", message="The assistant could not answer."),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_type)
def test_every_outbound_event_becomes_a_frame_that_survives_the_wire(event: object) -> None:
    frame = frame_of(event)  # type: ignore[arg-type]
    assert SERVER_FRAME.validate_json(frame.model_dump_json()) == frame


def test_frames_carry_what_the_spec_names() -> None:
    ack, delta, reply, escalated, error = (frame_of(e) for e in EVENTS)  # type: ignore[arg-type]
    assert ack.model_dump() == {"type": "ack", "message_id": "m", "seq": 1, "duplicate": True, "handoff": None}
    assert delta.model_dump() == {"type": "delta", "reply_to": "m", "index": 0, "content": "Standard "}
    assert reply.model_dump() == {
        "type": "reply",
        "reply_to": "m",
        "message_id": "r",
        "role": "agent",
        "content": "3-5 days.",
        "sources": [SOURCE.model_dump()],
        "confidence": 0.7,
        "escalated": False,
        "interrupted": False,
        "seq": 2,
    }
    assert escalated.model_dump() == {"type": "escalated", "reason": "keywords: sue", "reply_to": "m", "seq": 3}
    assert error.model_dump()["code"] == "agent_failed"
    assert PongFrame().model_dump() == {"type": "pong"}
    joined = SessionStatusChanged(session_id="s", status="with_human", message="Alex joined.", operator="alex", seq=4)
    assert frame_of(joined).model_dump() == {
        "type": "status",
        "status": "with_human",
        "message": "Alex joined.",
        "operator": "alex",
        "seq": 4,
    }


def test_client_frames_are_checked() -> None:
    assert CLIENT_FRAME.validate_python({"type": "message", "content": "hi"}) == MessageFrame(
        type="message", content="hi"
    )
    for bad in ({"type": "resume", "after_seq": -1}, {"type": "shout"}, {"type": "message"}):
        with pytest.raises(ValidationError):
            CLIENT_FRAME.validate_python(bad)
