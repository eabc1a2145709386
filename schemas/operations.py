from marshmallow import fields, post_load, validates_schema

from archive import vocab

from .common import (
    ActorRoles,
    BaseSchema,
    Choice,
    Count,
    PartialDate,
    RichText,
    Text,
    check_date_order,
    fill_date_precision,
)


class OperationSchema(BaseSchema):
    name = Text(300, required=True)
    aliases = fields.List(Text(300), load_default=list)
    description = RichText(allow_none=True)
    start_date = PartialDate(allow_none=True)
    end_date = PartialDate(allow_none=True)
    date_precision = Choice(vocab.DATE_PRECISIONS, allow_none=True)
    end_date_precision = Choice(vocab.DATE_PRECISIONS, allow_none=True)
    announced_by = Text(300, allow_none=True)
    agents_deployed = Count(allow_none=True)
    arrests_claimed = Count(allow_none=True)
    actors = ActorRoles("OperationActor", vocab.OPERATION_ACTOR_ROLES)

    @validates_schema
    def dates_in_order(self, data, **kwargs):
        check_date_order(data)

    @post_load
    def precision_from_date(self, data, **kwargs):
        fill_date_precision(data)
        return data
