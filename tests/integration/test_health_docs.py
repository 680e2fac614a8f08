"""Operations endpoints (CONTRACT §9): health probes, the OpenAPI document and offline docs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import swagger_ui_bundle
import trio

from actors.fleet_reads import HISTORY_PATHS
from api.app import create_app
from tests.integration.harness import running_hub

# The Swagger UI the hub serves at /docs (its assets come from this folder).
SWAGGER_UI_MAJOR = int(
    Path(swagger_ui_bundle.swagger_ui_path).name.removeprefix("swagger-ui-").split(".")[0]
)

# Endpoints every integrator relies on; the full list is taken from the app itself below.
REQUIRED_OPERATIONS = {
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/vehicle/{vehicle_id}/location"),
    ("post", "/api/v1/vehicle/{vehicle_id}/status"),
    ("post", "/api/v1/vehicle/{vehicle_id}/battery"),
    ("post", "/api/v1/vehicle/{vehicle_id}/error"),
    ("post", "/api/v1/vehicle/{vehicle_id}/docking"),
    ("post", "/api/v1/vehicle/{vehicle_id}/bulk"),
    ("get", "/api/v1/vehicles"),
    ("get", "/api/v1/vehicle/{vehicle_id}"),
    ("get", "/api/v1/vehicle/{vehicle_id}/locations"),
    ("get", "/api/v1/vehicle/{vehicle_id}/battery"),
    ("get", "/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
}
# Serving the docs themselves is not part of the API being documented.
UNDOCUMENTED_ENDPOINTS = {"static", "openapi", "swagger_ui", "doc_asset", "asyncapi_document"}
# The history route serves one path per kind; the document lists those paths.
HISTORY_RULE = "/api/v1/vehicle/{vehicle_id}/{kind}"


def app_operations() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every HTTP route the app registers."""
    app = create_app(MagicMock())  # registering routes does no I/O and calls no service
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS or getattr(rule, "websocket", False):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        paths = [path]
        if path == HISTORY_RULE:
            paths = [f"/api/v1/vehicle/{{vehicle_id}}/{segment}" for segment in HISTORY_PATHS]
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                operations.update((method.lower(), each) for each in paths)
    return operations


class _References(HTMLParser):
    """Collects every src/href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def examples_of(schema: dict[str, Any], document: dict[str, Any]) -> list[Any]:
    """The examples a request body schema carries (following a ``$ref`` if there is one)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    found = list(schema.get("examples") or [])
    if "example" in schema:
        found.append(schema["example"])
    return found


async def test_health_probes_answer_ok(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            health = await hub.client.get("/health")
            assert health.status_code == 200, health.text
            body = health.json()
            assert body["status"] == "ok"
            database = body["components"]["database"]
            assert database["status"] == "ok"
            assert isinstance(database["latency_ms"], int | float)
            assert 0 <= database["latency_ms"] < 2000
            assert "redis" in body["components"]
            assert "actors" in body["components"]

            live = await hub.client.get("/health/live")
            assert live.status_code == 200
            assert live.json()["status"] == "ok"
            ready = await hub.client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["status"] == "ok"

            # Probes need no token: a load balancer has none.
            assert "Authorization" not in health.request.headers


async def test_openapi_documents_every_route_with_request_examples(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            answer = await hub.client.get("/openapi.json")
            assert answer.status_code == 200, answer.text
            document = json.loads(answer.text)
            assert document["openapi"].startswith("3.")
            assert document["info"]["title"]

            documented = {
                (method, path)
                for path, operations in document["paths"].items()
                for method in operations
                if method in ("get", "post", "put", "patch", "delete")
            }
            assert documented >= REQUIRED_OPERATIONS, REQUIRED_OPERATIONS - documented
            routes = app_operations()
            assert routes >= REQUIRED_OPERATIONS
            assert routes - documented == set(), "routes missing from /openapi.json"

            without_example = []
            for path, operations in document["paths"].items():
                for method, operation in operations.items():
                    body = operation.get("requestBody")
                    if body is None:
                        continue
                    media = body["content"]["application/json"]
                    named = list((media.get("examples") or {}).values())
                    if not named and not examples_of(media["schema"], document):
                        without_example.append((method, path))
            assert without_example == []

            location = document["paths"]["/api/v1/vehicle/{vehicle_id}/location"]["post"]
            [example] = location["requestBody"]["content"]["application/json"]["schema"]["examples"]
            assert example["location"]["latitude"] == 35.681236


async def test_docs_page_needs_no_internet(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            page = await hub.client.get("/docs")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            html = page.text

            for url in re.findall(r"""https?://[^\s"'<>)]+""", html):
                assert url.startswith(hub.base_url), f"/docs loads {url} from another host"

            references = _References()
            references.feed(html)
            assets = [url for url in references.urls if url.endswith((".js", ".css"))]
            assert any(url.endswith(".js") for url in assets), references.urls
            assert any(url.endswith(".css") for url in assets), references.urls
            for url in references.urls:
                assert not url.startswith("//"), f"/docs loads {url} from another host"
                asset = await hub.client.get(url)
                assert asset.status_code == 200, url
                assert len(asset.content) > 1000, url
                kind = "javascript" if url.endswith(".js") else "css"
                assert kind in asset.headers["content-type"], (url, asset.headers)

            # The page loads the API description from the hub too.
            assert '"/openapi.json"' in html or "'/openapi.json'" in html

            # Swagger UI renders OpenAPI 3.1 from version 5 on; an older one shows only
            # "The provided definition does not specify a valid version field."
            document = (await hub.client.get("/openapi.json")).json()
            assert document["openapi"].startswith("3.1.")
            assert SWAGGER_UI_MAJOR >= 5, f"Swagger UI {SWAGGER_UI_MAJOR} cannot show OpenAPI 3.1"
