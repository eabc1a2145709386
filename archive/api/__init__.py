"""The JSON API under /api/v1."""

from flask import Blueprint, Flask, request, session
from flask_login import current_user

from schemas.common import MAX_INTEGER

from .. import access, database
from ..extensions import csrf
from ..records import NotFound

bp = Blueprint("api", __name__, url_prefix="/api/v1")

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@bp.before_request
def authenticate_and_declare_writes():
    if request.method not in READ_METHODS:
        request.environ["constancia.writing"] = database.start_writing()
        # A browser's signed-in session may write too, but only with the page's CSRF token:
        # a cookie alone would let any site make the browser write.
        if access.bearer_token() is None and "_user_id" in session:
            csrf.protect()
    # A token that matches no active user is an error, never a silent downgrade to anonymous.
    if access.credentials_presented() and not current_user.is_authenticated:
        raise access.AccessDenied("Invalid or revoked credentials.", anonymous=True)


@bp.url_value_preprocessor
def ids_in_range(endpoint, values):
    """An id no database column can hold names no record: 404, like any other missing id."""
    for name, value in (values or {}).items():
        if name.endswith("_id") and isinstance(value, int) and value > MAX_INTEGER:
            raise NotFound(f"No record with id {value}.")


@bp.teardown_request
def end_writes(exc):
    token = request.environ.pop("constancia.writing", None)
    if token is not None:
        database.stop_writing(token)


def init_app(app: Flask) -> None:
    from . import (  # noqa: F401  (routes register)
        errors,
        exports,
        files,
        indicators,
        openapi,
        search,
        views,
    )

    errors.register(app)
    app.register_blueprint(bp)
