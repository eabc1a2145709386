from marshmallow import Schema, fields, validate

from archive import vocab

from .common import BaseSchema, Choice, Text


class SourceFileSchema(Schema):
    id = fields.Integer()
    sha256 = fields.String()
    size = fields.Integer()
    media_type = fields.String()
    original_filename = fields.String()
    uploaded_at = fields.AwareDateTime(format="iso")


class SourceSchema(BaseSchema):
    kind = Choice(vocab.SOURCE_KINDS, required=True)
    title = Text(500, required=True)
    publisher = Text(300, allow_none=True)
    author = Text(300, allow_none=True)
    url = fields.Url(allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=2000))
    published_at = fields.Date(allow_none=True)
    accessed_at = fields.Date(allow_none=True)
    language = fields.String(
        allow_none=True,
        validate=[
            validate.Regexp(
                r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                error="Must be a language tag such as es or en.",
            ),
            validate.Length(max=20),
        ],
    )
    reliability = Choice(vocab.RELIABILITY, allow_none=True)
    restricted = fields.Boolean()
    files = fields.List(fields.Nested(SourceFileSchema), dump_only=True)
