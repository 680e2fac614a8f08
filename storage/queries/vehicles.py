"""Vehicles and their client credentials."""

from __future__ import annotations

from storage.database import Database, Row


async def enabled_vehicle_ids(database: Database) -> set[str]:
    """Every vehicle that may report."""
    rows = await database.fetch("SELECT vehicle_id FROM vehicles WHERE enabled")
    return {row["vehicle_id"] for row in rows}


async def create_vehicle(
    database: Database, *, vehicle_id: str, name: str, client_id: str, secret_hash: str
) -> None:
    """Register a vehicle with its credentials; raises UniqueViolationError if the id is taken."""
    await database.transaction(
        [
            ("INSERT INTO vehicles (vehicle_id, name) VALUES ($1, $2)", (vehicle_id, name)),
            (
                "INSERT INTO vehicle_credentials (client_id, vehicle_id, secret_hash)"
                " VALUES ($1, $2, $3)",
                (client_id, vehicle_id, secret_hash),
            ),
        ]
    )


async def rotate_secret(
    database: Database, *, vehicle_id: str, client_id: str, secret_hash: str
) -> bool:
    """Replace a vehicle's credentials and revoke its refresh tokens; False if unknown."""
    results = await database.transaction(
        [
            (
                "UPDATE vehicle_credentials SET client_id = $2, secret_hash = $3,"
                " rotated_at = now()"
                " WHERE vehicle_id = $1 RETURNING vehicle_id",
                (vehicle_id, client_id, secret_hash),
            ),
            (
                "UPDATE refresh_tokens SET revoked_at = now()"
                " WHERE vehicle_id = $1 AND revoked_at IS NULL",
                (vehicle_id,),
            ),
        ]
    )
    return bool(results[0])


async def disable_vehicle(database: Database, vehicle_id: str) -> bool:
    """Stop a vehicle from reporting or logging in; False if it was unknown or disabled."""
    results = await database.transaction(
        [
            (
                "UPDATE vehicles SET enabled = false, disabled_at = now()"
                " WHERE vehicle_id = $1 AND enabled RETURNING vehicle_id",
                (vehicle_id,),
            ),
            (
                "UPDATE refresh_tokens SET revoked_at = now()"
                " WHERE vehicle_id = $1 AND revoked_at IS NULL",
                (vehicle_id,),
            ),
        ]
    )
    return bool(results[0])


async def enable_vehicle(database: Database, vehicle_id: str) -> bool | None:
    """Let a disabled vehicle report and log in again (its credentials are unchanged; rotate
    them if they may have leaked). True if it was disabled, False if it was enabled already,
    None if there is no such vehicle."""
    value = await database.fetchval(
        "WITH enabled AS (UPDATE vehicles SET enabled = true, disabled_at = NULL"
        " WHERE vehicle_id = $1 AND NOT enabled RETURNING vehicle_id)"
        " SELECT CASE WHEN EXISTS (SELECT 1 FROM enabled) THEN 'enabled'"
        " WHEN EXISTS (SELECT 1 FROM vehicles WHERE vehicle_id = $1) THEN 'already' END",
        vehicle_id,
    )
    return None if value is None else value == "enabled"


async def enabled_flag(database: Database, vehicle_id: str) -> bool | None:
    """Whether the vehicle is enabled; None if it is not registered at all."""
    value = await database.fetchval(
        "SELECT enabled FROM vehicles WHERE vehicle_id = $1", vehicle_id
    )
    return None if value is None else bool(value)


async def credentials_for_client(database: Database, client_id: str) -> Row | None:
    """The vehicle id and secret hash behind a client id, if the vehicle is enabled."""
    return await database.fetchrow(
        "SELECT c.vehicle_id, c.secret_hash FROM vehicle_credentials c"
        " JOIN vehicles v USING (vehicle_id) WHERE c.client_id = $1 AND v.enabled",
        client_id,
    )


_SUMMARY_SQL = """
SELECT v.vehicle_id, v.name, l.last_seen, l.state, l.state_at, l.mission_id,
       l.location, l.location_at, l.battery, l.battery_at, l.docking_phase,
       COALESCE(a.open_alerts, 0) AS open_alerts
FROM vehicles v
LEFT JOIN vehicle_latest l USING (vehicle_id)
LEFT JOIN (SELECT vehicle_id, count(*) AS open_alerts FROM alerts
           WHERE acknowledged_at IS NULL GROUP BY vehicle_id) a USING (vehicle_id)
WHERE v.enabled {where}
ORDER BY v.vehicle_id
"""


async def fleet_summary(database: Database) -> list[Row]:
    """Every enabled vehicle with its latest state, in one query."""
    return await database.fetch(_SUMMARY_SQL.format(where=""))


async def vehicle_summary(database: Database, vehicle_id: str) -> Row | None:
    """One vehicle with its latest state."""
    return await database.fetchrow(_SUMMARY_SQL.format(where="AND v.vehicle_id = $1"), vehicle_id)


async def known_error_codes(database: Database) -> set[str]:
    """Codes in the ``error_codes`` table."""
    rows = await database.fetch("SELECT code FROM error_codes")
    return {row["code"] for row in rows}


async def alert_for_error(database: Database, vehicle_id: str, timestamp: object) -> str | None:
    """The alert id stored with an error report (for answering a resend)."""
    value = await database.fetchval(
        'SELECT alert_id FROM vehicle_errors WHERE vehicle_id = $1 AND "timestamp" = $2',
        vehicle_id,
        timestamp,
    )
    return None if value is None else str(value)


_RESTORE_SQL = (
    (
        "SELECT vehicle_id, state, state_at, mission_id, docking_phase, docking_at, battery,"
        " battery_at FROM vehicle_latest WHERE vehicle_id = ANY($1::text[])"
    ),
    (
        "SELECT vehicle_id, cycle_count, last_charging, last_soc, discharge_accumulated_percent,"
        " resting_voltage_samples, updated_at FROM battery_health"
        " WHERE vehicle_id = ANY($1::text[])"
    ),
    (
        "SELECT vehicle_id, command_id, type, payload, created_at, sender, queue_position"
        " FROM commands WHERE vehicle_id = ANY($1::text[]) AND status IN ('queued', 'sent')"
        " ORDER BY vehicle_id, queue_position NULLS FIRST, created_at"
    ),
)


async def restore_rows(
    database: Database, vehicle_ids: list[str]
) -> dict[str, tuple[Row | None, Row | None, list[Row]]]:
    """For each vehicle: its ``vehicle_latest`` row, its ``battery_health`` row and its
    waiting commands (in delivery order), read in one transaction for all of them."""
    latest, health, commands = await database.transaction(
        [(sql, (vehicle_ids,)) for sql in _RESTORE_SQL]
    )
    found: dict[str, tuple[Row | None, Row | None, list[Row]]] = {
        vehicle_id: (None, None, []) for vehicle_id in vehicle_ids
    }
    for row in latest:
        _, held_health, held_commands = found[row["vehicle_id"]]
        found[row["vehicle_id"]] = (row, held_health, held_commands)
    for row in health:
        held_latest, _, held_commands = found[row["vehicle_id"]]
        found[row["vehicle_id"]] = (held_latest, row, held_commands)
    for row in commands:
        found[row["vehicle_id"]][2].append(row)
    return found
