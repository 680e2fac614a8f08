"""The actor runtime's exceptions: a small flat family, each saying when it is raised.

Like trio's own ``ClosedResourceError``/``BrokenResourceError`` pair, the names say *who*
went away: an actor that *crashed* (it raised and is being restarted) is not the same as an
actor that was *stopped* (it is gone for good). Callers that only want "no answer" can catch
both: ``except (ActorCrashedError, ActorStoppedError)``.
"""

from __future__ import annotations

import trio


class MailboxFullError(trio.WouldBlock):
    """Raised by ``tell_nowait`` / ``Mailbox.send_nowait`` when the mailbox is at capacity.

    Nothing was sent. It is a :class:`trio.WouldBlock`, as every ``*_nowait`` failure is: the
    blocking ``tell``/``send`` would have waited for room instead (backpressure).
    """


class ActorCrashedError(Exception):
    """Raised in an asker when the actor crashed while it held the request.

    The actor had taken the message out of its mailbox (it was handling it, or keeping its
    reply slot to answer later) and raised before answering. The supervisor restarts the
    actor, but that request is lost; send it again if it is safe to. ``__cause__`` is the
    actor's own exception. Requests still waiting in the mailbox are *not* failed: the
    restarted actor handles them.
    """


class ActorStoppedError(Exception):
    """Raised by ``tell``/``ask`` when the actor is stopped and will not run again.

    That is: ``Supervisor.stop_child`` was called, the actor's ``run()`` returned, its
    supervisor shut down or escalated. Raised for new messages, for senders blocked on its
    full mailbox, for asks still waiting in the mailbox when it stopped, and for asks it had
    taken but not answered.
    """


class EscalationError(Exception):
    """Raised out of ``Supervisor.run()`` when a child crashes too often to keep restarting.

    More than ``RestartPolicy.max_restarts`` crashes within ``RestartPolicy.restart_window``:
    the supervisor cancels all its children and raises this, which ends the parent's nursery
    (at the top, the process exits non-zero and its orchestrator restarts it). ``__cause__``
    is the child's last exception.
    """


def ended_by_cancellation(exc: BaseException) -> bool:
    """True when ``exc`` is trio.Cancelled, or a group of nothing but Cancelled (a stop)."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(trio.Cancelled)
        return rest is None
    return False
