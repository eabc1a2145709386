"""What every column of every export means: the one table the XLSX codebook sheet and the
/codebook page both read.

A record export's columns are its resource's API fields (the dump schema's, in its order),
with `id` and the record's permanent `url` first and the bookkeeping fields last. Types and
allowed values come from the schemas themselves; only the descriptions are written here, and
tests/test_exports.py fails when a schema gains a field that has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from schemas.common import OnDuty, PartialDate, RichText

from .resources import RESOURCES

RECORD_EXPORTS = ("events", "victims", "casualty-counts", "sources", "citations")
EXPORTS = (*RECORD_EXPORTS, "indicators")

# The API field each column comes from, where the two names differ: `url` is the record's
# permanent address in every export, so a source's own web address needs another name.
RENAMED = {"sources": {"url": "source_url"}}
LAST = ("version", "created_at", "updated_at")

COMMON = {
    "id": _l("The record's number in the archive."),
    "url": _l(
        "The record's permanent address: the archive's API answers it with the record as JSON."
    ),
    "version": _l("How many times the record has been saved (1 when it was entered)."),
    "created_at": _l("When the record was entered (UTC)."),
    "updated_at": _l("When the record was last changed (UTC)."),
    "external_dataset": _l(
        "For a record brought in by an import: the dataset it came from, as the import names "
        "it (by the file's columns)."
    ),
    "external_id": _l(
        "For a record brought in by an import: the id the dataset gives it, by which the next "
        "import of that dataset recognises it."
    ),
}

DESCRIPTIONS = {
    "events": {
        "title": _l("The event's title."),
        "description": _l("What happened, as the researchers wrote it (may hold simple HTML)."),
        "event_type": _l("Kind of event."),
        "start_date": _l("When it began; only the year or the month when that is all known."),
        "end_date": _l("When it ended, if later than it began; given like start_date."),
        "date_precision": _l("How much of start_date is known: day, month or year."),
        "end_date_precision": _l("How much of end_date is known: day, month or year."),
        "place_id": _l("Where it happened: the number of a place record."),
        "operation_id": _l("The security operation it was part of: an operation's number."),
        "actors": _l(
            "The forces and groups involved, as actor number:role separated by semicolons "
            "(for example 12:perpetrator; 15:target)."
        ),
        "agents_deployed": _l("State agents deployed in the event, as reported."),
        "official_account": _l("What the authorities said happened."),
        "status": _l("How far the record has been checked: draft, in review or verified."),
        "published": _l("Whether the event is public."),
        "internal_notes": _l(
            "The researchers' internal notes: signed-in readers only, never in an anonymous export."
        ),
    },
    "victims": {
        "event_id": _l("The event in which the person was harmed."),
        "name": _l(
            "The person's name. Empty when unknown and, for readers who are not signed in, "
            "when the identity is restricted."
        ),
        "alias": _l("Nickname or alias; withheld like the name."),
        "age": _l("Age in years; withheld like the name."),
        "sex": _l("Sex."),
        "affiliation": _l(
            "Who the person was: civilian, state agent, member of a non-state armed group, or "
            "unknown."
        ),
        "actor_id": _l("The force or group the person belonged to, if any: an actor's number."),
        "outcome": _l("What happened to the person."),
        "caused_by": _l("Who caused it: the state, a non-state actor, or unknown."),
        "responsible_actor_id": _l("The force or group held responsible: an actor's number."),
        "circumstances": _l("How it happened (may hold simple HTML)."),
        "on_duty": _l(
            "For state agents, whether they were on duty: true, false or unknown; empty when "
            "not recorded."
        ),
        "identity_restricted": _l(
            "Whether the identity is protected (minors, people at risk): name, alias and age are "
            "then withheld from readers who are not signed in."
        ),
    },
    "casualty-counts": {
        "event_id": _l("The event the figure is about."),
        "source_id": _l("The source that gives the figure: a source's number."),
        "affiliation": _l("Who the people counted were."),
        "outcome": _l("What happened to them."),
        "caused_by": _l("Who caused it, according to the source."),
        "count": _l(
            "How many people the source reports for this event, affiliation, outcome and cause."
        ),
        "notes": _l("Notes on the figure."),
    },
    "sources": {
        "kind": _l("Kind of source."),
        "title": _l("The source's title."),
        "publisher": _l("Who published it."),
        "author": _l("Who wrote it."),
        "source_url": _l(
            "The source's own web address (the API's url field: here url is the record's "
            "address in the archive)."
        ),
        "published_at": _l("When the source was published."),
        "accessed_at": _l("When the researchers consulted it."),
        "language": _l("Language of the source (es, en…)."),
        "reliability": _l(
            "Reliability of the source, from A (completely reliable) to F (cannot be judged)."
        ),
        "restricted": _l(
            "Whether the source is restricted (testimonies are, by default): restricted sources "
            "are never in an anonymous export."
        ),
        "files": _l(
            "The archived copies of the source, as SHA-256:file name separated by semicolons; "
            "each is downloaded at /api/v1/sources/<id>/files/<SHA-256>."
        ),
    },
    "citations": {
        "source_id": _l("The source cited: a source's number."),
        "target_type": _l("The kind of record the source supports."),
        "target_id": _l("The number of the record the source supports."),
        "field": _l("The field of that record the source supports, if one (agents_deployed…)."),
        "excerpt": _l("The passage of the source that supports it (may hold simple HTML)."),
        "locator": _l("Where in the source: page, paragraph, minute…"),
        "credibility": _l(
            "Credibility of the information, from 1 (confirmed by other sources) to 6 (cannot be "
            "judged)."
        ),
    },
}

INDICATOR_DESCRIPTIONS = {
    "group_by": _l(
        "What the groups are: operation, actor (a force), admin1 (a state), admin2 (a "
        "municipality), year or month."
    ),
    "key": _l(
        "The group: an operation's or an actor's number, a state or municipality, a year "
        "(2015) or a month (2015-07). A municipality whose name another state's shares is "
        "followed by its state: Libertador (Mérida). Empty on the total rows and for the "
        "events that have none."
    ),
    "label": _l("The group's name."),
    "is_total": _l(
        "True on the rows of all the events in scope together (the total), false on each "
        "group's rows."
    ),
    "indicator": _l("Which indicator the row gives; the methodology page states each formula."),
    "best": _l("The best estimate."),
    "low": _l("The lowest figure the sources allow."),
    "high": _l("The highest figure the sources allow."),
    "threshold": _l("The threshold the literature sets for this indicator, if it sets one."),
    "threshold_reference": _l("Where the threshold comes from."),
    "exceeds": _l("Whether the best estimate is above the threshold; empty without either."),
    "reason": _l("Why there is no figure, when there is none (for example: no agents killed)."),
    "events": _l("How many events the figure rests on."),
    "sources": _l("How many sources the figure rests on."),
    "include_drafts": _l(
        "Whether events not yet verified were counted (only signed-in readers may ask for it)."
    ),
    "method_version": _l(
        "The version of the method that computed the figures: compare figures of one version."
    ),
    "url": _l("The API address that answers these figures as JSON."),
}
INDICATOR_TYPES = {
    "url": "url",
    "group_by": "code",
    "key": "text",
    "label": "text",
    "is_total": "boolean",
    "indicator": "code",
    "best": "number",
    "low": "number",
    "high": "number",
    "threshold": "number",
    "threshold_reference": "text",
    "exceeds": "boolean",
    "reason": "text",
    "events": "integer",
    "sources": "integer",
    "include_drafts": "boolean",
    "method_version": "text",
}

# Why the indicators export has one row per group and indicator, as the /codebook page says.
INDICATOR_LAYOUT = _l(
    "One row per group and indicator (a long table): it loads into pandas, R or a spreadsheet "
    "as it is, one condition picks an indicator (indicator == 'lethality_index'), and one call "
    "makes a wide table of it (df.pivot(index='label', columns='indicator', values='best')); "
    "ranges, thresholds and reasons stay beside each figure instead of multiplying the columns."
)

TYPE_LABELS = {
    "integer": _l("whole number"),
    "number": _l("number"),
    "text": _l("text"),
    "html": _l("text (simple HTML)"),
    "code": _l("code"),
    "date": _l("date (YYYY-MM-DD)"),
    "partial_date": _l("date (YYYY-MM-DD, YYYY-MM or YYYY)"),
    "datetime": _l("date and time (ISO 8601, UTC)"),
    "boolean": _l("true or false"),
    "list": _l("list"),
    "url": _l("web address"),
}

# The controlled list (archive/web/i18n.py LABELS) that names each coded column's values.
LABEL_KINDS = {
    "event_type": "event_type",
    "date_precision": "date_precision",
    "end_date_precision": "date_precision",
    "status": "status",
    "sex": "sex",
    "affiliation": "affiliation",
    "outcome": "outcome",
    "caused_by": "caused_by",
    "on_duty": "on_duty",
    "kind": "source_kind",
    "reliability": "reliability",
    "credibility": "credibility",
    "target_type": "citation_target",
}


@dataclass(frozen=True)
class Column:
    name: str
    field: str | None  # the API field it comes from; None for a column the export makes
    description: object  # a lazy string: read in the reader's language
    type: str  # a key of TYPE_LABELS
    values: tuple = ()
    staff_only: bool = False

    @property
    def type_label(self) -> str:
        return str(TYPE_LABELS[self.type])


def _field_type(field: fields.Field) -> tuple[str, tuple]:
    """The column type and allowed values a schema field dumps."""
    if isinstance(field, OnDuty):
        return "code", ("true", "false", "unknown")
    choices = next((v.choices for v in field.validators if isinstance(v, validate.OneOf)), ())
    if choices:
        return "code", tuple(choices)
    kinds = (
        (fields.List, "list"),
        (fields.Boolean, "boolean"),
        (fields.Integer, "integer"),
        (fields.Number, "number"),
        (PartialDate, "partial_date"),
        (fields.AwareDateTime, "datetime"),
        (fields.Date, "date"),
        (fields.Url, "url"),
    )
    for kind, name in kinds:
        if isinstance(field, kind):
            return name, ()
    return ("html" if isinstance(field, RichText) else "text"), ()


def _record_columns(what: str) -> tuple[Column, ...]:
    resource = RESOURCES[what]
    full = resource.full_schema().fields
    public = resource.dump_schema(None).fields
    renamed = RENAMED.get(what, {})
    names = [n for n, f in full.items() if not f.load_only]
    order = ["id", *(n for n in names if n not in ("id", *LAST)), *LAST]
    columns = []
    for field_name in order:
        name = renamed.get(field_name, field_name)
        description = COMMON.get(name) or DESCRIPTIONS[what].get(name)
        if description is None:
            raise LookupError(f"The codebook has no description of {what}.{name}.")
        kind, values = _field_type(full[field_name])
        columns.append(
            Column(name, field_name, description, kind, values, field_name not in public)
        )
    columns.insert(1, Column("url", None, COMMON["url"], "url"))
    return tuple(columns)


def _indicator_columns() -> tuple[Column, ...]:
    from . import indicators

    values = {"group_by": indicators.GROUPINGS, "indicator": indicators.INDICATOR_KEYS}
    return tuple(
        Column(name, None, description, INDICATOR_TYPES[name], tuple(values.get(name, ())))
        for name, description in INDICATOR_DESCRIPTIONS.items()
    )


def columns(what: str) -> tuple[Column, ...]:
    """Every column of the export `what`, in its order (staff-only ones included)."""
    if what == "indicators":
        return _indicator_columns()
    return _record_columns(what)
