"""Reading a JSON request body under the contract's media-type and size rules."""

from __future__ import annotations

from quart import request

from hub.errors import ContractError

MAX_BODY = 1 * 1024 * 1024
MAX_BULK_BODY = 4 * 1024 * 1024


async def json_body(*, limit: int = MAX_BODY) -> bytes:
    """The raw body of a JSON request: 415 unless JSON, 413 when over ``limit`` bytes.

    Blocks while the body arrives.
    """
    mimetype = request.mimetype
    if mimetype != "application/json":
        raise ContractError(
            415, "unsupported_media_type", "Content-Type must be application/json",
            field="Content-Type", received_value=request.content_type,
        )
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    body = await request.get_data(cache=False, as_text=False)
    assert isinstance(body, bytes)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> ContractError:
    return ContractError(
        413, "payload_too_large", f"Request body is larger than {limit // (1024 * 1024)} MiB"
    )
