from marshmallow import fields, validate

from archive import vocab

from .common import BaseSchema, Choice, Text


class PlaceSchema(BaseSchema):
    country = fields.String(
        load_default="VE",
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Must be an ISO 3166 code such as VE."),
    )
    admin1 = Text(200, allow_none=True)
    admin2 = Text(200, allow_none=True)
    admin3 = Text(200, allow_none=True)
    locality = Text(200, allow_none=True)
    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    precision = Choice(vocab.PLACE_PRECISIONS)


def default_precision(place: dict) -> str:
    """The finest level the place was given at."""
    if place.get("latitude") is not None:
        return "exact"
    for level in ("locality", "admin3", "admin2", "admin1"):
        if place.get(level):
            return "admin2" if level == "admin3" else level
    return "country"
