"""The OpenAPI document at ``/openapi.json`` and the Swagger UI at ``/docs``.

:class:`HubOpenAPIProvider` is quart-schema's provider completed with what the hub really
answers; the other modules hold the tables it applies (errors, parameters, per-operation
details, live examples, the front page).
"""

from api.openapi.info import DESCRIPTION, DOCS_PATH, OPENAPI_PATH, TAGS, TITLE, VERSION
from api.openapi.provider import HubOpenAPIProvider

__all__ = [
    "DESCRIPTION",
    "DOCS_PATH",
    "OPENAPI_PATH",
    "TAGS",
    "TITLE",
    "VERSION",
    "HubOpenAPIProvider",
]
