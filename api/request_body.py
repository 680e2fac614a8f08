"""Reading a JSON request body under the contract's media-type and size rules."""

from __future__ import annotations

import trio
from quart import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import PayloadTooLargeError, UnsupportedMediaTypeError

MAX_BODY = 1 * 1024 * 1024
MAX_BULK_BODY = 4 * 1024 * 1024
UNREAD_BODY_WAIT = 10.0  # seconds an answer waits for the rest of a body it did not read


async def json_body(*, limit: int = MAX_BODY) -> bytes:
    """The raw body of a JSON request: 415 unless JSON, 413 when over ``limit`` bytes.

    Blocks while the body arrives.
    """
    require_json(request.mimetype, request.content_type)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    body = await request.get_data(cache=False, as_text=False)
    assert isinstance(body, bytes)
    if len(body) > limit:
        raise too_large(limit)
    return body


def require_json(mimetype: str, content_type: str | None) -> None:
    """415 ``unsupported_media_type`` unless the body's media type (``mimetype``, lower
    case, without parameters) is JSON; ``content_type`` is the header as sent."""
    if mimetype != "application/json":
        raise UnsupportedMediaTypeError(
            "unsupported_media_type",
            "Content-Type must be application/json",
            field="Content-Type",
            received_value=content_type,
        )


def too_large(limit: int) -> PayloadTooLargeError:
    """413 ``payload_too_large`` for a body over ``limit`` bytes."""
    return PayloadTooLargeError(
        "payload_too_large", f"Request body is larger than {limit // (1024 * 1024)} MiB"
    )


async def settle_unread_body(response: Response) -> Response:
    """Before answering, let the rest of a request body the handler never read arrive.

    An answer sent before a large body was read (a 401, 404, 413 or 429 refused up front)
    makes Hypercorn drop the connection while the client is still sending, and the client
    often sees a reset instead of the answer. Quart keeps reading the body while the app
    runs, so waiting here lets the client finish, read the answer and keep the connection.
    A body too large (over ``MAX_CONTENT_LENGTH``) or too slow to wait for gets
    ``Connection: close`` instead. Blocks up to ``UNREAD_BODY_WAIT`` seconds, and only for
    requests whose body was left unread.
    """
    if not _has_body():
        return response
    if response.status_code == 408:
        # The body already failed to arrive within the body timeout: waiting for it again
        # would only make the 408 later than TVM_BODY_TIMEOUT_SECONDS promises.
        response.headers["Connection"] = "close"
        return response
    with trio.move_on_after(UNREAD_BODY_WAIT):
        try:
            await request.body
        except RequestEntityTooLarge:
            pass
        else:
            return response
    response.headers["Connection"] = "close"
    return response


def _has_body() -> bool:
    length = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return chunked or (length is not None and length > 0)
