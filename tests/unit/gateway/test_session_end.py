"""Sockets of a session that ended are closed: deleted here (at once), deleted
on another replica or expired (by the next sweep)."""

from redis.asyncio import Redis

from builders import InProcess
from supportdesk_gateway.hub import SESSION_ENDED
from supportdesk_gateway.sweeper import SessionSweeper


async def new_session(system: InProcess) -> dict[str, str]:
    created: dict[str, str] = (await system.http.post("/api/v1/sessions", json={})).json()
    return created


async def test_deleting_a_session_closes_its_sockets_here_at_once(system: InProcess) -> None:
    session = await new_session(system)
    connection = system.gateway.context.hub.connect(session["session_id"])
    auth = {"Authorization": f"Bearer {session['token']}"}
    assert (await system.http.delete(f"/api/v1/sessions/{session['session_id']}", headers=auth)).status_code == 204
    assert connection.close_request == SESSION_ENDED
    assert connection.dropped


async def test_a_sweep_closes_sockets_of_sessions_gone_elsewhere(system: InProcess, redis: Redis) -> None:
    context = system.gateway.context
    gone, alive = await new_session(system), await new_session(system)
    gone_socket = context.hub.connect(gone["session_id"])
    alive_socket = context.hub.connect(alive["session_id"])
    # Deleted through another replica: only Redis knows.
    await context.sessions.delete(gone["session_id"])
    sweeper = SessionSweeper(context.hub, context.sessions, interval_seconds=60)
    assert await sweeper.sweep() == 1
    assert sweeper.active_sessions == 1  # the deployment's live sessions, for diagnostics
    assert gone_socket.close_request == SESSION_ENDED
    assert alive_socket.close_request is None
    assert context.hub.session_ids() == [alive["session_id"]]
