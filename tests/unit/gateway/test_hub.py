import pytest

from supportdesk_contracts.frames import AckFrame, DeltaFrame, ErrorFrame, PongFrame, ReplyFrame, ServerFrame
from supportdesk_gateway.hub import NOT_READING, SHUTTING_DOWN, Close, Connection, ConnectionState, Hub, SlowConsumer


def ack(message_id: str = "m", seq: int = 1, duplicate: bool = False) -> AckFrame:
    return AckFrame(message_id=message_id, seq=seq, duplicate=duplicate)


def delta(reply_to: str, index: int, content: str) -> DeltaFrame:
    return DeltaFrame(reply_to=reply_to, index=index, content=content)


def reply(reply_to: str = "m", seq: int = 2) -> ReplyFrame:
    return ReplyFrame(reply_to=reply_to, message_id="r", content="ok", confidence=1.0, escalated=False, seq=seq)


def drained(connection: Connection) -> list[ServerFrame | Close]:
    return list(connection.pending)


async def test_frames_reach_sockets_of_their_session_only() -> None:
    hub = Hub()
    a, b = hub.connect("s1"), hub.connect("s2")
    hub.deliver("s1", ack())
    assert len(a.pending) == 1
    assert len(b.pending) == 0


async def test_a_seq_is_sent_once_per_socket_but_acks_always() -> None:
    hub = Hub()
    socket = hub.connect("s")
    hub.deliver("s", ack("m", 3))
    hub.deliver("s", reply("m", 4))
    hub.deliver("s", reply("m", 4))  # re-announced after a redelivery, or again by a resume
    hub.deliver("s", ack("m", 3, duplicate=True))
    assert [f.type for f in drained(socket) if not isinstance(f, Close)] == ["ack", "reply", "ack"]


async def test_turn_watchers_get_their_turn_frames() -> None:
    hub = Hub()
    async with hub.watch_turn("s", "m1") as frames:
        hub.deliver("s", ack("m1", 1))
        hub.deliver("s", delta("m2", 0, "other turn"))
        hub.deliver("s", reply("m1", 2))
        assert [frames.get_nowait().type for _ in range(frames.qsize())] == ["ack", "reply"]
    hub.deliver("s", reply("m1", 3))  # no watcher left: no error


async def test_a_socket_that_does_not_read_is_dropped_and_told_why() -> None:
    hub = Hub(queue_size=10)
    socket = hub.connect("s")
    for _i in range(10):
        socket.offer(PongFrame())
    with pytest.raises(SlowConsumer) as slow:
        socket.offer(PongFrame())
    assert slow.value.close == NOT_READING
    assert socket.state is ConnectionState.CLOSING
    assert socket.close_request is not None
    assert (socket.close_request.code, socket.close_request.urgent) == (1008, True)
    hub.deliver("s", ack())  # the hub lets it go
    assert hub.socket_count == 0


async def test_close_all_reaches_even_a_full_queue_and_later_frames_are_dropped() -> None:
    hub = Hub(queue_size=10)
    socket = hub.connect("s")
    for _i in range(10):
        socket.offer(PongFrame())
    assert hub.close_all() == 1
    socket.offer(PongFrame())
    frames = drained(socket)
    assert frames[-1] == SHUTTING_DOWN
    assert SHUTTING_DOWN.code == 1001
    assert len(frames) == 11


async def test_a_socket_streams_only_turns_it_saw_acked() -> None:
    hub = Hub()
    socket = hub.connect("s")
    # The tail of a turn that finished before this socket came (another
    # replica's client, or this replica's relay running behind): not shown.
    hub.deliver("s", delta("old", 11, "days."))
    hub.deliver("s", ack("new", 3))
    hub.deliver("s", delta("new", 0, "Standard "))
    hub.deliver("s", reply("new", 4))
    hub.deliver("s", delta("new", 1, "late"))
    frames = drained(socket)
    assert [(f.type, getattr(f, "content", None)) for f in frames if not isinstance(f, Close)] == [
        ("ack", None),
        ("delta", "Standard "),
        ("reply", "ok"),
    ]


async def test_an_error_ends_a_turns_stream() -> None:
    hub = Hub()
    socket = hub.connect("s")
    hub.deliver("s", ack("m", 1))
    hub.deliver("s", ErrorFrame(code="agent_failed", message="x", reply_to="m"))
    hub.deliver("s", delta("m", 0, "late"))
    assert [f.type for f in drained(socket) if not isinstance(f, Close)] == ["ack", "error"]
