import json
from pathlib import Path

from supportdesk_contracts.asyncapi import build_document
from supportdesk_contracts.events import MessageReceived, ReplyCompleted
from supportdesk_contracts.topics import Topics

ROOT = Path(__file__).resolve().parents[3]


def test_committed_asyncapi_matches_the_contracts() -> None:
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(build_document())), "run `make asyncapi` and commit docs/asyncapi.json"


def test_every_event_type_is_documented() -> None:
    schemas = build_document()["components"]["schemas"]
    for name in ("MessageReceived", "ReplyCompleted", "TurnRequested", "ReplyRecorded", "DocumentUploaded"):
        assert name in schemas
    assert schemas["MessageReceived"]["properties"]["message_id"]["description"]


def test_topics_share_one_prefix_and_version() -> None:
    names = Topics("acme").all()
    assert len(set(names)) == len(names)
    assert all(n.startswith("acme.") and n.endswith(".v1") for n in names)


def test_caused_events_carry_the_chain() -> None:
    received = MessageReceived(
        session_id="s", message_id="m", content="hi", channel="ws", gateway_id="g", correlation_id="m"
    )
    completed = ReplyCompleted(**received.caused(), reply_to="m", reply={"id": "r", "content": "ok", "confidence": 1.0})
    assert (completed.session_id, completed.correlation_id, completed.causation_id) == ("s", "m", received.event_id)
