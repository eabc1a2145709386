"""Who may read and write what (DOMAIN.md section 3): the one place that decides.

Reading is decided by SQL conditions, so that lists, details, counts and nested records
all apply the same rule inside the query; writing by the role ladder below.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, request
from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.elements import ColumnElement

from .extensions import db, login_manager
from .models import (
    Actor,
    ApiToken,
    CasualtyCount,
    Citation,
    ContextFigure,
    Event,
    Operation,
    Place,
    Source,
    User,
    Victim,
)

ROLE_RANK = {"viewer": 1, "researcher": 2, "editor": 3, "admin": 4}

# The lowest role allowed to do each thing; anonymous readers may do none of them.
MINIMUM_ROLE = {
    "read_unpublished": "viewer",
    "read_restricted": "viewer",
    "read_history": "viewer",
    "create": "researcher",
    "update": "researcher",
    "upload": "researcher",
    "review": "researcher",  # draft <-> in_review
    "verify": "editor",
    "publish": "editor",
    "delete": "editor",
    "restore": "editor",
    "read_audit": "admin",
    "manage_users": "admin",
}

# Event status moves a researcher may make; editors may make any move.
RESEARCHER_MOVES = {("draft", "in_review"), ("in_review", "draft")}


class AccessDenied(Exception):
    """Raised when the acting user may not do something; `anonymous` picks 401 over 403."""

    def __init__(self, message: str, anonymous: bool):
        super().__init__(message)
        self.message = message
        self.anonymous = anonymous


def is_staff(user: User | None) -> bool:
    """Whether the user reads everything, restricted and unpublished records included."""
    return allowed(user, "read_unpublished")


def allowed(user: User | None, action: str) -> bool:
    if user is None or not user.is_active:
        return False
    return ROLE_RANK[user.role] >= ROLE_RANK[MINIMUM_ROLE[action]]


def require(user: User | None, action: str, what: str = "this") -> None:
    if allowed(user, action):
        return
    if user is None:
        raise AccessDenied("Authentication required: send 'Authorization: Bearer <token>'.", True)
    raise AccessDenied(
        f"Your role ({user.role}) may not {action.replace('_', ' ')} {what}; "
        f"it takes the {MINIMUM_ROLE[action]} role or above.",
        False,
    )


def require_status_move(user: User | None, old: str, new: str) -> None:
    if old == new:
        return
    if (old, new) in RESEARCHER_MOVES:
        require(user, "review", "events")
    else:
        require(user, "verify", f"events from {old} to {new}")


# --- Reading -------------------------------------------------------------------------------


def event_visible(user: User | None) -> ColumnElement[bool]:
    alive = Event.deleted_at.is_(None)
    if is_staff(user):
        return alive
    return and_(alive, Event.published.is_(True), Event.status == "verified")


def _event_id_visible(column, user: User | None) -> ColumnElement[bool]:
    return column.in_(select(Event.id).where(event_visible(user)))


def source_usable(user: User | None) -> ColumnElement[bool]:
    """A source that may be shown beside records this user sees (not whether it is listed)."""
    alive = Source.deleted_at.is_(None)
    return alive if is_staff(user) else and_(alive, Source.restricted.is_(False))


def _source_id_usable(column, user: User | None) -> ColumnElement[bool]:
    return column.in_(select(Source.id).where(source_usable(user)))


def victim_visible(user: User | None) -> ColumnElement[bool]:
    return and_(Victim.deleted_at.is_(None), _event_id_visible(Victim.event_id, user))


def casualty_count_visible(user: User | None) -> ColumnElement[bool]:
    return and_(
        CasualtyCount.deleted_at.is_(None),
        _event_id_visible(CasualtyCount.event_id, user),
        _source_id_usable(CasualtyCount.source_id, user),
    )


def operation_visible(user: User | None) -> ColumnElement[bool]:
    alive = Operation.deleted_at.is_(None)
    if is_staff(user):
        return alive
    published = select(Event.id).where(event_visible(user), Event.operation_id == Operation.id)
    return and_(alive, exists(published))


def citation_target_visible(user: User | None) -> ColumnElement[bool]:
    victims = victim_visible(user)
    if withholds_restricted(user):
        # A citation of a withheld identity would name the person in its excerpt or locator.
        victims = and_(victims, Victim.identity_restricted.is_(False))
    return or_(
        Citation.operation_id.in_(select(Operation.id).where(operation_visible(user))),
        _event_id_visible(Citation.event_id, user),
        Citation.victim_id.in_(select(Victim.id).where(victims)),
        Citation.casualty_count_id.in_(
            select(CasualtyCount.id).where(casualty_count_visible(user))
        ),
    )


def citation_visible(user: User | None) -> ColumnElement[bool]:
    return and_(
        Citation.deleted_at.is_(None),
        _source_id_usable(Citation.source_id, user),
        citation_target_visible(user),
    )


def context_figure_visible(user: User | None) -> ColumnElement[bool]:
    """Reference data, like actors and places, read by everyone while live; but a figure
    from a restricted source is shown only to those who may see that source."""
    return and_(
        ContextFigure.deleted_at.is_(None),
        _source_id_usable(ContextFigure.source_id, user),
    )


def source_visible(user: User | None) -> ColumnElement[bool]:
    """Listed for anonymous readers when something they see rests on it: a citation, a
    casualty count or a context figure (each names its source, so it can be traced to it)."""
    if is_staff(user):
        return source_usable(user)
    cited = select(Citation.id).where(Citation.source_id == Source.id, citation_visible(user))
    counted = select(CasualtyCount.id).where(
        CasualtyCount.source_id == Source.id, casualty_count_visible(user)
    )
    figured = select(ContextFigure.id).where(
        ContextFigure.source_id == Source.id, context_figure_visible(user)
    )
    return and_(source_usable(user), or_(exists(cited), exists(counted), exists(figured)))


VISIBILITY = {
    Actor: lambda user: Actor.deleted_at.is_(None),
    Place: lambda user: Place.deleted_at.is_(None),
    Operation: operation_visible,
    Event: event_visible,
    Victim: victim_visible,
    CasualtyCount: casualty_count_visible,
    Source: source_visible,
    Citation: citation_visible,
    ContextFigure: context_figure_visible,
}


def visible(model, user: User | None) -> ColumnElement[bool]:
    """The SQL condition under which `user` may see a record of `model`."""
    rule = VISIBILITY.get(model)
    return rule(user) if rule else false()


def deleted_visible(model, user: User | None) -> ColumnElement[bool]:
    """Deleted records, seen only by those who may restore them."""
    if not allowed(user, "restore"):
        return false()
    return model.deleted_at.is_not(None)


def withholds_restricted(user: User | None) -> bool:
    """Whether restricted fields (victims' identities, internal notes) are hidden from `user`."""
    return not allowed(user, "read_restricted")


# --- Who is asking ---------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_for_token(token: str) -> User | None:
    digest = hash_token(token)
    row = db.session.execute(
        select(ApiToken)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        .options(joinedload(ApiToken.user))
    ).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or not row.user.active:
        return None
    return row.user


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def credentials_presented() -> bool:
    return "Authorization" in request.headers


def init_app(app: Flask) -> None:
    login_manager.init_app(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.active else None

    @login_manager.request_loader
    def load_user_from_request(req) -> User | None:
        token = bearer_token()
        return user_for_token(token) if token else None


def acting_user() -> User | None:
    """The signed-in user of this request, or None for an anonymous reader."""
    from flask_login import current_user

    return current_user._get_current_object() if current_user.is_authenticated else None


class SystemActor:
    """The operator at the command line: acts with a role, audited under a name, has no account."""

    id = None
    is_active = True
    is_authenticated = True

    def __init__(self, email: str, role: str = "admin"):
        self.email = email
        self.role = role
