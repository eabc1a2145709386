"""Server-rendered pages: sign-in, case entry, review, the public reading room.

Every page reads and writes through the same services as the API (`archive.records`) and
the same access rules (`archive.access`); nothing here decides who may see what.
"""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from .. import access
from ..extensions import bootstrap, csrf, db, limiter
from ..records import NotFound
from ..resources import Conflict

bp = Blueprint("web", __name__)


def render_error(status: int, title: str, message: str):
    return render_template("error.html", status=status, title=title, message=message), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        from flask_babel import gettext as _

        from .auth import stash_expired_form

        db.session.rollback()
        if request.path.startswith("/api/"):
            from ..api.errors import error_response

            return error_response(400, exc.description)
        if access.acting_user() is None and stash_expired_form():
            return redirect(url_for("web.login", next=request.path, expired=1))
        return render_error(
            400,
            _("Form expired"),
            _(
                "This form was too old or not sent from this archive. Reload the page and try "
                "again."
            ),
        )


@bp.errorhandler(NotFound)
def not_found(exc):
    from flask_babel import gettext as _

    db.session.rollback()
    return render_error(404, _("Not found"), _("There is no such record, or it is not public."))


@bp.errorhandler(access.AccessDenied)
def denied(exc):
    from flask_babel import gettext as _

    from .auth import stash_expired_form
    from .i18n import translate_message

    db.session.rollback()
    if access.acting_user() is None:
        expired = stash_expired_form()
        target = request.path if request.method == "POST" else request.full_path.rstrip("?")
        return redirect(url_for("web.login", next=target, expired=1 if expired else None))
    return render_error(403, _("Not allowed"), translate_message(exc.message))


@bp.errorhandler(Conflict)
def conflict(exc):
    from flask_babel import gettext as _

    from .i18n import translate_message

    db.session.rollback()
    return render_error(409, _("Not possible"), translate_message(exc.message))


@bp.errorhandler(ValidationError)
def invalid(exc):
    from flask_babel import gettext as _

    from .i18n import all_messages

    db.session.rollback()
    return render_error(422, _("Not saved"), "; ".join(all_messages(exc)))


def web_error_page(exc: HTTPException):
    """The HTML page for an HTTP error outside the API, in the reader's language."""
    from flask_babel import gettext as _

    titles = {
        400: _("Bad request"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("Not allowed"),
        413: _("Too large"),
        429: _("Too many attempts"),
    }
    code = exc.code or 500
    if code == 404:
        message = _("There is no such page, or it is not public.")
    elif code == 413:
        message = _("The file is larger than this archive accepts.")
    else:
        message = _("The request could not be completed.")
    return render_error(code, titles.get(code, _("Error")), message)


def init_app(app: Flask) -> None:
    from . import (  # noqa: F401
        auth,
        edit,
        i18n,
        import_pages,
        indicator_pages,
        pages,
        review,
        search_pages,
        security,
    )

    security.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    bootstrap.init_app(app)
    auth.init_app(app)
    _register_errors(app)
    app.register_blueprint(bp)
    # The API authenticates writes with bearer tokens; a browser session writing to it must
    # still show a CSRF token (see archive/api/__init__.py).
    from ..api import bp as api_bp

    csrf.exempt(api_bp)
    app.extensions["web_error_page"] = web_error_page
