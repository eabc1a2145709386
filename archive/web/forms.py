"""The case-entry forms: one description per resource, read into the API's own shape.

A form is a list of fields; what a researcher submits is turned into the same dictionary
the JSON API takes and loaded by the same marshmallow schema, so pages and API accept and
refuse exactly the same things. Nothing here validates on its own beyond reading types.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from .. import access
from ..context_figures import parse_count
from ..extensions import db
from ..models import Actor, Event, Operation, Place, Source

# Empty actor rows offered below the filled ones, so actors can be added without scripts.
SPARE_ACTOR_ROWS = 3


@dataclass(frozen=True)
class Field:
    name: str
    label: Any
    kind: str = "text"  # text, textarea, choice, integer, number, date, isodate, bool, ref, …
    options: str | None = None  # the vocabulary (choice) or the referenced records (ref)
    required: bool = False
    help: Any = None
    wide: bool = False


DATE_HELP = _l("YYYY, YYYY-MM or YYYY-MM-DD: give only what is known (2015-07 is July 2015).")

FORMS: dict[str, list[Field]] = {
    "events": [
        Field("title", _l("Title"), required=True, wide=True),
        Field("event_type", _l("Type of event"), "choice", "event_type", required=True),
        Field("start_date", _l("Start date"), "date", help=DATE_HELP),
        Field("end_date", _l("End date"), "date", help=DATE_HELP),
        Field("place_id", _l("Place"), "ref", "places"),
        Field("operation_id", _l("Operation"), "ref", "operations"),
        Field("actors", _l("Actors and their role"), "actors", "event_actor_role", wide=True),
        Field("agents_deployed", _l("Agents deployed"), "integer"),
        Field(
            "official_account",
            _l("Official account"),
            "textarea",
            wide=True,
            help=_l("What the authorities said happened, in their words."),
        ),
        Field("description", _l("Description"), "textarea", wide=True),
        Field("internal_notes", _l("Internal notes (never public)"), "textarea", wide=True),
    ],
    "operations": [
        Field("name", _l("Name"), required=True, wide=True),
        Field("aliases", _l("Other names (one per line)"), "lines"),
        Field("start_date", _l("Start date"), "date", help=DATE_HELP),
        Field("end_date", _l("End date"), "date", help=_l("Leave empty while it goes on.")),
        Field("announced_by", _l("Announced by")),
        Field("agents_deployed", _l("Agents deployed (official figure)"), "integer"),
        Field("arrests_claimed", _l("Arrests claimed (official figure)"), "integer"),
        Field("actors", _l("Participating forces"), "actors", "operation_actor_role", wide=True),
        Field("description", _l("Description"), "textarea", wide=True),
    ],
    "places": [
        Field("country", _l("Country (ISO code)"), required=True, help=_l("For example VE.")),
        Field("admin1", _l("State")),
        Field("admin2", _l("Municipality")),
        Field("admin3", _l("Parish")),
        Field("locality", _l("Locality (barrio, sector)")),
        Field("latitude", _l("Latitude"), "number"),
        Field("longitude", _l("Longitude"), "number"),
        Field("precision", _l("Precision"), "choice", "place_precision"),
    ],
    "actors": [
        Field("name", _l("Name"), required=True, wide=True),
        Field("acronym", _l("Acronym")),
        Field("kind", _l("Kind"), "choice", "actor_kind", required=True),
        Field("jurisdiction", _l("Jurisdiction"), "choice", "jurisdiction"),
        Field("parent_id", _l("Belongs to"), "ref", "actors"),
        Field("description", _l("Description"), "textarea", wide=True),
    ],
    "victims": [
        Field("event_id", _l("Event"), "ref", "events", required=True),
        Field("name", _l("Name")),
        Field("alias", _l("Alias")),
        Field("age", _l("Age"), "integer"),
        Field("sex", _l("Sex"), "choice", "sex"),
        Field("affiliation", _l("Affiliation"), "choice", "affiliation"),
        Field("actor_id", _l("Force or group they belonged to"), "ref", "actors"),
        Field("outcome", _l("Outcome"), "choice", "outcome", required=True),
        Field("caused_by", _l("Caused by"), "choice", "caused_by"),
        Field("responsible_actor_id", _l("Responsible force or group"), "ref", "actors"),
        Field("on_duty", _l("On duty (state agents)"), "choice", "on_duty"),
        Field(
            "identity_restricted",
            _l("Withhold name, alias and age from the public"),
            "bool",
            help=_l("Always on for minors."),
        ),
        Field("circumstances", _l("Circumstances"), "textarea", wide=True),
    ],
    "casualty-counts": [
        Field("event_id", _l("Event"), "ref", "events", required=True),
        Field("source_id", _l("Source reporting the figure"), "ref", "sources", required=True),
        Field("affiliation", _l("Affiliation"), "choice", "affiliation", required=True),
        Field("outcome", _l("Outcome"), "choice", "outcome", required=True),
        Field("caused_by", _l("Caused by"), "choice", "caused_by"),
        Field("count", _l("Number of people"), "integer", required=True),
        Field("notes", _l("Notes"), "textarea", wide=True),
    ],
    "sources": [
        Field("title", _l("Title"), required=True, wide=True),
        Field("kind", _l("Kind"), "choice", "source_kind", required=True),
        Field("publisher", _l("Publisher")),
        Field("author", _l("Author")),
        Field("url", _l("Address (URL)"), "url", wide=True),
        Field("published_at", _l("Published on"), "isodate"),
        Field("accessed_at", _l("Accessed on"), "isodate"),
        Field("language", _l("Language (code)"), help=_l("For example es or en.")),
        Field("reliability", _l("Reliability of the source"), "choice", "reliability"),
        Field("restricted", _l("Restricted (testimony is by default)"), "bool"),
    ],
    "citations": [
        Field("source_id", _l("Source"), "ref", "sources", required=True),
        Field("target_type", _l("What it supports"), "choice", "citation_target", required=True),
        Field("target_id", _l("Record number"), "integer", required=True),
        Field(
            "field",
            _l("Field it supports (optional)"),
            help=_l("For example agents_deployed; leave empty for the whole record."),
        ),
        Field("excerpt", _l("Excerpt relied on"), "textarea", wide=True),
        Field("locator", _l("Locator (page, paragraph, time)")),
        Field("credibility", _l("Credibility of the information"), "choice", "credibility"),
    ],
    "context-figures": [
        Field("country", _l("Country (ISO code)"), required=True, help=_l("For example VE.")),
        Field("admin1", _l("State"), required=True),
        Field("admin2", _l("Municipality"), help=_l("Leave empty for the whole state.")),
        Field("year", _l("Year"), "integer", required=True),
        Field(
            "population",
            _l("Population"),
            "count",
            help=_l(
                "Give the population, the homicides or both; 1.234.567 and 1,234,567 read alike."
            ),
        ),
        Field("homicides", _l("Homicides"), "count"),
        Field("source_id", _l("Source of the figures"), "ref", "sources", required=True),
        Field("notes", _l("Notes"), "textarea", wide=True),
    ],
}

# A citation form may create the source it cites in the same step.
NEW_SOURCE_PREFIX = "new_source-"
NEW_SOURCE_FIELDS = [f for f in FORMS["sources"] if f.name in ("title", "kind", "publisher", "url")]


class FormError(Exception):
    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(fields)
        self.fields = fields


def read_form(
    fields: list[Field], form: Mapping[str, Any], prefix: str = "", creating: bool = True
) -> tuple[dict, dict[str, list[str]]]:
    """The submitted values in the API's shape, and the type errors found reading them.

    An unticked box on a new record is left out, so that the record's own default applies
    (a minor's identity and a testimony are restricted unless an editor says otherwise).
    """
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for f in fields:
        key = prefix + f.name
        if f.kind == "actors":
            data[f.name] = _read_actors(form, key)
            continue
        if f.kind == "bool":
            ticked = form.get(key) in ("on", "true", "1", "y")
            if ticked or not creating:
                data[f.name] = ticked
            continue
        if f.kind == "lines":
            raw = form.get(key) or ""
            data[f.name] = [line.strip() for line in raw.splitlines() if line.strip()]
            continue
        raw = form.get(key)
        if raw is None:
            continue
        value = raw.strip() if f.kind not in ("textarea",) else raw
        if value == "":
            if f.required:
                errors[f.name] = [str(_l("This field is required."))]
            else:
                data[f.name] = None
            continue
        try:
            data[f.name] = _convert(f, value)
        except ValueError as exc:
            errors[f.name] = [str(exc)]
    return data, errors


def _convert(f: Field, value: str):
    if f.kind in ("integer", "ref"):
        try:
            return int(value)
        except ValueError:
            raise ValueError(str(_l("Enter a whole number."))) from None
    if f.kind == "count":
        try:
            return parse_count(value)
        except ValueError:
            raise ValueError(str(_l("Enter a whole number."))) from None
    if f.kind == "number":
        try:
            return float(value.replace(",", "."))
        except ValueError:
            raise ValueError(str(_l("Enter a number."))) from None
    if f.kind == "choice" and f.options == "credibility":
        try:
            return int(value)
        except ValueError:
            raise ValueError(str(_l("Choose one of the listed values."))) from None
    return value


def _read_actors(form: Mapping[str, Any], key: str) -> list[dict]:
    rows = []
    getlist = form.getlist if isinstance(form, MultiDict) else lambda k: [form.get(k)]
    actor_ids = getlist(f"{key}-actor_id")
    roles = getlist(f"{key}-role")
    for actor_id, role in zip(actor_ids, roles, strict=False):
        if actor_id and actor_id.strip():
            try:
                rows.append({"actor_id": int(actor_id), "role": role})
            except ValueError:
                continue
    return rows


# --- Showing a record in its form ------------------------------------------------------------


def form_values(fields: list[Field], dumped: Mapping[str, Any], record: Any = None) -> MultiDict:
    """A record as its form shows it: partial dates to their precision, lists as lines."""
    values = MultiDict()
    for f in fields:
        value = dumped.get(f.name)
        if f.kind == "actors":
            for row in value or []:
                values.add(f"{f.name}-actor_id", str(row["actor_id"]))
                values.add(f"{f.name}-role", row["role"])
        elif f.kind == "lines":
            values[f.name] = "\n".join(value or [])
        elif f.kind == "bool":
            if value:
                values[f.name] = "on"
        elif f.kind == "date" and value:
            precision = _precision_of(dumped, f.name)
            values[f.name] = value[: {"year": 4, "month": 7}.get(precision, 10)]
        elif value is not None:
            values[f.name] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def _precision_of(dumped: Mapping[str, Any], name: str) -> str | None:
    if name == "start_date":
        return dumped.get("date_precision")
    return dumped.get(f"{name}_precision")


def changed_fields(fields: list[Field], mine: MultiDict, theirs: MultiDict) -> list[Field]:
    """The fields where what was submitted differs from what is stored now."""
    different = []
    for f in fields:
        if f.kind == "actors":
            keys = (f"{f.name}-actor_id", f"{f.name}-role")
            a = [x for k in keys for x in mine.getlist(k) if x]
            b = [x for k in keys for x in theirs.getlist(k) if x]
            if a != b:
                different.append(f)
        elif (mine.get(f.name) or "").strip() != (theirs.get(f.name) or "").strip():
            different.append(f)
    return different


# --- Options of the reference lists ----------------------------------------------------------


def place_text(place: Place | None) -> str:
    """A place as readers name it, from the barrio out to the country."""
    if place is None:
        return ""
    parts = [place.locality, place.admin3, place.admin2, place.admin1, place.country]
    return ", ".join(p for p in parts if p)


def reference_options(kind: str, user) -> list[tuple[str, str]]:
    """The records a reference field may point at, as (id, label), read with access rules."""
    if kind == "places":
        rows = db.session.scalars(
            select(Place)
            .where(access.visible(Place, user))
            .order_by(Place.admin1, Place.admin2, Place.locality, Place.id)
        )
        return [(str(p.id), place_text(p)) for p in rows]
    if kind == "operations":
        rows = db.session.scalars(
            select(Operation).where(access.visible(Operation, user)).order_by(Operation.name)
        )
        return [(str(o.id), o.name) for o in rows]
    if kind == "actors":
        rows = db.session.scalars(
            select(Actor).where(access.visible(Actor, user)).order_by(Actor.name)
        )
        return [(str(a.id), f"{a.name} ({a.acronym})" if a.acronym else a.name) for a in rows]
    if kind == "sources":
        rows = db.session.scalars(
            select(Source).where(access.visible(Source, user)).order_by(Source.title)
        )
        return [(str(s.id), f"{s.title} — {s.publisher}" if s.publisher else s.title) for s in rows]
    if kind == "events":
        rows = db.session.execute(
            select(Event.id, Event.title, Event.start_date)
            .where(access.visible(Event, user))
            .order_by(Event.start_date.desc().nulls_first(), Event.id)
        )
        return [
            (str(i), f"{t} ({d.isoformat()})" if isinstance(d, dt.date) else t) for i, t, d in rows
        ]
    raise KeyError(kind)
