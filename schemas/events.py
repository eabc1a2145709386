from marshmallow import fields, post_load, validates_schema

from archive import vocab

from .common import (
    ActorRoles,
    BaseSchema,
    Choice,
    Count,
    PartialDate,
    Reference,
    RichText,
    Text,
    check_date_order,
    fill_date_precision,
)


class EventSchema(BaseSchema):
    title = Text(500, required=True)
    description = RichText(allow_none=True)
    event_type = Choice(vocab.EVENT_TYPES, required=True)
    start_date = PartialDate(allow_none=True)
    end_date = PartialDate(allow_none=True)
    date_precision = Choice(vocab.DATE_PRECISIONS, allow_none=True)
    end_date_precision = Choice(vocab.DATE_PRECISIONS, allow_none=True)
    place_id = Reference(allow_none=True)
    operation_id = Reference(allow_none=True)
    actors = ActorRoles("EventActor", vocab.EVENT_ACTOR_ROLES)
    agents_deployed = Count(allow_none=True)
    official_account = Text(allow_none=True)
    status = Choice(vocab.EVENT_STATUSES)
    published = fields.Boolean()
    internal_notes = Text(allow_none=True)
    # The id another organisation's dataset gives the event, kept by an import
    # (archive/imports) to recognise it next time: shown, never taken (only imports set it).
    external_dataset = fields.String(dump_only=True, allow_none=True)
    external_id = fields.String(dump_only=True, allow_none=True)

    @validates_schema
    def dates_in_order(self, data, **kwargs):
        check_date_order(data)

    @post_load
    def precision_from_date(self, data, **kwargs):
        fill_date_precision(data)
        return data


class PublicEventSchema(EventSchema):
    """An event as anonymous readers see it: without the internal notes."""

    class Meta:
        exclude = ("internal_notes",)
