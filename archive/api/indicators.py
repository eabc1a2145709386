"""The indicators of DOMAIN.md section 4 as JSON: one operation's, and grouped."""

from __future__ import annotations

from marshmallow import ValidationError

from .. import access, indicators
from ..extensions import db
from ..resources import _boolean
from . import bp
from .views import single_valued_args


@bp.get("/operations/<int:operation_id>/indicators")
def operation_indicators(operation_id: int):
    args = single_valued_args()
    unknown = {k: ["Unknown parameter; this takes include_drafts only."] for k in args}
    unknown.pop("include_drafts", None)
    include_drafts = False
    if "include_drafts" in args:
        try:
            include_drafts = _boolean(args["include_drafts"])
        except ValueError as exc:
            unknown["include_drafts"] = [str(exc)]
    if unknown:
        raise ValidationError(unknown)
    return indicators.operation_indicators(
        db.session, access.acting_user(), operation_id, include_drafts
    )


@bp.get("/indicators")
def grouped_indicators():
    query = indicators.parse_query(single_valued_args())
    return indicators.grouped(db.session, access.acting_user(), query)
