import pytest

from supportdesk_gateway.hub import CLOSE_FRAME, Hub, SlowConsumer


async def test_frames_reach_sockets_of_their_session_only() -> None:
    hub = Hub()
    a, b = hub.connect("s1"), hub.connect("s2")
    hub.deliver("s1", {"type": "delta", "reply_to": "m", "content": "hi"})
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
    for i in range(10):
        socket.offer({"type": "delta", "content": str(i)})
    with pytest.raises(SlowConsumer):
        socket.offer({"type": "delta", "content": "one too many"})
    hub.deliver("s", {"type": "delta", "content": "x"})
    assert hub.socket_count == 0


async def test_close_all_reaches_even_a_full_queue() -> None:
    hub = Hub(queue_size=10)
    socket = hub.connect("s")
    for i in range(10):
        socket.offer({"type": "delta", "content": str(i)})
    assert hub.close_all(1001) == 1
    frames = [socket.queue.get_nowait() for _ in range(socket.queue.qsize())]
    assert frames[-1] is CLOSE_FRAME
    assert socket.close_code == 1001
