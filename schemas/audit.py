from marshmallow import Schema, fields


class AuditEntrySchema(Schema):
    """One revision of a record, or one line of the audit log."""

    seq = fields.Integer()
    at = fields.AwareDateTime(format="iso")
    user_id = fields.Integer()
    user_email = fields.String()
    action = fields.String()
    resource = fields.String()
    record_id = fields.Integer()
    changes = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()
