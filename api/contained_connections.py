"""Hypercorn's trio worker with each connection's faults kept to that connection.

Hypercorn 0.18 serves every TCP connection as one ``TCPServer.run`` task in the server's own
nursery, so an exception out of any one of them cancels all the others and ends ``serve()``:
the hub stopped, every vehicle and operator with it. Two such exceptions were seen here:

- A WebSocket upgrade request with bytes after it (Hypercorn issue #225): h11 refuses to
  send the 400 (``LocalProtocolError``), and the error escapes. One unauthenticated packet
  stopped the hub.
- trio's ``BusyResourceError`` when the reader task answers the peer's close frame while
  another task is closing the socket. Hypercorn's ``_close`` runs ``send_eof`` outside the
  send lock that every other write takes. A client that hangs up as soon as it has read a
  refusal's ``error`` frame does exactly this.

:class:`ContainedTCPServer` fixes the second at its cause. A write that meets a close in
progress is treated as a write to a closed socket, which is what it is (the close shuts the
socket for writing either way): the connection is closed, as Hypercorn does when a write
finds the socket broken. Any other exception out of one connection is logged (WARNING, with
its traceback) and counted in ``connection_faults_total`` (``/metrics``). It ends that
connection only; ``TCPServer.run`` closes its socket on the way out. A finished connection
also lets go of its protocol, which held the server's bound ``protocol_send`` (a reference
cycle: every closed connection then waited for a full collection to be freed).
:func:`install` puts the class in place of Hypercorn's own for every later
``hypercorn.trio.serve``.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.events import Closed, Event
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio.tcp_server import TCPServer

from hub import metrics

logger = logging.getLogger(__name__)


class ContainedTCPServer(TCPServer):
    """Hypercorn's connection server; a fault in the connection ends the connection only."""

    async def run(self) -> None:
        """Serve the connection until it closes. Blocks for as long as the connection lasts.
        Cancellation (server shutdown) passes through; any other error is logged and ends
        this connection."""
        client = _client_of(self.stream)
        try:
            await super().run()
        except* Exception as faults:
            metrics.connection_faults.inc()
            logger.warning(
                "the connection from %s ended by a fault in the HTTP server; the hub serves on",
                client,
                exc_info=faults,
                extra={"client": client},
            )
        finally:
            # The protocol holds this server's bound protocol_send: a reference cycle that kept
            # every finished connection's objects until a full collection. The connection's
            # tasks have all ended here; nothing uses the protocol any more.
            self.__dict__.pop("protocol", None)

    async def protocol_send(self, event: Event) -> None:
        """Hypercorn's write, closing the connection when the write meets a close in progress
        (that close shuts the socket for writing; the bytes could never have arrived)."""
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:
            await self.protocol.handle(Closed())


def _client_of(stream: Any) -> str:
    """``host:port`` of the peer of a (TLS or plain) socket stream; ``?`` if unknown."""
    socket: Any = getattr(getattr(stream, "transport_stream", stream), "socket", None)
    try:
        host, port, *_ = socket.getpeername()
    except (AttributeError, OSError, ValueError):
        return "?"
    return f"{host}:{port}"


def install() -> None:
    """Serve every connection of later ``hypercorn.trio.serve`` calls with
    :class:`ContainedTCPServer`. Calling it again changes nothing."""
    hypercorn_run.TCPServer = ContainedTCPServer  # type: ignore[attr-defined]
