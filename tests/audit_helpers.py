"""Helpers for tests that read or tamper with the audit log directly in the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select, text

from archive.extensions import db
from archive.models import AuditEntry, JSONType


def audit_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(AuditEntry.id)))


def audit_entries(app, **where: Any) -> list[dict[str, Any]]:
    """The log's entries in order, as plain dicts, optionally filtered by column values."""
    with app.app_context():
        stmt = select(AuditEntry).filter_by(**where).order_by(AuditEntry.seq)
        return [
            {column.key: getattr(entry, column.key) for column in AuditEntry.__table__.columns}
            for entry in db.session.scalars(stmt)
        ]


def raw_sql(app, sql: str, **params: Any) -> int:
    """Run one statement behind the app's back, as someone with database access could."""
    statement = text(sql)
    if "changes" in params:
        statement = statement.bindparams(bindparam("changes", type_=JSONType))
    with app.app_context():
        result = db.session.execute(statement, params)
        db.session.commit()
        return result.rowcount
