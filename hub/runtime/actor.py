"""What an actor implements, and the ``Inbox`` through which the runtime watches it work.

An actor is a class: dependencies in ``__init__``, state changes in plain methods (testable
without a loop), and one ``run`` that only moves messages::

    class Counter:
        def __init__(self, store: Store) -> None:
            self._store = store
            self.total = 0

        async def run(
            self, inbox: Inbox[CounterMessage], *, task_status: trio.TaskStatus[None]
        ) -> None:
            self.total = await self._store.load()
            async with trio.open_nursery() as timers:   # optional: the actor's own tasks
                timers.start_soon(self._flush_every_second)
                task_status.started()
                async for message in inbox:
                    match message:
                        case Add(amount):
                            self.total += amount
                        case GetTotal(reply):
                            reply.send(self.total)

        def describe(self) -> dict[str, object]:   # optional: extra /debug/actors fields
            return {"total": self.total}

The supervisor builds a fresh instance from its factory for every (re)start and calls
``run``; ``run`` reports ``task_status.started()`` once it is ready for messages. Raising
out of ``run`` is a crash (logged, restarted with backoff); returning stops the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import trio

from hub.runtime.mailbox import Mailbox
from hub.runtime.refs import Reply, reply_of

M = TypeVar("M")


class Actor(Protocol[M]):
    """The one method the supervisor calls on an actor instance."""

    async def run(self, inbox: Inbox[M], *, task_status: trio.TaskStatus[None]) -> None:
        """Start up, call ``task_status.started()``, then handle messages from ``inbox``.

        Runs until cancelled (the child is stopped or the supervisor shuts down). An
        exception is a crash; a return stops the actor for good.
        """
        ...


class Describable(Protocol):
    """An actor with extra fields for the debug snapshot (queue depth, connection state…)."""

    def describe(self) -> dict[str, Any]:
        """JSON-friendly facts about this actor's state; must not block or fail."""
        ...


class Inbox(Generic[M]):
    """One actor incarnation's view of its mailbox, recording what the actor is doing.

    ``async for message in inbox`` (or ``await inbox.receive()``) takes the next message.
    Asking for the next message marks the previous one finished. The inbox remembers:

    - the message being handled (:attr:`current`) and the last activity time;
    - every reply slot taken out of the mailbox and not yet answered, whether it belongs to
      the message in hand or was kept to answer later (a command waiting for its ack). If
      the actor crashes, the supervisor fails each with :class:`ActorCrashedError`, so no
      asker waits for an answer that cannot come; if it is stopped, with
      :class:`ActorStoppedError`. A request forwarded to another actor (the message carrying
      the same slot) becomes that actor's to answer as soon as it takes it.

    Messages still in the mailbox are untouched by a crash: the next incarnation gets them.
    """

    __slots__ = ("_current", "_last_activity", "_mailbox", "_unanswered")

    def __init__(self, mailbox: Mailbox[M]) -> None:
        self._mailbox = mailbox
        self._current: M | None = None
        self._last_activity = trio.current_time()
        self._unanswered: set[Reply[Any]] = set()

    def __repr__(self) -> str:
        return f"<Inbox {self._mailbox.name}>"

    def __aiter__(self) -> Inbox[M]:
        return self

    async def __anext__(self) -> M:
        try:
            return await self.receive()
        except trio.ClosedResourceError:
            raise StopAsyncIteration from None

    async def receive(self) -> M:
        """Finish the current message and take the next, waiting while there is none.

        Cancellation while waiting takes nothing. Raises :class:`trio.ClosedResourceError`
        if the mailbox was closed (the actor is being stopped).
        """
        self._current = None
        self._last_activity = trio.current_time()
        return self._taken(await self._mailbox.receive())

    def receive_nowait(self) -> M:
        """Finish the current message and take the next one already waiting, without a
        checkpoint (an actor can handle a burst in one turn of the scheduler).

        Raises :class:`trio.WouldBlock` (the current message stays finished) when none waits,
        and :class:`trio.ClosedResourceError` if the mailbox was closed.
        """
        self._current = None
        self._last_activity = trio.current_time()
        return self._taken(self._mailbox.receive_nowait())

    def _taken(self, message: M) -> M:
        self._current = message
        self._last_activity = trio.current_time()
        reply = reply_of(message)
        if reply is not None and not reply.answered:
            reply._hold(self._unanswered)
        return message

    @property
    def current(self) -> M | None:
        """The message being handled: the last one taken, until the actor asks for another."""
        return self._current

    @property
    def last_activity(self) -> float:
        """trio time when this incarnation started, or last took or finished a message."""
        return self._last_activity

    def depth(self) -> int:
        """How many messages are waiting behind the current one."""
        return self._mailbox.depth()

    def unanswered(self) -> int:
        """How many reply slots this incarnation took and has not answered yet."""
        return len(self._unanswered)

    async def tell_self(self, message: M) -> None:
        """Put ``message`` at the back of this actor's own mailbox.

        For the actor's own tasks (a lane that finished a job, a timer): they report to the
        actor's message loop instead of touching its state. Blocks while the mailbox is full;
        raises :class:`ActorStoppedError` once the actor is stopped.
        """
        await self._mailbox.send(message)

    def touch(self) -> None:
        """Record activity now (for work that does not come from the mailbox, like a timer)."""
        self._last_activity = trio.current_time()

    def fail_unanswered(self, make_error: Callable[[], Exception]) -> int:
        """Fail every unanswered reply slot with a new ``make_error()``; return how many.

        Called by the supervisor when the incarnation has ended. Each asker gets its own
        exception instance, so tracebacks do not get mixed up.
        """
        replies = list(self._unanswered)
        self._unanswered.clear()
        for reply in replies:
            reply.fail(make_error())
        return len(replies)
