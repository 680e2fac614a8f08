"""The outbound side of one socket as an actor sees it: frames to send, and a close request.

The actor calls :meth:`OutboundLink.send_nowait` (never blocks) and :meth:`close`; the
socket's writer task loops on :meth:`next_frame`, and takes whatever else is ready with
:meth:`next_frame_nowait` so that one socket write carries them all. Urgent frames
(emergency stops) are sent before anything already waiting. A peer that stops reading fills
the queue; the link then closes itself (1008 policy violation would be wrong: 1013 "try
again later").
"""

from __future__ import annotations

import itertools
from collections import deque

import trio

from actors.sockets.encoded import Frame

OVERLOADED = 1013
_link_ids = itertools.count(1)


class LinkClosedError(Exception):
    """The link was closed by the hub; ``code`` and ``reason`` are what the socket sends."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"link closed with {code} {reason}")
        self.code = code
        self.reason = reason


class OutboundLink:
    """A bounded two-lane queue of frames for one socket, plus its close request."""

    def __init__(self, *, capacity: int = 1000, label: str = "") -> None:
        self.link_id = f"{label}#{next(_link_ids)}"
        self._capacity = capacity
        self._urgent: deque[Frame] = deque()
        self._normal: deque[Frame] = deque()
        self._wakeup = trio.Event()
        self._close: tuple[int, str] | None = None  # the close asked for: code, reason
        self.opened_at = trio.current_time()
        self.last_received = self.opened_at

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._close is not None

    def depth(self) -> int:
        """Frames waiting to be written."""
        return len(self._urgent) + len(self._normal)

    def send_nowait(self, frame: Frame, *, urgent: bool = False) -> bool:
        """Queue a frame; False if the link is closed. Closes the link when the peer lags."""
        if self._close is not None:
            return False
        if self.depth() >= self._capacity:
            self.close(OVERLOADED, "peer is not reading")
            return False
        (self._urgent if urgent else self._normal).append(frame)
        self._wakeup.set()
        return True

    def close(self, code: int, reason: str) -> None:
        """Ask the socket to close with ``code``; frames still waiting are discarded."""
        if self._close is None:
            self._close = (code, reason)
            self._urgent.clear()
            self._normal.clear()
            self._wakeup.set()

    def next_frame_nowait(self) -> Frame | None:
        """The next frame to write if one is waiting, else None (also once closed)."""
        if self._close is not None:
            return None
        if self._urgent:
            return self._urgent.popleft()
        if self._normal:
            return self._normal.popleft()
        return None

    async def next_frame(self) -> Frame:
        """The next frame to write; waits while there is none.

        Raises :class:`LinkClosedError` once the link is closed: a new one each time, as the
        link must not hold an exception (its traceback holds this frame, and so the link: a
        cycle that kept every closed socket's objects until a full collection).
        """
        while True:
            if self._close is not None:
                raise LinkClosedError(*self._close)
            frame = self.next_frame_nowait()
            if frame is not None:
                return frame
            self._wakeup = trio.Event()
            await self._wakeup.wait()
