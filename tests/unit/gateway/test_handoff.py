"""The handoff through the gateway's API: a user asks for a human, an
operator sees the session in the queue, claims it, replies, hands it back.
In-process, with the real session worker's handlers and an echo agent that
escalates when asked for a human."""

import json

import httpx

from builders import OPERATOR_KEY, InProcess
from supportdesk_contracts.frames import SERVER_FRAME

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


async def new_session(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    created = (await http.post("/api/v1/sessions", json={})).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


async def say(system: InProcess, sid: str, auth: dict[str, str], content: str) -> dict[str, object]:
    response = await system.http.post(f"/api/v1/sessions/{sid}/messages", json={"content": content}, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def frames(system: InProcess, sid: str) -> list[dict[str, object]]:
    logged = await system.gateway.context.sessions.frames_after(sid, 0)
    return [json.loads(f.model_dump_json()) for f in logged]


async def test_a_user_who_asks_for_a_human_gets_one_and_then_the_bot_again(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    escalating = await say(system, sid, auth, "I want to talk to a human")
    assert escalating["reply"]["escalated"] is True  # type: ignore[index]

    # The bot stays silent: the message is recorded, no turn is asked for.
    turns = len(system.turns)
    waiting = await say(system, sid, auth, "Are you there?")
    assert (waiting["reply"], waiting["handoff"]) == (None, "awaiting_human")
    assert len(system.turns) == turns

    [queued] = (await system.http.get("/api/v1/escalations", headers=OPERATOR)).json()
    assert (queued["session_id"], queued["status"], queued["reason"]) == (sid, "awaiting_human", "asked for a human")
    assert queued["summary"] == "Are you there?"

    claimed = await system.http.post(f"/api/v1/sessions/{sid}/claim", headers=OPERATOR)
    assert claimed.status_code == 200, claimed.text
    answer = await system.http.post(
        f"/api/v1/sessions/{sid}/agent-messages", json={"content": "Hi, Alex here. How can I help?"}, headers=OPERATOR
    )
    assert answer.status_code == 200, answer.text
    history = (await system.http.get(f"/api/v1/sessions/{sid}/messages", headers=auth)).json()
    assert [(m["role"], m["content"]) for m in history][-1] == ("agent", "Hi, Alex here. How can I help?")
    info = (await system.http.get(f"/api/v1/sessions/{sid}", headers=auth)).json()
    assert (info["handoff"], info["operator"]) == ("with_human", "alex")

    handed = await system.http.post(f"/api/v1/sessions/{sid}/handback", headers=OPERATOR)
    assert handed.status_code == 200, handed.text
    assert (await system.http.get("/api/v1/escalations", headers=OPERATOR)).json() == []
    again = await say(system, sid, auth, "What are your opening hours?")
    assert again["reply"]["content"] == "echo: What are your opening hours?"  # type: ignore[index]

    # What a resuming client replays: the handoff in order, every frame valid.
    logged = await frames(system, sid)
    kinds = [(f["type"], f.get("status") or f.get("role")) for f in logged if f["type"] != "ack"]
    assert kinds == [
        ("reply", "assistant"),
        ("escalated", None),
        ("status", "with_human"),
        ("reply", "agent"),
        ("status", "bot"),
        ("reply", "assistant"),
    ]
    for frame in logged:
        SERVER_FRAME.validate_python(frame)


async def test_operator_actions_need_an_operator_key_and_the_right_moment(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    claim = f"/api/v1/sessions/{sid}/claim"
    assert (await system.http.post(claim)).status_code == 401
    assert (await system.http.post(claim, headers=auth)).status_code == 403  # a session token is not an operator key
    assert (await system.http.get("/api/v1/escalations", headers=auth)).status_code == 403
    # Nobody to hand back from, and a reply needs a claimed (or waiting) session.
    assert (await system.http.post(f"/api/v1/sessions/{sid}/handback", headers=OPERATOR)).status_code == 409
    reply = await system.http.post(f"/api/v1/sessions/{sid}/agent-messages", json={"content": "hi"}, headers=OPERATOR)
    assert reply.status_code == 409
    # Another operator cannot take a session someone has.
    admin = {"Authorization": f"Bearer {system.gateway.context.settings.admin_api_key.get_secret_value()}"}
    assert (await system.http.post(claim, headers=OPERATOR)).status_code == 200
    assert (await system.http.post(claim, headers=OPERATOR)).status_code == 200  # the same one again: no change
    assert (await system.http.post(claim, headers=admin)).status_code == 409
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await system.http.post(f"/api/v1/sessions/{unknown}/claim", headers=OPERATOR)).status_code == 404


async def test_an_action_repeated_with_its_idempotency_key_is_recorded_once(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    await say(system, sid, auth, "human please")
    key = {**OPERATOR, "Idempotency-Key": "reply-1"}
    url = f"/api/v1/sessions/{sid}/agent-messages"
    first = (await system.http.post(url, json={"content": "On it."}, headers=key)).json()
    second = (await system.http.post(url, json={"content": "On it."}, headers=key)).json()
    assert first["seq"] == second["seq"]
    history = (await system.http.get(f"/api/v1/sessions/{sid}/messages", headers=auth)).json()
    assert [m["content"] for m in history].count("On it.") == 1
