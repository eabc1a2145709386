"""The API's resources: model, schemas, filters, sort keys, and the rules peculiar to each.

The generic services in `records` read this table; a new resource is a new entry here.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import ColumnElement, case, func, or_, select, text
from sqlalchemy.orm import Session, selectinload

from schemas.actors import ActorSchema
from schemas.casualty_counts import CasualtyCountSchema
from schemas.citations import CitationSchema
from schemas.common import MAX_INTEGER, PRECISION_FIELDS, check_date_order, first_day
from schemas.context_figures import FIGURES, NEITHER_FIGURE, ContextFigureSchema
from schemas.events import EventSchema, PublicEventSchema
from schemas.operations import OperationSchema
from schemas.places import PlaceSchema, default_precision
from schemas.sources import SourceSchema
from schemas.victims import PublicVictimSchema, VictimSchema

from . import access, vocab
from .models import (
    Actor,
    CasualtyCount,
    Citation,
    ContextFigure,
    Event,
    EventActor,
    Operation,
    OperationActor,
    Place,
    Source,
    SourceFile,
    User,
    Victim,
)


class Conflict(Exception):
    """The request clashes with the state of other records (HTTP 409)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Query-string filters --------------------------------------------------------------------


def _described(openapi: dict):
    """Attach the OpenAPI schema of what a parser accepts, for the API description."""

    def mark(parse):
        parse.openapi = openapi
        return parse

    return mark


@_described({"type": "integer", "minimum": 0, "maximum": MAX_INTEGER})
def parse_integer(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("Not a valid integer.") from None
    if not 0 <= number <= MAX_INTEGER:
        raise ValueError(f"Must be between 0 and {MAX_INTEGER}.")
    return number


@_described({"type": "boolean"})
def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError("Must be true or false.")


@_described({"type": "string", "format": "date"})
def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("Not a valid date: use YYYY-MM-DD.") from None


def _one_of(values: tuple) -> Callable[[str], str]:
    @_described({"type": "string", "enum": list(values)})
    def parse(value: str) -> str:
        if value not in values:
            raise ValueError(f"Must be one of: {', '.join(map(str, values))}.")
        return value

    return parse


@_described({"type": "string"})
def _text(value: str) -> str:
    return value


@_described({"type": "integer", "minimum": 1900, "maximum": 2200})
def _year(value: str) -> int:
    try:
        year = int(value)
    except ValueError:
        raise ValueError("Not a valid integer.") from None
    if not 1900 <= year <= 2200:
        raise ValueError("Must be between 1900 and 2200.")
    return year


@dataclass(frozen=True)
class Filter:
    parse: Callable[[str], Any]
    clause: Callable[[Any], ColumnElement[bool]]
    # Other filters without which this one would be ambiguous.
    needs: tuple[str, ...] = ()

    @property
    def openapi(self) -> dict:
        return self.parse.openapi


def equals(column, parse=parse_integer) -> Filter:
    return Filter(parse, lambda value: column == value)


def same_text(column) -> Filter:
    return Filter(_text, lambda value: func.lower(column) == value.lower())


def _place_level(level: str) -> Filter:
    column = getattr(Place, level)
    return Filter(
        _text,
        lambda value: Event.place_id.in_(
            select(Place.id).where(func.lower(column) == value.lower())
        ),
    )


def _event_reaches(day: dt.date) -> ColumnElement[bool]:
    """Events that last until `day` or later: their end, or without one their start, taken as
    the whole period it was given to (an end of 2015-08 reaches 2015-08-20).

    A stored partial date is its period's first day, so rather than computing each row's last
    day, compare it with the first day of `day`'s period at that row's precision.
    """
    last = func.coalesce(Event.end_date, Event.start_date)
    precision = case(
        (Event.end_date.is_not(None), Event.end_date_precision), else_=Event.date_precision
    )
    period_start = case(
        *((precision == p, first_day(day, p)) for p in ("year", "month")), else_=day
    )
    return last >= period_start


def _citation_target(value: Any) -> ColumnElement[bool]:
    column = getattr(Citation, Citation.TARGET_COLUMNS[value])
    return column.is_not(None)


# --- Rules particular to a resource ----------------------------------------------------------
# Each check sees the record with the changes applied, the changes themselves, and the
# record's snapshot from before (None on create). It raises ValidationError,
# access.AccessDenied or Conflict; the caller's transaction then rolls back.


def _no_check(session, user, record, changes, before) -> None:
    return None


def _live_citations(session: Session, column, record_id: int | None) -> int:
    if record_id is None:
        return 0
    return session.scalar(
        select(func.count(Citation.id)).where(column == record_id, Citation.deleted_at.is_(None))
    )


def check_event(session: Session, user: User | None, event: Event, changes, before) -> None:
    old_status = before["status"] if before else "draft"
    old_published = before["published"] if before else False
    access.require_status_move(user, old_status, event.status)
    if event.published != old_published:
        access.require(user, "publish", "events")
    check_dates(event)
    becoming = (event.status == "verified" and old_status != "verified") or (
        event.published and not old_published
    )
    if becoming and _live_citations(session, Citation.event_id, event.id) == 0:
        field_name = "status" if event.status != old_status else "published"
        raise ValidationError(
            "An event needs at least one citation before it can be verified or published.",
            field_name,
        )
    if event.published and event.status != "verified":
        if old_published and event.status != old_status:
            raise ValidationError(
                "A published event must stay verified: unpublish it first.", "status"
            )
        raise ValidationError("Only a verified event can be published.", "published")


def check_dates(record: Event | Operation) -> None:
    """The span in order, each end of it given to the precision it keeps; a cleared date
    clears its precision, which would otherwise describe a date no longer there."""
    for date_field, precision_field in PRECISION_FIELDS.items():
        if getattr(record, date_field) is None and getattr(record, precision_field) is not None:
            setattr(record, precision_field, None)
    check_date_order(
        {name: getattr(record, name) for name in (*PRECISION_FIELDS, *PRECISION_FIELDS.values())}
    )


def check_operation(session, user, operation: Operation, changes, before) -> None:
    check_dates(operation)


def check_place(session, user, place: Place, changes, before) -> None:
    if (place.latitude is None) != (place.longitude is None):
        raise ValidationError("Give latitude and longitude together.", "longitude")
    if before is None and "precision" not in changes:
        place.precision = default_precision(changes)


def check_actor(session: Session, user, actor: Actor, changes, before) -> None:
    seen, parent_id = set(), actor.parent_id
    while parent_id is not None:
        if parent_id == actor.id or parent_id in seen:
            raise ValidationError("An actor cannot be its own ancestor.", "parent_id")
        seen.add(parent_id)
        parent_id = session.scalar(select(Actor.parent_id).where(Actor.id == parent_id))


def _lifting_restriction(user, was_restricted: bool, now_restricted: bool, what: str) -> None:
    """Making restricted data public is an editor's decision, like publishing."""
    if was_restricted and not now_restricted:
        access.require(user, "publish", what)


def check_victim(session, user, victim: Victim, changes, before) -> None:
    minor = victim.age is not None and victim.age < 18
    age_changed = before is None or before.get("age") != victim.age
    if "identity_restricted" not in changes and age_changed and minor:
        victim.identity_restricted = True
    if victim.identity_restricted is None:
        victim.identity_restricted = False
    was_restricted = before["identity_restricted"] if before else minor
    _lifting_restriction(
        user, was_restricted, victim.identity_restricted, "a restricted identity public"
    )


def check_source(session, user, source: Source, changes, before) -> None:
    by_default = source.kind == "testimony"
    if before is None and "restricted" not in changes:
        source.restricted = by_default
    was_restricted = before["restricted"] if before else by_default
    _lifting_restriction(user, was_restricted, source.restricted, "a restricted source public")


# Serialises the writers of context figures on PostgreSQL, so that two who check for the same
# region and year at once cannot both find it free (SQLite's write lock does this already).
CONTEXT_FIGURE_LOCK_KEY = 0x43465347


def lock_context_figures(session: Session) -> None:
    """Taken before a figure is checked and before any audit entry (whose own lock comes
    after it), so every writer takes the two locks in the same order."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": CONTEXT_FIGURE_LOCK_KEY}
        )


def same_context_figure(country: str, admin1: str, admin2: str | None, year: int):
    """The condition that finds the live figure for a region and year: admin1 and admin2
    in any case, and no admin2 matching only no admin2."""
    return (
        ContextFigure.deleted_at.is_(None),
        ContextFigure.country == country,
        func.lower(ContextFigure.admin1) == admin1.lower(),
        ContextFigure.admin2.is_(None)
        if admin2 is None
        else func.lower(ContextFigure.admin2) == admin2.lower(),
        ContextFigure.year == year,
    )


def find_context_figure(
    session: Session,
    country: str,
    admin1: str,
    admin2: str | None,
    year: int,
    other_than: int | None = None,
) -> int | None:
    """The id of the live figure for this region and year (other than `other_than`)."""
    stmt = select(ContextFigure.id).where(*same_context_figure(country, admin1, admin2, year))
    if other_than is not None:
        stmt = stmt.where(ContextFigure.id != other_than)
    return session.scalar(stmt.order_by(ContextFigure.id).limit(1))


def _duplicate_figure(session: Session, figure: ContextFigure) -> str | None:
    lock_context_figures(session)
    existing = find_context_figure(
        session, figure.country, figure.admin1, figure.admin2, figure.year, other_than=figure.id
    )
    if existing is None:
        return None
    region = ", ".join(p for p in (figure.admin2, figure.admin1, figure.country) if p)
    return (
        f"Context figure {existing} is already the figure for {region} in {figure.year}; "
        "change that one instead."
    )


def check_context_figure(session: Session, user, figure: ContextFigure, changes, before) -> None:
    if figure.population is None and figure.homicides is None:
        raise ValidationError({name: [NEITHER_FIGURE] for name in FIGURES})
    problem = _duplicate_figure(session, figure)
    if problem:
        raise Conflict(problem)


def restore_blockers_context_figure(session: Session, figure: ContextFigure) -> str | None:
    """A deleted figure comes back only with its source, and while no other live figure has
    taken its place."""
    source = session.get(Source, figure.source_id)
    if source is None or source.is_deleted:
        return f"Source {figure.source_id} of this figure is deleted; restore it first."
    return _duplicate_figure(session, figure)


TARGET_MODELS = {
    "operation": Operation,
    "event": Event,
    "victim": Victim,
    "casualty_count": CasualtyCount,
}


def check_citation(session: Session, user, citation: Citation, changes, before) -> None:
    target_type = citation.target_type
    target = session.get(TARGET_MODELS[target_type], citation.target_id)
    if target is None or target.is_deleted:
        raise ValidationError(
            f"No {target_type.replace('_', ' ')} with id {citation.target_id}.", "target_id"
        )
    if citation.field is not None:
        target_fields = RESOURCES_BY_KEY[target_type].citable_fields()
        if citation.field not in target_fields:
            raise ValidationError(
                f"A {target_type.replace('_', ' ')} has no field {citation.field!r}; "
                f"citable fields: {', '.join(sorted(target_fields))}.",
                "field",
            )
    moved_from_event = (
        before is not None
        and before.get("target_type") == "event"
        and (citation.event_id != before.get("target_id"))
    )
    if moved_from_event:
        _keep_verified_event_cited(session, before["target_id"], citation.id)


def apply_citation(citation: Citation, changes: dict[str, Any]) -> None:
    changes = dict(changes)
    target_type, target_id = changes.pop("target_type", None), changes.pop("target_id", None)
    if target_type is not None:
        citation.point_at(target_type, target_id)
    apply_columns(citation, changes)


def apply_columns(record, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if name == "actors":
            association = EventActor if isinstance(record, Event) else OperationActor
            unique = {(a["actor_id"], a["role"]) for a in value}
            record.actors = [association(actor_id=a, role=r) for a, r in sorted(unique)]
        else:
            setattr(record, name, value)


# --- What blocks a delete --------------------------------------------------------------------


def _count(session: Session, stmt) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery()))


def blockers_actor(session: Session, actor: Actor) -> str | None:
    uses = {
        "events": select(EventActor.event_id)
        .join(Event, Event.id == EventActor.event_id)
        .where(EventActor.actor_id == actor.id, Event.deleted_at.is_(None)),
        "operations": select(OperationActor.operation_id)
        .join(Operation, Operation.id == OperationActor.operation_id)
        .where(OperationActor.actor_id == actor.id, Operation.deleted_at.is_(None)),
        "victims": select(Victim.id).where(
            or_(Victim.actor_id == actor.id, Victim.responsible_actor_id == actor.id),
            Victim.deleted_at.is_(None),
        ),
        "units": select(Actor.id).where(Actor.parent_id == actor.id, Actor.deleted_at.is_(None)),
    }
    return _in_use(session, "actor", uses)


def blockers_place(session: Session, place: Place) -> str | None:
    uses = {
        "events": select(Event.id).where(Event.place_id == place.id, Event.deleted_at.is_(None))
    }
    return _in_use(session, "place", uses)


def blockers_operation(session: Session, operation: Operation) -> str | None:
    uses = {
        "events": select(Event.id).where(
            Event.operation_id == operation.id, Event.deleted_at.is_(None)
        )
    }
    return _in_use(session, "operation", uses)


def blockers_source(session: Session, source: Source) -> str | None:
    uses = {
        "citations": select(Citation.id).where(
            Citation.source_id == source.id, Citation.deleted_at.is_(None)
        ),
        "casualty counts": select(CasualtyCount.id).where(
            CasualtyCount.source_id == source.id, CasualtyCount.deleted_at.is_(None)
        ),
        "context figures": select(ContextFigure.id).where(
            ContextFigure.source_id == source.id, ContextFigure.deleted_at.is_(None)
        ),
    }
    return _in_use(session, "source", uses)


def blockers_citation(session: Session, citation: Citation) -> str | None:
    if citation.event_id is not None:
        _keep_verified_event_cited(session, citation.event_id, citation.id)
    return None


def _keep_verified_event_cited(session: Session, event_id: int, citation_id: int) -> None:
    event = session.get(Event, event_id)
    others = session.scalar(
        select(func.count(Citation.id)).where(
            Citation.event_id == event_id,
            Citation.id != citation_id,
            Citation.deleted_at.is_(None),
        )
    )
    if event is not None and event.status == "verified" and others == 0:
        raise Conflict(
            f"Event {event_id} is verified and this is its only citation; "
            "cite another source or move the event back to review first."
        )


def _in_use(session: Session, label: str, uses: Mapping[str, Any]) -> str | None:
    found = [f"{n} {what}" for what, stmt in uses.items() if (n := _count(session, stmt))]
    if found:
        uses_text = ", ".join(found)
        return f"This {label} is still referred to by {uses_text}; change or delete those first."
    return None


def _no_blockers(session, record) -> None:
    return None


# --- The table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    name: str  # as in URLs: "casualty-counts"
    key: str  # as in audit entries and citations: "casualty_count"
    model: type
    schema: type[Schema]
    public_schema: type[Schema] | None = None
    references: Mapping[str, type] = field(default_factory=dict)
    filters: Mapping[str, Filter] = field(default_factory=dict)
    sort_fields: tuple[str, ...] = ("id",)
    default_sort: str = "id"
    load_options: tuple = ()
    check: Callable = _no_check
    apply: Callable[[Any, dict], None] = apply_columns
    blockers: Callable[[Session, Any], str | None] = _no_blockers
    # What keeps a deleted record from coming back (a live one that has taken its place).
    restore_blockers: Callable[[Session, Any], str | None] = _no_blockers

    @property
    def label(self) -> str:
        return self.key.replace("_", " ")

    def dump_schema(self, user: User | None, many: bool = False) -> Schema:
        """The schema for what `user` may see of these records."""
        if self.public_schema is not None and access.withholds_restricted(user):
            return schema_instance(self.public_schema, many)
        return schema_instance(self.schema, many)

    def full_schema(self, partial: bool = False) -> Schema:
        """The whole record: what writers send (partial: a PATCH) and what the audit keeps."""
        return schema_instance(self.schema, partial=partial)

    def citable_fields(self) -> set[str]:
        fields = self.full_schema().fields
        return {name for name, f in fields.items() if not f.dump_only}


@functools.cache
def schema_instance(cls: type[Schema], many: bool = False, partial: bool = False) -> Schema:
    """Build each schema once: building is costly, and a built schema keeps no state."""
    return cls(many=many, partial=partial)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            "actors",
            "actor",
            Actor,
            ActorSchema,
            references={"parent_id": Actor},
            filters={
                "kind": equals(Actor.kind, _one_of(vocab.ACTOR_KINDS)),
                "parent_id": equals(Actor.parent_id),
                "jurisdiction": equals(Actor.jurisdiction, _one_of(vocab.JURISDICTIONS)),
            },
            sort_fields=("id", "name", "acronym", "kind", "created_at"),
            default_sort="name",
            check=check_actor,
            blockers=blockers_actor,
        ),
        Resource(
            "operations",
            "operation",
            Operation,
            OperationSchema,
            references={"actors": Actor},
            sort_fields=("id", "name", "start_date", "end_date", "created_at"),
            default_sort="start_date",
            load_options=(selectinload(Operation.actors),),
            check=check_operation,
            blockers=blockers_operation,
        ),
        Resource(
            "places",
            "place",
            Place,
            PlaceSchema,
            filters={
                "country": equals(Place.country, _text),
                "admin1": same_text(Place.admin1),
                "admin2": same_text(Place.admin2),
                "precision": equals(Place.precision, _one_of(vocab.PLACE_PRECISIONS)),
            },
            sort_fields=("id", "country", "admin1", "admin2", "locality", "created_at"),
            check=check_place,
            blockers=blockers_place,
        ),
        Resource(
            "events",
            "event",
            Event,
            EventSchema,
            public_schema=PublicEventSchema,
            references={"place_id": Place, "operation_id": Operation, "actors": Actor},
            filters={
                "operation_id": equals(Event.operation_id),
                "place_id": equals(Event.place_id),
                "actor_id": Filter(
                    parse_integer,
                    lambda v: Event.id.in_(
                        select(EventActor.event_id).where(EventActor.actor_id == v)
                    ),
                ),
                "admin1": _place_level("admin1"),
                "admin2": _place_level("admin2"),
                "date_from": Filter(_date, _event_reaches),
                "date_to": Filter(_date, lambda v: Event.start_date <= v),
                "status": equals(Event.status, _one_of(vocab.EVENT_STATUSES)),
                "event_type": equals(Event.event_type, _one_of(vocab.EVENT_TYPES)),
                "published": equals(Event.published, _boolean),
            },
            sort_fields=(
                "id",
                "start_date",
                "end_date",
                "title",
                "event_type",
                "status",
                "created_at",
                "updated_at",
            ),
            default_sort="-start_date",
            load_options=(selectinload(Event.actors),),
            check=check_event,
        ),
        Resource(
            "victims",
            "victim",
            Victim,
            VictimSchema,
            public_schema=PublicVictimSchema,
            references={"event_id": Event, "actor_id": Actor, "responsible_actor_id": Actor},
            filters={
                "event_id": equals(Victim.event_id),
                "affiliation": equals(Victim.affiliation, _one_of(vocab.AFFILIATIONS)),
                "outcome": equals(Victim.outcome, _one_of(vocab.OUTCOMES)),
                "caused_by": equals(Victim.caused_by, _one_of(vocab.CAUSED_BY)),
                "actor_id": equals(Victim.actor_id),
            },
            sort_fields=("id", "event_id", "affiliation", "outcome", "created_at"),
            check=check_victim,
        ),
        Resource(
            "casualty-counts",
            "casualty_count",
            CasualtyCount,
            CasualtyCountSchema,
            references={"event_id": Event, "source_id": Source},
            filters={
                "event_id": equals(CasualtyCount.event_id),
                "source_id": equals(CasualtyCount.source_id),
                "affiliation": equals(CasualtyCount.affiliation, _one_of(vocab.AFFILIATIONS)),
                "outcome": equals(CasualtyCount.outcome, _one_of(vocab.OUTCOMES)),
                "caused_by": equals(CasualtyCount.caused_by, _one_of(vocab.CAUSED_BY)),
            },
            sort_fields=("id", "event_id", "source_id", "count", "created_at"),
        ),
        Resource(
            "sources",
            "source",
            Source,
            SourceSchema,
            filters={
                "kind": equals(Source.kind, _one_of(vocab.SOURCE_KINDS)),
                "publisher": same_text(Source.publisher),
                "language": equals(Source.language, _text),
                "reliability": equals(Source.reliability, _one_of(vocab.RELIABILITY)),
                "restricted": equals(Source.restricted, _boolean),
            },
            sort_fields=("id", "title", "publisher", "published_at", "created_at"),
            load_options=(selectinload(Source.files).joinedload(SourceFile.stored),),
            check=check_source,
            blockers=blockers_source,
        ),
        Resource(
            "citations",
            "citation",
            Citation,
            CitationSchema,
            references={"source_id": Source},
            filters={
                "source_id": equals(Citation.source_id),
                "target_type": Filter(_one_of(vocab.CITATION_TARGETS), _citation_target),
                # Exactly one target column is set, so with target_type this narrows to it;
                # alone, event 5 and victim 5 would both match.
                "target_id": Filter(
                    parse_integer,
                    lambda v: or_(
                        *(getattr(Citation, c) == v for c in Citation.TARGET_COLUMNS.values())
                    ),
                    needs=("target_type",),
                ),
                "field": equals(Citation.field, _text),
            },
            sort_fields=("id", "source_id", "credibility", "created_at"),
            check=check_citation,
            apply=apply_citation,
            blockers=blockers_citation,
        ),
        Resource(
            "context-figures",
            "context_figure",
            ContextFigure,
            ContextFigureSchema,
            references={"source_id": Source},
            filters={
                "country": equals(ContextFigure.country, _text),
                "admin1": same_text(ContextFigure.admin1),
                "admin2": same_text(ContextFigure.admin2),
                "year": equals(ContextFigure.year, _year),
                "source_id": equals(ContextFigure.source_id),
            },
            sort_fields=("id", "year", "admin1", "created_at"),
            default_sort="admin1",
            check=check_context_figure,
            restore_blockers=restore_blockers_context_figure,
        ),
    )
}
RESOURCES_BY_KEY = {r.key: r for r in RESOURCES.values()}
