"""Every failure is the contract's flat JSON error (CONTRACT §1, §1.1), never an HTML page:
unknown paths, wrong methods, oversized and non-JSON bodies, request ids, and a crash.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from api.app import create_app
from api.context import HubServices
from hub.config import Settings
from hub.security import TokenCodec
from tests.integration.harness import JWT_SECRET, location_body, running_hub

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MIB = 1024 * 1024


def assert_error(answer: Any, status: int, error: str) -> dict[str, Any]:
    """The contract's error body with ``status`` and ``error``; returns the body.

    Works for an httpx response and for Quart's test response alike.
    """
    assert answer.status_code == status, (answer.status_code, answer_text(answer))
    assert answer.headers["Content-Type"].startswith("application/json")
    text = answer_text(answer)
    assert "<html" not in text.lower()
    body = json.loads(text)
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert body["request_id"] == answer.headers["X-Request-ID"]
    return dict(body)


def answer_text(answer: Any) -> str:
    text = answer.text
    return text if isinstance(text, str) else ""


async def test_unknown_paths_and_wrong_methods_answer_json(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            for path in ("/nope", "/api/v1/nope", "/api/v2/vehicles", "/api/v1/vehicle/"):
                assert_error(await hub.client.get(path), 404, "not_found")
            unknown_kind = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/teleports", headers=hub.admin_headers
            )
            assert_error(unknown_kind, 404, "not_found")
            unknown_vehicle = await hub.client.get(
                "/api/v1/vehicle/ghost_999/locations", headers=hub.admin_headers
            )
            body = assert_error(unknown_vehicle, 404, "unknown_vehicle")
            assert body["field"] == "vehicle_id"

            for method, path, allowed in (
                ("GET", "/api/v1/auth/token", "POST"),
                ("PUT", "/api/v1/admin/vehicles", "POST"),
                ("DELETE", "/api/v1/vehicles", "GET"),
                ("PATCH", "/api/v1/vehicle/wheelchair_001/location", "POST"),
            ):
                answer = await hub.client.request(method, path, headers=hub.admin_headers)
                # 405 is not in the contract's table; the hub names it method_not_allowed.
                assert_error(answer, 405, "method_not_allowed")
                assert allowed in answer.headers["Allow"]


async def test_oversized_bodies_are_refused_with_413(database_url: str) -> None:
    with trio.fail_after(90):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            headers = {**vehicle.headers, "Content-Type": "application/json"}
            location_path = "/api/v1/vehicle/wheelchair_001/location"
            bulk_path = "/api/v1/vehicle/wheelchair_001/bulk"

            async def post(path: str, content: Any, **extra: str) -> httpx.Response:
                # Each answer must come promptly, and the client's next request too: an
                # answer sent before a big body was read must not hang the connection.
                with trio.fail_after(15):
                    return await hub.client.post(
                        path, content=content, headers={**headers, **extra}
                    )

            big = location_body()
            big["padding"] = "x" * (MIB + 10)
            assert_error(await post(location_path, json.dumps(big)), 413, "payload_too_large")

            async def chunks(total: int) -> AsyncIterator[bytes]:
                """A body without Content-Length (chunked), so only its length can tell."""
                yield b'{"padding": "'
                for _ in range(total // 65536):
                    yield b"x" * 65536
                yield b'"}'

            for total in (MIB + MIB // 2, 5 * MIB):
                answer = await post(location_path, chunks(total))
                assert "Content-Length" not in answer.request.headers
                assert_error(answer, 413, "payload_too_large")

            with trio.fail_after(15):
                token = await hub.client.post(
                    "/api/v1/auth/token",
                    content=json.dumps({"client_id": "veh_1", "client_secret": "x" * (MIB + 1)}),
                    headers={"Content-Type": "application/json"},
                )
            assert_error(token, 413, "payload_too_large")

            # Bulk may be up to 4 MiB: a 2 MiB upload is read and judged on its content.
            bulk = {"messages": [], "padding": "x" * (2 * MIB)}
            answer = await post(bulk_path, json.dumps(bulk))
            assert answer.status_code == 400, answer.text[:200]
            assert answer.json()["error"] != "payload_too_large"
            bulk["padding"] = "x" * (4 * MIB + 1)
            assert_error(await post(bulk_path, json.dumps(bulk)), 413, "payload_too_large")

            # Refused before its big body was read (bad token): still a prompt answer.
            bulk["padding"] = "x" * (2 * MIB)
            answer = await post(
                bulk_path, json.dumps(bulk), Authorization="Bearer expired.or.forged"
            )
            assert_error(answer, 401, "invalid_token")

            # Nothing was stored, and the client still gets its ordinary report through.
            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
            )
            assert history.json()["items"] == []
            with trio.fail_after(15):
                assert (await hub.post(vehicle, "location", location_body())).status_code == 200


async def test_bodies_must_be_json(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            path = "/api/v1/vehicle/wheelchair_001/location"
            text = json.dumps(location_body())
            for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
                headers = dict(vehicle.headers)
                if content_type is not None:
                    headers["Content-Type"] = content_type
                answer = await hub.client.post(path, content=text, headers=headers)
                assert_error(answer, 415, "unsupported_media_type")

            for raw in (
                b'{"timestamp": ',
                b"{'timestamp': 'single quotes'}",
                b'{"timestamp": "x"} trailing',
                b'{"location": {"latitude": NaN}}',
                b"\xff\xfe{}",
                b"",
            ):
                answer = await hub.client.post(
                    path,
                    content=raw,
                    headers={**vehicle.headers, "Content-Type": "application/json"},
                )
                assert_error(answer, 400, "invalid_json")

            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
            )
            assert history.json()["items"] == []

            # A charset parameter is still JSON.
            answer = await hub.client.post(
                path,
                content=text,
                headers={**vehicle.headers, "Content-Type": "application/json; charset=utf-8"},
            )
            assert answer.status_code == 200, answer.text


async def test_request_ids_are_echoed_when_sane_and_replaced_when_not(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            sane = "req-2025.12.16:abc_DEF-001"
            for path in ("/health/live", "/nope", "/api/v1/vehicles"):
                answer = await hub.client.get(path, headers={"X-Request-ID": sane})
                assert answer.headers["X-Request-ID"] == sane
            error = await hub.client.get("/api/v1/vehicles", headers={"X-Request-ID": sane})
            assert assert_error(error, 401, "missing_token")["request_id"] == sane

            generated: set[str] = set()
            for insane in ("x" * 300, "has spaces in it", "semi;colon", "<script>", ""):
                answer = await hub.client.get("/nope", headers={"X-Request-ID": insane})
                request_id = answer.headers["X-Request-ID"]
                assert request_id and request_id != insane
                assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", request_id)
                assert assert_error(answer, 404, "not_found")["request_id"] == request_id
                generated.add(request_id)
            unnamed = await hub.client.get("/health/live")
            generated.add(unnamed.headers["X-Request-ID"])
            assert len(generated) == 6  # a fresh id for every request


# ---------------------------------------------------------------------------------------------
# A crash: in-process, with a read service that blows up


class ExplodingReads:
    """Stands in for FleetReads; fails the way a bug would."""

    async def fleet(self) -> list[dict[str, Any]]:
        raise RuntimeError("database exploded near SELECT password_hash FROM users")


async def test_an_unexpected_error_is_a_bare_500(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(jwt_secret=JWT_SECRET)
    codec = TokenCodec(
        JWT_SECRET, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_seconds=60
    )
    services = HubServices(
        settings=settings,
        codec=codec,
        registry=None,  # type: ignore[arg-type]
        accounts=None,  # type: ignore[arg-type]
        reads=ExplodingReads(),  # type: ignore[arg-type]
        health=None,  # type: ignore[arg-type]
        actors=None,  # type: ignore[arg-type]
        vehicles=None,  # type: ignore[arg-type]
        router=None,  # type: ignore[arg-type]
        alerts=None,  # type: ignore[arg-type]
        missions=None,  # type: ignore[arg-type]
    )
    app = create_app(services)
    client = app.test_client()
    token = codec.issue(subject="admin", role="admin")
    with trio.fail_after(30), caplog.at_level(logging.ERROR):
        answer = await client.get(
            "/api/v1/vehicles",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "crash-1"},
        )
        text = await answer.get_data(as_text=True)
    assert answer.status_code == 500
    assert answer.headers["Content-Type"].startswith("application/json")
    body = json.loads(text)
    assert body["error"] == "internal_error"
    assert body["request_id"] == "crash-1" == answer.headers["X-Request-ID"]
    assert TIMESTAMP.match(body["timestamp"])
    assert set(body) <= {"error", "message", "timestamp", "request_id"}
    for leak in ("RuntimeError", "Traceback", "exploded", "SELECT", "password_hash", ".py"):
        assert leak not in text

    # The operator finds the traceback in the log under the request id.
    [record] = [r for r in caplog.records if r.exc_info is not None]
    assert record.levelno == logging.ERROR
    assert getattr(record, "request_id", None) == "crash-1"
    assert record.exc_info[0] is RuntimeError  # type: ignore[index]


def test_json_error_helper_rejects_html() -> None:
    """The helper above must fail on an HTML error page, or the tests prove nothing."""
    page = httpx.Response(
        404, text="<html><body>Not Found</body></html>", headers={"Content-Type": "text/html"}
    )
    with pytest.raises(AssertionError):
        assert_error(page, 404, "not_found")
