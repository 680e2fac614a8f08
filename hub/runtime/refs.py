"""How other tasks talk to an actor: an ``ActorRef`` to tell or ask, a ``Reply`` slot to answer.

``tell`` puts a message in the actor's mailbox and returns. ``ask`` builds a message around a
fresh one-shot :class:`Reply`, tells it, and waits for the actor to answer through it::

    @dataclass(frozen=True, slots=True)
    class GetStatus:
        reply: Reply[VehicleStatus]

    with trio.fail_after(2 * SECONDS):
        status = await vehicle.ask(GetStatus)

The caller owns the deadline; ``ask`` has none. A message that carries a reply slot must
expose it as the attribute ``reply``: that is how the runtime finds the slot to fail with
:class:`ActorCrashedError` or :class:`ActorStoppedError` when the actor cannot answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

from hub.runtime.mailbox import Mailbox

M = TypeVar("M")
R = TypeVar("R")


class Reply(Generic[R]):
    """A one-shot slot through which an actor answers one request.

    The actor calls :meth:`send` or :meth:`fail` once; the asker awaits :meth:`wait`. Answers
    after the first are ignored rather than raising: the runtime may already have failed the
    slot (the actor that first took the request crashed, while another actor it forwarded the
    request to still answers), and the asker may have given up. Neither should crash the
    actor that answers late.
    """

    __slots__ = ("_answered", "_error", "_holder", "_value")

    def __init__(self) -> None:
        self._answered = trio.Event()
        self._value: tuple[R] | None = None
        self._error: Exception | None = None
        # The unanswered set of the Inbox that last took this request out of a mailbox.
        self._holder: set[Reply[Any]] | None = None

    def __repr__(self) -> str:
        state = "answered" if self.answered else "waiting"
        return f"<Reply {state} at {id(self):#x}>"

    @property
    def answered(self) -> bool:
        """True once :meth:`send` or :meth:`fail` has been called."""
        return self._answered.is_set()

    def send(self, value: R) -> bool:
        """Answer with ``value``; return False (doing nothing) if already answered. Never blocks."""
        if self.answered:
            return False
        self._value = (value,)
        self._finish()
        return True

    def fail(self, error: Exception) -> bool:
        """Answer by raising ``error`` in the asker; return False if already answered."""
        if self.answered:
            return False
        self._error = error
        self._finish()
        return True

    async def wait(self) -> R:
        """Block until answered; return the value or raise the error the actor gave.

        Cancellation (the caller's deadline) abandons the wait; a later answer goes nowhere.
        """
        await self._answered.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value[0]

    def _hold(self, unanswered: set[Reply[Any]]) -> None:
        """Stay in ``unanswered`` until answered (used by ``Inbox`` to fail it on a crash).

        The latest holder is the one responsible: an actor that forwarded the request to
        another is off the hook once the other takes it, and its own crash spares it.
        """
        if self._holder is not None:
            self._holder.discard(self)
        unanswered.add(self)
        self._holder = unanswered

    def _finish(self) -> None:
        if self._holder is not None:
            self._holder.discard(self)
            self._holder = None
        self._answered.set()


def reply_of(message: object) -> Reply[Any] | None:
    """The reply slot a message carries in its ``reply`` attribute, or None for a tell."""
    candidate = getattr(message, "reply", None)
    return candidate if isinstance(candidate, Reply) else None


class ActorRef(Generic[M]):
    """A handle on one supervised actor, valid across its restarts (it addresses the mailbox).

    ``kind`` names the actor's class of job (``"vehicle"``), ``key`` the instance
    (``"wheelchair_001"``). Refs are cheap to copy around and compare by identity; the
    supervisor makes exactly one per child.
    """

    __slots__ = ("_key", "_kind", "_mailbox")

    def __init__(self, kind: str, key: str, mailbox: Mailbox[M]) -> None:
        self._kind = kind
        self._key = key
        self._mailbox = mailbox

    def __repr__(self) -> str:
        state = " stopped" if self.stopped else ""
        return f"<ActorRef {self._kind} {self._key}{state}>"

    @property
    def kind(self) -> str:
        """The kind of actor (``"vehicle"``, ``"session"``, ``"router"``)."""
        return self._kind

    @property
    def key(self) -> str:
        """Which actor of its kind (``"wheelchair_001"``)."""
        return self._key

    @property
    def stopped(self) -> bool:
        """True once the actor is stopped for good: every tell and ask will fail."""
        return self._mailbox.closed

    async def tell(self, message: M) -> None:
        """Send ``message`` without waiting for it to be handled.

        Blocks while the mailbox is full (backpressure); cancellation while blocked sends
        nothing. Raises :class:`ActorStoppedError` if the actor is stopped.
        """
        await self._mailbox.send(message)

    def tell_nowait(self, message: M) -> None:
        """Send ``message`` if there is room right now.

        Raises :class:`MailboxFullError` (nothing sent) when the mailbox is full, or
        :class:`ActorStoppedError` if the actor is stopped. Never blocks.
        """
        self._mailbox.send_nowait(message)

    async def ask(self, build: Callable[[Reply[R]], M]) -> R:
        """Send ``build(reply)`` and wait for the actor to answer through ``reply``.

        ``build`` is usually the message class itself (``ref.ask(GetStatus)``) or a lambda
        (``ref.ask(lambda reply: SendCommand(command, reply))``); the message must expose the
        slot as its ``reply`` attribute. Returns what the actor sends; raises what it fails
        the reply with, :class:`ActorCrashedError` if it crashed holding the request,
        :class:`ActorStoppedError` if it is or gets stopped. Waits for room in a full mailbox
        first. There is no timeout here: wrap the call in ``trio.fail_after``.
        """
        reply: Reply[R] = Reply()
        message = build(reply)
        if reply_of(message) is not reply:
            raise TypeError(
                f"{type(message).__name__} must carry the reply slot as its 'reply' attribute"
            )
        await self._mailbox.send(message)
        return await reply.wait()
