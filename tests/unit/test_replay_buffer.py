"""The packed replay buffer gives back each event's text exactly as it was sent, in order,
across the blocks it compresses and the ones forgetting from the front drops."""

from __future__ import annotations

from actors.router.replay import BLOCK_EVENTS, ReplayLimits, VehicleReplay, encode_numbered
from actors.sockets.encoded import EncodedEvent
from hub.contract import ws_events

VEHICLE = "wheelchair_001"
TIME = "2026-12-02T07:00:00.123Z"


def events(count: int) -> list[EncodedEvent]:
    """Every kind of text a buffer holds: built type first (the common head is stripped),
    and not (an event whose keys come in another order is kept whole)."""
    made = []
    for number in range(count):
        if number % 3 == 0:
            event = ws_events.location_update(
                VEHICLE, TIME, {"latitude": 35.0 + number / 1e5, "longitude": 139.0}, seq=0
            )
        elif number % 3 == 1:
            event = ws_events.vehicle_connection(VEHICLE, number % 2 == 0, TIME, seq=0)
        else:
            event = {"vehicle_id": VEHICLE, "type": "alert", "alert_id": f"alt_{number}", "é": 1}
        made.append(encode_numbered(event, 5_000 + number))
    return made


def test_replayed_texts_are_the_sent_texts_after_many_compactions() -> None:
    limits = ReplayLimits(max_age=1e9, max_events=50)
    buffer = VehicleReplay()
    sent = events(1_000)
    for moment, event in enumerate(sent):
        buffer.add(event, float(moment), limits)
    assert len(buffer) == 50
    replayed = buffer.after(sent[-51].seq, VEHICLE)
    assert replayed is not None
    assert [(e.text, e.type, e.seq) for e in replayed] == [
        (e.text, e.type, e.seq) for e in sent[-50:]
    ]
    assert buffer.after(sent[-52].seq, VEHICLE) is None  # that one is forgotten


def test_events_past_their_age_are_forgotten_and_a_quiet_buffer_empties() -> None:
    limits = ReplayLimits(max_age=10.0, max_events=1_000)
    buffer = VehicleReplay()
    for moment, event in enumerate(events(30)):
        buffer.add(event, float(moment), limits)
    assert len(buffer) == 11  # seconds 19 to 29
    buffer.expire(100.0, limits)
    assert len(buffer) == 0
    assert buffer.after(0, VEHICLE) is None


def test_a_replay_from_any_point_reads_across_sealed_and_open_blocks() -> None:
    limits = ReplayLimits(max_age=1e9, max_events=1_000)
    buffer = VehicleReplay()
    sent = events(3 * BLOCK_EVENTS + 5)  # three sealed blocks and an open one
    for moment, event in enumerate(sent):
        buffer.add(event, float(moment), limits)
    for start in range(len(sent)):
        replayed = buffer.after(sent[start].seq - 1, VEHICLE)
        assert replayed is not None
        assert [(e.text, e.seq) for e in replayed] == [(e.text, e.seq) for e in sent[start:]]
    assert buffer.after(sent[-1].seq, VEHICLE) == []


def test_forgetting_whole_blocks_keeps_the_rest_replayable() -> None:
    limits = ReplayLimits(max_age=100.0, max_events=1_000)
    buffer = VehicleReplay()
    sent = events(5 * BLOCK_EVENTS)
    for moment, event in enumerate(sent):
        buffer.add(event, float(moment), limits)
    kept = sent[-101:]  # seconds 219 to 319
    assert len(buffer) == len(kept)
    replayed = buffer.after(kept[0].seq - 1, VEHICLE)
    assert replayed is not None
    assert [e.text for e in replayed] == [e.text for e in kept]
    assert buffer.after(kept[0].seq - 2, VEHICLE) is None
