"""Fixtures: every test that uses `app` runs on SQLite, and on PostgreSQL when
TEST_DATABASE_URL points at a server (CI always sets it; there, nothing may skip)."""

from __future__ import annotations

import os
import uuid

import flask_migrate
import psycopg
import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from archive import create_app
from archive.extensions import db

from .factories import Factory

PG_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = bool(os.environ.get("CI"))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
ROLES = ("viewer", "researcher", "editor", "admin")


def pytest_configure(config):
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI must run on PostgreSQL too: set TEST_DATABASE_URL.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a failed test: a missing dependency must not pass unseen."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


def _migrate(url: str) -> None:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def _admin_url(url: str) -> str:
    """A libpq URL for the server's maintenance connection (psycopg, not SQLAlchemy)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A migrated, empty database of each backend, made for this test run and dropped after."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        _migrate(url)
        yield url
        return
    name = f"constancia_test_{uuid.uuid4().hex[:12]}"
    server = _admin_url(PG_URL)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
    url = url.render_as_string(hide_password=False)
    _migrate(url)
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "FILES_DIR": str(tmp_path / "files"),
            "SEARCH_INDEX_DIR": str(tmp_path / "search"),
        }
    )
    yield app
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def factory(app):
    return Factory(app)


@pytest.fixture
def tokens(factory) -> dict[str, str]:
    """One account per role, each with an API token."""
    return {role: factory.user_token(role) for role in ROLES}


@pytest.fixture
def auth(tokens):
    """auth("editor") gives the headers that sign a request in with that role."""

    def headers(role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"} if role else {}

    return headers


@pytest.fixture
def db_rows(app):
    """A snapshot of every table's rows, to prove that a rejected request changed nothing."""

    def snapshot() -> dict[str, list]:
        with app.app_context():
            return {
                table.name: sorted(map(tuple, db.session.execute(table.select()).all()), key=repr)
                for table in db.metadata.sorted_tables
            }

    return snapshot


@pytest.fixture
def browser_for(app, factory):
    """browser_for("editor") is a test client signed in through /login with that role."""
    from .web_helpers import sign_in

    def make(role: str | None):
        client = app.test_client()
        if role:
            sign_in(client, factory.account(role))
        return client

    return make
