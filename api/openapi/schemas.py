"""JSON Schemas of the wire models for the OpenAPI document, with stable, unique names.

quart-schema renders each model on its own and merges the ``$defs`` of all of them into
``components.schemas`` by name, so two models with the same class name (the ``Mission`` of a
dispatch command and the ``Mission`` a read answers with) silently overwrite each other.
:func:`model_schema` pins the names of the known look-alikes, and :class:`ComponentSet`
refuses a second, different schema under a name already taken: the document is then wrong,
and building it fails loudly instead of publishing the wrong schema.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic.json_schema import CoreModeRef, DefsRef, GenerateJsonSchema

from api.openapi.schema_rules import apply_rules
from api.openapi.schemas_walk import walk

REF_TEMPLATE = "#/components/schemas/{model}"
REF_PREFIX = "#/components/schemas/"

PINNED_NAMES: dict[str, str] = {
    "hub.contract.command_parts.Mission": "DispatchMission",
}
"""Component names for models whose class name another model already uses."""

JsonSchema = dict[str, Any]


class ComponentConflictError(RuntimeError):
    """Two different schemas were published under one component name."""


class HubJsonSchema(GenerateJsonSchema):
    """Pydantic's generator, with the names of :data:`PINNED_NAMES` preferred over the class's."""

    def get_defs_ref(self, core_mode_ref: CoreModeRef) -> DefsRef:
        """The definition key; a pinned name becomes the first choice for that model."""
        defs_ref = super().get_defs_ref(core_mode_ref)
        core_ref, _ = core_mode_ref
        pinned = PINNED_NAMES.get(core_ref.rsplit(":", 1)[0])
        choices = getattr(self, "_prioritized_defsref_choices", {}).get(defs_ref)
        if pinned is not None and isinstance(choices, list):
            choices.insert(0, DefsRef(pinned))
        return defs_ref


def model_schema(
    model: Any, mode: Literal["validation", "serialization"] = "validation"
) -> tuple[JsonSchema, JsonSchema]:
    """``(schema, definitions)`` of a model or annotated type, refs into ``components``."""
    schema = TypeAdapter(model).json_schema(
        ref_template=REF_TEMPLATE, mode=mode, schema_generator=HubJsonSchema
    )
    definitions = schema.pop("$defs", {})
    require_discriminators(schema, definitions)
    apply_rules(schema, definitions)
    return schema, definitions


def require_discriminators(schema: JsonSchema, definitions: Mapping[str, JsonSchema]) -> None:
    """Make every discriminator property required in the schemas it selects.

    Pydantic leaves ``type`` optional when the model gives it a default, but the hub reads
    ``type`` first and refuses a body without one, and OpenAPI requires the discriminating
    property to be present in each alternative.
    """
    for node in walk(schema, *definitions.values()):
        discriminator = node.get("discriminator")
        if not isinstance(discriminator, dict):
            continue
        name = discriminator["propertyName"]
        for option in node.get("oneOf", []):
            target = definitions.get(str(option.get("$ref", "")).removeprefix(REF_PREFIX))
            if target is not None and name not in target.setdefault("required", []):
                target["required"].insert(0, name)


def simplify_parameter_schema(schema: JsonSchema) -> JsonSchema:
    """A query parameter's schema without pydantic's ``null`` branch, title and null default.

    A query parameter is either present (a string on the wire) or absent; ``null`` cannot be
    sent, so ``anyOf: [X, {type: null}]`` is just ``X``.
    """
    simplified = {key: value for key, value in schema.items() if key not in ("title", "anyOf")}
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        simplified = {**options[0], **simplified}
    elif options:
        simplified["anyOf"] = options
    if simplified.get("default", ...) is None:
        del simplified["default"]
    return simplified


class ComponentSet:
    """The ``components.schemas`` of a document being built: one schema per name."""

    def __init__(self) -> None:
        self.schemas: dict[str, JsonSchema] = {}

    def add(self, definitions: Mapping[str, JsonSchema]) -> None:
        """Take these definitions; ComponentConflictError if a name holds another schema."""
        for name, schema in definitions.items():
            known = self.schemas.get(name)
            if known is None:
                self.schemas[name] = copy.deepcopy(schema)
            elif known != schema:
                raise ComponentConflictError(
                    f"two different schemas named {name!r}; pin one in PINNED_NAMES"
                )
