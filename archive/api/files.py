"""Upload and download of a source's archived files."""

from __future__ import annotations

from flask import current_app, request, send_file, url_for
from marshmallow import ValidationError

from schemas.sources import SourceFileSchema

from .. import access, sourcefiles
from ..extensions import db
from ..provenance import FileStore
from . import bp


def file_store() -> FileStore:
    return FileStore(current_app.config["FILES_DIR"])


@bp.post("/sources/<int:source_id>/files")
def upload_file(source_id: int):
    user = access.acting_user()
    access.require(user, "upload", "files")
    upload = request.files.get("file")
    if upload is None:
        raise ValidationError({"file": ["Send the file as multipart form field 'file'."]})
    attached, created = sourcefiles.attach_file(
        db.session,
        user,
        file_store(),
        source_id,
        upload.stream,
        upload.filename or None,
        upload.mimetype or None,
        current_app.config["FILES_MAX_BYTES"],
        current_app.config["EXTRACTED_TEXT_MAX_CHARS"],
    )
    db.session.commit()
    body = SourceFileSchema().dump(attached)
    location = url_for("api.download_file", source_id=source_id, sha256=attached.sha256)
    return body, 201 if created else 200, {"Location": location}


@bp.get("/sources/<int:source_id>/files/<sha256>")
def download_file(source_id: int, sha256: str):
    attached, path = sourcefiles.file_for_download(
        db.session, access.acting_user(), file_store(), source_id, sha256
    )
    response = send_file(
        path,
        mimetype=attached.media_type,
        as_attachment=True,
        download_name=attached.original_filename or attached.sha256,
        etag=attached.sha256,
        conditional=True,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Content-SHA256"] = attached.sha256
    return response
