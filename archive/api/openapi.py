"""The OpenAPI 3 description of the API, generated from the schemas and the resources table."""

from __future__ import annotations

from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from schemas.audit import AuditEntrySchema
from schemas.common import MAX_INTEGER, OnDuty, PartialDate
from schemas.sources import SourceFileSchema

from ..resources import RESOURCES, Resource
from . import bp


class ErrorBodySchema(Schema):
    status = fields.Integer(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(
        required=True,
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "The fields at fault, each with what is wrong with it (empty if none)."
        },
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


ERRORS = {
    "400": "Malformed JSON, or a body that is not a JSON object.",
    "401": "Credentials are needed, or the ones sent are invalid.",
    "403": "Your role may not do this.",
    "404": "No such record, or not one you may see.",
    "409": "The change conflicts with other records.",
    "412": "If-Match names a version the record is no longer at: someone else changed it. "
    "Nothing was changed; `current` is the record as it is now, and ETag its version.",
    "413": "The upload is larger than the configured limit.",
    "422": "Invalid fields; `fields` names each one.",
}


def _error(code: str) -> dict:
    return {"description": ERRORS[code], "content": {"application/json": {"schema": "Error"}}}


def _json(schema) -> dict:
    return {"application/json": {"schema": schema}}


ETAG_HEADER = {
    "ETag": {
        "description": 'The record\'s version as a strong ETag ("3"); send it back in If-Match.',
        "schema": {"type": "string"},
    }
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag of the version you read: the change is refused with 412 if the "
    "record has moved on since. Without it, the change applies to whatever is current.",
}


def _with_record(description: str, name: str) -> dict:
    """A response carrying the record and its version in ETag."""
    return {"description": description, "content": _json(name), "headers": ETAG_HEADER}


def _stale(name: str) -> dict:
    return {
        "description": ERRORS["412"],
        "content": _json(f"{name}Stale"),
        "headers": ETAG_HEADER,
    }


def _name(resource: Resource) -> str:
    return "".join(part.capitalize() for part in resource.key.split("_"))


def _extra_field_properties(self, field, **kwargs) -> dict:
    if isinstance(field, PartialDate):
        return {
            "pattern": r"^\d{4}(-\d{2}(-\d{2})?)?$",
            "description": "YYYY-MM-DD, or YYYY-MM / YYYY when only that is known.",
        }
    if isinstance(field, OnDuty):
        return {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["unknown"]}]}
    return {}


def _list_parameters(resource: Resource) -> list[dict]:
    params = [
        {
            "in": "query",
            "name": "page",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
        },
        {
            "in": "query",
            "name": "per_page",
            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
            "description": "Larger values are capped at 200.",
        },
        {
            "in": "query",
            "name": "sort",
            "schema": {"type": "string"},
            "description": "Comma-separated fields, '-' for descending: "
            + ", ".join(resource.sort_fields),
        },
    ]
    params += [
        {"in": "query", "name": name, "schema": spec.openapi}
        for name, spec in resource.filters.items()
    ]
    return params


def _id_parameter(name: str = "record_id") -> dict:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}
    return {"in": "path", "name": name, "required": True, "schema": schema}


def _add_resource(spec: APISpec, resource: Resource) -> None:
    name = _name(resource)
    spec.components.schema(name, schema=resource.schema)
    spec.components.schema(f"{name}Patch", schema=resource.schema(partial=True))
    spec.components.schema(
        f"{name}List",
        {
            "type": "object",
            "required": ["items", "total", "page", "per_page"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}},
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
            },
        },
    )
    spec.components.schema(
        f"{name}Stale",
        {
            "type": "object",
            "required": ["error", "current"],
            "properties": {
                "error": {"$ref": "#/components/schemas/ErrorBody"},
                "current": {"$ref": f"#/components/schemas/{name}"},
            },
        },
    )
    base, tag = f"/api/v1/{resource.name}", resource.name
    spec.path(
        base,
        operations={
            "get": {
                "tags": [tag],
                "summary": f"List {resource.name} you may see",
                "parameters": _list_parameters(resource),
                "responses": {
                    "200": {"description": "A page", "content": _json(f"{name}List")},
                    "401": _error("401"),
                    "422": _error("422"),
                },
            },
            "post": {
                "tags": [tag],
                "summary": f"Create a {resource.label}",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": _json(name)},
                "responses": {
                    "201": _with_record("Created", name),
                    **{c: _error(c) for c in ("400", "401", "403", "409", "422")},
                },
            },
        },
    )
    spec.path(
        f"{base}/{{record_id}}",
        operations={
            "get": {
                "tags": [tag],
                "parameters": [_id_parameter()],
                "responses": {
                    "200": _with_record("The record", name),
                    "401": _error("401"),
                    "404": _error("404"),
                },
            },
            "patch": {
                "tags": [tag],
                "security": [{"bearer": []}],
                "parameters": [_id_parameter(), IF_MATCH],
                "requestBody": {"required": True, "content": _json(f"{name}Patch")},
                "responses": {
                    "200": _with_record("The changed record", name),
                    "412": _stale(name),
                    **{c: _error(c) for c in ("400", "401", "403", "404", "409", "422")},
                },
            },
            "delete": {
                "tags": [tag],
                "summary": "Mark deleted (restorable)",
                "security": [{"bearer": []}],
                "parameters": [_id_parameter(), IF_MATCH],
                "responses": {
                    "204": {"description": "Deleted"},
                    "412": _stale(name),
                    **{c: _error(c) for c in ("401", "403", "404", "409")},
                },
            },
        },
    )
    spec.path(
        f"{base}/{{record_id}}/restore",
        operations={
            "post": {
                "tags": [tag],
                "security": [{"bearer": []}],
                "parameters": [_id_parameter()],
                "responses": {
                    "200": _with_record("Restored", name),
                    **{c: _error(c) for c in ("401", "403", "404", "409")},
                },
            }
        },
    )
    spec.path(
        f"{base}/{{record_id}}/history",
        operations={
            "get": {
                "tags": [tag],
                "security": [{"bearer": []}],
                "parameters": [_id_parameter()],
                "responses": {
                    "200": {"description": "Revisions, oldest first", "content": _json("History")},
                    **{c: _error(c) for c in ("401", "403", "404")},
                },
            }
        },
    )


def _add_files(spec: APISpec) -> None:
    spec.path(
        "/api/v1/sources/{source_id}/files",
        operations={
            "post": {
                "tags": ["sources"],
                "summary": "Archive a file of this source (content-addressed by SHA-256)",
                "security": [{"bearer": []}],
                "parameters": [_id_parameter("source_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                },
                "responses": {
                    "201": {"description": "Stored", "content": _json("SourceFile")},
                    "200": {"description": "Already attached", "content": _json("SourceFile")},
                    **{c: _error(c) for c in ("401", "403", "404", "413", "422")},
                },
            }
        },
    )
    spec.path(
        "/api/v1/sources/{source_id}/files/{sha256}",
        operations={
            "get": {
                "tags": ["sources"],
                "summary": "Download a file, after checking its bytes against its hash",
                "parameters": [
                    _id_parameter("source_id"),
                    {
                        "in": "path",
                        "name": "sha256",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The file, with the media type it was stored with",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "404": _error("404"),
                    "409": {
                        "description": "The stored bytes no longer match their hash.",
                        "content": _json("Error"),
                    },
                },
            }
        },
    )


@cache
def build_spec() -> dict:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Constancia API",
        version="1",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "Security operations, the events in them, the people harmed, and "
            "the sources behind every figure. Anonymous readers see published records only."
        },
    )
    plugin.map_to_openapi_type(PartialDate, "string", None)
    plugin.converter.add_attribute_function(_extra_field_properties)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("AuditEntry", schema=AuditEntrySchema)
    spec.components.schema("SourceFile", schema=SourceFileSchema)
    spec.components.schema(
        "History",
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
                "total": {"type": "integer"},
            },
        },
    )
    for resource in RESOURCES.values():
        _add_resource(spec, resource)
    _add_files(spec)
    spec.path(
        "/api/v1/audit",
        operations={
            "get": {
                "tags": ["audit"],
                "summary": "The audit log, newest first (admins)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"in": "query", "name": n, "schema": {"type": "string"}}
                    for n in ("page", "per_page", "resource", "record_id", "action", "user_id")
                ],
                "responses": {
                    "200": {"description": "A page of entries"},
                    **{c: _error(c) for c in ("401", "403", "422")},
                },
            }
        },
    )
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi():
    return build_spec()
