from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from .common import BaseSchema, Count, Reference, String, Text

# The largest value a BIGINT column holds on every database we run on.
MAX_BIGINT = 2**63 - 1
FIRST_YEAR, LAST_YEAR = 1900, 2200
FIGURES = ("population", "homicides")
NEITHER_FIGURE = "Give population, homicides or both."


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be empty.")


class ContextFigureSchema(BaseSchema):
    """One official figure for a region and year; `admin2` null means the whole `admin1`.

    Region names are stored without surrounding spaces, and an empty `admin2` as null, so
    that the same region is always written the same way (they identify the figure).
    """

    country = fields.String(
        load_default="VE",
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Must be an ISO 3166 code such as VE."),
    )
    admin1 = String(required=True, validate=[validate.Length(max=200), _not_blank])
    admin2 = Text(200, allow_none=True)
    year = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=FIRST_YEAR, max=LAST_YEAR)
    )
    population = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_BIGINT)
    )
    homicides = Count(allow_none=True)
    source_id = Reference(required=True)
    notes = Text(allow_none=True)

    @validates_schema
    def has_a_figure(self, data, partial, **kwargs):
        """A new figure needs population or homicides; a change may not clear both (the
        service checks the stored record for a change that clears the one left)."""
        given = [name for name in FIGURES if name in data]
        if partial and len(given) < len(FIGURES):
            return
        if all(data.get(name) is None for name in FIGURES):
            raise ValidationError({name: [NEITHER_FIGURE] for name in FIGURES})

    @post_load
    def tidy_region(self, data, **kwargs):
        for name in ("admin1", "admin2"):
            if isinstance(data.get(name), str):
                data[name] = data[name].strip() or None
        return data
