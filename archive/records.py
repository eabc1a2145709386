"""Create, read, list, change, delete and restore records: the services views and commands share.

Services take the session, the acting user and plain values; they flush but never commit,
so the caller decides the transaction and a failure leaves the database as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.common import OnDuty

from . import access, provenance
from .models import Actor, AuditEntry, User, utcnow
from .resources import RESOURCES, Conflict, Resource

# `version` counts the entries of the history itself; in each entry's diff it would be noise.
SNAPSHOT_SKIP = frozenset({"id", "created_at", "updated_at", "version", "files", "is_state"})
# Changes to these fields are audited as their own actions, apart from plain edits.
SEPARATE_ACTIONS = {
    "status": lambda before, after: "status_change",
    "published": lambda before, after: "publish" if after else "unpublish",
}


class NotFound(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class StaleRecord(Exception):
    """The record changed since the client read the version it names (HTTP 412).

    Saving anyway would silently undo the other person's change; `record` is the record as
    it stands now, for the client to review and redo its edit on.
    """

    def __init__(self, resource: Resource, record: Any):
        self.resource = resource
        self.record = record
        self.message = (
            f"This {resource.label} has changed since you read it: someone else changed it "
            f"(it is now at version {record.version}). Nothing was saved; review the current "
            "record and make your change again."
        )
        super().__init__(self.message)


# The version a writer read, or several any of which will do (an If-Match list); None: any.
ExpectedVersion = int | Collection[int] | None


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int


def resource_for_model(model: type) -> Resource:
    return next(r for r in RESOURCES.values() if r.model is model)


def snapshot(resource: Resource, record: Any) -> dict[str, Any]:
    """The record as the full schema dumps it: what the audit log keeps before and after."""
    data = resource.full_schema().dump(record)
    return {k: v for k, v in data.items() if k not in SNAPSHOT_SKIP}


# Fields whose dump of None is None and that read nothing but their own attribute: for them
# created_changes() can leave out every empty attribute without asking the field.
_PLAIN_FIELDS = (
    fields.String,
    fields.Number,
    fields.Boolean,
    fields.DateTime,
    fields.Date,
    fields.Time,
    fields.List,
    OnDuty,
)


# Values these fields dump as they are (their _serialize gives back a value of these types).
_AS_THEY_ARE = (
    (fields.String, fields.String._serialize, (str,)),
    (fields.Integer, fields.Number._serialize, (int,)),
    (fields.Float, fields.Number._serialize, (float,)),
    (fields.Boolean, fields.Field._serialize, (bool,)),
)


def _created_fields(resource: Resource) -> tuple | None:
    return _fields_of(resource.full_schema())


@functools.cache
def _fields_of(schema) -> tuple[tuple[str, str, fields.Field, tuple], ...] | None:
    """(key, attribute, field, types its dump keeps as they are) of what snapshot() keeps,
    in the order of their keys, when the schema dumps each field on its own (no dump hooks,
    plain fields); None when only the schema's dump will do."""
    if any(schema._hooks.get(hook) for hook in ("pre_dump", "post_dump")):
        return None
    found = []
    for name, field in schema.dump_fields.items():
        key = field.data_key or name
        if key in SNAPSHOT_SKIP:
            continue
        attribute = field.attribute or name
        if not isinstance(field, _PLAIN_FIELDS) or "." in attribute:
            return None
        kept: tuple = ()
        for kind, serialize, types in _AS_THEY_ARE:
            as_string = getattr(field, "as_string", False)
            if isinstance(field, kind) and type(field)._serialize is serialize and not as_string:
                kept = types
        found.append((key, attribute, field, kept))
    return tuple(sorted(found, key=lambda item: item[0]))


def created_changes(
    resource: Resource, record: Any, columns: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """diff({}, snapshot(resource, record)): the changes a "create" entry keeps, computed
    field by field (a bulk import makes thousands; the schema's whole dump costs more than
    the rest of the record's writing). `columns`, when given, holds the record's column
    values, read from there instead of through its attributes."""
    plan = _created_fields(resource)
    if plan is None:
        return diff({}, snapshot(resource, record))
    columns = columns or {}
    changes = {}
    for key, attribute, field, kept in plan:
        value = columns[attribute] if attribute in columns else getattr(record, attribute, None)
        if value is None:
            continue
        if type(value) not in kept:
            value = field._serialize(value, attribute, record)
            if value is None:
                continue
        changes[key] = {"before": None, "after": value}
    return changes


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


# --- Reading ---------------------------------------------------------------------------------


def get_record(
    session: Session,
    user: User | None,
    resource: Resource,
    record_id: int,
    for_update: bool = False,
) -> Any:
    """The live record `user` may see, or NotFound: invisible and missing look the same.

    `for_update` locks its row until the transaction ends (SQLite's write transactions hold
    the whole database already) and reads it afresh, so a writer sees the latest version.
    """
    model = resource.model
    stmt = (
        select(model)
        .where(model.id == record_id, access.visible(model, user))
        .options(*resource.load_options)
    )
    if for_update:
        stmt = stmt.with_for_update(of=model).execution_options(populate_existing=True)
    record = session.scalars(stmt).first()
    if record is None:
        raise NotFound(f"No {resource.label} with id {record_id}.")
    return record


def parse_filters(resource: Resource, params: Mapping[str, str]) -> list:
    errors, clauses = {}, []
    for name, raw in params.items():
        spec = resource.filters.get(name)
        if spec is None:
            known = ", ".join(sorted(resource.filters)) or "none"
            errors[name] = [f"Unknown filter for {resource.name}; known filters: {known}."]
            continue
        missing = [needed for needed in spec.needs if needed not in params]
        if missing:
            errors[name] = [f"Give {' and '.join(missing)} with {name}."]
            continue
        try:
            clauses.append(spec.clause(spec.parse(raw)))
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return clauses


def parse_sort(resource: Resource, sort: str | None) -> list:
    model, order = resource.model, []
    for key in (sort or resource.default_sort).split(","):
        name = key.strip().lstrip("-")
        if name not in resource.sort_fields:
            raise ValidationError(
                {
                    "sort": [
                        f"Cannot sort by {name!r}; use one of: {', '.join(resource.sort_fields)}."
                    ]
                }
            )
        column = getattr(model, name)
        descending = key.strip().startswith("-")
        direction = column.desc() if descending else column.asc()
        # A record without a value sorts as if its value were the largest, on SQLite as on
        # PostgreSQL (whose default this is, so its indexes still serve the order): undated
        # events come last oldest-first and first newest-first.
        if column.nullable:
            direction = direction.nulls_first() if descending else direction.nulls_last()
        order.append(direction)
    order.append(model.id.asc())
    return order


def list_records(
    session: Session,
    user: User | None,
    resource: Resource,
    filters: Mapping[str, str],
    page: int,
    per_page: int,
    sort: str | None = None,
) -> Page:
    model = resource.model
    conditions = [access.visible(model, user), *parse_filters(resource, filters)]
    order = parse_sort(resource, sort)
    total = session.scalar(select(func.count(model.id)).where(*conditions))
    stmt = (
        select(model)
        .where(*conditions)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
        .options(*resource.load_options)
    )
    return Page(list(session.scalars(stmt)), total, page, per_page)


def history(session: Session, user: User | None, resource: Resource, record_id: int) -> list:
    access.require(user, "read_history", f"the history of {resource.name}")
    if session.get(resource.model, record_id) is None:
        raise NotFound(f"No {resource.label} with id {record_id}.")
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.resource == resource.key, AuditEntry.record_id == record_id)
        .order_by(AuditEntry.seq)
    )
    return list(session.scalars(stmt))


# --- Writing ---------------------------------------------------------------------------------


def _expected(expected_version: ExpectedVersion) -> Collection[int] | None:
    if expected_version is None or isinstance(expected_version, Collection):
        return expected_version
    return (expected_version,)


def record_for_write(
    session: Session,
    user: User | None,
    resource: Resource,
    record_id: int,
    expected_version: ExpectedVersion = None,
) -> Any:
    """The record, locked, provided it is still at a version the writer expects.

    The comparison happens under the lock, so of two writers who read the same version only
    the first to get the lock passes; the second sees the version the first left.
    """
    record = get_record(session, user, resource, record_id, for_update=True)
    expected = _expected(expected_version)
    if expected is not None and record.version not in expected:
        raise StaleRecord(resource, record)
    return record


def _check_references(session: Session, resource: Resource, data: Mapping[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for name, model in resource.references.items():
        value = data.get(name)
        if value is None:
            continue
        label = resource_for_model(model).label
        if name == "actors":
            wanted = {a["actor_id"] for a in value}
            found = set(
                session.scalars(
                    select(Actor.id).where(Actor.id.in_(wanted), Actor.deleted_at.is_(None))
                )
            )
            missing = sorted(wanted - found)
            if missing:
                errors[name] = [f"No actor with id {', '.join(map(str, missing))}."]
        elif (
            session.scalar(select(model.id).where(model.id == value, model.deleted_at.is_(None)))
            is None
        ):
            errors[name] = [f"No {label} with id {value}."]
    if errors:
        raise ValidationError(errors)


def _fill_defaults(record: Any) -> None:
    """Give a new record its column defaults now, so checks see them before the insert."""
    for column in record.__table__.columns:
        default = column.default
        if default is not None and default.is_scalar and getattr(record, column.key) is None:
            setattr(record, column.key, default.arg)


def _audit_changes(session, user, resource, record_id, changes) -> None:
    plain = dict(changes)
    for name, action in SEPARATE_ACTIONS.items():
        if name in plain:
            change = plain.pop(name)
            provenance.record(
                session,
                user,
                action(change["before"], change["after"]),
                resource.key,
                record_id,
                {name: change},
            )
    if plain:
        provenance.record(session, user, "update", resource.key, record_id, plain)


def create_record(
    session: Session, user: User | None, resource: Resource, data: Mapping[str, Any]
) -> Any:
    access.require(user, "create", resource.name)
    _check_references(session, resource, data)
    record = resource.model()
    _fill_defaults(record)
    resource.apply(record, data)
    resource.check(session, user, record, data, None)
    session.add(record)
    session.flush()
    provenance.record(
        session, user, "create", resource.key, record.id, diff({}, snapshot(resource, record))
    )
    return record


def update_record(
    session: Session,
    user: User | None,
    resource: Resource,
    record_id: int,
    data: Mapping[str, Any],
    expected_version: ExpectedVersion = None,
) -> Any:
    """Apply `data`; a change that changes something makes a new version of the record."""
    access.require(user, "update", resource.name)
    record = record_for_write(session, user, resource, record_id, expected_version)
    _check_references(session, resource, data)
    before = snapshot(resource, record)
    # The checks query; autoflush would send the unchecked change to the database first,
    # where a constraint it breaks answers 409 instead of the check's 422 naming the field.
    with session.no_autoflush:
        resource.apply(record, data)
        resource.check(session, user, record, data, before)
    session.flush()
    changes = diff(before, snapshot(resource, record))
    if changes:
        record.version += 1
        session.flush()
        _audit_changes(session, user, resource, record.id, changes)
    return record


def delete_record(
    session: Session,
    user: User | None,
    resource: Resource,
    record_id: int,
    expected_version: ExpectedVersion = None,
) -> None:
    """Mark the record deleted; it leaves every read and list, and can be restored."""
    access.require(user, "delete", resource.name)
    record = record_for_write(session, user, resource, record_id, expected_version)
    problem = resource.blockers(session, record)
    if problem:
        raise Conflict(problem)
    record.deleted_at = utcnow()
    record.version += 1
    session.flush()
    provenance.record(
        session,
        user,
        "delete",
        resource.key,
        record.id,
        {"deleted_at": {"before": None, "after": record.deleted_at.isoformat()}},
    )


def restore_record(session: Session, user: User | None, resource: Resource, record_id: int) -> Any:
    access.require(user, "restore", resource.name)
    record = session.get(resource.model, record_id, with_for_update=True, populate_existing=True)
    if record is None:
        raise NotFound(f"No {resource.label} with id {record_id}.")
    if not record.is_deleted:
        raise Conflict(f"{resource.label.capitalize()} {record_id} is not deleted.")
    problem = resource.restore_blockers(session, record)
    if problem:
        raise Conflict(problem)
    deleted_at = record.deleted_at
    record.deleted_at = None
    record.version += 1
    session.flush()
    provenance.record(
        session,
        user,
        "restore",
        resource.key,
        record.id,
        {"deleted_at": {"before": deleted_at.isoformat(), "after": None}},
    )
    return record
