"""Migrations build exactly the schema the models describe, on each database."""

import datetime as dt
import uuid

import flask_migrate
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from archive import create_app, provenance
from archive.extensions import db
from archive.models import AuditEntry, AuditHead

from .conftest import BACKENDS, PG_URL, _admin_url


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


@pytest.fixture(params=BACKENDS)
def blank_url(request, tmp_path):
    """An empty database of each backend, not yet migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.sqlite3'}"
        return
    name = f"constancia_blank_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield (
        make_url(PG_URL)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )
    with psycopg.connect(_admin_url(PG_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrading_an_archive_with_a_log_gives_it_the_head_of_that_log(blank_url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": blank_url})
    with app.app_context():
        flask_migrate.upgrade(revision="0001")
        prev = provenance.GENESIS
        for seq in (1, 2, 3):
            entry = AuditEntry(
                seq=seq,
                at=dt.datetime(2015, 7, 13, 12, seq, tzinfo=dt.UTC),
                action="create",
                resource="event",
                record_id=seq,
                changes={"title": {"before": None, "after": f"Evento {seq}"}},
                prev_hash=prev,
            )
            entry.hash = prev = provenance.entry_hash(entry)
            db.session.execute(
                AuditEntry.__table__.insert().values(
                    {
                        c.key: getattr(entry, c.key)
                        for c in AuditEntry.__table__.columns
                        if c.key != "id"
                    }
                )
            )
        db.session.commit()

        flask_migrate.upgrade()
        head = db.session.get(AuditHead, 1)
        assert (head.seq, head.hash) == (3, prev)
        assert provenance.verify_chain(db.session).ok
        db.session.remove()
        db.engine.dispose()
