from archive import vocab

from .common import BaseSchema, Choice, Count, Reference, Text


class CasualtyCountSchema(BaseSchema):
    event_id = Reference(required=True)
    source_id = Reference(required=True)
    affiliation = Choice(vocab.AFFILIATIONS, required=True)
    outcome = Choice(vocab.OUTCOMES, required=True)
    caused_by = Choice(vocab.CAUSED_BY, load_default="unknown")
    count = Count(required=True)
    notes = Text(allow_none=True)
