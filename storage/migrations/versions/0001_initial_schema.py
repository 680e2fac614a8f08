"""Initial schema: vehicles, telemetry, commands, alerts, users, audit, archives.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Every telemetry table is keyed on (vehicle_id, "timestamp"): that key is how a resent record
is recognised as a duplicate (CONTRACT §3). CHECK constraints mirror the contract's enums so
a bug above cannot store a state, severity or phase no client understands.
"""

from __future__ import annotations

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


UPGRADE: tuple[str, ...] = (
    """
    CREATE TABLE vehicles (
        vehicle_id   text PRIMARY KEY,
        name         text NOT NULL,
        enabled      boolean NOT NULL DEFAULT true,
        created_at   timestamptz NOT NULL DEFAULT now(),
        disabled_at  timestamptz
    )
    """,
    """
    CREATE TABLE vehicle_credentials (
        client_id    text PRIMARY KEY,
        vehicle_id   text NOT NULL UNIQUE REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
        secret_hash  text NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        rotated_at   timestamptz
    )
    """,
    """
    CREATE TABLE users (
        user_id        bigserial PRIMARY KEY,
        username       text NOT NULL UNIQUE,
        email          text UNIQUE,
        password_hash  text NOT NULL,
        role           text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        enabled        boolean NOT NULL DEFAULT true,
        created_at     timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE refresh_tokens (
        token_hash    text PRIMARY KEY,
        family_id     uuid NOT NULL,
        subject_kind  text NOT NULL CHECK (subject_kind IN ('vehicle', 'user')),
        vehicle_id    text REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
        user_id       bigint REFERENCES users (user_id) ON DELETE CASCADE,
        role          text NOT NULL,
        issued_at     timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL,
        revoked_at    timestamptz,
        replaced_by   text,
        CONSTRAINT refresh_tokens_subject_check CHECK (
            (subject_kind = 'vehicle' AND vehicle_id IS NOT NULL AND user_id IS NULL)
            OR (subject_kind = 'user' AND user_id IS NOT NULL AND vehicle_id IS NULL)
        )
    )
    """,
    """
    CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id)
    """,
    """
    CREATE TABLE vehicle_locations (
        vehicle_id   text NOT NULL REFERENCES vehicles (vehicle_id),
        "timestamp"  timestamptz NOT NULL,
        latitude     float8 NOT NULL,
        longitude    float8 NOT NULL,
        altitude     float8,
        heading      float8 NOT NULL,
        speed        float8 NOT NULL,
        accuracy     float8 NOT NULL,
        received_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
    """
    CREATE TABLE vehicle_status (
        vehicle_id                 text NOT NULL REFERENCES vehicles (vehicle_id),
        "timestamp"                timestamptz NOT NULL,
        state                      text NOT NULL CHECK (state IN (
                                       'idle', 'navigating', 'docking', 'charging', 'error',
                                       'emergency_stop')),
        mission_id                 text,
        current_waypoint           text,
        passengers_onboard         boolean NOT NULL,
        operational_hours          boolean NOT NULL,
        progress_percent           float8,
        eta_seconds                integer,
        distance_remaining_meters  float8,
        error_code                 text,
        error_message              text,
        received_at                timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
    """
    CREATE TABLE vehicle_battery (
        vehicle_id                 text NOT NULL REFERENCES vehicles (vehicle_id),
        "timestamp"                timestamptz NOT NULL,
        soc_percent                float8 NOT NULL,
        voltage                    float8 NOT NULL,
        "current"                  float8 NOT NULL,
        temperature                float8 NOT NULL,
        charging                   boolean NOT NULL,
        estimated_runtime_minutes  integer,
        health_percent             float8,
        received_at                timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
    """
    CREATE TABLE vehicle_errors (
        vehicle_id            text NOT NULL REFERENCES vehicles (vehicle_id),
        "timestamp"           timestamptz NOT NULL,
        error_code            text NOT NULL,
        severity              text NOT NULL
                                  CHECK (severity IN ('info', 'warning', 'error', 'critical')),
        subsystem             text NOT NULL CHECK (subsystem IN (
                                  'navigation', 'docking', 'perception', 'power', 'safety',
                                  'hardware')),
        latitude              float8,
        longitude             float8,
        description           text,
        recovery_action       text,
        user_action_required  boolean,
        alert_id              text,
        backfilled            boolean NOT NULL DEFAULT false,
        resolved_at           timestamptz,
        received_at           timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
    """
    CREATE INDEX vehicle_errors_severity_idx ON vehicle_errors (vehicle_id, "timestamp", severity)
    """,
    """
    CREATE TABLE vehicle_docking (
        vehicle_id                 text NOT NULL REFERENCES vehicles (vehicle_id),
        "timestamp"                timestamptz NOT NULL,
        phase                      text NOT NULL CHECK (phase IN (
                                       'approaching', 'marker_detection', 'visual_servoing',
                                       'final_approach', 'attachment', 'success', 'failed')),
        marker_id                  integer,
        distance_to_marker_meters  float8,
        alignment_error_degrees    float8,
        docking_success            boolean NOT NULL,
        attempts                   integer,
        marker_visible             boolean,
        confidence                 float8,
        mission_id                 text,
        received_at                timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
    """
    CREATE TABLE vehicle_latest (
        vehicle_id     text PRIMARY KEY REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
        last_seen      timestamptz,
        state          text,
        state_at       timestamptz,
        mission_id     text,
        location       jsonb,
        location_at    timestamptz,
        battery        jsonb,
        battery_at     timestamptz,
        docking_phase  text,
        docking_at     timestamptz,
        updated_at     timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE battery_health (
        vehicle_id                     text PRIMARY KEY
                                           REFERENCES vehicles (vehicle_id) ON DELETE CASCADE,
        cycle_count                    integer NOT NULL DEFAULT 0,
        last_charging                  boolean,
        last_soc                       float8,
        discharge_accumulated_percent  float8 NOT NULL DEFAULT 0,
        resting_voltage_samples        jsonb NOT NULL DEFAULT '[]',
        updated_at                     timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE reservations (
        reservation_id  text PRIMARY KEY,
        passenger_name  text,
        pickup          jsonb NOT NULL,
        destination     jsonb NOT NULL,
        scheduled_time  timestamptz NOT NULL,
        status          text NOT NULL DEFAULT 'pending',
        vehicle_id      text REFERENCES vehicles (vehicle_id) ON DELETE SET NULL,
        created_by      text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE INDEX reservations_scheduled_time_idx ON reservations (scheduled_time)
    """,
    """
    CREATE TABLE missions (
        mission_id      text PRIMARY KEY,
        vehicle_id      text NOT NULL REFERENCES vehicles (vehicle_id),
        reservation_id  text REFERENCES reservations (reservation_id) ON DELETE SET NULL,
        status          text NOT NULL,
        priority        text NOT NULL DEFAULT 'normal'
                            CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
        pickup          jsonb,
        destination     jsonb,
        scheduled_time  timestamptz,
        start_time      timestamptz,
        end_time        timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE INDEX missions_vehicle_idx ON missions (vehicle_id, created_at)
    """,
    """
    CREATE TABLE commands (
        command_id      text PRIMARY KEY,
        vehicle_id      text NOT NULL REFERENCES vehicles (vehicle_id),
        type            text NOT NULL CHECK (type IN (
                            'dispatch', 'cancel', 'emergency_stop', 'resume', 'configure')),
        payload         jsonb NOT NULL,
        status          text NOT NULL CHECK (status IN (
                            'queued', 'sent', 'accepted', 'rejected', 'executed', 'applied',
                            'timeout', 'dropped', 'expired')),
        priority        text NOT NULL DEFAULT 'normal'
                            CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
        sender          text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        sent_at         timestamptz,
        acked_at        timestamptz,
        attempts        integer NOT NULL DEFAULT 0,
        ack             jsonb,
        queue_position  bigint
    )
    """,
    """
    CREATE INDEX commands_vehicle_status_idx ON commands (vehicle_id, status)
    """,
    """
    CREATE TABLE alerts (
        alert_id         text PRIMARY KEY,
        vehicle_id       text NOT NULL REFERENCES vehicles (vehicle_id),
        kind             text NOT NULL,
        severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
        error_code       text,
        message          text NOT NULL,
        details          jsonb NOT NULL DEFAULT '{}',
        backfilled       boolean NOT NULL DEFAULT false,
        created_at       timestamptz NOT NULL DEFAULT now(),
        acknowledged_by  text,
        acknowledged_at  timestamptz,
        escalated_at     timestamptz
    )
    """,
    """
    CREATE INDEX alerts_created_at_idx ON alerts (created_at)
    """,
    """
    CREATE INDEX alerts_open_idx ON alerts (vehicle_id, created_at) WHERE acknowledged_at IS NULL
    """,
    """
    CREATE TABLE error_codes (
        code              text PRIMARY KEY CHECK (code ~ '^[A-Z_]+$'),
        subsystem         text NOT NULL CHECK (subsystem IN (
                              'navigation', 'docking', 'perception', 'power', 'safety',
                              'hardware')),
        default_severity  text NOT NULL
                              CHECK (default_severity IN ('info', 'warning', 'error', 'critical')),
        description       text NOT NULL,
        builtin           boolean NOT NULL DEFAULT false
    )
    """,
    """
    INSERT INTO error_codes (code, subsystem, default_severity, description, builtin) VALUES
        ('NAV_OBSTACLE_BLOCKED', 'navigation', 'warning',
         'Path blocked by an obstacle; the vehicle is rerouting or waiting', true),
        ('NAV_LOCALIZATION_LOST', 'navigation', 'error',
         'The vehicle lost its position estimate and stopped', true),
        ('NAV_PATH_NOT_FOUND', 'navigation', 'error',
         'No path to the destination could be planned', true),
        ('DOCK_ALIGNMENT_FAILED', 'docking', 'warning',
         'Could not align with the wheelchair within tolerance', true),
        ('DOCK_MARKER_NOT_FOUND', 'docking', 'warning',
         'The docking marker was not detected', true),
        ('DOCK_ATTACHMENT_FAILED', 'docking', 'error',
         'The wheelchair could not be attached', true),
        ('SAFE_ESTOP_ACTIVATED', 'safety', 'critical',
         'Emergency stop activated on the vehicle', true),
        ('SAFE_COLLISION_DETECTED', 'safety', 'critical',
         'A collision was detected', true),
        ('POWER_BATTERY_CRITICAL', 'power', 'critical',
         'Battery charge critically low; the vehicle must charge now', true),
        ('SENSOR_LIDAR_FAILURE', 'perception', 'critical',
         'The LiDAR stopped delivering data', true),
        ('SENSOR_CAMERA_FAILURE', 'perception', 'error',
         'A camera stopped delivering images', true),
        ('SENSOR_IMU_FAILURE', 'hardware', 'error',
         'The inertial measurement unit failed', true)
    """,
    """
    CREATE TABLE audit_logs (
        audit_id        bigserial PRIMARY KEY,
        at              timestamptz NOT NULL DEFAULT now(),
        actor           text,
        actor_role      text,
        action          text NOT NULL,
        vehicle_id      text,
        outcome         text,
        details         jsonb NOT NULL DEFAULT '{}',
        request_id      text,
        source_address  text
    )
    """,
    """
    CREATE INDEX audit_logs_at_idx ON audit_logs (at)
    """,
    # Archives keep history of vehicles that are later removed: no foreign keys.
    """
    CREATE TABLE vehicle_locations_archive (
        vehicle_id   text NOT NULL,
        "timestamp"  timestamptz NOT NULL,
        latitude     float8 NOT NULL,
        longitude    float8 NOT NULL,
        altitude     float8,
        heading      float8 NOT NULL,
        speed        float8 NOT NULL,
        accuracy     float8 NOT NULL,
        received_at  timestamptz NOT NULL,
        archived_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
    """
    CREATE TABLE vehicle_status_archive (
        vehicle_id                 text NOT NULL,
        "timestamp"                timestamptz NOT NULL,
        state                      text NOT NULL,
        mission_id                 text,
        current_waypoint           text,
        passengers_onboard         boolean NOT NULL,
        operational_hours          boolean NOT NULL,
        progress_percent           float8,
        eta_seconds                integer,
        distance_remaining_meters  float8,
        error_code                 text,
        error_message              text,
        received_at                timestamptz NOT NULL,
        archived_at                timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (vehicle_id, "timestamp")
    )
    """,
)

# Reverse dependency order; no CASCADE, so a table added outside migrations that depends on
# one of these makes the downgrade fail instead of being dropped silently.
DOWNGRADE: tuple[str, ...] = tuple(
    f"DROP TABLE {table}"
    for table in (
        "vehicle_status_archive",
        "vehicle_locations_archive",
        "audit_logs",
        "error_codes",
        "alerts",
        "commands",
        "missions",
        "reservations",
        "battery_health",
        "vehicle_latest",
        "vehicle_docking",
        "vehicle_errors",
        "vehicle_battery",
        "vehicle_status",
        "vehicle_locations",
        "refresh_tokens",
        "users",
        "vehicle_credentials",
        "vehicles",
    )
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
