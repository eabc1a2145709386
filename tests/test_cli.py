"""Accounts from the command line: `users create` and `users token`."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from archive import users
from archive.extensions import db
from archive.models import User

from .audit_helpers import audit_entries

PASSWORD = "correct horse battery staple"


def create(runner, email, role, password=None):
    args = ["users", "create", "--email", email, "--role", role]
    if password is not None:
        args += ["--password", password]
    return runner.invoke(args=args)


def account(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).first()
        if user is not None:
            db.session.expunge(user)
        return user


def user_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(User.id)).all())


def everything_stored(db_rows) -> str:
    return repr(db_rows())


def test_users_create_with_a_password_stores_an_argon2id_hash(app, runner, db_rows):
    result = create(runner, "ana@example.org", "researcher", PASSWORD)
    assert result.exit_code == 0, result.output
    assert "ana@example.org" in result.output
    assert PASSWORD not in result.output

    user = account(app, "ana@example.org")
    assert user.role == "researcher"
    assert user.active
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert users.check_password(user, PASSWORD)
    assert not users.check_password(user, PASSWORD + "!")
    assert PASSWORD not in everything_stored(db_rows)


def test_users_create_without_a_password_prints_a_generated_one(app, runner):
    result = create(runner, "beto@example.org", "viewer")
    assert result.exit_code == 0, result.output
    match = re.search(r"Password:\s*(\S+)", result.output)
    assert match, result.output
    generated = match.group(1)
    assert len(generated) >= users.MIN_PASSWORD_LENGTH

    user = account(app, "beto@example.org")
    assert user.password_hash.startswith("$argon2id$")
    assert generated not in user.password_hash
    assert users.check_password(user, generated)


def test_generated_passwords_differ(app, runner):
    first = create(runner, "uno@example.org", "viewer").output
    second = create(runner, "dos@example.org", "viewer").output
    assert re.search(r"Password:\s*(\S+)", first).group(1) != re.search(
        r"Password:\s*(\S+)", second
    ).group(1)


def test_users_create_is_audited_without_the_password(app, runner):
    assert create(runner, "carla@example.org", "editor", PASSWORD).exit_code == 0
    user = account(app, "carla@example.org")
    (entry,) = audit_entries(app, action="create_user", record_id=user.id)
    assert entry["changes"]["email"]["after"] == "carla@example.org"
    assert entry["changes"]["role"]["after"] == "editor"
    assert PASSWORD not in repr(entry)
    assert not any(user.password_hash in repr(e) for e in audit_entries(app))


@pytest.mark.parametrize("role", ["superuser", "Admin", "anonymous", ""])
def test_a_bad_role_fails_with_a_clear_message(app, runner, db_rows, role):
    before = db_rows()
    result = create(runner, "dora@example.org", role, PASSWORD)
    assert result.exit_code != 0
    assert "role" in result.output.lower()
    for valid in ("viewer", "researcher", "editor", "admin"):
        assert valid in result.output
    assert "Traceback" not in result.output
    assert db_rows() == before


def test_a_duplicate_email_fails(app, runner):
    assert create(runner, "eva@example.org", "viewer", PASSWORD).exit_code == 0
    for email in ("eva@example.org", "EVA@Example.org", " eva@example.org "):
        result = create(runner, email, "admin", PASSWORD)
        assert result.exit_code != 0, email
        assert "already exists" in result.output
        assert "Traceback" not in result.output
    assert user_count(app) == 1
    assert account(app, "eva@example.org").role == "viewer"


@pytest.mark.parametrize(
    ("email", "password", "complaint"),
    [("not-an-email", PASSWORD, "email"), ("fede@example.org", "short", "password")],
)
def test_invalid_accounts_are_refused(app, runner, db_rows, email, password, complaint):
    before = db_rows()
    result = create(runner, email, "viewer", password)
    assert result.exit_code != 0
    assert complaint in result.output.lower()
    assert db_rows() == before


def test_users_token_prints_a_token_that_signs_in_with_the_role(app, runner, client, factory):
    assert create(runner, "gabi@example.org", "researcher", PASSWORD).exit_code == 0
    result = runner.invoke(args=["users", "token", "gabi@example.org"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token and "\n" not in token and " " not in token
    headers = {"Authorization": f"Bearer {token}"}

    # A researcher reads drafts and creates records, but may not delete them.
    draft_id = factory.event()
    assert client.get(f"/api/v1/events/{draft_id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/events/{draft_id}").status_code == 404
    created = client.post(
        "/api/v1/actors", json={"name": "PNB", "kind": "state_police"}, headers=headers
    )
    assert created.status_code == 201
    deleted = client.delete(f"/api/v1/events/{draft_id}", headers=headers)
    assert deleted.status_code == 403
    assert "researcher" in deleted.json["error"]["message"]

    user = account(app, "gabi@example.org")
    (entry,) = audit_entries(app, resource="actor", record_id=created.json["id"])
    assert entry["user_id"] == user.id
    assert entry["user_email"] == "gabi@example.org"


@pytest.mark.parametrize(
    ("role", "can_create", "can_publish"),
    [("viewer", False, False), ("editor", True, True), ("admin", True, True)],
)
def test_tokens_carry_each_role(app, runner, client, factory, role, can_create, can_publish):
    email = f"{role}@example.org"
    assert create(runner, email, role, PASSWORD).exit_code == 0
    token = runner.invoke(args=["users", "token", email]).output.strip()
    headers = {"Authorization": f"Bearer {token}"}

    body = {"name": "CICPC", "kind": "state_police"}
    created = client.post("/api/v1/actors", json=body, headers=headers)
    assert created.status_code == (201 if can_create else 403)

    event_id = factory.event()
    factory.citation(factory.source(), "event", event_id)
    factory.update("events", event_id, status="verified")
    published = client.patch(
        f"/api/v1/events/{event_id}", json={"published": True}, headers=headers
    )
    assert published.status_code == (200 if can_publish else 403)


def test_tokens_are_stored_hashed(app, runner, db_rows):
    assert create(runner, "hugo@example.org", "viewer", PASSWORD).exit_code == 0
    tokens = [
        runner.invoke(args=["users", "token", "hugo@example.org"]).output.strip() for _ in range(2)
    ]
    assert tokens[0] != tokens[1]
    stored = everything_stored(db_rows)
    for token in tokens:
        assert token not in stored
    assert len(db_rows()["api_tokens"]) == 2


def test_each_token_works_and_a_wrong_one_does_not(runner, client):
    assert create(runner, "ines@example.org", "admin", PASSWORD).exit_code == 0
    first, second = (
        runner.invoke(args=["users", "token", "ines@example.org"]).output.strip() for _ in range(2)
    )
    for token in (first, second):
        response = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    altered = first[:-1] + ("A" if first[-1] != "A" else "B")
    wrong = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {altered}"})
    assert wrong.status_code == 401


def test_users_token_for_an_unknown_email_fails(app, runner, db_rows):
    before = db_rows()
    result = runner.invoke(args=["users", "token", "nadie@example.org"])
    assert result.exit_code != 0
    assert "nadie@example.org" in result.output
    assert db_rows() == before


def test_users_token_finds_the_account_whatever_the_case(runner, client):
    assert create(runner, "Juan@Example.org", "admin", PASSWORD).exit_code == 0
    result = runner.invoke(args=["users", "token", "juan@example.org"])
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {result.output.strip()}"}
    assert client.get("/api/v1/audit", headers=headers).status_code == 200
