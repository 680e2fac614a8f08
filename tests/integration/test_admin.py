"""Administration (CONTRACT §8): registering, rotating and disabling vehicles, adding people,
reading the audit log — and that refused requests change nothing.
"""

from __future__ import annotations

import trio

from storage import testing as db
from tests.integration.harness import RunningHub, location_body, running_hub

VEHICLES = "/api/v1/admin/vehicles"
USERS = "/api/v1/admin/users"


async def fleet_ids(hub: RunningHub) -> list[str]:
    answer = await hub.client.get("/api/v1/vehicles", headers=hub.admin_headers)
    assert answer.status_code == 200
    return [vehicle["vehicle_id"] for vehicle in answer.json()["vehicles"]]


async def test_registering_a_vehicle_shows_its_secret_once(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            created = await hub.client.post(
                VEHICLES,
                json={"vehicle_id": "wheelchair_001", "name": "Ward 3 chair"},
                headers=hub.admin_headers,
            )
            assert created.status_code == 201, created.text
            assert created.headers["Cache-Control"] == "no-store"
            body = created.json()
            assert body["vehicle_id"] == "wheelchair_001"
            assert body["client_id"].startswith("veh_")
            secret = body["client_secret"]
            assert isinstance(secret, str) and len(secret) >= 32

            login = await hub.login(client_id=body["client_id"], client_secret=secret)
            assert login.status_code == 200
            assert login.json()["vehicle_id"] == "wheelchair_001"

            listed = await hub.client.get("/api/v1/vehicles", headers=hub.admin_headers)
            [summary] = listed.json()["vehicles"]
            assert summary["vehicle_id"] == "wheelchair_001"
            assert summary["name"] == "Ward 3 chair"
            one = await hub.client.get("/api/v1/vehicle/wheelchair_001", headers=hub.admin_headers)
            assert one.status_code == 200
            for answer in (listed, one):
                assert secret not in answer.text
                assert "secret" not in answer.text

            [stored] = await trio.to_thread.run_sync(
                db.fetch, database_url, "SELECT secret_hash FROM vehicle_credentials"
            )
            assert stored["secret_hash"].startswith("$argon2")
            assert secret not in stored["secret_hash"]


async def test_registering_a_taken_or_malformed_vehicle_id_is_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            first = await hub.register_vehicle("wheelchair_001")
            duplicate = await hub.client.post(
                VEHICLES,
                json={"vehicle_id": "wheelchair_001", "name": "impostor"},
                headers=hub.admin_headers,
            )
            assert duplicate.status_code == 409
            assert duplicate.json()["field"] == "vehicle_id"
            assert "client_secret" not in duplicate.json()
            # The first registration's credentials are untouched.
            login = await hub.login(client_id=first.client_id, client_secret=first.client_secret)
            assert login.status_code == 200

            for vehicle_id in ("bad id!", "x" * 65, "", "wheel/chair", "ß_001", 42, None):
                answer = await hub.client.post(
                    VEHICLES,
                    json={"vehicle_id": vehicle_id, "name": "x"},
                    headers=hub.admin_headers,
                )
                assert answer.status_code == 400, (vehicle_id, answer.text)
                assert answer.json()["error"] == "validation_error"
                assert answer.json()["field"] == "vehicle_id"
            for body, field in (
                ({"vehicle_id": "wheelchair_002"}, "name"),
                ({"vehicle_id": "wheelchair_002", "name": ""}, "name"),
                ({"vehicle_id": "wheelchair_002", "name": "x", "enabled": True}, "enabled"),
            ):
                answer = await hub.client.post(VEHICLES, json=body, headers=hub.admin_headers)
                assert answer.status_code == 400, (body, answer.text)
                assert answer.json()["field"] == field
            assert await fleet_ids(hub) == ["wheelchair_001"]

            longest = await hub.client.post(
                VEHICLES, json={"vehicle_id": "x" * 64, "name": "x"}, headers=hub.admin_headers
            )
            assert longest.status_code == 201


async def test_rotating_a_secret_retires_the_old_one(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            old_login = await hub.login(
                client_id=vehicle.client_id, client_secret=vehicle.client_secret
            )
            old_refresh = old_login.json()["refresh_token"]

            rotated = await hub.client.post(
                f"{VEHICLES}/wheelchair_001/rotate-secret", headers=hub.admin_headers
            )
            assert rotated.status_code == 200, rotated.text
            assert rotated.headers["Cache-Control"] == "no-store"
            new = rotated.json()
            assert new["vehicle_id"] == "wheelchair_001"
            assert new["client_secret"] != vehicle.client_secret

            refused = await hub.login(
                client_id=vehicle.client_id, client_secret=vehicle.client_secret
            )
            assert refused.status_code == 401
            assert refused.json()["error"] == "invalid_client"
            old_secret_new_id = await hub.login(
                client_id=new["client_id"], client_secret=vehicle.client_secret
            )
            assert old_secret_new_id.status_code == 401
            refresh = await hub.client.post(
                "/api/v1/auth/refresh", json={"refresh_token": old_refresh}
            )
            assert refresh.status_code == 401
            assert refresh.json()["error"] == "invalid_grant"

            login = await hub.login(client_id=new["client_id"], client_secret=new["client_secret"])
            assert login.status_code == 200
            report = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/location",
                json=location_body(),
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            )
            assert report.status_code == 200

            unknown = await hub.client.post(
                f"{VEHICLES}/ghost_999/rotate-secret", headers=hub.admin_headers
            )
            assert unknown.status_code == 404
            assert unknown.json()["error"] == "unknown_vehicle"


async def test_a_disabled_vehicle_can_neither_report_nor_log_in(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            await hub.register_vehicle("wheelchair_002")
            assert (await hub.post(vehicle, "location", location_body())).status_code == 200

            disabled = await hub.client.delete(
                f"{VEHICLES}/wheelchair_001", headers=hub.admin_headers
            )
            assert disabled.status_code == 200, disabled.text
            assert disabled.json() == {"vehicle_id": "wheelchair_001", "enabled": False}

            # Its access token still verifies (no 401), but the vehicle is gone: 404.
            await trio.sleep(0.01)
            report = await hub.post(vehicle, "location", location_body())
            assert report.status_code == 404
            assert report.json()["error"] == "unknown_vehicle"
            assert report.json()["field"] == "vehicle_id"

            login = await hub.login(
                client_id=vehicle.client_id, client_secret=vehicle.client_secret
            )
            assert login.status_code == 401
            assert login.json()["error"] == "invalid_client"

            assert await fleet_ids(hub) == ["wheelchair_002"]
            one = await hub.client.get("/api/v1/vehicle/wheelchair_001", headers=hub.admin_headers)
            assert one.status_code == 404
            assert one.json()["error"] == "unknown_vehicle"

            for answer in (
                await hub.client.delete(f"{VEHICLES}/wheelchair_001", headers=hub.admin_headers),
                await hub.client.delete(f"{VEHICLES}/ghost_999", headers=hub.admin_headers),
                await hub.client.post(f"{VEHICLES}/ghost_999/enable", headers=hub.admin_headers),
            ):
                assert answer.status_code == 404, answer.text
                assert answer.json()["error"] == "unknown_vehicle"


async def test_a_disabled_vehicle_comes_back_with_enable(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            disabled = await hub.client.delete(
                f"{VEHICLES}/wheelchair_001", headers=hub.admin_headers
            )
            assert disabled.status_code == 200, disabled.text

            again = await hub.client.post(
                VEHICLES,
                json={"vehicle_id": "wheelchair_001", "name": "again"},
                headers=hub.admin_headers,
            )
            assert again.status_code == 409, again.text
            assert again.json()["error"] == "vehicle_exists"
            assert "/api/v1/admin/vehicles/wheelchair_001/enable" in again.json()["message"]

            rotated = await hub.client.post(
                f"{VEHICLES}/wheelchair_001/rotate-secret", headers=hub.admin_headers
            )
            assert rotated.status_code == 200, rotated.text
            fresh = rotated.json()
            still_off = await hub.login(
                client_id=fresh["client_id"], client_secret=fresh["client_secret"]
            )
            assert still_off.status_code == 401  # rotating does not enable

            enabled = await hub.client.post(
                f"{VEHICLES}/wheelchair_001/enable", headers=hub.admin_headers
            )
            assert enabled.status_code == 200, enabled.text
            assert enabled.json() == {"vehicle_id": "wheelchair_001", "enabled": True}
            twice = await hub.client.post(
                f"{VEHICLES}/wheelchair_001/enable", headers=hub.admin_headers
            )
            assert twice.status_code == 200

            old = await hub.login(client_id=vehicle.client_id, client_secret=vehicle.client_secret)
            assert old.status_code == 401  # the rotated-away secret stays dead
            login = await hub.login(
                client_id=fresh["client_id"], client_secret=fresh["client_secret"]
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            report = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/location",
                json=location_body(),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert report.status_code == 200, report.text
            assert await fleet_ids(hub) == ["wheelchair_001"]


async def test_adding_people(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            password = "correct horse battery"
            created = await hub.client.post(
                USERS,
                json={
                    "username": "op.tanaka",
                    "password": password,
                    "role": "operator",
                    "email": "tanaka@example.org",
                },
                headers=hub.admin_headers,
            )
            assert created.status_code == 201, created.text
            assert created.json() == {
                "username": "op.tanaka",
                "role": "operator",
                "email": "tanaka@example.org",
            }
            login = await hub.login(grant_type="password", username="op.tanaka", password=password)
            assert login.status_code == 200
            assert login.json()["role"] == "operator"

            refusals = [
                (
                    {"username": "op.tanaka", "password": "another password", "role": "viewer"},
                    409,
                    {"user_exists"},
                    "username",
                ),
                (
                    {
                        "username": "op.suzuki",
                        "password": "another password",
                        "role": "viewer",
                        "email": "tanaka@example.org",
                    },
                    409,
                    {"user_exists"},
                    None,
                ),
                (
                    {"username": "op.suzuki", "password": "short-pw-11", "role": "viewer"},
                    400,
                    {"validation_error"},
                    "password",
                ),
                # role is not among the enum fields CONTRACT §1.1 names, so the generic code
                # is right; invalid_enum ("an enum value") is acceptable too.
                (
                    {"username": "op.suzuki", "password": "another password", "role": "root"},
                    400,
                    {"validation_error", "invalid_enum"},
                    "role",
                ),
                (
                    {"username": "op.suzuki", "password": "another password", "role": "vehicle"},
                    400,
                    {"validation_error", "invalid_enum"},
                    "role",
                ),
                (
                    {"username": "op suzuki", "password": "another password", "role": "viewer"},
                    400,
                    {"validation_error"},
                    "username",
                ),
                (
                    {
                        "username": "op.suzuki",
                        "password": "another password",
                        "role": "viewer",
                        "email": "not-an-address",
                    },
                    400,
                    {"validation_error"},
                    "email",
                ),
                (
                    {"username": "op.suzuki", "role": "viewer"},
                    400,
                    {"validation_error"},
                    "password",
                ),
            ]
            for body, status, errors, field in refusals:
                answer = await hub.client.post(USERS, json=body, headers=hub.admin_headers)
                assert answer.status_code == status, (body, answer.text)
                assert answer.json()["error"] in errors, (body, answer.json())
                if field is not None:
                    assert answer.json()["field"] == field, (body, answer.json())
                assert "another password" not in answer.text
                assert "short-pw-11" not in answer.text

            # None of the refused users exists; the first one's password is unchanged.
            refused = await hub.login(
                grant_type="password", username="op.suzuki", password="another password"
            )
            assert refused.status_code == 401
            again = await hub.login(grant_type="password", username="op.tanaka", password=password)
            assert again.status_code == 200
            rows = await trio.to_thread.run_sync(
                db.fetch, database_url, "SELECT username, password_hash FROM users ORDER BY 1"
            )
            assert [row["username"] for row in rows] == ["admin", "op.tanaka"]
            for row in rows:
                assert row["password_hash"].startswith("$argon2")
                assert password not in row["password_hash"]


async def test_audit_log_answers_for_admins(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            answer = await hub.client.get("/api/v1/admin/audit", headers=hub.admin_headers)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert isinstance(page["items"], list)
            assert "next_cursor" in page

            limited = await hub.client.get(
                "/api/v1/admin/audit", params={"limit": 1}, headers=hub.admin_headers
            )
            assert limited.status_code == 200
            assert len(limited.json()["items"]) <= 1

            for params, field in (
                ({"limit": 0}, "limit"),
                ({"limit": 10_001}, "limit"),
                ({"cursor": "abc"}, "cursor"),
            ):
                bad = await hub.client.get(
                    "/api/v1/admin/audit", params=params, headers=hub.admin_headers
                )
                assert bad.status_code == 400, (params, bad.text)
                assert bad.json()["error"] == "validation_error"
                assert bad.json()["field"] == field

            anonymous = await hub.client.get("/api/v1/admin/audit")
            assert anonymous.status_code == 401
            assert anonymous.json()["error"] == "missing_token"
