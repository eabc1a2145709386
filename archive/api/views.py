"""Generic views for every resource in the `resources` table: parse, call a service, dump."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, current_app, make_response, request, url_for
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.exceptions import BadRequest

from schemas.audit import AuditEntrySchema
from schemas.common import MAX_INTEGER

from .. import access, records
from ..extensions import db
from ..models import AuditEntry
from ..resources import RESOURCES, Resource, parse_integer
from . import bp

PAGING_PARAMS = ("page", "per_page", "sort")


def resource_named(name: str) -> Resource:
    resource = RESOURCES.get(name)
    if resource is None:
        raise records.NotFound(
            f"No resource {name!r}; the API has: {', '.join(sorted(RESOURCES))}."
        )
    return resource


def json_object() -> dict:
    try:
        data = request.get_json(force=True)
    except BadRequest:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def single_valued_args() -> dict[str, str]:
    """The query string as a dict; a repeated parameter is refused rather than half-read."""
    repeated = {
        k: ["Give this parameter once."] for k in request.args if len(request.args.getlist(k)) > 1
    }
    if repeated:
        raise ValidationError(repeated)
    return request.args.to_dict()


def paging() -> tuple[int, int]:
    """`page` from 1 and `per_page` up to the configured maximum (larger asks are capped)."""
    errors, values = {}, {}
    defaults = {"page": 1, "per_page": current_app.config["API_DEFAULT_PER_PAGE"]}
    for name, default in defaults.items():
        raw = request.args.get(name)
        try:
            values[name] = default if raw is None else int(raw)
            if not 1 <= values[name] <= MAX_INTEGER:
                raise ValueError
        except ValueError:
            errors[name] = [f"Must be a whole number from 1 to {MAX_INTEGER}."]
    if errors:
        raise ValidationError(errors)
    return values["page"], min(values["per_page"], current_app.config["API_MAX_PER_PAGE"])


_VERSION_TAG = re.compile(r"[0-9]{1,10}")


def expected_version() -> set[int] | None:
    """The versions the request's If-Match accepts; None when any will do (no header, `*`).

    Lenient: a list ("3", "4") accepts each, and a weak W/"3" counts as "3". A tag that is no
    version of ours is kept out, so a header of only such tags matches nothing (412).
    """
    if "If-Match" not in request.headers or request.if_match.star_tag:
        return None
    tags = request.if_match.as_set(include_weak=True)
    return {int(tag) for tag in tags if isinstance(tag, str) and _VERSION_TAG.fullmatch(tag)}


def with_etag(response: Response, record: Any) -> Response:
    """A strong ETag naming the record's version: what a later If-Match sends back."""
    response.set_etag(str(record.version))
    return response


def record_response(resource: Resource, user, record: Any, *args) -> Response:
    """The record as `user` may see it, with its ETag; `args` as make_response takes them."""
    body = resource.dump_schema(user).dump(record)
    return with_etag(make_response(body, *args), record)


def envelope(items: list, total: int, page: int, per_page: int) -> dict:
    return {"items": items, "total": total, "page": page, "per_page": per_page}


@bp.get("/")
def index():
    return {
        "resources": {name: url_for("api.list_records", name=name) for name in RESOURCES},
        "openapi": url_for("api.openapi"),
    }


@bp.get("/<name>")
def list_records(name: str):
    resource = resource_named(name)
    user = access.acting_user()
    args = single_valued_args()
    page, per_page = paging()
    filters = {k: v for k, v in args.items() if k not in PAGING_PARAMS}
    result = records.list_records(
        db.session, user, resource, filters, page, per_page, args.get("sort")
    )
    items = resource.dump_schema(user, many=True).dump(result.items)
    return envelope(items, result.total, result.page, result.per_page)


@bp.post("/<name>")
def create_record(name: str):
    resource = resource_named(name)
    user = access.acting_user()
    access.require(user, "create", resource.name)
    data = resource.full_schema().load(json_object())
    record = records.create_record(db.session, user, resource, data)
    db.session.commit()
    location = url_for("api.get_record", name=name, record_id=record.id)
    return record_response(resource, user, record, 201, {"Location": location})


@bp.get("/<name>/<int:record_id>")
def get_record(name: str, record_id: int):
    resource = resource_named(name)
    user = access.acting_user()
    record = records.get_record(db.session, user, resource, record_id)
    return record_response(resource, user, record)


@bp.patch("/<name>/<int:record_id>")
def update_record(name: str, record_id: int):
    resource = resource_named(name)
    user = access.acting_user()
    access.require(user, "update", resource.name)
    data = resource.full_schema(partial=True).load(json_object())
    record = records.update_record(db.session, user, resource, record_id, data, expected_version())
    db.session.commit()
    return record_response(resource, user, record)


@bp.delete("/<name>/<int:record_id>")
def delete_record(name: str, record_id: int):
    resource = resource_named(name)
    records.delete_record(db.session, access.acting_user(), resource, record_id, expected_version())
    db.session.commit()
    return "", 204


@bp.post("/<name>/<int:record_id>/restore")
def restore_record(name: str, record_id: int):
    resource = resource_named(name)
    user = access.acting_user()
    record = records.restore_record(db.session, user, resource, record_id)
    db.session.commit()
    return record_response(resource, user, record)


@bp.get("/<name>/<int:record_id>/history")
def record_history(name: str, record_id: int):
    resource = resource_named(name)
    entries = records.history(db.session, access.acting_user(), resource, record_id)
    items = AuditEntrySchema(many=True).dump(entries)
    return {"items": items, "total": len(items)}


# What the log names its entries by: each resource's key, and the accounts.
AUDIT_RESOURCES = {name: r.key for name, r in RESOURCES.items()} | {"users": "user"}


def _audit_resource(value: str):
    """Either the API's name (`casualty-counts`) or the log's own key (`casualty_count`)."""
    key = AUDIT_RESOURCES.get(value, value)
    if key not in AUDIT_RESOURCES.values():
        raise ValueError(f"Must be one of: {', '.join(AUDIT_RESOURCES)}.")
    return AuditEntry.resource == key


AUDIT_FILTERS = {
    "resource": _audit_resource,
    "record_id": lambda v: AuditEntry.record_id == parse_integer(v),
    "action": lambda v: AuditEntry.action == v,
    "user_id": lambda v: AuditEntry.user_id == parse_integer(v),
}


@bp.get("/audit")
def audit_log():
    access.require(access.acting_user(), "read_audit", "the audit log")
    args = single_valued_args()
    page, per_page = paging()
    conditions, errors = [], {}
    for name, raw in args.items():
        if name in PAGING_PARAMS:
            continue
        try:
            conditions.append(AUDIT_FILTERS[name](raw))
        except KeyError:
            errors[name] = [f"Unknown filter; known filters: {', '.join(AUDIT_FILTERS)}."]
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    total = db.session.scalar(select(func.count(AuditEntry.id)).where(*conditions))
    entries = db.session.scalars(
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.seq.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return envelope(AuditEntrySchema(many=True).dump(entries), total, page, per_page)
