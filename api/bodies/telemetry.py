"""Answers to telemetry posts (CONTRACT §3–§5): bodies and rate-limit headers."""

from __future__ import annotations

from typing import Any

from actors.rate_limit import Decision
from actors.vehicle.messages import BulkAccepted, ReportAccepted
from actors.vehicle.rules import LOW_BATTERY_ADVICE
from api.errors import rate_limit_headers
from hub.clock import format_timestamp


def quota_headers(quota: Decision) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers every telemetry answer carries."""
    return rate_limit_headers(quota.limit, quota.remaining, quota.reset_epoch)


def report_body(answer: ReportAccepted) -> dict[str, Any]:
    """The 200 body of a live report of any kind."""
    received_at = format_timestamp(answer.received_at)
    body: dict[str, Any]
    if answer.kind == "error":
        body = {
            "status": "acknowledged",
            "received_at": received_at,
            "alert_id": answer.alert_id,
            "action": "alert_staff" if answer.alert_id else "logged",
            "staff_notified": answer.staff_notified,
        }
        if answer.unknown_error_code:
            body["warning"] = "unknown_error_code"
    else:
        body = {"status": "ok", "received_at": received_at}
    if answer.kind == "battery":
        soc = answer.low_battery_soc
        if soc is None:
            body["warning"] = None
        else:
            body["warning"] = "low_battery"
            body["message"] = f"Battery at {soc:.1f} %, below {LOW_BATTERY_ADVICE:.0f} %"
            body["recommended_action"] = "return_to_base"
    if answer.duplicate:
        body["duplicate"] = True
    return body


def bulk_body(answer: BulkAccepted) -> dict[str, Any]:
    """The 200 body of a bulk upload (CONTRACT §4)."""
    return {
        "status": "ok",
        "messages_received": answer.received,
        "messages_processed": answer.received,
        "inserted": answer.inserted,
        "skipped_duplicates": answer.received - answer.inserted,
        "offline_duration_seconds": answer.offline_duration_seconds,
    }
