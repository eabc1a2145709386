"""Engine settings that make SQLite safe for several writing processes.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and
write transactions that take the write lock when they begin (``BEGIN IMMEDIATE``).
A deferred transaction that reads first and writes later cannot wait for the lock once
another process has written in between; it fails at once with "database is locked".
Requests that change data therefore declare it up front with :func:`writing`.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import sqlite3
from contextvars import ContextVar

from sqlalchemy import Date, DateTime, event, insert
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


# The page cache a bulk write gets on SQLite (the default is 2 MB): a large transaction's
# index pages then stay in memory instead of spilling to the log and being read back.
BULK_CACHE_KIB = 64 * 1024


@contextlib.contextmanager
def large_page_cache(session, kib: int = BULK_CACHE_KIB):
    """On SQLite, the session's connection keeps up to `kib` of pages in memory while the
    block runs, its own size restored after (on the driver's connection, which answers even
    once a failed write has left the session needing a rollback). Other databases: nothing.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    driver = session.connection().connection.driver_connection
    before = driver.execute("PRAGMA cache_size").fetchone()[0]
    driver.execute(f"PRAGMA cache_size = {-int(kib)}")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA cache_size = {int(before)}")


def bulk_insert(
    session, table, rows: list[dict], *, statement=None, renamed: dict[str, str] | None = None
) -> None:
    """Insert many rows of `table`, each a dict of column values with the same keys, in
    the session's transaction: with COPY on PostgreSQL (whose server otherwise runs an
    INSERT per row), elsewhere by executemany of `statement` (default: the table's insert).

    Either way each value goes through its column's type (in `statement`) as SQLAlchemy
    would send it (see _driver_rows), and the driver gets tuples, without SQLAlchemy's work
    per row; `renamed` maps a key to the column it fills in the COPY (a key `statement`
    binds to a column of another name)."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if statement is None:
        statement = _table_insert(table)
    keys = tuple(rows[0])
    driver = _driver_rows(dialect, statement, keys)
    if dialect.name != "postgresql":
        if driver is None:
            session.execute(statement, rows)
        else:
            sql, values = driver
            connection.exec_driver_sql(sql, values(rows))
        return
    from psycopg import sql

    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier((renamed or {}).get(k, k)) for k in keys),
    )
    dbapi = dialect.loaded_dbapi
    try:
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy) as out:
            for row in driver[1](rows):
                out.write_row(row)
    except dbapi.Error as exc:
        # As SQLAlchemy raises what the driver raises (IntegrityError for a broken key...).
        raise exc_module.DBAPIError.instance(str(copy), None, exc, dbapi.Error) from exc


@functools.cache
def _table_insert(table):
    """The table's plain insert, built once, so that _driver_rows's memory finds it again."""
    return insert(table)


@functools.lru_cache(maxsize=64)
def _driver_rows(dialect, statement, keys: tuple[str, ...]):
    """(SQL, rows -> tuples of driver values) of `statement` executed with dicts of `keys`:
    the statement compiled as SQLAlchemy compiles it for an executemany, each value passed
    through its bind processor (a date's text on SQLite, a time in UTC, a boolean, JSON) as
    SQLAlchemy does. The tuples follow the SQL's parameters on SQLite, `keys` on PostgreSQL
    (for a COPY of those columns). Dates and times, which an import repeats (one time for a
    chunk of records, the same days over and over), are processed once per distinct value.
    None, on SQLite, when the statement needs more than the values given (defaults to
    compute, a name not among the keys): SQLAlchemy's own executemany then does it."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if dialect.name == "postgresql":
        names = keys
    else:
        names = compiled.positiontup
        if (
            not dialect.positional
            or names is None
            or set(names) != set(keys)
            or len(names) != len(keys)
            or compiled.insert_prefetch
            or compiled.post_compile_params
            or compiled.literal_execute_params
        ):
            return None
    get = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    processors = compiled._bind_processors
    processed = []
    for index, name in enumerate(names):
        process = processors.get(name)
        if process is None:
            continue
        kind = compiled.binds[name].type
        kind = getattr(kind, "impl_instance", kind)  # a TypeDecorator's: what it stores as
        processed.append((index, process, isinstance(kind, (Date, DateTime))))

    def values(rows: list[dict]) -> list[tuple]:
        memos = [{} if repeated else None for _, _, repeated in processed]
        out = []
        for row in rows:
            value = get(row)
            if processed:
                value = list(value)
                for (index, process, _), memo in zip(processed, memos, strict=True):
                    if memo is None:
                        value[index] = process(value[index])
                    else:
                        given = value[index]
                        done = memo.get(given, memo)
                        if done is memo:
                            done = memo[given] = process(given)
                        value[index] = done
                value = tuple(value)
            out.append(value)
        return out

    return compiled.string, values
