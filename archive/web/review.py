"""Editors' work: the review queue, status moves, history with diffs and reverts, deleted
records, and the administrators' page of accounts."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from .. import access, records, users
from ..extensions import db
from ..models import ApiToken, Event, User
from ..resources import RESOURCES, Conflict
from . import bp
from .edit import EDITABLE, form_version, record_page
from .i18n import all_messages

# Each button of the review page, as the change it asks of the event.
MOVES = {
    "submit": {"status": "in_review"},
    "return": {"status": "draft"},
    "verify": {"status": "verified"},
    "publish": {"published": True},
    "unpublish": {"published": False},
    "reopen": {"status": "in_review"},
}


@bp.get("/review")
def review():
    user = access.acting_user()
    access.require(user, "review", "events")
    queue = {}
    for status in ("in_review", "draft", "verified"):
        stmt = select(Event).where(access.visible(Event, user), Event.status == status)
        if status == "verified":
            stmt = stmt.where(Event.published.is_(False))
        queue[status] = db.session.scalars(stmt.order_by(Event.updated_at.desc()).limit(200)).all()
    return render_template("review.html", queue=queue)


@bp.post("/events/<int:event_id>/status")
def event_status(event_id: int):
    user = access.acting_user()
    move = MOVES.get(request.form.get("action", ""))
    if move is None:
        abort(400)
    try:
        records.update_record(
            db.session,
            user,
            RESOURCES["events"],
            event_id,
            move,
            expected_version=form_version(request.form),
        )
        db.session.commit()
    except records.StaleRecord:
        db.session.rollback()
        flash(_("Someone else changed this event meanwhile; check it and try again."), "danger")
    except (ValidationError, Conflict) as exc:
        db.session.rollback()
        for message in all_messages(exc):
            flash(message, "danger")
    else:
        flash(_("Done."), "success")
    back = request.form.get("back")
    return redirect(
        url_for("web.review") if back == "review" else url_for("web.event", event_id=event_id)
    )


# --- History ---------------------------------------------------------------------------------


def state_at(entries, seq: int) -> dict:
    """The record as it stood after entry `seq`: every change up to it, applied in order."""
    state: dict = {}
    for entry in entries:
        if entry.seq > seq:
            break
        for name, change in (entry.changes or {}).items():
            if isinstance(change, dict) and "after" in change:
                state[name] = change["after"]
    return state


@bp.get(f"/<{EDITABLE}:name>/<int:record_id>/history")
def history(name: str, record_id: int):
    user = access.acting_user()
    resource = RESOURCES[name]
    record = records.get_record(db.session, user, resource, record_id)
    entries = records.history(db.session, user, resource, record_id)
    return render_template(
        "history.html",
        name=name,
        record=record,
        entries=entries,
        back=record_page(name, record),
    )


@bp.post(f"/<{EDITABLE}:name>/<int:record_id>/revert/<int:seq>")
def revert(name: str, record_id: int, seq: int):
    """Bring the record back to how it stood after entry `seq`, as a new audited revision."""
    user = access.acting_user()
    resource = RESOURCES[name]
    record = records.get_record(db.session, user, resource, record_id)
    entries = records.history(db.session, user, resource, record_id)
    if not any(e.seq == seq for e in entries):
        abort(404)
    target = state_at(entries, seq)
    current = resource.full_schema().dump(record)
    # Status and publication move through review, never by a revert.
    editable = resource.citable_fields() - {"status", "published"}
    data = {k: v for k, v in target.items() if k in editable and current.get(k) != v}
    if "start_date" in data or "date_precision" in data:
        data.setdefault("start_date", target.get("start_date"))
        data.setdefault("date_precision", target.get("date_precision"))
    try:
        loaded = resource.full_schema(partial=True).load(data)
        records.update_record(
            db.session,
            user,
            resource,
            record_id,
            loaded,
            expected_version=form_version(request.form),
        )
        db.session.commit()
    except records.StaleRecord:
        db.session.rollback()
        flash(_("Someone else changed this record meanwhile; check it and try again."), "danger")
    except (ValidationError, Conflict) as exc:
        db.session.rollback()
        for message in all_messages(exc):
            flash(message, "danger")
    else:
        flash(
            _("Reverted: the earlier version is now the current one, as a new revision."), "success"
        )
    return redirect(url_for("web.history", name=name, record_id=record_id))


# --- Deleted records -------------------------------------------------------------------------


@bp.get("/deleted")
def deleted():
    user = access.acting_user()
    access.require(user, "restore", "records")
    found = {}
    for name, resource in RESOURCES.items():
        model = resource.model
        found[name] = db.session.scalars(
            select(model)
            .where(access.deleted_visible(model, user))
            .order_by(model.deleted_at.desc())
            .limit(200)
        ).all()
    return render_template("deleted.html", found=found)


# --- Accounts --------------------------------------------------------------------------------


@bp.route("/admin/users", methods=["GET", "POST"])
def admin_users():
    user = access.acting_user()
    access.require(user, "manage_users", "users")
    shown_secret = None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            shown_secret = _user_action(user, action, request.form)
            db.session.commit()
        except ValidationError as exc:
            db.session.rollback()
            for message in all_messages(exc):
                flash(message, "danger")
        else:
            if shown_secret is None:
                flash(_("Done."), "success")
    accounts = db.session.scalars(select(User).order_by(User.email)).all()
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)
    ).all()
    by_user = {}
    for token in tokens:
        by_user.setdefault(token.user_id, []).append(token)
    return render_template(
        "admin_users.html", accounts=accounts, tokens=by_user, secret=shown_secret
    )


def _user_action(actor, action: str | None, form) -> dict | None:
    if action == "create":
        created, password = users.create_user(
            db.session,
            actor,
            form.get("email", ""),
            form.get("role", ""),
            form.get("password") or None,
        )
        return {
            "what": "password",
            "email": created.email,
            "value": None if form.get("password") else password,
        }
    target = db.session.get(User, int(form.get("user_id", "0") or 0))
    if target is None:
        abort(404)
    if action == "role":
        users.change_role(db.session, actor, target, form.get("role", ""))
    elif action == "deactivate":
        users.set_active(db.session, actor, target, False)
    elif action == "activate":
        users.set_active(db.session, actor, target, True)
    elif action == "token":
        token = users.issue_token(db.session, actor, target)
        return {"what": "token", "email": target.email, "value": token}
    elif action == "revoke":
        users.revoke_token(db.session, actor, target, int(form.get("token_id", "0") or 0))
    else:
        abort(400)
    return None
