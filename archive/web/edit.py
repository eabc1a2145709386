"""Case entry: one generic create and edit page per resource, deletes and restores.

Each save goes through `archive.records`, the API's services, in one transaction; a form
that fails comes back with every value as entered and each message beside its field.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from .. import access, records, sourcefiles
from ..extensions import db
from ..provenance import FileStore, FileTooLarge
from ..resources import RESOURCES, Conflict
from . import bp
from .auth import safe_next, take_pending_form
from .forms import (
    FORMS,
    NEW_SOURCE_FIELDS,
    NEW_SOURCE_PREFIX,
    changed_fields,
    form_values,
    read_form,
    reference_options,
)
from .i18n import translate_errors, translate_message, validation_errors

EDITABLE = "any(" + ", ".join(f'"{n}"' for n in FORMS) + ")"
# Fields a record's form may start from when given in the address (?event_id=7).
PRESETS = (
    "event_id",
    "source_id",
    "target_type",
    "target_id",
    "operation_id",
    "place_id",
    "parent_id",
)


def record_page(name: str, record) -> str:
    """Where a saved record is shown: its own page, or the page of what it belongs to."""
    if name in ("events", "operations", "sources", "actors", "places"):
        endpoint = {
            "events": "web.event",
            "operations": "web.operation",
            "sources": "web.source",
            "actors": "web.actor",
            "places": "web.place",
        }[name]
        key = {
            "events": "event_id",
            "operations": "operation_id",
            "sources": "source_id",
            "actors": "actor_id",
            "places": "place_id",
        }[name]
        return url_for(endpoint, **{key: record.id})
    if name in ("victims", "casualty-counts"):
        return url_for("web.event", event_id=record.event_id)
    if name == "context-figures":
        return url_for("web.context_figures")
    if name == "citations":
        if record.event_id:
            return url_for("web.event", event_id=record.event_id)
        if record.operation_id:
            return url_for("web.operation", operation_id=record.operation_id)
        return url_for("web.source", source_id=record.source_id)
    return url_for("web.index")


def _options(name: str, user) -> dict[str, list]:
    fields = FORMS[name] + (NEW_SOURCE_FIELDS if name == "citations" else [])
    wanted = {f.options for f in fields if f.kind == "ref"}
    if any(f.kind == "actors" for f in fields):
        wanted.add("actors")
    return {kind: reference_options(kind, user) for kind in wanted}


def render_form(name, user, values, errors=None, record=None, status=200, **extra):
    return (
        render_template(
            "form.html",
            name=name,
            fields=FORMS[name],
            new_source_fields=NEW_SOURCE_FIELDS if name == "citations" else [],
            new_source_prefix=NEW_SOURCE_PREFIX,
            values=values,
            errors=errors or {},
            record=record,
            options=_options(name, user),
            next=request.values.get("next", ""),
            **extra,
        ),
        status,
    )


@bp.route(f"/<{EDITABLE}:name>/new", methods=["GET", "POST"])
def create(name: str):
    user = access.acting_user()
    resource = RESOURCES[name]
    access.require(user, "create", resource.name)
    if request.method == "GET":
        values = MultiDict({k: v for k in PRESETS if (v := request.args.get(k))})
        kept = take_pending_form(request.path)
        if kept is not None:
            values = MultiDict([(k, v) for k, vs in kept.items() for v in vs])
        return render_form(name, user, values)

    form = request.form
    data, errors = read_form(FORMS[name], form)
    if (
        name == "citations"
        and not form.get("source_id")
        and form.get(NEW_SOURCE_PREFIX + "title", "").strip()
    ):
        errors.pop("source_id", None)
        data.pop("source_id", None)
    errors = _all_errors(resource, data, errors)
    if errors:
        return render_form(name, user, form, errors, status=422)
    try:
        if name == "citations" and "source_id" not in data:
            data["source_id"] = _create_inline_source(user, form)
        loaded = resource.full_schema().load(data)
        record = records.create_record(db.session, user, resource, loaded)
        _attach_upload(name, user, record)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return render_form(name, user, form, validation_errors(exc), status=422)
    except Conflict as exc:
        db.session.rollback()
        return render_form(name, user, form, {"_": [translate_message(exc.message)]}, status=409)
    flash(_("Saved."), "success")
    return redirect(
        safe_next(request.form.get("next"))
        if request.form.get("next")
        else record_page(name, record)
    )


def _all_errors(resource, data: dict, errors: dict) -> dict[str, list[str]]:
    """Every problem at once: the values that could not be read, and what the schema says of
    the rest, so that one round trip shows the researcher all there is to fix."""
    if not errors:
        return {}
    try:
        resource.full_schema(partial=True).load(data)
    except ValidationError as exc:
        return {**validation_errors(exc), **translate_errors(errors)}
    return translate_errors(errors)


def _create_inline_source(user, form) -> int:
    data, errors = read_form(NEW_SOURCE_FIELDS, form, prefix=NEW_SOURCE_PREFIX)
    if errors:
        raise ValidationError({NEW_SOURCE_PREFIX + k: v for k, v in errors.items()})
    try:
        loaded = RESOURCES["sources"].full_schema().load(data)
    except ValidationError as exc:
        raise ValidationError(
            {NEW_SOURCE_PREFIX + k: v for k, v in exc.normalized_messages().items()}
        ) from None
    return records.create_record(db.session, user, RESOURCES["sources"], loaded).id


def _attach_upload(name: str, user, record) -> None:
    if name != "sources":
        return
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return
    try:
        sourcefiles.attach_file(
            db.session,
            user,
            FileStore(current_app.config["FILES_DIR"]),
            record.id,
            upload.stream,
            upload.filename,
            upload.mimetype or None,
            current_app.config["FILES_MAX_BYTES"],
            current_app.config["EXTRACTED_TEXT_MAX_CHARS"],
        )
    except FileTooLarge:
        raise ValidationError(_("The file is larger than this archive accepts."), "file") from None


@bp.route(f"/<{EDITABLE}:name>/<int:record_id>/edit", methods=["GET", "POST"])
def edit(name: str, record_id: int):
    user = access.acting_user()
    resource = RESOURCES[name]
    access.require(user, "update", resource.name)
    record = records.get_record(db.session, user, resource, record_id)
    stored = form_values(FORMS[name], resource.full_schema().dump(record), record)
    if request.method == "GET":
        kept = take_pending_form(request.path)
        if kept is not None:
            flash(
                _("What you entered before your session expired has been kept: check it and save."),
                "warning",
            )
            values = MultiDict([(k, v) for k, vs in kept.items() for v in vs])
            version = values.get("version", record.version)
            return render_form(name, user, values, record=record, version=version)
        return render_form(name, user, stored, record=record, version=record.version)

    form = request.form
    version = form_version(form)
    data, errors = read_form(FORMS[name], form, creating=False)
    errors = _all_errors(resource, data, errors)
    if errors:
        return render_form(name, user, form, errors, record=record, version=version, status=422)
    try:
        loaded = resource.full_schema(partial=True).load(data)
        record = records.update_record(
            db.session, user, resource, record_id, loaded, expected_version=version
        )
        _attach_upload(name, user, record)
        db.session.commit()
    except records.StaleRecord as exc:
        db.session.rollback()
        current = exc.record
        theirs = form_values(FORMS[name], resource.full_schema().dump(current), current)
        return render_form(
            name,
            user,
            form,
            {
                "_": [
                    _(
                        "Someone else saved this record while you were editing "
                        "it. Their version is shown beside yours: compare, "
                        "then save again to keep yours."
                    )
                ]
            },
            record=current,
            version=current.version,
            theirs=theirs,
            changed={f.name for f in changed_fields(FORMS[name], form, theirs)},
            status=409,
        )
    except ValidationError as exc:
        db.session.rollback()
        return render_form(
            name, user, form, validation_errors(exc), record=record, version=version, status=422
        )
    except Conflict as exc:
        db.session.rollback()
        return render_form(
            name,
            user,
            form,
            {"_": [translate_message(exc.message)]},
            record=record,
            version=version,
            status=409,
        )
    flash(_("Saved."), "success")
    return redirect(safe_next(form.get("next")) if form.get("next") else record_page(name, record))


def form_version(form) -> int | None:
    """The version the form was filled from: what a save expects to find still stored."""
    raw = form.get("version", "")
    return int(raw) if raw.isdigit() else None


@bp.post(f"/<{EDITABLE}:name>/<int:record_id>/delete")
def delete(name: str, record_id: int):
    user = access.acting_user()
    resource = RESOURCES[name]
    record = records.get_record(db.session, user, resource, record_id)
    back = record_page(name, record)
    try:
        records.delete_record(
            db.session, user, resource, record_id, expected_version=form_version(request.form)
        )
        db.session.commit()
    except records.StaleRecord:
        db.session.rollback()
        flash(
            _("Someone else changed this record meanwhile; it was not deleted. Check it again."),
            "danger",
        )
        return redirect(back)
    except Conflict as exc:
        db.session.rollback()
        flash(translate_message(exc.message), "danger")
        return redirect(back)
    flash(_("Deleted. Editors can restore it from the list of deleted records."), "success")
    if name in ("victims", "casualty-counts", "citations") and getattr(record, "event_id", None):
        return redirect(url_for("web.event", event_id=record.event_id))
    return redirect(url_for("web.deleted"))


@bp.post(f"/<{EDITABLE}:name>/<int:record_id>/restore")
def restore(name: str, record_id: int):
    user = access.acting_user()
    try:
        record = records.restore_record(db.session, user, RESOURCES[name], record_id)
        db.session.commit()
    except Conflict as exc:
        db.session.rollback()
        flash(translate_message(exc.message), "danger")
        return redirect(url_for("web.deleted"))
    flash(_("Restored."), "success")
    return redirect(record_page(name, record))


@bp.post("/sources/<int:source_id>/files")
def upload(source_id: int):
    user = access.acting_user()
    access.require(user, "upload", "files")
    record = records.get_record(db.session, user, RESOURCES["sources"], source_id)
    if not request.files.get("file") or not request.files["file"].filename:
        flash(_("Choose a file to upload."), "danger")
        return redirect(url_for("web.source", source_id=source_id))
    try:
        _attach_upload("sources", user, record)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        flash("; ".join(m for ms in validation_errors(exc).values() for m in ms), "danger")
        return redirect(url_for("web.source", source_id=source_id))
    flash(_("File archived."), "success")
    return redirect(url_for("web.source", source_id=source_id))
