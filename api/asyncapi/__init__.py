"""The AsyncAPI 3.0 document of the WebSockets at ``/asyncapi.json``.

:mod:`~api.asyncapi.messages` lists every frame and its model, :mod:`~api.asyncapi.close_codes`
the close codes, :mod:`~api.asyncapi.document` assembles them, :mod:`~api.asyncapi.route`
serves them.
"""

from api.asyncapi.document import build_document, with_server
from api.asyncapi.route import register

__all__ = ["build_document", "register", "with_server"]
