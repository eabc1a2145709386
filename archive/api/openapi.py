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


_RANGE = {"type": "number", "nullable": True}
INDICATOR = {
    "type": "object",
    "required": ["best", "low", "high", "threshold", "exceeds", "reason", "events", "sources"],
    "properties": {
        "best": _RANGE,
        "low": _RANGE,
        "high": _RANGE,
        "threshold": {
            "type": "number",
            "nullable": True,
            "description": "The literature's threshold, where there is one (see /methodology).",
        },
        "exceeds": {"type": "boolean", "nullable": True},
        "reason": {
            "type": "string",
            "nullable": True,
            "description": "Why the figure is undefined (null), e.g. 'no agents killed'.",
        },
        "events": {"type": "integer", "description": "Events behind the figure."},
        "sources": {"type": "integer", "description": "Sources behind it that you may see."},
    },
}


def _add_indicators(spec: APISpec) -> None:
    from .. import indicators

    spec.components.schema("Indicator", INDICATOR)
    figures = {
        "type": "object",
        "properties": {
            key: {"$ref": "#/components/schemas/Indicator"} for key in indicators.INDICATOR_KEYS
        },
    }
    spec.components.schema("Indicators", figures)
    drafts = {
        "in": "query",
        "name": "include_drafts",
        "schema": {"type": "boolean"},
        "description": "Count unverified events too (staff only); the answer says what was used.",
    }
    header = {"method_version": {"type": "string"}, "include_drafts": {"type": "boolean"}}
    spec.path(
        "/api/v1/operations/{operation_id}/indicators",
        operations={
            "get": {
                "tags": ["indicators"],
                "summary": "An operation's asymmetry indicators, each with its range",
                "parameters": [_id_parameter("operation_id"), drafts],
                "responses": {
                    "200": {
                        "description": "The indicators of DOMAIN.md section 4",
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {**header, "indicators": figures},
                            }
                        ),
                    },
                    **{c: _error(c) for c in ("401", "404", "422")},
                },
            }
        },
    )
    group = {
        "type": "object",
        "properties": {
            "key": {
                "nullable": True,
                "description": "an operation's or actor's id, a state's or municipality's name"
                " (followed by its state, 'Libertador (Mérida)', where another state has a"
                " municipality of that name), 2015 for a year, '2015-07' for a month",
            },
            "label": {"type": "string"},
            "indicators": figures,
        },
    }
    spec.path(
        "/api/v1/indicators",
        operations={
            "get": {
                "tags": ["indicators"],
                "summary": "Indicators per operation, force, region or period",
                "parameters": [
                    {
                        "in": "query",
                        "name": "group_by",
                        "schema": {"type": "string", "enum": list(indicators.GROUPINGS)},
                    },
                    drafts,
                    *(
                        p
                        for p in _list_parameters(RESOURCES["events"])
                        if p["name"] not in ("page", "per_page", "sort")
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "Each group's indicators and the total",
                        "content": _json(
                            {
                                "type": "object",
                                "properties": {
                                    **header,
                                    "group_by": {"type": "string"},
                                    "groups": {"type": "array", "items": group},
                                    "total": figures,
                                },
                            }
                        ),
                    },
                    **{c: _error(c) for c in ("401", "422")},
                },
            }
        },
    )


def _add_exports(spec: APISpec) -> None:
    from .. import codebook, exports, indicators

    # Each export takes its list's filters; one parameter per name, saying which take it.
    takers: dict[str, list[str]] = {}
    schemas: dict[str, dict] = {}
    for what in codebook.RECORD_EXPORTS:
        for name, spec_filter in RESOURCES[what].filters.items():
            takers.setdefault(name, []).append(what)
            schemas.setdefault(name, spec_filter.openapi)
    for name, schema in (
        ("group_by", {"type": "string", "enum": list(indicators.GROUPINGS)}),
        ("include_drafts", {"type": "boolean"}),
    ):
        takers[name], schemas[name] = ["indicators"], schema
    for name in RESOURCES["events"].filters:
        takers.setdefault(name, []).append("indicators")
    filters = [
        {
            "in": "query",
            "name": name,
            "schema": schemas[name],
            "description": f"Filter of: {', '.join(takers[name])} (as in their lists).",
        }
        for name in sorted(takers)
    ]
    binary = {"schema": {"type": "string", "format": "binary"}}
    spec.path(
        "/api/v1/exports",
        operations={
            "get": {
                "tags": ["exports"],
                "summary": "The exports there are, with their addresses",
                "responses": {"200": {"description": "{exports: {name: url}, formats, codebook}"}},
            }
        },
    )
    spec.path(
        "/api/v1/exports/{what}",
        operations={
            "get": {
                "tags": ["exports"],
                "summary": "A list, or the grouped indicators, as CSV, XLSX or JSON",
                "description": "Every row the list gives you (not one page), one per record by "
                "id, with the record's permanent address in `url`; lists in a cell as "
                "'12:perpetrator; 15:target'. CSV is UTF-8 with a byte-order mark; JSON is an "
                "array of rows; XLSX holds the table and a `codebook` sheet. The indicators "
                "export has one row per group and indicator. Each export is audited. The "
                "columns are described at /codebook.",
                "parameters": [
                    {
                        "in": "path",
                        "name": "what",
                        "required": True,
                        "schema": {"type": "string", "enum": list(codebook.EXPORTS)},
                    },
                    {
                        "in": "query",
                        "name": "format",
                        "schema": {
                            "type": "string",
                            "enum": list(exports.FORMATS),
                            "default": exports.DEFAULT_FORMAT,
                        },
                    },
                    {
                        "in": "query",
                        "name": "columns",
                        "schema": {"type": "string"},
                        "description": "Comma-separated columns, in the order wanted "
                        "(default: all the reader may get).",
                    },
                    *filters,
                ],
                "responses": {
                    "200": {
                        "description": "The export, as an attachment named "
                        "constancia-<what>-YYYYMMDD.<format>",
                        "content": {media: binary for media in exports.FORMATS.values()},
                    },
                    **{c: _error(c) for c in ("401", "404", "422")},
                },
            }
        },
    )


def _add_search(spec: APISpec) -> None:
    from .. import search, vocab

    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    spec.components.schema(
        "SearchResults",
        {
            "type": "object",
            "required": ["items", "total", "page", "per_page", "facets"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "enum": list(search.TYPES)},
                            "id": {"type": "integer"},
                            "title": {"type": "string"},
                            "snippet": {
                                "type": "string",
                                "description": "HTML: the text around the words matched, "
                                "each in <mark>, everything else escaped; taken only from "
                                "what you may read (a source found by its file's text: that "
                                "text).",
                            },
                            "score": {"type": "number"},
                        },
                    },
                },
                "total": {"type": "integer", "description": "Every match you may see."},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
                "facets": {
                    "type": "object",
                    "description": "Counts over all the matches (not only this page): records "
                    "per type; events per operation id, actor id, state (admin1), year of "
                    "start, event type and status.",
                    "properties": {name: counts for name in search.FACETS},
                },
            },
        },
    )
    text = {"type": "string"}
    whole = {"type": "integer", "minimum": 1}
    parameters = [
        (
            "q",
            {"type": "string", "maxLength": search.MAX_QUERY_LENGTH},
            "Words in Spanish or English, accents and case ignored, plurals and other "
            'forms found by their stem; "a phrase"; field:word with fields title, actor, '
            "operation, place, victim, file (and notes for staff); AND, OR, NOT and "
            "parentheses; word~ tolerates typos, word* a prefix. Empty: every record.",
        ),
        ("type", {"type": "string", "enum": list(search.TYPES)}, "Only records of this type."),
        ("operation", whole, "Events of this operation (its id)."),
        ("actor", whole, "Events this actor (its id) took part in."),
        ("admin1", text, "Events in this state, whatever its case and accents."),
        ("year", {"type": "integer", "minimum": 1900, "maximum": 2200}, "Events starting then."),
        ("event_type", {"type": "string", "enum": list(vocab.EVENT_TYPES)}, None),
        ("status", {"type": "string", "enum": list(vocab.EVENT_STATUSES)}, None),
        ("date_from", {"type": "string", "format": "date"}, "Records lasting until then or later."),
        ("date_to", {"type": "string", "format": "date"}, "Records starting then or earlier."),
        (
            "sort",
            {"type": "string", "enum": list(search.SORTS)},
            "relevance (the default with a query) or -date, newest first (without one).",
        ),
        ("page", whole, None),
        ("per_page", whole, "Larger asks are capped at the configured maximum."),
    ]
    spec.path(
        "/api/v1/search",
        operations={
            "get": {
                "tags": ["search"],
                "summary": "Full-text search over events, operations, actors and sources",
                "description": "Finds only what you may read: anonymous readers search "
                "published records, without withheld identities or internal notes.",
                "parameters": [
                    {"in": "query", "name": name, "schema": schema}
                    | ({"description": about} if about else {})
                    for name, schema, about in parameters
                ],
                "responses": {
                    "200": {
                        "description": "One page of matches",
                        "content": _json("SearchResults"),
                    },
                    **{c: _error(c) for c in ("401", "422")},
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
    _add_indicators(spec)
    _add_exports(spec)
    _add_search(spec)
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
