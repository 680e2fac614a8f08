"""The benchmark's HTTP client reuses a keep-alive connection only while the hub keeps it.

Hypercorn closes a connection idle for 5 s; a request written on it then is lost, which
the capacity benchmark would count against the hub (an emergency stop "not answered").
"""

from __future__ import annotations

from functools import partial

import trio
import trio.testing

from scripts.capacity.http_client import REUSE_IDLE_LIMIT, ConnectionPool, post_request

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def serve_http(stream: trio.SocketStream, connections: list[int]) -> None:
    """Answer every request on the connection with 200 (one request per read is enough)."""
    connections.append(1)
    async with stream:
        while await stream.receive_some(65536):
            await stream.send_all(ANSWER)


async def test_a_connection_idle_past_the_limit_is_replaced_not_reused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connections: list[int] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, host="127.0.0.1"),
            partial(serve_http, connections=connections),
            0,
        )
        port = listeners[0].socket.getsockname()[1]
        pool = ConnectionPool("127.0.0.1", port, limit=2)
        request = post_request("127.0.0.1", "/x", "token", b"{}")

        assert (await pool.request(request)).status == 200
        await trio.sleep(REUSE_IDLE_LIMIT - 1)
        assert (await pool.request(request)).status == 200
        await trio.sleep(REUSE_IDLE_LIMIT - 1)
        assert (await pool.request(request)).status == 200
        assert len(connections) == 1  # never idle for the limit: the same connection

        await trio.sleep(REUSE_IDLE_LIMIT)
        assert (await pool.request(request)).status == 200
        assert len(connections) == 2  # idle for the limit: a new one

        await pool.aclose()
        nursery.cancel_scope.cancel()
