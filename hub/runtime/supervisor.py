"""One-for-one supervision: restart a crashed actor with backoff, escalate when it keeps crashing.

A :class:`Supervisor` owns a nursery of children and one mailbox per child. When a child's
``run()`` raises, the supervisor logs the traceback, fails the requests the child held
(:class:`ActorCrashedError`), waits out an exponential backoff and starts a fresh actor from
the child's factory on the *same* mailbox, so the messages still waiting survive. More than
``max_restarts`` crashes within ``restart_window`` escalate: :meth:`Supervisor.run` raises
:class:`EscalationError`, ending the parent's nursery ("let it crash").

Usage, from a parent task::

    supervisor = Supervisor()
    async with trio.open_nursery() as service_nursery:
        await service_nursery.start(supervisor.run)
        vehicle = await supervisor.start_child("vehicle", vid, lambda: VehicleActor(vid, writer))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from hub.runtime.actor import Actor, Inbox
from hub.runtime.errors import ActorCrashedError, ActorStoppedError, EscalationError
from hub.runtime.mailbox import Mailbox
from hub.runtime.policy import RestartHistory, RestartPolicy
from hub.runtime.refs import ActorRef, reply_of

M = TypeVar("M")

DEFAULT_MAILBOX_SIZE = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """A point-in-time view of one child, for the registry's debug snapshot and metrics."""

    kind: str
    key: str
    ref: ActorRef[Any]
    mailbox_depth: int
    mailbox_capacity: int
    blocked_senders: int
    restarts: int
    last_restart_at: float | None
    running: bool
    last_activity: float
    actor: object | None


class _Child(Generic[M]):
    """The supervisor's bookkeeping for one child; it outlives every incarnation."""

    def __init__(
        self, kind: str, key: str, factory: Callable[[], Actor[M]], size: int, policy: RestartPolicy
    ) -> None:
        self.kind = kind
        self.key = key
        self.factory = factory
        self.mailbox: Mailbox[M] = Mailbox(size, name=f"{kind} {key}")
        self.ref = ActorRef(kind, key, self.mailbox)
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        self.actor: Actor[M] | None = None
        self.inbox: Inbox[M] | None = None
        self.running = False
        self.started_once = False
        self.history = RestartHistory(policy)
        self.created_at = trio.current_time()

    @property
    def name(self) -> str:
        return f"{self.kind} {self.key}"


class _ReportStarted(trio.TaskStatus[None]):
    """The ``task_status`` an incarnation gets: marks the child running, releases start_child."""

    def __init__(self, child: _Child[Any], first_start: trio.TaskStatus[None]) -> None:
        self._child = child
        self._first_start = first_start
        self._called = False

    def started(self, value: None = None) -> None:
        if self._called:
            raise RuntimeError("called 'started' twice on the same task status")
        self._called = True
        self._child.running = True
        if self._child.inbox is not None:
            self._child.inbox.touch()
        if not self._child.started_once:
            self._child.started_once = True
            self._first_start.started()


class Supervisor:
    """Runs actors one-for-one: a crash restarts only the child that crashed."""

    def __init__(self, policy: RestartPolicy | None = None, *, name: str = "supervisor") -> None:
        self._policy = policy if policy is not None else RestartPolicy()
        self._name = name
        self._children: dict[tuple[str, str], _Child[Any]] = {}
        self._nursery: trio.Nursery | None = None
        self._escalation: tuple[str, BaseException] | None = None

    def __repr__(self) -> str:
        return f"<Supervisor {self._name} with {len(self._children)} children>"

    @property
    def policy(self) -> RestartPolicy:
        """The restart policy every child of this supervisor gets."""
        return self._policy

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve children until cancelled; start it with ``await nursery.start(supervisor.run)``.

        Cancelling it stops every child (their pending asks fail with
        :class:`ActorStoppedError`). Raises :class:`EscalationError` when a child crashed
        more often than the policy allows, after stopping all the others.
        """
        if self._nursery is not None:
            raise RuntimeError(f"{self._name} is already running")
        try:
            async with trio.open_nursery() as children_nursery:
                self._nursery = children_nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
        # Only an escalation cancels the children's nursery from inside.
        if self._escalation is not None:
            message, cause = self._escalation
            raise EscalationError(message) from cause

    async def start_child(
        self,
        kind: str,
        key: str,
        factory: Callable[[], Actor[M]],
        *,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    ) -> ActorRef[M]:
        """Create the child's mailbox, start an actor from ``factory`` and wait until it is ready.

        Returns once the actor called ``task_status.started()``. If the first actor raises
        before that, the exception propagates here and nothing is kept (no restart: the
        caller learns at once). Cancelling this call cancels the start. Raises
        ``ValueError`` if a child with this kind and key exists (see ``Registry`` for
        get-or-start), ``RuntimeError`` if the supervisor is not running.
        """
        nursery = self._nursery
        if nursery is None:
            raise RuntimeError(f"{self._name} is not running")
        if (kind, key) in self._children:
            raise ValueError(f"{kind} {key} is already started")
        child = _Child(kind, key, factory, mailbox_size, self._policy)
        self._children[(kind, key)] = child
        started = False
        try:
            await nursery.start(self._supervise, child)
            started = True
        finally:
            if not started:
                self._remove(child)
        return child.ref

    async def stop_child(self, kind: str, key: str) -> bool:
        """Cancel one child and wait until it is gone; False if there was no such child.

        Its pending asks (in hand or still in the mailbox) fail with
        :class:`ActorStoppedError`, and so does every later tell or ask through its ref.
        """
        child = self._children.get((kind, key))
        if child is None:
            return False
        child.scope.cancel()
        await child.finished.wait()
        return True

    def lookup(self, kind: str, key: str) -> ActorRef[Any] | None:
        """The ref of the child with this kind and key (maybe still starting), or None."""
        child = self._children.get((kind, key))
        return child.ref if child is not None else None

    def refs(self, kind: str | None = None) -> list[ActorRef[Any]]:
        """Refs of all children, or of one kind, in start order."""
        return [c.ref for c in self._children.values() if kind is None or c.kind == kind]

    def children(self) -> list[ChildStatus]:
        """A status for each child, in start order."""
        return [
            ChildStatus(
                kind=child.kind,
                key=child.key,
                ref=child.ref,
                mailbox_depth=child.mailbox.depth(),
                mailbox_capacity=child.mailbox.capacity,
                blocked_senders=child.mailbox.blocked_senders(),
                restarts=child.history.restarts,
                last_restart_at=child.history.last_restart_at,
                running=child.running,
                last_activity=(
                    child.inbox.last_activity if child.inbox is not None else child.created_at
                ),
                actor=child.actor,
            )
            for child in self._children.values()
        ]

    async def _supervise(self, child: _Child[Any], *, task_status: trio.TaskStatus[None]) -> None:
        """Run incarnations of ``child`` until it returns, is stopped, or escalates."""
        try:
            with child.scope:
                while True:
                    try:
                        await self._run_incarnation(child, task_status)
                    except Exception as error:
                        if not child.started_once:
                            raise
                        delay = self._after_crash(child, error)
                    else:
                        logger.info("%s returned from run(); stopping it", child.name)
                        return
                    if delay is None:
                        return
                    # Outside the except block, so the old error does not ride along as the
                    # context of whatever this sleep raises.
                    await trio.sleep(delay)
                    child.history.record_restart(trio.current_time())
            if not child.started_once:
                raise ActorStoppedError(f"{child.name} was stopped while starting")
        finally:
            self._remove(child)

    async def _run_incarnation(
        self, child: _Child[Any], first_start: trio.TaskStatus[None]
    ) -> None:
        # The actor runs right in this task, not in a nursery of its own, so what it raises
        # reaches us (and start_child, before it started) as it was raised.
        child.inbox = Inbox(child.mailbox)
        child.actor = None
        child.actor = child.factory()
        try:
            await child.actor.run(child.inbox, task_status=_ReportStarted(child, first_start))
        finally:
            child.running = False

    def _after_crash(self, child: _Child[Any], error: Exception) -> float | None:
        """Log the crash and fail the requests it held; the backoff, or None to escalate."""
        if child.inbox is not None:
            child.inbox.fail_unanswered(lambda: _crashed(child, error))
        policy = self._policy
        delay = child.history.record_crash(trio.current_time())
        if delay is None:
            message = (
                f"{child.name} crashed more than {policy.max_restarts} times "
                f"within {policy.restart_window:g} s"
            )
            logger.critical("%s; escalating", message, exc_info=error)
            if self._escalation is None:
                self._escalation = (message, error)
                if self._nursery is not None:
                    self._nursery.cancel_scope.cancel()
            return None
        logger.error(
            "%s crashed; restart %d in %g s",
            child.name,
            child.history.restarts + 1,
            delay,
            exc_info=error,
        )
        return delay

    def _remove(self, child: _Child[Any]) -> None:
        """Forget a child for good: close its mailbox and fail every ask it will never answer."""
        if self._children.get((child.kind, child.key)) is child:
            del self._children[(child.kind, child.key)]
        child.running = False
        dropped = child.mailbox.close()
        for message in dropped:
            reply = reply_of(message)
            if reply is not None:
                reply.fail(_stopped(child))
        if child.inbox is not None:
            child.inbox.fail_unanswered(lambda: _stopped(child))
        if dropped:
            logger.info("%s stopped with %d messages undelivered", child.name, len(dropped))
        child.finished.set()


def _crashed(child: _Child[Any], error: Exception) -> ActorCrashedError:
    crashed = ActorCrashedError(f"{child.name} crashed while handling the request")
    crashed.__cause__ = error
    return crashed


def _stopped(child: _Child[Any]) -> ActorStoppedError:
    return ActorStoppedError(f"{child.name} was stopped before answering")
