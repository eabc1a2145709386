"""The reading pages: lists and records, as each reader may see them."""

from __future__ import annotations

from collections import defaultdict

from flask import abort, current_app, render_template, request
from marshmallow import ValidationError
from sqlalchemy import or_, select

from .. import access, codebook, records
from ..extensions import db
from ..models import Actor, Citation, Event, EventActor, Operation, Place, Source
from ..resources import RESOURCES
from . import bp
from .forms import place_text, reference_options
from .i18n import validation_errors

PER_PAGE = 25
EVENT_FILTERS = (
    "operation_id",
    "actor_id",
    "admin1",
    "admin2",
    "date_from",
    "date_to",
    "event_type",
    "status",
)


def page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        abort(404)
    return int(raw)


def by_id(model, ids) -> dict:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {r.id: r for r in db.session.scalars(select(model).where(model.id.in_(ids)))}


def cite_block(title: str) -> dict:
    return {
        "title": title,
        "archive": current_app.config["ARCHIVE_NAME"],
        "url": request.base_url,
    }


@bp.app_context_processor
def page_helpers():
    return {
        "user": access.acting_user(),
        "can": lambda action: access.allowed(access.acting_user(), action),
        "place_text": place_text,
    }


@bp.get("/")
def index():
    user = access.acting_user()
    recent = records.list_records(db.session, user, RESOURCES["events"], {}, 1, 10)
    operations = records.list_records(
        db.session, user, RESOURCES["operations"], {}, 1, 10, "-start_date"
    )
    return render_template(
        "index.html",
        total=recent.total,
        events=recent.items,
        operations=operations.items,
        places=by_id(Place, [e.place_id for e in recent.items]),
    )


# --- Events ----------------------------------------------------------------------------------


@bp.get("/events")
def events():
    user = access.acting_user()
    filters = {k: v for k in EVENT_FILTERS if (v := request.args.get(k, "").strip())}
    if not access.is_staff(user):
        filters.pop("status", None)
    errors = {}
    try:
        result = records.list_records(
            db.session, user, RESOURCES["events"], filters, page_number(), PER_PAGE
        )
    except ValidationError as exc:
        errors = validation_errors(exc)
        result = records.Page([], 0, 1, PER_PAGE)
    return render_template(
        "events.html",
        result=result,
        filters=filters,
        errors=errors,
        places=by_id(Place, [e.place_id for e in result.items]),
        operations=by_id(Operation, [e.operation_id for e in result.items]),
        operation_options=reference_options("operations", user),
        actor_options=reference_options("actors", user),
        pages=_pages(result),
    )


def _listed(resource: str, sort: str, per_page: int = PER_PAGE) -> records.Page:
    """One page of a resource's list, as the reader may see it."""
    return records.list_records(
        db.session, access.acting_user(), RESOURCES[resource], {}, page_number(), per_page, sort
    )


def _pages(result: records.Page) -> int:
    return max(1, -(-result.total // result.per_page))


def _visible_list(resource: str, filters: dict, per_page: int = 500, sort: str | None = None):
    return records.list_records(
        db.session, access.acting_user(), RESOURCES[resource], filters, 1, per_page, sort
    ).items


@bp.get("/events/<int:event_id>")
def event(event_id: int):
    user = access.acting_user()
    resource = RESOURCES["events"]
    record = records.get_record(db.session, user, resource, event_id)
    shown = resource.dump_schema(user).dump(record)
    victims = _visible_list("victims", {"event_id": str(event_id)})
    victims_shown = RESOURCES["victims"].dump_schema(user, many=True).dump(victims)
    counts = _visible_list("casualty-counts", {"event_id": str(event_id)})
    citations = db.session.scalars(
        select(Citation)
        .where(
            access.visible(Citation, user),
            or_(
                Citation.event_id == event_id,
                Citation.victim_id.in_([v.id for v in victims]),
                Citation.casualty_count_id.in_([c.id for c in counts]),
            ),
        )
        .order_by(Citation.id)
    ).all()
    source_ids = {c.source_id for c in counts} | {c.source_id for c in citations}
    sources = {
        s.id: s
        for s in db.session.scalars(
            select(Source).where(Source.id.in_(source_ids), access.source_usable(user))
        )
    }
    actors = by_id(Actor, [a.actor_id for a in record.actors] + [v.actor_id for v in victims])
    history = (
        records.history(db.session, user, resource, event_id)
        if access.allowed(user, "read_history")
        else []
    )
    return render_template(
        "event.html",
        event=record,
        shown=shown,
        victims=victims_shown,
        figures=_figures(victims, counts),
        sources=sources,
        citations=citations,
        actors=actors,
        history=history,
        cite=cite_block(record.title),
    )


def _figures(victims, counts) -> dict:
    """The casualty figures of each source side by side, with the individual records' count."""
    cells: dict[tuple, dict] = defaultdict(lambda: {"records": 0, "sources": {}})
    for v in victims:
        cells[(v.affiliation, v.outcome, v.caused_by)]["records"] += 1
    for c in counts:
        sources = cells[(c.affiliation, c.outcome, c.caused_by)]["sources"]
        sources.setdefault(c.source_id, []).append(c)
    source_ids = sorted({c.source_id for c in counts})
    return {"cells": dict(sorted(cells.items())), "source_ids": source_ids}


# --- Operations, actors, places, sources -----------------------------------------------------


@bp.get("/operations")
def operations():
    result = _listed("operations", "-start_date")
    return render_template("operations.html", result=result, pages=_pages(result))


@bp.get("/operations/<int:operation_id>")
def operation(operation_id: int):
    user = access.acting_user()
    record = records.get_record(db.session, user, RESOURCES["operations"], operation_id)
    events = _visible_list("events", {"operation_id": str(operation_id)}, sort="start_date")
    citations = _visible_list(
        "citations", {"target_type": "operation", "target_id": str(operation_id)}
    )
    return render_template(
        "operation.html",
        operation=record,
        events=events,
        places=by_id(Place, [e.place_id for e in events]),
        actors=by_id(Actor, [a.actor_id for a in record.actors]),
        citations=citations,
        sources=by_id(Source, [c.source_id for c in citations]),
        cite=cite_block(record.name),
    )


@bp.get("/actors")
def actors():
    result = _listed("actors", "name", per_page=100)
    return render_template(
        "actors.html",
        result=result,
        pages=_pages(result),
        parents=by_id(Actor, [a.parent_id for a in result.items]),
    )


@bp.get("/actors/<int:actor_id>")
def actor(actor_id: int):
    user = access.acting_user()
    record = records.get_record(db.session, user, RESOURCES["actors"], actor_id)
    events = _visible_list("events", {"actor_id": str(actor_id)}, per_page=200)
    units = db.session.scalars(
        select(Actor).where(access.visible(Actor, user), Actor.parent_id == actor_id)
    ).all()
    roles = defaultdict(list)
    for row in db.session.execute(
        select(EventActor.event_id, EventActor.role).where(EventActor.actor_id == actor_id)
    ):
        roles[row.event_id].append(row.role)
    return render_template(
        "actor.html",
        actor=record,
        parent=db.session.get(Actor, record.parent_id) if record.parent_id else None,
        units=units,
        events=events,
        roles=roles,
        places=by_id(Place, [e.place_id for e in events]),
    )


@bp.get("/places/<int:place_id>")
def place(place_id: int):
    record = records.get_record(db.session, access.acting_user(), RESOURCES["places"], place_id)
    events = _visible_list("events", {"place_id": str(place_id)}, per_page=200)
    return render_template("place.html", place=record, events=events)


@bp.get("/sources")
def sources():
    result = _listed("sources", "title")
    return render_template("sources.html", result=result, pages=_pages(result))


@bp.get("/context-figures")
def context_figures():
    result = _listed("context-figures", "admin1,-year", per_page=100)
    sources = {
        s.id: s
        for s in db.session.scalars(
            select(Source).where(
                Source.id.in_({f.source_id for f in result.items}),
                access.source_usable(access.acting_user()),
            )
        )
    }
    return render_template(
        "context_figures.html", result=result, pages=_pages(result), sources=sources
    )


@bp.get("/sources/<int:source_id>")
def source(source_id: int):
    user = access.acting_user()
    record = records.get_record(db.session, user, RESOURCES["sources"], source_id)
    citations = _visible_list("citations", {"source_id": str(source_id)})
    counts = _visible_list("casualty-counts", {"source_id": str(source_id)})
    event_ids = [c.event_id for c in citations if c.event_id] + [c.event_id for c in counts]
    events = {
        e.id: e
        for e in db.session.scalars(
            select(Event).where(Event.id.in_(event_ids), access.visible(Event, user))
        )
    }
    return render_template(
        "source.html",
        source=record,
        citations=citations,
        counts=counts,
        events=events,
        cite=cite_block(record.title),
    )


# --- Codebook --------------------------------------------------------------------------------


@bp.get("/codebook")
def codebook_page():
    """What every column of every export means (the XLSX codebook sheet, as a page)."""
    what = request.args.get("what")
    if what is not None and what not in codebook.EXPORTS:
        abort(404)
    shown = (what,) if what else codebook.EXPORTS
    from .. import indicators

    return render_template(
        "codebook.html",
        what=what,
        exports=codebook.EXPORTS,
        tables={name: codebook.columns(name) for name in shown},
        label_kinds=codebook.LABEL_KINDS,
        layout=codebook.INDICATOR_LAYOUT,
        method_version=indicators.METHOD_VERSION,
    )
