"""Every API error is JSON: {"error": {"status", "message", "fields"}}."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..access import AccessDenied, acting_user
from ..extensions import db
from ..provenance import FileTampered, FileTooLarge
from ..records import NotFound, StaleRecord
from ..resources import Conflict


def error_response(status: int, message: str, fields: dict | None = None, **extra):
    """The error in its one shape; `extra` adds members beside "error" (412's "current")."""
    # `fields` is always there, empty when no field is at fault: one shape for every error.
    body = {"status": status, "message": message, "fields": fields or {}}
    response = jsonify({"error": body, **extra})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="constancia"'
    return response


def flatten_messages(messages: dict) -> dict[str, list[str]]:
    """marshmallow's messages as {field: [message, …]}, keyed by the field the request sent.

    A problem inside a nested value keeps its path in the message: an event's bad actor role
    is {"actors": ["0.role: Must be one of: …"]}.
    """
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        flat[str(key)] = [
            f"{path}: {message}" if path else message for path, message in _leaves(value)
        ]
    return flat


def _leaves(value, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [
            leaf
            for key, inner in value.items()
            for leaf in _leaves(inner, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [leaf for inner in value for leaf in _leaves(inner, path)]
    return [(path, str(value))]


def register(app: Flask) -> None:
    def in_api() -> bool:
        return request.path.startswith("/api/")

    def rolled_back(handler):
        def wrapper(exc):
            db.session.rollback()
            return handler(exc)

        return wrapper

    @app.errorhandler(ValidationError)
    @rolled_back
    def validation_error(exc: ValidationError):
        fields = flatten_messages(exc.normalized_messages())
        names = ", ".join(sorted(fields))
        return error_response(422, f"The request has invalid fields: {names}.", fields)

    @app.errorhandler(AccessDenied)
    @rolled_back
    def access_denied(exc: AccessDenied):
        return error_response(401 if exc.anonymous else 403, exc.message)

    @app.errorhandler(NotFound)
    @rolled_back
    def not_found(exc: NotFound):
        return error_response(404, exc.message)

    @app.errorhandler(Conflict)
    @rolled_back
    def conflict(exc: Conflict):
        return error_response(409, exc.message)

    @app.errorhandler(StaleRecord)
    def stale_record(exc: StaleRecord):
        # Read before the rollback expires it; the record was only read, nothing is undone.
        current = exc.resource.dump_schema(acting_user()).dump(exc.record)
        version = exc.record.version
        db.session.rollback()
        response = error_response(412, exc.message, current=current)
        response.set_etag(str(version))
        return response

    @app.errorhandler(IntegrityError)
    @rolled_back
    def integrity_error(exc: IntegrityError):
        return error_response(409, "The change conflicts with other records and was not saved.")

    @app.errorhandler(DataError)
    @rolled_back
    def data_error(exc: DataError):
        return error_response(422, "A value is out of the range the database can store.")

    @app.errorhandler(FileTooLarge)
    @rolled_back
    def too_large(exc: FileTooLarge):
        return error_response(413, str(exc))

    @app.errorhandler(FileTampered)
    @rolled_back
    def tampered(exc: FileTampered):
        app.logger.error("integrity failure: %s", exc)
        return error_response(409, f"{exc} It is not served; an administrator has to restore it.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        db.session.rollback()
        if not in_api():
            # Pages answer errors in their own layout and the reader's language.
            page = app.extensions.get("web_error_page")
            return page(exc) if page and exc.code and exc.code >= 400 else exc
        if exc.code == 413:
            limit = app.config["FILES_MAX_BYTES"]
            return error_response(413, f"The request is larger than the limit of {limit} bytes.")
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        if not in_api():
            return InternalServerError(original_exception=exc)
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal error; nothing was changed.")
