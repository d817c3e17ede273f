"""The SSE rewriting of hub frames, without a server: positions, events, and the
send queue counted in the frames the hub wrote."""

from __future__ import annotations

import orjson
import pytest

from edge import sse
from edge import ws_protocol as wp


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        ("12:40", {12: 40}),
        ("12:40,13:0", {12: 40, 13: 0}),
        (" 13:7 , 12:40 ", {13: 7, 12: 40}),
    ],
)
def test_positions_are_match_seq_pairs(text: str, positions: dict[int, int]) -> None:
    assert sse.parse_positions(text, limit=10) == positions


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("12", "not matchId:seq"),
        ("12:", "not matchId:seq"),
        ("a:1", "not matchId:seq"),
        ("12:-1", "not matchId:seq"),
        ("0:1", "out of range"),
        ("12:1,12:2", "given twice"),
        ("1:1,2:2,3:3", "at most 2"),
        (f"1:{2**63}", "out of range"),
    ],
)
def test_bad_positions_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(sse.BadPosition, match=why):
        sse.parse_positions(text, limit=2)


def change(match_id: int, seq: int, pad: int = 0) -> bytes:
    data: dict[str, object] = {"homeScore": seq}
    if pad:
        data["note"] = "x" * pad
    return orjson.dumps({"type": "score:update", "matchId": match_id, "seq": seq, "data": data})


def test_an_event_carries_the_stream_position_of_every_match() -> None:
    positions: dict[int, int] = {}
    first = sse.event(wp.subscribed(12, 4, {"id": 12}), positions)
    assert first.startswith(b"id: 12:4\nevent: subscribed\ndata: {")
    sse.event(wp.subscribed(3, 9, None, resumed=True), positions)
    later = sse.event(change(12, 5), positions)
    assert later == b"id: 3:9,12:5\nevent: score:update\ndata: " + change(12, 5) + b"\n\n"


def test_frames_without_a_match_position_carry_no_id() -> None:
    positions = {12: 4}
    for payload in (
        wp.welcome("node-1"),
        wp.subscribed_competition(2, [12]),
        wp.error("slow_consumer", "read faster"),
    ):
        assert not sse.event(payload, positions).startswith(b"id:")
    assert positions == {12: 4}


class Buffered:
    """A transport whose peer reads nothing until told to."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.read = 0

    def write(self, data: bytes) -> None:
        self.data += data

    def get_write_buffer_size(self) -> int:
        return len(self.data) - self.read

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def test_the_buffer_is_reported_in_the_sizes_of_the_frames_written() -> None:
    real = Buffered()
    adapter = sse.SseTransport(real, {})
    adapter.start()
    frames = [wp.text_frame(change(12, seq)) for seq in (1, 2, 3)]
    for frame in frames:
        adapter.write(frame)
    assert adapter.get_write_buffer_size() == sum(len(f) for f in frames)
    first_event = len(sse.chunk(sse.event(change(12, 1), {})))
    real.read = first_event  # the peer took exactly the first event
    assert adapter.get_write_buffer_size() == len(frames[1]) + len(frames[2])
    real.read = first_event + 1  # and one byte of the second: it still counts whole
    assert adapter.get_write_buffer_size() == len(frames[1]) + len(frames[2])
    real.read = len(real.data)
    assert adapter.get_write_buffer_size() == 0


@pytest.mark.parametrize("size", [10, 200, 70_000])  # 7-bit, 16-bit and 64-bit lengths
def test_frames_written_back_to_back_in_one_write_become_one_event_each(size: int) -> None:
    # a resume from memory writes its subscribed frame and replay in one write
    one, many = Buffered(), Buffered()
    frames = [wp.text_frame(change(12, seq, pad=size)) for seq in (1, 2, 3)]
    single, joined = sse.SseTransport(one, {}), sse.SseTransport(many, {})
    single.start()
    joined.start()
    for frame in frames:
        single.write(frame)
    joined.write(b"".join(frames))
    assert bytes(many.data) == bytes(one.data)
    assert bytes(many.data).count(b"event: score:update") == 3
    assert joined.get_write_buffer_size() == sum(len(f) for f in frames)
    assert sse.split_frames(b"".join(frames)) == frames


def test_writes_before_start_are_held_then_sent_in_order() -> None:
    real = Buffered()
    adapter = sse.SseTransport(real, {})
    adapter.write(wp.text_frame(change(12, 1)))
    adapter.write(wp.text_frame(change(12, 2)))
    assert real.data == b"" and adapter.get_write_buffer_size() == 0
    adapter.start()
    body = bytes(real.data)
    assert body.index(b'"seq":1') < body.index(b'"seq":2')
    assert body.startswith(b"%x\r\nid: 12:1\n" % len(sse.event(change(12, 1), {})))


def test_a_ping_becomes_a_heartbeat_comment() -> None:
    real = Buffered()
    adapter = sse.SseTransport(real, {})
    adapter.start()
    adapter.write(bytes((0x89, 9)) + b"livescore")
    assert bytes(real.data) == sse.chunk(sse.HEARTBEAT)
