"""Accounts: passwords hashed with Argon2id (memory-hard), API tokens stored as hashes."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import access, provenance, vocab
from .models import ApiToken, User

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
