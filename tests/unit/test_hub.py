import pytest

from supportdesk_gateway.hub import CLOSE_FRAME, Hub, SlowConsumer


async def test_frames_reach_sockets_of_their_session_only() -> None:
    hub = Hub()
    a, b = hub.connect("s1"), hub.connect("s2")
    hub.deliver("s1", {"type": "ack", "message_id": "m", "seq": 1})
    assert a.queue.qsize() == 1
    assert b.queue.qsize() == 0


async def test_a_seq_is_sent_once_per_socket_but_acks_always() -> None:
    hub = Hub()
    socket = hub.connect("s")
    reply = {"type": "reply", "reply_to": "m", "seq": 4}
    hub.deliver("s", reply)
    hub.deliver("s", reply)  # re-announced after a redelivery, or again by a resume
    hub.deliver("s", {"type": "ack", "message_id": "m", "seq": 3, "duplicate": True})
    assert [socket.queue.get_nowait()["type"] for _ in range(socket.queue.qsize())] == ["reply", "ack"]


async def test_turn_watchers_get_their_turn_frames() -> None:
    hub = Hub()
    async with hub.watch_turn("s", "m1") as frames:
        hub.deliver("s", {"type": "ack", "message_id": "m1", "seq": 1})
        hub.deliver("s", {"type": "delta", "reply_to": "m2", "content": "other turn"})
        hub.deliver("s", {"type": "reply", "reply_to": "m1", "seq": 2})
        assert [frames.get_nowait()["type"] for _ in range(frames.qsize())] == ["ack", "reply"]
    hub.deliver("s", {"type": "reply", "reply_to": "m1", "seq": 3})  # no watcher left: no error


async def test_a_socket_that_does_not_read_is_dropped() -> None:
    hub = Hub(queue_size=10)
    socket = hub.connect("s")
    for _i in range(10):
        socket.offer({"type": "pong"})
    with pytest.raises(SlowConsumer):
        socket.offer({"type": "pong"})
    hub.deliver("s", {"type": "ack", "message_id": "m", "seq": 1})
    assert hub.socket_count == 0


async def test_close_all_reaches_even_a_full_queue() -> None:
    hub = Hub(queue_size=10)
    socket = hub.connect("s")
    for _i in range(10):
        socket.offer({"type": "pong"})
    assert hub.close_all(1001) == 1
    frames = [socket.queue.get_nowait() for _ in range(socket.queue.qsize())]
    assert frames[-1] is CLOSE_FRAME
    assert socket.close_code == 1001


async def test_a_socket_streams_only_turns_it_saw_acked() -> None:
    hub = Hub()
    socket = hub.connect("s")
    # The tail of a turn that finished before this socket came (another
    # replica's client, or this replica's relay running behind): not shown.
    hub.deliver("s", {"type": "delta", "reply_to": "old", "index": 11, "content": "days."})
    hub.deliver("s", {"type": "ack", "message_id": "new", "seq": 3})
    hub.deliver("s", {"type": "delta", "reply_to": "new", "index": 0, "content": "Standard "})
    hub.deliver("s", {"type": "reply", "reply_to": "new", "seq": 4})
    hub.deliver("s", {"type": "delta", "reply_to": "new", "index": 1, "content": "late"})
    frames = [socket.queue.get_nowait() for _ in range(socket.queue.qsize())]
    assert [(f["type"], f.get("content")) for f in frames] == [
        ("ack", None),
        ("delta", "Standard "),
        ("reply", None),
    ]


async def test_an_error_ends_a_turns_stream() -> None:
    hub = Hub()
    socket = hub.connect("s")
    hub.deliver("s", {"type": "ack", "message_id": "m", "seq": 1})
    hub.deliver("s", {"type": "error", "code": "agent_failed", "message": "x", "reply_to": "m"})
    hub.deliver("s", {"type": "delta", "reply_to": "m", "index": 0, "content": "late"})
    assert [socket.queue.get_nowait()["type"] for _ in range(socket.queue.qsize())] == ["ack", "error"]
