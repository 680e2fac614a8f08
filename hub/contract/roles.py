"""Who may do what (CONTRACT §2): the roles a token carries and the rights table, once.

| right | vehicle | viewer | operator | admin |
|---|---|---|---|---|
| its own telemetry and socket | ✓ | | | |
| read fleet state, history, alerts; subscribe | | ✓ | ✓ | ✓ |
| commands, alert acks, missions/reservations | | | ✓ | ✓ |
| registration, secrets, audit log, ``/debug/actors`` | | | | ✓ |
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["vehicle", "admin", "operator", "viewer"]
"""The ``role`` claim of an access token."""

PersonRole = Literal["admin", "operator", "viewer"]
"""The role of a person (a user account)."""

ROLES: tuple[Role, ...] = get_args(Role)
PEOPLE_ROLES: tuple[PersonRole, ...] = get_args(PersonRole)

READERS: tuple[PersonRole, ...] = ("viewer", "operator", "admin")
"""May read fleet state, history and alerts, and subscribe to events."""

STAFF: tuple[PersonRole, ...] = ("operator", "admin")
"""May send commands, acknowledge alerts, book reservations; receive every alert."""

ADMINS: tuple[PersonRole, ...] = ("admin",)
"""May register vehicles and users, rotate secrets, read the audit log and actor state."""
