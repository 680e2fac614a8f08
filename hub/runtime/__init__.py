"""The actor runtime: mailboxes, tell/ask, one-for-one supervision with backoff, a registry.

See ARCHITECTURE "Supervision" and STYLE "Our shape". The pieces:

- :class:`Mailbox` — a bounded channel owned by the supervisor; it survives restarts.
- :class:`ActorRef` / :class:`Reply` — ``tell``, ``tell_nowait`` and ``ask`` (deadline by
  the caller's ``trio.fail_after``).
- :class:`Actor` / :class:`Inbox` — what an actor implements and iterates.
- :class:`Supervisor` / :class:`RestartPolicy` — restarts, backoff, escalation.
- :class:`Registry` — get-or-start by kind and key, and the debug snapshot.
- :class:`ServiceActor` — a long-lived task without a mailbox, supervised like an actor.
"""

from hub.runtime.actor import Actor, Describable, Inbox
from hub.runtime.errors import (
    ActorCrashedError,
    ActorStoppedError,
    EscalationError,
    MailboxFullError,
    ended_by_cancellation,
)
from hub.runtime.mailbox import Mailbox
from hub.runtime.policy import RestartPolicy
from hub.runtime.refs import ActorRef, Reply, reply_of
from hub.runtime.registry import Registry
from hub.runtime.service import Service, ServiceActor
from hub.runtime.supervisor import DEFAULT_MAILBOX_SIZE, ChildStatus, Supervisor

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "Actor",
    "ActorCrashedError",
    "ActorRef",
    "ActorStoppedError",
    "ChildStatus",
    "Describable",
    "EscalationError",
    "Inbox",
    "Mailbox",
    "MailboxFullError",
    "Registry",
    "Reply",
    "RestartPolicy",
    "Service",
    "ServiceActor",
    "Supervisor",
    "ended_by_cancellation",
    "reply_of",
]
