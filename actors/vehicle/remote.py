"""Commands for a vehicle whose socket another hub holds: run there, answered from there.

Several hubs share a fleet through the bus (``storage.redis_bus``); a vehicle's socket is on
one of them. A command accepted by any other hub is sent to that one as a *call* and run by
its :class:`~actors.vehicle.directory.VehicleDirectory` as if it had arrived there — the
same checks, the same fast lane for an emergency stop, the same statuses, which come back to
the sender's session over the bus. A refusal travels back as the same error (class and
fields), so the sender's client sees exactly what it would see on the owner's hub.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any, Protocol

from pydantic import TypeAdapter

from actors.vehicle.messages import CommandOrigin, CommandStatus
from hub import errors as hub_errors
from hub.contract import errors as contract_errors
from hub.contract.commands import AnyCommand, Command
from hub.contract.errors import ContractError

SEND_COMMAND = "send_command"
COMMAND_OUTCOME = "command_outcome"
REMOTE_MARGIN = 3.0  # seconds a call may take beyond the wait it carries
OWNER_LOOKUP = 0.5  # seconds a command waits to learn which hub holds the socket

_COMMAND = TypeAdapter[AnyCommand](Command)


class HubLink(Protocol):
    """The bus as the directory uses it (``storage.redis_bus.RedisBus``)."""

    hub_id: str

    @property
    def up(self) -> bool:
        """Whether the bus is connected now."""
        ...

    def holds(self, vehicle_id: str) -> bool:
        """Whether this hub holds the vehicle's socket."""
        ...

    async def owners(
        self, vehicle_ids: Collection[str], *, within: float | None = None
    ) -> dict[str, str] | None:
        """The hub holding each connected vehicle's socket; None when it cannot say."""
        ...

    async def call(self, hub_id: str, name: str, body: str, *, answer_within: float) -> str:
        """Run ``name`` on hub ``hub_id``; raises if it fails there or gets no answer."""
        ...


def encode_send(vehicle_id: str, command: AnyCommand, origin: CommandOrigin) -> str:
    """The body of a :data:`SEND_COMMAND` call."""
    return json.dumps(
        {
            "vehicle_id": vehicle_id,
            "command": command.model_dump(mode="json", exclude_unset=True),
            "origin": dataclasses.asdict(origin),
        }
    )


def decode_send(body: str) -> tuple[str, AnyCommand, CommandOrigin]:
    """The vehicle, command and origin of a :data:`SEND_COMMAND` call."""
    fields = json.loads(body)
    command = _COMMAND.validate_python(fields["command"])
    return fields["vehicle_id"], command, CommandOrigin(**fields["origin"])


def encode_outcome_call(vehicle_id: str, command_id: str, wait: float) -> str:
    """The body of a :data:`COMMAND_OUTCOME` call."""
    return json.dumps({"vehicle_id": vehicle_id, "command_id": command_id, "wait": wait})


def decode_outcome_call(body: str) -> tuple[str, str, float]:
    """The vehicle, command id and wait of a :data:`COMMAND_OUTCOME` call."""
    fields = json.loads(body)
    return fields["vehicle_id"], fields["command_id"], float(fields["wait"])


def encode_answer(status: CommandStatus) -> str:
    """A call's answer: the command's status."""
    fields = dataclasses.asdict(status)
    fields["ack"] = None if status.ack is None else dict(status.ack)
    return json.dumps({"status": fields})


def encode_refusal(error: ContractError) -> str:
    """A call's answer: the refusal the owner's hub gave, to be raised again by the sender."""
    fields = {
        name: value
        for name, value in vars(error).items()
        if not (name == "received_value" and value is contract_errors.NO_VALUE)
    }
    return json.dumps({"refused": {"class": type(error).__name__, "fields": fields}}, default=str)


def decode_answer(text: str) -> CommandStatus:
    """The status a call answered, or raises the refusal it carried."""
    answer: dict[str, Any] = json.loads(text)
    if "refused" in answer:
        raise _rebuilt(answer["refused"]["class"], answer["refused"]["fields"])
    return CommandStatus(**answer["status"])


def _rebuilt(class_name: str, fields: dict[str, Any]) -> ContractError:
    """The same error class with the same fields (``ContractError`` when it is not one of
    the hub's error classes)."""
    found = getattr(hub_errors, class_name, None) or getattr(contract_errors, class_name, None)
    cls = found if isinstance(found, type) and issubclass(found, ContractError) else ContractError
    error = cls.__new__(cls)
    Exception.__init__(error, f"{fields.get('error')}: {fields.get('message')}")
    vars(error).update(fields)
    if "received_value" not in fields:
        error.received_value = contract_errors.NO_VALUE
    return error
