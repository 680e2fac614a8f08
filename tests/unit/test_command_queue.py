"""The offline queue: order, drop-oldest at 100, e-stops first, configure merging, TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors.vehicle.offline_queue import OfflineQueue, QueuedCommand

T0 = datetime(2025, 12, 16, 10, 0, tzinfo=UTC)


def _command(index: int, kind: str = "dispatch", **payload: object) -> QueuedCommand:
    command_id = f"cmd_ESTOP_{index}" if kind == "emergency_stop" else f"cmd_{index}"
    return QueuedCommand(
        command_id,
        kind,
        {"type": kind, "command_id": command_id, **payload},
        T0 + timedelta(seconds=index),
    )


def test_commands_are_delivered_in_the_order_they_were_queued() -> None:
    queue = OfflineQueue()
    for index in range(5):
        queue.push(_command(index))
    deliver, expired = queue.take_all(T0 + timedelta(seconds=10), timedelta(minutes=10))
    assert [c.command_id for c in deliver] == [f"cmd_{i}" for i in range(5)]
    assert expired == []
    assert len(queue) == 0


def test_the_101st_command_pushes_out_the_oldest() -> None:
    queue = OfflineQueue(capacity=100)
    for index in range(100):
        assert queue.push(_command(index)).dropped == []
    outcome = queue.push(_command(100))
    assert [c.command_id for c in outcome.dropped] == ["cmd_0"]
    assert len(queue) == 100
    assert queue.commands()[0].command_id == "cmd_1"


def test_an_emergency_stop_goes_ahead_of_everything_queued_and_is_never_dropped() -> None:
    queue = OfflineQueue(capacity=3)
    queue.push(_command(1))
    queue.push(_command(2))
    queue.push(_command(3, "emergency_stop"))
    assert [c.command_id for c in queue.commands()] == ["cmd_ESTOP_3", "cmd_1", "cmd_2"]
    outcome = queue.push(_command(4))
    assert [c.command_id for c in outcome.dropped] == ["cmd_1"]
    assert queue.commands()[0].command_id == "cmd_ESTOP_3"


def test_a_second_stop_queues_behind_the_first_stop_but_ahead_of_the_rest() -> None:
    queue = OfflineQueue()
    queue.push(_command(1))
    queue.push(_command(2, "emergency_stop"))
    queue.push(_command(3, "emergency_stop"))
    assert [c.command_id for c in queue.commands()] == ["cmd_ESTOP_2", "cmd_ESTOP_3", "cmd_1"]


def test_a_newer_configure_absorbs_the_queued_one_and_its_keys_win() -> None:
    queue = OfflineQueue()
    queue.push(_command(1, "configure", config_updates={"max_speed": 0.8, "audio_volume": 50}))
    queue.push(_command(2))
    outcome = queue.push(_command(3, "configure", config_updates={"max_speed": 1.0}))
    assert outcome.merged is not None and outcome.merged.command_id == "cmd_1"
    assert [c.command_id for c in queue.commands()] == ["cmd_2", "cmd_3"]
    merged = queue.commands()[1]
    assert merged.payload["config_updates"] == {"max_speed": 1.0, "audio_volume": 50}
    assert merged.all_ids == ["cmd_3", "cmd_1"]


def test_commands_older_than_the_ttl_expire_but_stops_are_still_delivered() -> None:
    queue = OfflineQueue()
    queue.push(_command(0))
    queue.push(_command(1, "emergency_stop"))
    queue.push(_command(700))
    now = T0 + timedelta(seconds=700) + timedelta(minutes=10)
    deliver, expired = queue.take_all(now, timedelta(minutes=10))
    assert [c.command_id for c in deliver] == ["cmd_ESTOP_1", "cmd_700"]
    assert [c.command_id for c in expired] == ["cmd_0"]


def test_unacknowledged_commands_go_back_to_the_head_on_disconnect() -> None:
    queue = OfflineQueue()
    queue.push(_command(5))
    queue.requeue_front([_command(3), _command(4, "emergency_stop")])
    assert [c.command_id for c in queue.commands()] == ["cmd_ESTOP_4", "cmd_3", "cmd_5"]
