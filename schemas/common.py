"""Fields and checks that several resources share."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from archive import sanitize, vocab


class BaseSchema(Schema):
    """Rejects unknown fields; ids and timestamps are never taken from the client."""

    id = fields.Integer(dump_only=True)
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


def fill_date_precision(data: dict[str, Any]) -> None:
    """Infer `date_precision` from a partial `start_date`, or check the two agree."""
    start = data.get("start_date")
    if not isinstance(start, PrecisionDate):
        return
    given = data.get("date_precision")
    if given is None:
        data["date_precision"] = start.precision
    elif vocab.DATE_PRECISIONS.index(given) < vocab.DATE_PRECISIONS.index(start.precision):
        raise ValidationError(
            f"A date given to the {start.precision} cannot have {given} precision.",
            "date_precision",
        )


def check_date_order(record: dict[str, Any]) -> None:
    """`end_date` may not come before `start_date`."""
    start, end = record.get("start_date"), record.get("end_date")
    if start is not None and end is not None and end < start:
        raise ValidationError(
            f"end_date {end.isoformat()} is before start_date {start.isoformat()}.", "end_date"
        )


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
