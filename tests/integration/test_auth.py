"""Logging in (CONTRACT §2): client credentials, passwords, refresh rotation, login limits,
what an access token says, and who may call what.

Every request goes over a real socket to a hub on a real PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import trio
import trio.testing

from tests.integration.harness import RunningHub, location_body, running_hub

ACCESS_TTL = 86400
REFRESH_TTL = 2592000
INVALID_CLIENT = {"error": "invalid_client", "error_description": "Invalid client credentials"}


def assert_tokens(answer: httpx.Response) -> dict[str, Any]:
    """A 200 token answer with the contract's fields; returns the body."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ACCESS_TTL
    assert body["refresh_expires_in"] == REFRESH_TTL
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    assert answer.headers["Cache-Control"] == "no-store"
    return dict(body)


def assert_oauth_error(answer: httpx.Response, error: str) -> None:
    """A 401 in the OAuth form of the token endpoints (not the flat §1.1 body)."""
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]


async def refresh(hub: RunningHub, refresh_token: str) -> httpx.Response:
    return await hub.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


@asynccontextmanager
async def client_from(hub: RunningHub, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from another loopback address (its own login bucket)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=hub.base_url, transport=transport, timeout=30) as client:
        yield client


# ---------------------------------------------------------------------------------------------
# Vehicles and people log in


async def test_vehicle_logs_in_with_client_credentials_with_or_without_grant_type(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            for extra in ({}, {"grant_type": "client_credentials"}):
                answer = await hub.login(
                    client_id=vehicle.client_id, client_secret=vehicle.client_secret, **extra
                )
                body = assert_tokens(answer)
                assert body["vehicle_id"] == "wheelchair_001"
                assert "username" not in body and "role" not in body

                report = await hub.client.post(
                    "/api/v1/vehicle/wheelchair_001/location",
                    json=location_body(),
                    headers={"Authorization": f"Bearer {body['access_token']}"},
                )
                assert report.status_code == 200, report.text
                await trio.sleep(0.01)  # a fresh timestamp for the next report


async def test_wrong_secret_and_unknown_client_get_the_same_answer(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            wrong_secret = await hub.login(
                client_id=vehicle.client_id, client_secret=vehicle.client_secret + "x"
            )
            unknown_client = await hub.login(
                client_id="veh_0000000000000000", client_secret=vehicle.client_secret
            )
            secret_of_another_vehicle = await hub.login(
                client_id=vehicle.client_id, client_secret="not-the-secret"
            )
            for answer in (wrong_secret, unknown_client, secret_of_another_vehicle):
                assert answer.status_code == 401
                assert answer.json() == INVALID_CLIENT
                assert vehicle.client_secret not in answer.text
            assert wrong_secret.content == unknown_client.content


async def test_people_log_in_with_a_password(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.create_user("op.tanaka", "operator", "operator-password-1")
            answer = await hub.login(
                grant_type="password", username="op.tanaka", password="operator-password-1"
            )
            body = assert_tokens(answer)
            assert body["username"] == "op.tanaka"
            assert body["role"] == "operator"
            assert "vehicle_id" not in body

            fleet = await hub.client.get(
                "/api/v1/vehicles", headers={"Authorization": f"Bearer {body['access_token']}"}
            )
            assert fleet.status_code == 200

            wrong = await hub.login(
                grant_type="password", username="op.tanaka", password="operator-password-2"
            )
            unknown = await hub.login(
                grant_type="password", username="nobody", password="operator-password-1"
            )
            for answer in (wrong, unknown):
                assert answer.status_code == 401
                assert answer.json() == INVALID_CLIENT
                assert "operator-password" not in answer.text


async def test_malformed_login_bodies_are_refused_with_400(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            # grant_type is a closed set: the contract's field→code rule allows invalid_enum
            # ("an enum value") or the generic validation_error.
            cases: list[tuple[Any, str | None]] = [
                ({}, "client_id"),
                ({"client_id": "veh_1"}, "client_secret"),
                ({"client_id": 42, "client_secret": "s3cret"}, "client_id"),
                ({"client_id": "", "client_secret": "s3cret"}, "client_id"),
                ({"grant_type": "authorization_code", "code": "x"}, "grant_type"),
                ({"grant_type": "password", "username": "admin"}, "password"),
                (
                    {"grant_type": "password", "client_id": "veh_1", "client_secret": "s3cret"},
                    None,
                ),
                ({"client_id": "veh_1", "client_secret": "s3cret", "scope": "all"}, "scope"),
                (["client_id", "veh_1"], None),
            ]
            for body, field in cases:
                answer = await hub.client.post("/api/v1/auth/token", json=body)
                assert answer.status_code == 400, (body, answer.text)
                error = answer.json()
                expected = {"validation_error"}
                if field == "grant_type":
                    expected.add("invalid_enum")
                assert error["error"] in expected, (body, error)
                if field is not None:
                    assert error["field"] == field, (body, error)
                assert "s3cret" not in answer.text

            broken = await hub.client.post(
                "/api/v1/auth/token",
                content=b'{"client_id": "veh_1", "client_secret": ',
                headers={"Content-Type": "application/json"},
            )
            assert broken.status_code == 400
            assert broken.json()["error"] == "invalid_json"

            form = await hub.client.post(
                "/api/v1/auth/token", data={"client_id": "veh_1", "client_secret": "s3cret"}
            )
            assert form.status_code == 415
            assert form.json()["error"] == "unsupported_media_type"

            for body in ({}, {"refresh_token": ""}, {"refresh_token": 7}):
                answer = await hub.client.post("/api/v1/auth/refresh", json=body)
                assert answer.status_code == 400, (body, answer.text)
                assert answer.json()["error"] == "validation_error"
                assert answer.json()["field"] == "refresh_token"


# ---------------------------------------------------------------------------------------------
# Refresh tokens


async def test_refresh_rotates_tokens_and_the_old_refresh_token_stops_working(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            first = assert_tokens(
                await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            )
            second = assert_tokens(await refresh(hub, first["refresh_token"]))
            assert second["vehicle_id"] == "wheelchair_001"
            assert second["refresh_token"] != first["refresh_token"]
            assert second["access_token"] != first["access_token"]

            report = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/location",
                json=location_body(),
                headers={"Authorization": f"Bearer {second['access_token']}"},
            )
            assert report.status_code == 200, report.text

            assert_oauth_error(await refresh(hub, first["refresh_token"]), "invalid_grant")
            assert_oauth_error(await refresh(hub, "never-issued-" + "x" * 40), "invalid_grant")


async def test_reusing_a_revoked_refresh_token_revokes_its_whole_family(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            stolen = assert_tokens(
                await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            )
            other_session = assert_tokens(
                await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            )
            second = assert_tokens(await refresh(hub, stolen["refresh_token"]))
            newest = assert_tokens(await refresh(hub, second["refresh_token"]))

            # The thief replays the first token: refused, and the family dies with it.
            assert_oauth_error(await refresh(hub, stolen["refresh_token"]), "invalid_grant")
            assert_oauth_error(await refresh(hub, newest["refresh_token"]), "invalid_grant")
            assert_oauth_error(await refresh(hub, second["refresh_token"]), "invalid_grant")

            # Another login is another family and keeps working.
            assert_tokens(await refresh(hub, other_session["refresh_token"]))


async def test_people_refresh_and_keep_their_role(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.create_user("viewer.sato", "viewer", "viewer-password-1")
            tokens = assert_tokens(
                await hub.login(
                    grant_type="password", username="viewer.sato", password="viewer-password-1"
                )
            )
            renewed = assert_tokens(await refresh(hub, tokens["refresh_token"]))
            assert renewed["username"] == "viewer.sato"
            assert renewed["role"] == "viewer"
            assert "vehicle_id" not in renewed
            claims = jwt.decode(renewed["access_token"], options={"verify_signature": False})
            assert claims["sub"] == "viewer.sato"
            assert claims["role"] == "viewer"


async def test_refresh_token_of_a_disabled_vehicle_is_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            tokens = assert_tokens(
                await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            )
            disabled = await hub.client.delete(
                "/api/v1/admin/vehicles/wheelchair_001", headers=hub.admin_headers
            )
            assert disabled.status_code == 200, disabled.text
            assert_oauth_error(await refresh(hub, tokens["refresh_token"]), "invalid_grant")


# ---------------------------------------------------------------------------------------------
# Login rate limits (10 per minute per client id and per address)
#
# The buckets refill on trio's clock, which these tests freeze (``mock_clock``): however slow
# the password hashing, no token comes back until the test moves time on. ``fail_after``
# would be frozen too, so the conftest hang guard is what bounds them.


async def guess(client: httpx.AsyncClient, client_id: str, secret: str = "guess") -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", json={"client_id": client_id, "client_secret": secret}
    )


async def test_eleventh_failed_login_for_one_client_id_is_rate_limited(
    database_url: str, mock_clock: trio.testing.MockClock
) -> None:
    async with running_hub(database_url, rate_limit_enabled=True) as hub:
        created = await hub.client.post(
            "/api/v1/admin/vehicles",
            json={"vehicle_id": "wheelchair_001", "name": "Ward 3"},
            headers=hub.admin_headers,
        )
        assert created.status_code == 201
        client_id, client_secret = created.json()["client_id"], created.json()["client_secret"]
        async with client_from(hub, "127.0.0.2") as attacker:
            for _ in range(10):
                answer = await guess(attacker, client_id)
                assert answer.status_code == 401
                assert answer.json() == INVALID_CLIENT
            limited = await guess(attacker, client_id)
        assert limited.status_code == 429, limited.text
        body = limited.json()
        assert body["error"] == "rate_limit_exceeded"
        assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= 60
        assert limited.headers["Retry-After"] == str(body["retry_after"])
        assert f"{body['retry_after']} seconds" in body["message"]

        # The bucket belongs to the client id: from another address, even the right
        # secret waits; another client id from that address is not held back.
        async with client_from(hub, "127.0.0.3") as elsewhere:
            assert (await guess(elsewhere, client_id, client_secret)).status_code == 429
            assert (await guess(elsewhere, "veh_0000000000000000")).status_code == 401

            # After the advertised wait, the vehicle gets in again.
            mock_clock.jump(body["retry_after"])
            assert (await guess(elsewhere, client_id, client_secret)).status_code == 200


async def test_eleventh_failed_login_from_one_address_is_rate_limited(
    database_url: str, mock_clock: trio.testing.MockClock
) -> None:
    async with running_hub(database_url, rate_limit_enabled=True) as hub:
        async with client_from(hub, "127.0.0.4") as attacker:
            for attempt in range(10):
                answer = await attacker.post(
                    "/api/v1/auth/token",
                    json={
                        "grant_type": "password",
                        "username": f"user{attempt}",
                        "password": "guess-guess-guess",
                    },
                )
                assert answer.status_code == 401
            limited = await attacker.post(
                "/api/v1/auth/token",
                json={
                    "grant_type": "password",
                    "username": "admin",
                    "password": "guess-guess-guess",
                },
            )
        assert limited.status_code == 429
        assert limited.json()["error"] == "rate_limit_exceeded"
        assert int(limited.headers["Retry-After"]) >= 1

        # The admin, logging in from its own address, is not locked out by the attacker.
        admin = await hub.login(
            grant_type="password", username="admin", password="admin-password-for-tests"
        )
        assert admin.status_code == 200


# ---------------------------------------------------------------------------------------------
# What an access token says


async def test_access_token_carries_the_contract_claims(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            before = int(time.time())
            first = assert_tokens(
                await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            )
            second = assert_tokens(
                await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            )
            after = int(time.time())

            header = jwt.get_unverified_header(first["access_token"])
            assert header["alg"] == "HS256"
            assert header.get("kid")
            claims = jwt.decode(first["access_token"], options={"verify_signature": False})
            assert claims["sub"] == "wheelchair_001"
            assert claims["role"] == "vehicle"
            assert claims["vid"] == "wheelchair_001"
            assert claims["iss"] == hub.settings.jwt_issuer
            assert claims["aud"] == hub.settings.jwt_audience
            assert before <= claims["iat"] <= after
            assert claims["exp"] - claims["iat"] == ACCESS_TTL
            other = jwt.decode(second["access_token"], options={"verify_signature": False})
            assert claims["jti"] and other["jti"] != claims["jti"]

            people = jwt.decode(hub.admin_token, options={"verify_signature": False})
            assert people["sub"] == "admin"
            assert people["role"] == "admin"
            assert "vid" not in people


# ---------------------------------------------------------------------------------------------
# Who may do what (CONTRACT §2 table)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_viewers_and_operators_read_the_fleet_but_do_no_administration(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            people = {
                "viewer": await hub.create_user("viewer.sato", "viewer", "viewer-password-1"),
                "operator": await hub.create_user("op.tanaka", "operator", "operator-password-1"),
            }
            for role, token in people.items():
                fleet = await hub.client.get("/api/v1/vehicles", headers=bearer(token))
                assert fleet.status_code == 200, (role, fleet.text)
                assert [v["vehicle_id"] for v in fleet.json()["vehicles"]] == ["wheelchair_001"]
                history = await hub.client.get(
                    "/api/v1/vehicle/wheelchair_001/locations", headers=bearer(token)
                )
                assert history.status_code == 200, (role, history.text)

                refused = [
                    await hub.client.post(
                        "/api/v1/admin/vehicles",
                        json={"vehicle_id": f"by_{role}", "name": "sneaky"},
                        headers=bearer(token),
                    ),
                    await hub.client.post(
                        "/api/v1/admin/users",
                        json={"username": f"by_{role}", "password": "p" * 16, "role": "admin"},
                        headers=bearer(token),
                    ),
                    await hub.client.post(
                        "/api/v1/admin/vehicles/wheelchair_001/rotate-secret",
                        headers=bearer(token),
                    ),
                    await hub.client.delete(
                        "/api/v1/admin/vehicles/wheelchair_001", headers=bearer(token)
                    ),
                    await hub.client.get("/api/v1/admin/audit", headers=bearer(token)),
                ]
                for answer in refused:
                    assert answer.status_code == 403, (role, answer.request.url, answer.text)
                    assert answer.json()["error"] == "forbidden"

            # Nothing the refused calls asked for happened.
            fleet = await hub.client.get("/api/v1/vehicles", headers=hub.admin_headers)
            assert [v["vehicle_id"] for v in fleet.json()["vehicles"]] == ["wheelchair_001"]
            for role in people:
                login = await hub.login(
                    grant_type="password", username=f"by_{role}", password="p" * 16
                )
                assert login.status_code == 401


async def test_a_vehicle_token_reads_nothing_and_administers_nothing(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            answers = [
                await hub.client.get("/api/v1/vehicles", headers=vehicle.headers),
                await hub.client.get("/api/v1/vehicle/wheelchair_001", headers=vehicle.headers),
                await hub.client.get(
                    "/api/v1/vehicle/wheelchair_001/locations", headers=vehicle.headers
                ),
                await hub.client.post(
                    "/api/v1/admin/vehicles",
                    json={"vehicle_id": "wheelchair_002", "name": "x"},
                    headers=vehicle.headers,
                ),
                await hub.client.post(
                    "/api/v1/admin/vehicles/wheelchair_001/rotate-secret", headers=vehicle.headers
                ),
            ]
            for answer in answers:
                assert answer.status_code == 403, (answer.request.url, answer.text)
                assert answer.json()["error"] == "forbidden"
            assert (
                await hub.client.get("/api/v1/vehicle/wheelchair_002", headers=hub.admin_headers)
            ).status_code == 404
            # The secret was not rotated: the vehicle still logs in with it.
            login = await hub.login(
                client_id=vehicle.client_id, client_secret=vehicle.client_secret
            )
            assert login.status_code == 200


async def test_a_vehicle_cannot_report_for_another_vehicle(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle_a = await hub.register_vehicle("wheelchair_001")
            vehicle_b = await hub.register_vehicle("wheelchair_002")
            body = location_body(latitude=10.0)

            forged = await hub.client.post(
                "/api/v1/vehicle/wheelchair_002/location", json=body, headers=vehicle_a.headers
            )
            assert forged.status_code == 403
            assert forged.json()["error"] == "forbidden"
            forged_bulk = await hub.client.post(
                "/api/v1/vehicle/wheelchair_002/bulk",
                json={
                    "messages": [
                        {
                            "type": "location",
                            "timestamp": body["timestamp"],
                            "data": body["location"],
                        }
                    ]
                },
                headers=vehicle_a.headers,
            )
            assert forged_bulk.status_code == 403

            # An unregistered vehicle's path answers exactly like a registered one's:
            # a vehicle token cannot probe which ids exist.
            ghost = await hub.client.post(
                "/api/v1/vehicle/ghost_999/location", json=body, headers=vehicle_a.headers
            )
            assert ghost.status_code == 403
            assert ghost.json()["error"] == forged.json()["error"]
            assert ghost.json()["message"] == forged.json()["message"]

            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_002/locations", headers=hub.admin_headers
            )
            assert history.status_code == 200
            assert history.json()["items"] == []

            # B's own report of that very timestamp is new, not a duplicate of A's forgery.
            own = await hub.post(vehicle_b, "location", body)
            assert own.status_code == 200
            assert own.json().get("duplicate") is not True


async def test_people_cannot_post_vehicle_telemetry(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            operator = await hub.create_user("op.tanaka", "operator", "operator-password-1")
            for token in (hub.admin_token, operator):
                answer = await hub.client.post(
                    "/api/v1/vehicle/wheelchair_001/location",
                    json=location_body(),
                    headers=bearer(token),
                )
                assert answer.status_code == 403
                assert answer.json()["error"] == "forbidden"
            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
            )
            assert history.json()["items"] == []


async def test_behind_a_trusted_proxy_login_buckets_count_the_forwarded_address(
    database_url: str,
) -> None:
    """With ``TVM_TRUSTED_PROXY_HOPS=1`` the address is the one the proxy forwards: every
    client behind one load balancer does not share one login bucket."""

    async def failed_login(hub: RunningHub, forwarded_for: str, attempt: int) -> int:
        answer = await hub.client.post(
            "/api/v1/auth/token",
            json={"grant_type": "password", "username": f"u{attempt}", "password": "guess-guess"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return answer.status_code

    limits = {"rate_limit_enabled": True, "login_attempts_per_minute": 3}
    async with running_hub(database_url, trusted_proxy_hops=1, **limits) as hub:
        assert [await failed_login(hub, "203.0.113.7", n) for n in range(4)] == [401] * 3 + [429]
        assert await failed_login(hub, "198.51.100.9", 9) == 401  # another client of the proxy
    async with running_hub(database_url, **limits) as hub:  # no proxy trusted: the header is
        codes = [await failed_login(hub, f"192.0.2.{n}", n) for n in range(4)]  # not believed
        assert codes == [401] * 3 + [429]
