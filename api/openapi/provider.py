"""The hub's OpenAPI provider: quart-schema's document, completed and checked.

quart-schema builds the paths from the routes and their ``document_*`` decorators. This
provider then gives every operation what the decorators cannot: the error answers of
:mod:`api.openapi.errors`, the headers and notes of :mod:`api.openapi.operations`, path
parameter patterns (:mod:`api.openapi.parameters`), the history paths as they really are,
unique component names (:mod:`api.openapi.schemas`), and examples set to the time of the
request (:mod:`api.openapi.examples`). The document is built once, on first use; each request
gets a copy with fresh example timestamps.
"""

from __future__ import annotations

import copy
import inspect
from collections import Counter
from collections.abc import Callable
from typing import Any

from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import DataSource
from werkzeug.routing.converters import BaseConverter
from werkzeug.routing.rules import Rule

from api.openapi.errors import add_error_components, document_errors
from api.openapi.examples import with_live_examples
from api.openapi.operations import (
    add_note,
    document_command_examples,
    document_docking_examples,
    document_metrics,
    document_success_headers,
    document_union_examples,
    expand_history,
)
from api.openapi.parameters import PATH_PARAMETERS, path_parameter
from api.openapi.schemas import ComponentSet, model_schema, simplify_parameter_schema
from hub.clock import utc_now
from hub.contract.auth import OAuthErrorBody
from hub.contract.responses import ErrorBody

_ERROR_PLACEHOLDER = "x-tvm-error-body"
_ERROR_MODELS: tuple[type, ...] = (ErrorBody, OAuthErrorBody)
_METHODS = ("get", "put", "post", "patch", "delete", "options", "head")


class OperationIdConflictError(RuntimeError):
    """Two operations of the document share an ``operationId``."""


class HubOpenAPIProvider(OpenAPIProvider):
    """Builds ``/openapi.json`` (see the module docstring); no I/O."""

    def __init__(self, app: Any, extension: Any) -> None:
        super().__init__(app, extension)
        self._document: dict[str, Any] | None = None
        self._components = ComponentSet()

    def schema(self) -> dict[str, Any]:
        """The document, with example timestamps at the current time."""
        if self._document is None:
            self._document = self._build()
        return with_live_examples(self._document, utc_now())

    # --- quart-schema's hooks ----------------------------------------------------------------

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        """The handler's name: ``post_location``, ``list_vehicles``, ``get_mission``…"""
        return getattr(func, "_quart_schema_operation_id", func.__name__)

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        """The parameter with its pattern and description when :data:`PATH_PARAMETERS` has it."""
        if name in PATH_PARAMETERS:
            return path_parameter(name)
        return super().build_path_parameter(name, converter)

    def build_querystring_parameters(
        self, model: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One optional query parameter per field of ``model``, null branches removed."""
        schema, definitions = model_schema(model, "validation")
        parameters = []
        for name, field_schema in schema.get("properties", {}).items():
            simplified = simplify_parameter_schema(field_schema)
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
            if "description" in simplified:
                parameter["description"] = simplified.pop("description")
            parameter["schema"] = simplified
            parameters.append(parameter)
        return parameters, definitions

    def build_request_body(
        self, model: Any, source: DataSource
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A required JSON body (every body endpoint refuses an empty one)."""
        schema, definitions = model_schema(model, "validation")
        body = {"required": True, "content": {"application/json": {"schema": schema}}}
        return body, definitions

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A JSON answer described by ``model``; error bodies come from the error table."""
        if model in _ERROR_MODELS:
            return {_ERROR_PLACEHOLDER: True}, {}
        schema, definitions = model_schema(model, "serialization")
        description = inspect.getdoc(model) or ""
        response = {"description": description, "content": {"application/json": {"schema": schema}}}
        return response, definitions

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """The rule's path item; its schemas go to the checked component set instead."""
        paths, components = super().build_paths(rule)
        self._components.add(components)
        summary, description = _summary_and_description(self._app.view_functions[rule.endpoint])
        for item in paths.values():
            for operation in item.values():
                operation["summary"] = summary
                operation["description"] = description
        return copy.deepcopy(paths), {}

    # --- completing the document ------------------------------------------------------------

    def _build(self) -> dict[str, Any]:
        self._components = ComponentSet()
        document = super().schema()
        add_error_components(document, self._components)
        for operation in _operations(document):
            handler = operation["operationId"]
            responses = {
                str(code): answer for code, answer in operation.get("responses", {}).items()
            }
            operation["responses"] = responses
            for status in [
                code for code, answer in responses.items() if _ERROR_PLACEHOLDER in answer
            ]:
                del responses[status]
            document_errors(operation, handler)
            document_success_headers(operation, handler)
            add_note(operation, handler)
            if handler == "post_command":
                document_command_examples(operation)
            if handler == "post_docking":
                document_docking_examples(operation)
            if handler == "prometheus_metrics":
                document_metrics(operation)
            document_union_examples(operation, self._components.schemas)
        expand_history(document["paths"], self._components)
        document["paths"] = dict(sorted(document["paths"].items()))
        document["components"]["schemas"] = dict(sorted(self._components.schemas.items()))
        _check_operation_ids(document)
        return document


def _summary_and_description(func: Callable[..., Any]) -> tuple[str, str]:
    """The docstring's first paragraph (on one line) and the rest, for the operation."""
    paragraphs = (inspect.getdoc(func) or "").split("\n\n")
    summary = " ".join(paragraphs[0].split())
    description = "\n\n".join(" ".join(part.split()) for part in paragraphs[1:])
    return summary, description


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in _METHODS
    ]


def _check_operation_ids(document: dict[str, Any]) -> None:
    counts = Counter(operation.get("operationId") for operation in _operations(document))
    repeated = sorted(str(name) for name, count in counts.items() if count > 1)
    if repeated:
        raise OperationIdConflictError(f"operationId used more than once: {repeated}")
