"""GET /api/v1/exports/<what>: a list or the indicators as CSV, XLSX or JSON, audited, streamed."""

from __future__ import annotations

import tempfile

from flask import Response, stream_with_context, url_for
from flask import send_file as flask_send_file

from .. import access, codebook, database, exports
from ..extensions import db
from ..models import User
from . import bp
from .views import single_valued_args

# XLSX is built in a temporary file first (a zip cannot be streamed as its rows come); it
# stays in memory up to this size and moves to disk beyond it.
XLSX_IN_MEMORY = 8 * 1024 * 1024


@bp.get("/exports")
def export_index():
    return {
        "exports": {what: url_for("api.export", what=what) for what in codebook.EXPORTS},
        "formats": list(exports.FORMATS),
        "codebook": url_for("web.codebook_page"),
    }


@bp.get("/exports/<what>")
def export(what: str):
    user = access.acting_user()
    plan = exports.prepare(user, what, single_valued_args())
    rows = exports.count(db.session, user, plan)
    # A GET reads in a deferred transaction, which on SQLite cannot take the write lock once
    # another writer has been in between: end it, and write the audit entry in a transaction
    # of its own that takes the lock up front. It is committed before any row leaves, and no
    # lock is held while the rows stream.
    db.session.rollback()
    with database.writing():
        exports.audit(db.session, user, plan, rows)
        db.session.commit()
    if plan.format == "xlsx":
        about = exports.particulars(user, plan)
        # send_file closes it once sent.
        out = tempfile.SpooledTemporaryFile(max_size=XLSX_IN_MEMORY)  # noqa: SIM115
        exports.write_xlsx(db.session, user, plan, out, about)
        out.seek(0)
        return flask_send_file(
            out, mimetype=plan.media_type, as_attachment=True, download_name=plan.filename()
        )
    body = stream_with_context(_streamed(plan, user.id if user is not None else None))
    return Response(
        body,
        mimetype=plan.media_type,
        headers={"Content-Disposition": f'attachment; filename="{plan.filename()}"'},
    )


def _streamed(plan: exports.Export, user_id: int | None):
    """The rows, read after the view has returned: by then the request's session has been
    closed (stream_with_context pushes the contexts again, with a fresh session), so the
    reader is loaded again in it."""
    user = db.session.get(User, user_id) if user_id is not None else None
    yield from exports.chunks(db.session, user, plan)
