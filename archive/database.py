"""Engine settings that make SQLite safe for several writing processes.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and
write transactions that take the write lock when they begin (``BEGIN IMMEDIATE``).
A deferred transaction that reads first and writes later cannot wait for the lock once
another process has written in between; it fails at once with "database is locked".
Requests that change data therefore declare it up front with :func:`writing`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from contextvars import ContextVar

from sqlalchemy import event, insert
from sqlalchemy import exc as exc_module
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 30_000

_writing: ContextVar[bool] = ContextVar("constancia_writing", default=False)


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy's "begin" event emit BEGIN itself (see below), not pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
    # SQLite's own lower() folds ASCII letters only, so lower('Último') stayed 'Último' and
    # case-insensitive filters missed accented capitals; fold as PostgreSQL and Python do.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value):
    return value.lower() if isinstance(value, str) else value


@event.listens_for(Engine, "begin")
def _begin_sqlite(conn):
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _writing.get() else "BEGIN")


def start_writing() -> object:
    """Mark the current context as one that will write; return a token for stop_writing."""
    return _writing.set(True)


def stop_writing(token) -> None:
    _writing.reset(token)


@contextlib.contextmanager
def writing():
    """Run the enclosed work in transactions that take the write lock up front."""
    token = start_writing()
    try:
        yield
    finally:
        stop_writing(token)


def bulk_insert(
    session, table, rows: list[dict], *, statement=None, renamed: dict[str, str] | None = None
) -> None:
    """Insert many rows of `table`, each a dict of column values with the same keys, in
    the session's transaction: with COPY on PostgreSQL (whose server otherwise runs an
    INSERT per row), elsewhere by executemany of `statement` (default: the table's insert).

    COPY takes the values as the driver adapts them, past the columns' SQLAlchemy types:
    they must be what the database stores (aware datetimes, JSON as its text); `renamed`
    maps a key to the column it fills."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table) if statement is None else statement, rows)
        return
    from psycopg import sql

    keys = list(rows[0])
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier((renamed or {}).get(k, k)) for k in keys),
    )
    dbapi = connection.dialect.loaded_dbapi
    try:
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy) as out:
            for row in rows:
                out.write_row([row[k] for k in keys])
    except dbapi.Error as exc:
        # As SQLAlchemy raises what the driver raises (IntegrityError for a broken key...).
        raise exc_module.DBAPIError.instance(str(copy), None, exc, dbapi.Error) from exc
