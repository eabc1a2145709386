from marshmallow import fields

from archive import vocab

from .common import BaseSchema, Choice, Reference, RichText, Text


class ActorSchema(BaseSchema):
    name = Text(300, required=True)
    acronym = Text(50, allow_none=True)
    kind = Choice(vocab.ACTOR_KINDS, required=True)
    parent_id = Reference(allow_none=True)
    jurisdiction = Choice(vocab.JURISDICTIONS, allow_none=True)
    description = RichText(allow_none=True)
    is_state = fields.Boolean(dump_only=True)
