from marshmallow import ValidationError, validates_schema

from archive import vocab

from .common import BaseSchema, Choice, Reference, RichText, Text


class CitationSchema(BaseSchema):
    source_id = Reference(required=True)
    target_type = Choice(vocab.CITATION_TARGETS, required=True)
    target_id = Reference(required=True)
    field = Text(100, allow_none=True)
    excerpt = RichText(allow_none=True)
    locator = Text(300, allow_none=True)
    credibility = Choice(vocab.CREDIBILITY, allow_none=True)

    @validates_schema
    def target_in_full(self, data, **kwargs):
        if ("target_type" in data) != ("target_id" in data):
            missing = "target_id" if "target_type" in data else "target_type"
            raise ValidationError("target_type and target_id change together.", missing)
