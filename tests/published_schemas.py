"""Checking real answers and frames against the published documents (OpenAPI and AsyncAPI).

Both documents keep their schemas under ``components``; a schema taken out of the document
is validated with that ``components`` beside it, so its ``$ref``s resolve exactly as a
client's validator would resolve them. Formats (``date-time``) are checked too.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs


def schema_errors(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    """Why ``instance`` fails ``schema`` (a schema of ``document``); empty when it is valid."""
    root = {**schema, "components": document["components"]}
    validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    return [
        f"{'/'.join(str(part) for part in error.instance_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its local ``$ref`` points at (followed until it is no reference)."""
    while "$ref" in node and len(node) == 1:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The OpenAPI operation of ``method path`` (KeyError if undocumented)."""
    found: dict[str, Any] = document["paths"][path][method.lower()]
    return found


def response_schema(
    document: dict[str, Any], method: str, path: str, status: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(response object, JSON schema)`` the document gives ``status`` of ``method path``.

    AssertionError when that status is not documented for the operation.
    """
    responses = operation(document, method, path)["responses"]
    assert str(status) in responses, f"{method} {path} does not document {status}"
    answer = resolve(document, responses[str(status)])
    media = answer["content"]
    content = media.get("application/json") or next(iter(media.values()))
    return answer, content["schema"]


def answer_errors(
    document: dict[str, Any],
    method: str,
    path: str,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """Why an answer does not match what the document promises; empty when it does."""
    answer, schema = response_schema(document, method, path, status)
    problems = schema_errors(document, schema, body)
    if headers is not None:
        present = {name.lower() for name in headers}
        for name, header in answer.get("headers", {}).items():
            header = resolve(document, header)
            if header.get("required") and name.lower() not in present:
                problems.append(f"header {name} missing")
    return problems
