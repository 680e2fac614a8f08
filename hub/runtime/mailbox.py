"""An actor's mailbox: a bounded trio memory channel owned by the actor's supervisor.

The supervisor creates the mailbox once per child and hands the same one to every
incarnation of the actor, so a restart keeps the messages that were still waiting. A message
the crashed incarnation had already received is gone with it (see ``Inbox`` for what the
runtime does about requests among those).

A full mailbox pushes back: :meth:`Mailbox.send` waits for room, :meth:`Mailbox.send_nowait`
raises :class:`MailboxFullError`. Memory stays bounded however fast senders are.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

from hub.runtime.errors import ActorStoppedError, MailboxFullError

M = TypeVar("M")


class Mailbox(Generic[M]):
    """A bounded FIFO of messages for one actor; ``capacity`` messages fit before senders wait.

    Any number of tasks may send; only the actor (through its ``Inbox``) receives. Once
    :meth:`close` has been called every send raises :class:`ActorStoppedError`.
    """

    __slots__ = ("_closed", "_name", "_receive_channel", "_send_channel")

    def __init__(self, capacity: int, *, name: str = "mailbox") -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, not {capacity}")
        self._name = name
        self._send_channel, self._receive_channel = trio.open_memory_channel[M](capacity)
        self._closed = False

    def __repr__(self) -> str:
        return f"<Mailbox {self._name} {self.depth()}/{self.capacity}>"

    @property
    def name(self) -> str:
        """What the mailbox belongs to (``"vehicle wheelchair_001"``), for messages and logs."""
        return self._name

    @property
    def capacity(self) -> int:
        """How many messages may wait before senders block."""
        return int(self._receive_channel.statistics().max_buffer_size)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called: the actor is stopped for good."""
        return self._closed

    def depth(self) -> int:
        """How many messages are waiting (not counting senders blocked on a full mailbox)."""
        return self._receive_channel.statistics().current_buffer_used

    def blocked_senders(self) -> int:
        """How many tasks are blocked in :meth:`send` waiting for room."""
        return self._receive_channel.statistics().tasks_waiting_send

    async def send(self, message: M) -> None:
        """Put ``message`` at the back of the mailbox, waiting while it is full.

        This is where backpressure happens: a sender faster than the actor waits here.
        Cancellation while waiting sends nothing. Raises :class:`ActorStoppedError` if the
        mailbox is closed, or is closed while this call waits for room.
        """
        try:
            await self._send_channel.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStoppedError(f"{self._name} is stopped") from None

    def send_nowait(self, message: M) -> None:
        """Put ``message`` at the back of the mailbox without waiting.

        Raises :class:`MailboxFullError` (nothing sent) if it is full, or
        :class:`ActorStoppedError` if it is closed.
        """
        try:
            self._send_channel.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFullError(
                f"{self._name} mailbox is full ({self.capacity} messages waiting)"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStoppedError(f"{self._name} is stopped") from None

    async def receive(self) -> M:
        """Take the oldest message, waiting while the mailbox is empty.

        Cancellation while waiting takes nothing: the message stays for the next receive.
        Raises :class:`trio.ClosedResourceError` once the mailbox is closed.
        """
        return await self._receive_channel.receive()

    def receive_nowait(self) -> M:
        """Take the oldest message without waiting.

        Raises :class:`trio.WouldBlock` when the mailbox is empty, and
        :class:`trio.ClosedResourceError` once it is closed.
        """
        return self._receive_channel.receive_nowait()

    def close(self) -> list[M]:
        """Close the mailbox for good and return the messages that were still waiting.

        Senders blocked on the full mailbox complete first (their messages are among those
        returned), so no sender is left hanging; every later send raises
        :class:`ActorStoppedError`. Calling it again returns ``[]``. Does not block.
        """
        if self._closed:
            return []
        self._closed = True
        left: list[M] = []
        while True:
            try:
                # Also takes the message of each blocked sender and wakes that sender.
                left.append(self._receive_channel.receive_nowait())
            except trio.WouldBlock:
                break
        self._send_channel.close()
        self._receive_channel.close()
        return left
