"""Fields and checks that several resources share."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from archive import sanitize, vocab


class BaseSchema(Schema):
    """Rejects unknown fields; ids, versions and timestamps are never taken from the client.

    `version` is the record's revision, also sent as its ETag; a client that wants its change
    refused when someone else saved first sends it back in If-Match.
    """

    id = fields.Integer(dump_only=True)
    version = fields.Integer(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True, format="iso")
    updated_at = fields.AwareDateTime(dump_only=True, format="iso")


# The largest value an INTEGER column holds on every database we run on.
MAX_INTEGER = 2**31 - 1


class String(fields.String):
    """Text as given, except the NUL character, which no database stores faithfully."""

    default_error_messages = {"nul": "Must not contain the NUL character."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class RichText(String):
    """HTML cleaned against the allowlist when it is loaded, so only clean HTML is stored."""

    def _deserialize(self, value, attr, data, **kwargs):
        return sanitize.clean_html(super()._deserialize(value, attr, data, **kwargs))


def Text(max_length: int | None = None, **kwargs) -> fields.String:
    """Plain text: stored as given (escaped on output), with an optional length limit."""
    validators = [validate.Length(max=max_length)] if max_length else []
    return String(validate=validators, **kwargs)


def Choice(values: tuple, **kwargs) -> fields.Field:
    field = fields.Integer if all(isinstance(v, int) for v in values) else String
    return field(validate=validate.OneOf(values), **kwargs)


def Count(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_INTEGER), **kwargs)


def Reference(**kwargs) -> fields.Integer:
    """The id of another record, as `<name>_id`."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_INTEGER), **kwargs)


class PrecisionDate(dt.date):
    """A date that remembers how much of it was given: 'day', 'month' or 'year'."""

    precision: str = "day"

    def __reduce__(self):
        # date's own reduce keeps the day but drops the precision.
        return _precision_date, (self.year, self.month, self.day, self.precision)


def _precision_date(year: int, month: int, day: int, precision: str) -> PrecisionDate:
    date = PrecisionDate(year, month, day)
    date.precision = precision
    return date


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_partial_date(value: str) -> PrecisionDate:
    """Read YYYY-MM-DD, YYYY-MM or YYYY; raise ValueError for anything else."""
    match = _PARTIAL_DATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(value)
    year, month, day = match.groups()
    date = PrecisionDate(int(year), int(month or 1), int(day or 1))
    date.precision = "day" if day else "month" if month else "year"
    return date


class PartialDate(fields.Date):
    """A date given as YYYY-MM-DD, or as YYYY-MM or YYYY when that is all that is known."""

    default_error_messages = {
        "invalid": "Not a valid date: use YYYY-MM-DD, YYYY-MM or YYYY.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_partial_date(value)
        except ValueError as exc:
            raise self.make_error("invalid") from exc


# Each partial date and the field that keeps how much of it was given.
PRECISION_FIELDS = {"start_date": "date_precision", "end_date": "end_date_precision"}


def fill_date_precision(data: dict[str, Any]) -> None:
    """Infer each date's precision from a partial date, or check the two agree."""
    for date_field, precision_field in PRECISION_FIELDS.items():
        _fill_precision(data, date_field, precision_field)


def _fill_precision(data: dict[str, Any], date_field: str, precision_field: str) -> None:
    date = data.get(date_field)
    if not isinstance(date, PrecisionDate):
        return
    given = data.get(precision_field)
    if given is None:
        data[precision_field] = date.precision
    elif vocab.DATE_PRECISIONS.index(given) < vocab.DATE_PRECISIONS.index(date.precision):
        raise ValidationError(
            f"A date given to the {date.precision} cannot have {given} precision.",
            precision_field,
        )


def last_day(date: dt.date, precision: str | None) -> dt.date:
    """The last day of the period a date names: 2015-07 (month) runs to 2015-07-31."""
    if precision == "year":
        return date.replace(month=12, day=31)
    if precision == "month":
        next_month = date.replace(day=28) + dt.timedelta(days=4)
        return next_month - dt.timedelta(days=next_month.day)
    return date


def first_day(date: dt.date, precision: str | None) -> dt.date:
    """The first day of the period of `precision` that holds `date`."""
    if precision == "year":
        return date.replace(month=1, day=1)
    if precision == "month":
        return date.replace(day=1)
    return date


def show_date(date: dt.date, precision: str | None) -> str:
    """The date as it was given: 2015-07 for a month, 2015 for a year."""
    return date.isoformat()[: {"year": 4, "month": 7}.get(precision or "day", 10)]


def check_date_order(record: dict[str, Any]) -> None:
    """The end may not come before the start; an end given to the month or year covers its
    whole period, so July 2015 may end a span that starts on 13 July 2015."""
    start, end = record.get("start_date"), record.get("end_date")
    if start is None or end is None:
        return
    end_precision = _precision(record, "end_date")
    if last_day(end, end_precision) < start:
        shown_start = show_date(start, _precision(record, "start_date"))
        raise ValidationError(
            f"end_date {show_date(end, end_precision)} is before start_date {shown_start}.",
            "end_date",
        )


def _precision(record: dict[str, Any], date_field: str) -> str:
    """What the record says of the date's precision, else the date's own, else a day."""
    given = record.get(PRECISION_FIELDS[date_field])
    return given or getattr(record[date_field], "precision", "day")


class OnDuty(fields.Field):
    """Whether a state agent was on duty: true, false or "unknown" (null when not asked)."""

    default_error_messages = {"invalid": 'Must be true, false or "unknown".'}
    _LOAD = {True: "true", False: "false", "true": "true", "false": "false", "unknown": "unknown"}
    _DUMP = {"true": True, "false": False, "unknown": "unknown"}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (bool, str)) and value in self._LOAD:
            return self._LOAD[value]
        raise self.make_error("invalid")

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else self._DUMP[value]


def ActorRoles(name: str, roles: tuple, **kwargs) -> fields.List:
    """A list of {"actor_id", "role"}: which actors took part, and how."""
    schema = Schema.from_dict(
        {"actor_id": Reference(required=True), "role": Choice(roles, required=True)}, name=name
    )
    return fields.List(fields.Nested(schema), **kwargs)
