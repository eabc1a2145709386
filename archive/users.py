"""Accounts: passwords hashed with Argon2id (memory-hard), API tokens stored as hashes."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import access, provenance, vocab
from .models import ApiToken, User, utcnow

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"Use at least {MIN_PASSWORD_LENGTH} characters.", "password")
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except VerificationError:
        return False


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(func.lower(User.email) == email.lower())).first()


def create_user(
    session: Session, actor: User | None, email: str, role: str, password: str | None
) -> tuple[User, str]:
    """Create an account; answer it and its password (generated when none is given)."""
    access.require(actor, "manage_users", "users")
    email = email.strip()
    if "@" not in email:
        raise ValidationError("Not a valid email address.", "email")
    if role not in vocab.ROLES:
        raise ValidationError(f"Must be one of: {', '.join(vocab.ROLES)}.", "role")
    if find_user(session, email) is not None:
        raise ValidationError(f"A user with email {email} already exists.", "email")
    password = password or secrets.token_urlsafe(18)
    user = User(email=email, role=role, password_hash=hash_password(password), active=True)
    session.add(user)
    session.flush()
    provenance.record(
        session,
        actor,
        "create_user",
        "user",
        user.id,
        {"email": {"before": None, "after": email}, "role": {"before": None, "after": role}},
    )
    return user, password


def issue_token(session: Session, actor: User | None, user: User) -> str:
    """Make a new API token for `user`; the token is returned once and only its hash is kept."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=access.hash_token(token)))
    session.flush()
    provenance.record(session, actor, "issue_token", "user", user.id, {})
    return token


def change_role(session: Session, actor: User | None, user: User, role: str) -> None:
    access.require(actor, "manage_users", "users")
    if role not in vocab.ROLES:
        raise ValidationError(f"Must be one of: {', '.join(vocab.ROLES)}.", "role")
    if role == user.role:
        return
    _keep_an_admin(session, user, role == "admin" and user.active)
    before, user.role = user.role, role
    session.flush()
    provenance.record(
        session, actor, "change_role", "user", user.id, {"role": {"before": before, "after": role}}
    )


def set_active(session: Session, actor: User | None, user: User, active: bool) -> None:
    """Deactivate (or reactivate) an account; its sessions and tokens stop working at once."""
    access.require(actor, "manage_users", "users")
    if user.active == active:
        return
    _keep_an_admin(session, user, active and user.role == "admin")
    user.active = active
    session.flush()
    provenance.record(
        session,
        actor,
        "activate_user" if active else "deactivate_user",
        "user",
        user.id,
        {"active": {"before": not active, "after": active}},
    )


def revoke_token(session: Session, actor: User | None, user: User, token_id: int) -> None:
    access.require(actor, "manage_users", "users")
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise ValidationError("No such active token for this account.", "token_id")
    token.revoked_at = utcnow()
    session.flush()
    provenance.record(session, actor, "revoke_token", "user", user.id, {"token_id": token_id})


def _keep_an_admin(session: Session, user: User, stays_admin: bool) -> None:
    """Refuse the change that would leave the archive without an active administrator."""
    if user.role != "admin" or not user.active or stays_admin:
        return
    others = session.scalar(
        select(func.count(User.id)).where(
            User.role == "admin", User.active.is_(True), User.id != user.id
        )
    )
    if not others:
        raise ValidationError("The archive must keep at least one active administrator.", "role")
