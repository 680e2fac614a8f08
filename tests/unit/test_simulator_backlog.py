"""Offline backlog → bulk uploads (CONTRACT §4): ≤ 1000 messages each, all parse as the hub does."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hub.clock import format_timestamp
from hub.contract.bulk import BULK_MAX_MESSAGES, parse_bulk
from hub.errors import ContractError
from hub.simulator.backlog import Backlog, BulkBatch, bulk_message
from hub.simulator.params import VehicleParams
from hub.simulator.reports import Telemetry
from hub.simulator.testing import WallClock, command, dispatch_frame, make_model

MAX_AGE = timedelta(days=30)


def offline_records(seconds: int, clock: WallClock) -> list[Telemetry]:
    """What a busy vehicle records in ``seconds`` (driving, docking, faults)."""
    params = VehicleParams(error_rate_per_minute=0.5, idle_seconds=(3.0, 8.0))
    model = make_model(params=params, clock=clock, soc_percent=60.0)
    records = [item for item in model.step(0.0) if isinstance(item, Telemetry)]
    for second in range(seconds):
        if second % 300 == 10:
            model.on_command(command(dispatch_frame(f"cmd_{second}", f"mission_{second}")))
        clock.advance(1.0)
        records.extend(item for item in model.step(1.0) if isinstance(item, Telemetry))
        records.extend(item for item in model.take_emissions() if isinstance(item, Telemetry))
    return records


def parse(batch: BulkBatch, clock: WallClock, vehicle_id: str = "sim_001") -> int:
    parsed = parse_bulk(
        json.dumps(batch.body).encode(), path_vehicle_id=vehicle_id, now=clock.now, max_age=MAX_AGE
    )
    assert len(parsed.messages) == batch.size
    return parsed.offline_duration_seconds or 0


def test_an_offline_spell_becomes_bulk_uploads_of_at_most_1000_that_the_hub_parses() -> None:
    clock = WallClock()
    backlog = Backlog()
    backlog.went_offline(format_timestamp(clock.now))
    records = offline_records(1500, clock)
    assert len(records) > 2 * BULK_MAX_MESSAGES  # 1501 locations alone
    for record in records:
        backlog.add(record)
    clock.advance(1.0)
    backlog.came_online(format_timestamp(clock.now))

    sizes, durations, uploaded = [], [], []
    while (batch := backlog.next_batch("sim_001")) is not None:
        sizes.append(batch.size)
        durations.append(parse(batch, clock))
        uploaded.extend(batch.body["messages"])
        backlog.confirm(batch)
    assert sizes == [1000, 1000, len(records) - 2000]
    assert durations == [1501, 1501, 1501]  # each upload names the whole offline period
    assert uploaded == [bulk_message(record) for record in records]
    assert len(backlog) == 0 and not backlog.offline


def test_a_bulk_message_moves_the_timestamp_out_of_data() -> None:
    clock = WallClock()
    record = offline_records(0, clock)[0]
    message = bulk_message(record)
    assert message["timestamp"] == record.body["timestamp"]
    assert "timestamp" not in message["data"]
    assert message["data"] == {k: v for k, v in record.body.items() if k != "timestamp"}


def test_records_kept_while_online_go_up_without_an_offline_period() -> None:
    clock = WallClock()
    backlog = Backlog()
    for record in offline_records(20, clock):
        backlog.add(record)
    batch = backlog.next_batch("sim_001")
    assert batch is not None and "offline_period" not in batch.body
    assert parse(batch, clock) == 0


def test_a_failed_upload_keeps_its_messages_for_the_next_try() -> None:
    clock = WallClock()
    backlog = Backlog(max_messages=10)
    for record in offline_records(30, clock):
        backlog.add(record)
    first = backlog.next_batch("sim_001")
    again = backlog.next_batch("sim_001")
    assert first is not None and again is not None and first.body == again.body
    backlog.confirm(first)
    following = backlog.next_batch("sim_001")
    assert following is not None and following.body["messages"][0] != first.body["messages"][0]


def test_the_hub_would_refuse_an_upload_for_another_vehicle() -> None:
    clock = WallClock()
    backlog = Backlog()
    for record in offline_records(5, clock):
        backlog.add(record)
    batch = backlog.next_batch("sim_001")
    assert batch is not None
    with pytest.raises(ContractError) as refused:
        parse(batch, clock, vehicle_id="sim_002")
    assert refused.value.error == "vehicle_id_mismatch"
