"""The import page (/import): upload a spreadsheet, check and edit the mapping, read the dry
run's report, then import in one step — the same services as `flask import run`.

The upload is kept once, by its SHA-256, in a staging folder beside the archived files
(FILES_DIR/.imports, laid out as the file store lays out files); every later step names it by
that hash. While a check or an import runs, its progress is written next to it, and
/import/<sha256>/status reads it back for static/js/import.js (the pages work without it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import access, imports
from ..extensions import db
from ..provenance import FileStore, FileTampered, FileTooLarge
from . import bp, render_error

SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_MAPPING_CHARS = 200_000
PROGRESS_EVERY_SECONDS = 0.5
# Uploads checked but never imported are dropped after this long (the archive keeps its own
# copy of every file it imports).
STALE_SECONDS = 3 * 24 * 3600


def staging() -> FileStore:
    return FileStore(os.path.join(current_app.config["FILES_DIR"], ".imports"))


def _side(store: FileStore, sha256: str, suffix: str) -> str:
    return store.path(sha256) + suffix


def _write_json(path: str, value) -> None:
    """Replace the file at `path` at once, so a reader never sees half of it."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(value, out, ensure_ascii=False)
    os.replace(tmp, path)


def _staged(sha256: str) -> tuple[bytes, str]:
    """The staged upload's bytes and the name it was uploaded under; 404 when gone."""
    if not SHA256.fullmatch(sha256):
        abort(404)
    store = staging()
    try:
        with open(store.check(sha256), "rb") as f:
            data = f.read()
        with open(_side(store, sha256, ".json"), encoding="utf-8") as f:
            filename = json.load(f)["filename"]
    except (OSError, ValueError, KeyError, FileTampered):
        abort(
            make_response(
                render_error(
                    404,
                    _("Not found"),
                    _("This upload is no longer kept here: upload the file again."),
                )
            )
        )
    return data, filename


def _forget(sha256: str) -> None:
    """Drop the staged upload once it has been imported (the archive keeps its own copy)."""
    store = staging()
    for path in (
        store.path(sha256),
        _side(store, sha256, ".json"),
        _side(store, sha256, ".progress"),
    ):
        with contextlib.suppress(OSError):
            os.unlink(path)


def _sweep(store: FileStore) -> None:
    """Drop staged uploads nobody has touched for STALE_SECONDS."""
    oldest = time.time() - STALE_SECONDS
    for folder, _dirs, names in os.walk(store.root):
        for name in names:
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                if os.path.getmtime(path) < oldest:
                    os.unlink(path)


class ProgressFile:
    """The engine's progress callback, written where the status endpoint reads it."""

    def __init__(self, path: str):
        self.path = path
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        _write_json(self.path, {"stage": stage, "done": done, "total": total})

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def mapping_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """The mapping's problems as (key path, message), e.g. ("columns.Fecha", "Unknown …")."""
    found: list[tuple[str, str]] = []

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.extend((path or "mapping", str(v)) for v in value)
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                walk(inner, f"{path}.{i}" if path else str(i))
        else:
            found.append((path or "mapping", str(value)))

    messages = exc.normalized_messages()
    walk(messages if isinstance(messages, dict) else {"mapping": messages}, "")
    return found


def read_mapping(text: str) -> dict:
    """The mapping typed in the page, as JSON; MappingError naming what is wrong."""
    if not text.strip():
        raise imports.MappingError({"mapping": [_("Give the mapping as a JSON object.")]})
    if len(text) > MAX_MAPPING_CHARS:
        raise imports.MappingError({"mapping": [_("The mapping is too long.")]})
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise imports.MappingError(
            {
                "mapping": [
                    _(
                        "Not valid JSON: %(reason)s at line %(line)s, column %(column)s.",
                        reason=exc.msg,
                        line=exc.lineno,
                        column=exc.colno,
                    )
                ]
            }
        ) from None
    if not isinstance(document, dict):
        raise imports.MappingError({"mapping": [_("The mapping must be a JSON object.")]})
    return document


def _page(status: int = 200, **values):
    values.setdefault("presets", imports.list_presets(db.session))
    values.setdefault("mapping_errors", [])
    values.setdefault("on_duplicate", "skip")
    return render_template("import.html", **values), status


@bp.get("/import")
def import_start():
    access.require(access.acting_user(), "create", "imports")
    return _page(stage="upload")


@bp.post("/import")
def import_upload():
    user = access.acting_user()
    access.require(user, "create", "imports")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a CSV or XLSX file to import."), "danger")
        return _page(422, stage="upload")
    store = staging()
    _sweep(store)
    try:
        sha256, _size = store.save(upload.stream, current_app.config["FILES_MAX_BYTES"])
    except FileTooLarge:
        flash(_("The file is larger than this archive accepts."), "danger")
        return _page(413, stage="upload")
    _write_json(
        _side(store, sha256, ".json"),
        {"filename": os.path.basename(upload.filename.replace("\\", "/"))},
    )
    preset = request.form.get("preset") or None
    return redirect(url_for("web.import_file", sha256=sha256, preset=preset))


def _inspection(data: bytes, filename: str):
    try:
        return imports.inspect(data, filename), None
    except imports.FileProblem as exc:
        return None, exc.message


@bp.get("/import/<sha256>")
def import_file(sha256: str):
    access.require(access.acting_user(), "create", "imports")
    data, filename = _staged(sha256)
    inspection, problem = _inspection(data, filename)
    if problem:
        flash(problem, "danger")
        return _page(422, stage="upload")
    mapping = inspection.mapping
    chosen = request.args.get("preset") or ""
    if chosen:
        kept = imports.get_preset(db.session, chosen)
        if kept is None:
            flash(_("There is no preset named %(name)s.", name=chosen), "danger")
        else:
            mapping = kept
    return _page(
        stage="mapping",
        sha256=sha256,
        filename=filename,
        inspection=inspection,
        mapping_text=json.dumps(mapping, ensure_ascii=False, indent=2),
        preset=chosen,
    )


def _run(sha256: str, *, dry_run: bool):
    """Check (or import) the staged file against the mapping sent; the page to answer."""
    user = access.acting_user()
    access.require(user, "create", "imports")
    data, filename = _staged(sha256)
    text = request.form.get("mapping", "")
    on_duplicate = request.form.get("on_duplicate", "skip")
    preset_name = (request.form.get("save_preset") or "").strip()
    page = {
        "sha256": sha256,
        "filename": filename,
        "mapping_text": text,
        "on_duplicate": on_duplicate,
        "save_preset": preset_name,
    }
    progress = ProgressFile(_side(staging(), sha256, ".progress"))
    try:
        mapping = read_mapping(text)
        report = imports.run_import(
            db.session,
            user,
            FileStore(current_app.config["FILES_DIR"]),
            data,
            filename,
            mapping,
            dry_run=dry_run,
            on_duplicate=on_duplicate,
            max_bytes=current_app.config["FILES_MAX_BYTES"],
            progress=progress,
        )
    except imports.FileProblem as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return _page(422, stage="upload")
    except ValidationError as exc:
        db.session.rollback()
        inspection, _problem = _inspection(data, filename)
        return _page(
            422,
            stage="mapping",
            inspection=inspection,
            mapping_errors=mapping_errors(exc),
            **page,
        )
    finally:
        progress.finish()
    if report.written:
        db.session.commit()
        _forget(sha256)
        flash(
            _(
                "Imported: every record cites the stored file as source %(id)s.",
                id=report.source_id,
            ),
            "success",
        )
        return _page(stage="done", report=report, **page)
    db.session.rollback()
    if dry_run and preset_name and report.ok:
        try:
            imports.save_preset(db.session, user, preset_name, mapping)
            db.session.commit()
            flash(_("Mapping saved as preset %(name)s.", name=preset_name), "success")
        except ValidationError as exc:
            db.session.rollback()
            return _page(
                422, stage="report", report=report, mapping_errors=mapping_errors(exc), **page
            )
    return _page(200 if report.ok else 422, stage="report", report=report, **page)


@bp.post("/import/<sha256>/check")
def import_check(sha256: str):
    return _run(sha256, dry_run=True)


@bp.post("/import/<sha256>/run")
def import_run(sha256: str):
    return _run(sha256, dry_run=False)


@bp.get("/import/<sha256>/status")
def import_status(sha256: str):
    """How far the check or import of this upload has gone, for the progress bar."""
    access.require(access.acting_user(), "create", "imports")
    if not SHA256.fullmatch(sha256):
        abort(404)
    try:
        with open(_side(staging(), sha256, ".progress"), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = {"stage": None, "done": 0, "total": 0}
    return jsonify(state)
