from marshmallow import Schema, fields


class AuditEntrySchema(Schema):
    """One revision of a record, or one line of the audit log."""

    seq = fields.Integer()
    at = fields.AwareDateTime(format="iso")
    user_id = fields.Integer(allow_none=True)
    user_email = fields.String(allow_none=True)
    action = fields.String()
    resource = fields.String(allow_none=True)
    record_id = fields.Integer(allow_none=True)
    changes = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()
