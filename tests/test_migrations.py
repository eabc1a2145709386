"""Migrations build exactly the schema the models describe, on each database."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from archive.extensions import db


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
