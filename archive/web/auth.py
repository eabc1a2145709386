"""Signing in and out, limits on failed sign-ins, and forms kept across an expired session."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from .. import database, provenance, users
from ..extensions import client_address, db, limiter
from . import bp

# Form fields never kept across sign-in: the token is the old session's, files cannot be kept.
NOT_KEPT = {"csrf_token"}
# A browser cookie holds about 4 KB; a larger form is not kept rather than silently cut.
MAX_KEPT_BYTES = 3000
PENDING = "pending_form"


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a phishing link borrow our name."""
    if not target:
        return url_for("web.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.index")
    return target


def _failed(response) -> bool:
    return bool(g.get("login_failed"))


def _account_key() -> str:
    return "account:" + request.form.get("email", "").strip().lower()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    key_func=lambda: "address:" + client_address(),
    methods=["POST"],
    deduct_when=_failed,
    scope="login-address",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
    scope="login-account",
)
def login():
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_page)
        if request.args.get("expired"):
            flash(
                _("Your session had expired. Sign in again: what you entered has been kept."),
                "warning",
            )
        return render_template("login.html", email="", next=next_page, error=None)

    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    user = users.find_user(db.session, email) if email else None
    if user is None or not user.active or not users.check_password(user, password):
        g.login_failed = True
        db.session.rollback()
        error = _("The email or the password is not right, or the account is deactivated.")
        return render_template("login.html", email=email, next=next_page, error=error)

    pending = session.get(PENDING)
    session.clear()  # a fresh session on sign-in: nothing planted before it carries over
    if pending:
        session[PENDING] = pending
    login_user(user)
    session.permanent = True
    provenance.record(db.session, user, "login", "user", user.id, {})
    db.session.commit()
    return redirect(next_page)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("web.index"))


@bp.errorhandler(429)
def too_many(exc):
    message = _(
        "Too many failed sign-ins for this account or from this address. Wait 15 minutes and "
        "try again, or ask an administrator."
    )
    email = request.form.get("email", "")
    next_page = safe_next(request.values.get("next"))
    return render_template("login.html", email=email, next=next_page, error=message), 429


# --- Forms that outlive a session ------------------------------------------------------------


def stash_expired_form() -> bool:
    """Keep a form posted without a valid session, to show it again after signing in."""
    if request.method != "POST" or request.path in ("/login", "/logout"):
        return False
    values = {key: request.form.getlist(key) for key in request.form if key not in NOT_KEPT}
    if not values:
        return False
    kept = {"path": request.path, "values": values, "at": int(time.time())}
    if len(repr(kept).encode()) > MAX_KEPT_BYTES:
        return False
    session[PENDING] = kept
    return True


def take_pending_form(path: str) -> dict[str, list[str]] | None:
    """The values kept for the form at `path`, once, or None."""
    kept = session.get(PENDING)
    if not kept or kept.get("path") != path:
        return None
    session.pop(PENDING)
    return kept["values"]


def init_app(app: Flask) -> None:
    from ..extensions import login_manager

    login_manager.login_view = "web.login"

    @app.before_request
    def declare_writes_and_drop_deactivated():
        # Page writes take the write lock when their transaction begins, as the API's do;
        # declared before anything (the user loader below) opens the transaction.
        if request.path.startswith("/api/"):
            return  # the API declares its own writes; its loaders refuse inactive accounts
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            request.environ["constancia.writing"] = database.start_writing()
        # The user loader refuses deactivated accounts; forget them in the cookie too.
        if "_user_id" in session and not current_user.is_authenticated:
            logout_user()

    @app.teardown_request
    def end_writes(exc):
        if request.path.startswith("/api/"):
            return
        token = request.environ.pop("constancia.writing", None)
        if token is not None:
            database.stop_writing(token)
