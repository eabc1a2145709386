from marshmallow import fields, post_dump, validate

from archive import vocab

from .common import BaseSchema, Choice, OnDuty, Reference, RichText, Text

# A dataset's id can name the person in that dataset: it is withheld with the identity.
IDENTITY_FIELDS = ("name", "alias", "age", "external_dataset", "external_id")


class VictimSchema(BaseSchema):
    event_id = Reference(required=True)
    name = Text(300, allow_none=True)
    alias = Text(200, allow_none=True)
    age = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=130))
    sex = Choice(vocab.SEXES, allow_none=True)
    affiliation = Choice(vocab.AFFILIATIONS, load_default="unknown")
    actor_id = Reference(allow_none=True)
    outcome = Choice(vocab.OUTCOMES, required=True)
    caused_by = Choice(vocab.CAUSED_BY, load_default="unknown")
    responsible_actor_id = Reference(allow_none=True)
    circumstances = RichText(allow_none=True)
    on_duty = OnDuty(allow_none=True)
    identity_restricted = fields.Boolean()
    # The id another organisation's dataset gives the person, kept by an import
    # (archive/imports) to recognise them next time: shown, never taken (only imports set it).
    external_dataset = fields.String(dump_only=True, allow_none=True)
    external_id = fields.String(dump_only=True, allow_none=True)


class PublicVictimSchema(VictimSchema):
    """A victim as anonymous readers see it: a restricted identity is left out entirely."""

    @post_dump
    def withhold_identity(self, data, **kwargs):
        if data.get("identity_restricted"):
            for name in IDENTITY_FIELDS:
                data.pop(name, None)
        return data
