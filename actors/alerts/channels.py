"""Side channels for critical alerts: Redis channel ``tvm:alerts`` and e-mail (CONTRACT §7).

The Redis publisher lives in :mod:`storage.redis_channels` (storage/ is the only Redis client).

Each channel has its own bounded queue and sender task (:class:`ChannelWorker`), so a slow
SMTP server delays neither Redis nor anything else, and raising an alert never waits for
either: :meth:`ChannelWorker.offer` never blocks. A delivery is tried once, bounded by a
timeout; a failure or a full queue is logged and counted, never retried in a loop.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from functools import partial
from typing import Any, Protocol

import trio

from hub.config import Settings
from storage.redis_channels import RedisAlertChannel, describe_error

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0
QUEUE_SIZE = 100


class AlertChannel(Protocol):
    """Somewhere outside the hub that critical alerts are sent to."""

    name: str

    async def deliver(self, frame: dict[str, Any]) -> None:
        """Send one alert frame; raise on failure. The caller bounds the time it may take."""


class ChannelWorker:
    """One channel's queue and the task that empties it, with delivery counters."""

    def __init__(
        self,
        channel: AlertChannel,
        *,
        send_timeout: float = SEND_TIMEOUT,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.channel = channel
        self._send_timeout = send_timeout
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](queue_size)
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def offer(self, frame: dict[str, Any]) -> None:
        """Queue a frame for delivery; never blocks (a full queue drops it, logged)."""
        try:
            self._send.send_nowait(frame)
        except trio.WouldBlock:
            self.dropped += 1
            logger.warning(
                "alert %s not sent by %s: its queue is full",
                frame.get("alert_id"),
                self.channel.name,
            )

    def stats(self) -> dict[str, int]:
        """Delivered, failed, dropped and still queued frames."""
        queued = self._receive.statistics().current_buffer_used
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "queued": queued}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver queued frames one at a time until cancelled (what is queued then is lost)."""
        task_status.started()
        async for frame in self._receive:
            await self._deliver(frame)

    async def _deliver(self, frame: dict[str, Any]) -> None:
        alert_id = frame.get("alert_id")
        with trio.move_on_after(self._send_timeout) as scope:
            try:
                await self.channel.deliver(frame)
            except Exception as exc:
                self.failed += 1
                logger.warning(
                    "alert %s not sent by %s: %s", alert_id, self.channel.name, describe_error(exc)
                )
                return
        if scope.cancelled_caught:
            self.failed += 1
            logger.warning(
                "alert %s not sent by %s: no answer within %.0f s",
                alert_id,
                self.channel.name,
                self._send_timeout,
            )
            return
        self.sent += 1


class EmailAlertChannel:
    """Sends one e-mail per alert through an SMTP server, in a worker thread (stdlib smtplib)."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._recipients = tuple(recipients)
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        # Its own threads: a hung server must not use up trio's default thread pool.
        self._limiter = trio.CapacityLimiter(2)

    async def deliver(self, frame: dict[str, Any]) -> None:
        """Send the alert's e-mail; raises on any SMTP or network failure.

        Cancelling abandons the thread, which ends by itself within the socket timeout.
        """
        message = alert_email(frame, sender=self._sender, recipients=self._recipients)
        await trio.to_thread.run_sync(
            partial(self._send_blocking, message), abandon_on_cancel=True, limiter=self._limiter
        )

    def _send_blocking(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message)


def _header_text(value: Any) -> str:
    return " ".join(str(value).split())


def alert_email(frame: dict[str, Any], *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The e-mail for one alert frame: severity, vehicle and kind in the subject."""
    severity = _header_text(frame.get("severity", "")).upper()
    vehicle_id = _header_text(frame.get("vehicle_id", ""))
    kind = _header_text(frame.get("kind", ""))
    escalated = bool(frame.get("escalated"))
    subject = f"[TVM {severity}] {vehicle_id}: {kind}"
    if escalated:
        subject += " (escalated: not acknowledged)"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    lines = [
        f"Vehicle:    {vehicle_id}",
        f"Severity:   {frame.get('severity')}",
        f"Kind:       {kind}",
        f"Error code: {frame.get('error_code') or '-'}",
        f"Message:    {frame.get('message')}",
        f"Raised at:  {frame.get('timestamp')}",
        f"Alert id:   {frame.get('alert_id')}",
    ]
    if frame.get("backfilled"):
        lines.append("Backfilled: raised from history the vehicle uploaded after being offline")
    if escalated:
        lines.append("Escalated:  nobody has acknowledged this alert yet")
    lines.append("")
    lines.append(f"Acknowledge it with POST /api/v1/alerts/{frame.get('alert_id')}/ack.")
    message.set_content("\n".join(lines) + "\n")
    return message


def channels_from_settings(settings: Settings) -> list[AlertChannel]:
    """Redis when ``redis_url`` is set; e-mail when ``smtp_host`` and ``smtp_to`` are set."""
    channels: list[AlertChannel] = []
    if settings.redis_url:
        channels.append(RedisAlertChannel(settings.redis_url))
    if settings.smtp_host:
        if not settings.smtp_to:
            logger.warning("SMTP_HOST is set but SMTP_TO is empty: alert e-mails are off")
        else:
            channels.append(
                EmailAlertChannel(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    sender=settings.smtp_from,
                    recipients=settings.smtp_to,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    starttls=settings.smtp_starttls,
                )
            )
    return channels
