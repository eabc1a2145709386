"""Full-text search as JSON: GET /api/v1/search (archive/search.py does the work)."""

from __future__ import annotations

from .. import access
from .. import search as engine
from ..extensions import db
from . import bp
from .views import single_valued_args


@bp.get("/search")
def search():
    return engine.search(db.session, access.acting_user(), single_valued_args())
