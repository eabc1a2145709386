"""Bulk-inserted imports (ids taken ahead, COPY on PostgreSQL, audit entries in bulk) keep
the audit chain whole, leave nothing behind when they fail, and never collide with the ids
the API gives next."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os

from sqlalchemy import String, func, insert, select

from archive import database, provenance
from archive.extensions import db
from archive.models import (
    AuditEntry,
    CasualtyCount,
    Citation,
    Event,
    Operation,
    SearchOutbox,
    Source,
    SourceFile,
    StoredFile,
)
from tests import test_imports
from tests.test_imports import CLASH_MAPPING, CLASHES, PEOPLE, PEOPLE_MAPPING, csv_bytes

# The import tests' fixtures: `run` imports a file through `flask import run`.
files, run = test_imports.files, test_imports.run

COUNTED = (Event, CasualtyCount, Citation, Source, SourceFile, StoredFile, AuditEntry)


def _counts(app) -> dict[str, int]:
    with app.app_context():
        return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in COUNTED}


def _stored_files(app) -> set[str]:
    root = app.config["FILES_DIR"]
    return {os.path.join(folder, name) for folder, _dirs, names in os.walk(root) for name in names}


def _verify(runner) -> None:
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "Audit log intact" in result.output


def test_the_audit_chain_holds_after_an_import_and_the_api_edits_that_follow(
    app, run, runner, client, auth
):
    assert run(csv_bytes(CLASHES), CLASH_MAPPING).exit_code == 0
    _verify(runner)
    with app.app_context():
        imported = db.session.scalars(select(Event.id).order_by(Event.id)).all()
    assert imported

    created = client.post(
        "/api/v1/events",
        json={"title": "Creado tras importar", "event_type": "raid"},
        headers=auth("researcher"),
    )
    assert created.status_code == 201, created.json
    assert created.json["id"] not in imported and created.json["id"] > max(imported)
    edited = client.patch(
        f"/api/v1/events/{imported[0]}",
        json={"title": "Editado tras importar"},
        headers={
            **auth("editor"),
            "If-Match": client.get(f"/api/v1/events/{imported[0]}", headers=auth("editor")).headers[
                "ETag"
            ],
        },
    )
    assert edited.status_code == 200, edited.json
    _verify(runner)
    # A second import after the API's writes, then the API again.
    assert run(csv_bytes(CLASHES), CLASH_MAPPING, "--on-duplicate", "update").exit_code == 0
    again = client.post(
        "/api/v1/sources",
        json={"title": "Fuente tras importar", "kind": "news_article"},
        headers=auth("researcher"),
    )
    assert again.status_code == 201, again.json
    _verify(runner)


def test_a_failed_import_leaves_no_file_in_the_store(app, run, factory, monkeypatch):
    test_imports.give_the_next_import_a_taken_event_id(factory, monkeypatch)
    files_before = _stored_files(app)
    result = run(csv_bytes(CLASHES), CLASH_MAPPING)
    assert result.exit_code != 0
    assert _stored_files(app) == files_before


def test_a_failed_import_leaves_nothing_and_the_api_creates_afterwards(
    app, run, runner, client, auth, factory, monkeypatch
):
    test_imports.give_the_next_import_a_taken_event_id(factory, monkeypatch)
    before = _counts(app)
    with app.app_context():
        db.session.execute(SearchOutbox.__table__.delete())
        db.session.commit()

    result = run(csv_bytes(CLASHES), CLASH_MAPPING)

    assert result.exit_code != 0
    assert "Writing failed, nothing was kept" in result.output  # refused by the database
    assert _counts(app) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SearchOutbox)) == 0
    _verify(runner)
    monkeypatch.undo()
    for resource, body in (
        ("events", {"title": "Creado tras el fallo", "event_type": "raid"}),
        ("sources", {"title": "Fuente tras el fallo", "kind": "news_article"}),
    ):
        response = client.post(f"/api/v1/{resource}", json=body, headers=auth("researcher"))
        assert response.status_code == 201, response.json
    assert run(csv_bytes(CLASHES), CLASH_MAPPING).exit_code == 0
    response = client.post(
        "/api/v1/events",
        json={"title": "Creado tras importar", "event_type": "raid"},
        headers=auth("researcher"),
    )
    assert response.status_code == 201, response.json
    _verify(runner)


def test_an_imported_record_is_created_and_updated_at_the_time_its_entry_records(app, run):
    """The records an import writes together go in at one time: each one's created_at and
    updated_at are that time, and so is its "create" entry's."""
    assert run(csv_bytes(CLASHES), CLASH_MAPPING).exit_code == 0

    with app.app_context():
        made = {
            (key, record_id): (created, updated)
            for model, key in ((Event, "event"), (CasualtyCount, "casualty_count"))
            for record_id, created, updated in db.session.execute(
                select(model.id, model.created_at, model.updated_at)
            )
        }
        audited = {
            (resource, record_id): at
            for resource, record_id, at in db.session.execute(
                select(AuditEntry.resource, AuditEntry.record_id, AuditEntry.at).where(
                    AuditEntry.action == "create"
                )
            )
        }
    assert len(made) == 2 + 4
    for key, (created, updated) in made.items():
        assert created == updated == audited[key], key


def _stored(table, column: str, keys, skip: tuple[str, ...]) -> list[dict]:
    """The rows whose `column` is one of `keys`, in that order, as the database holds them
    (with, on SQLite, each value's storage class: its own text of dates and times), without
    the columns in `skip`."""
    names = [c.name for c in table.columns if c.name not in skip]
    connection = db.session.connection()
    quote = connection.dialect.identifier_preparer.quote
    wanted = [quote(n) for n in names]
    if connection.dialect.name == "sqlite":
        wanted += [f"typeof({quote(n)})" for n in names]
        names = [*names, *(f"typeof {n}" for n in names)]
    found = connection.exec_driver_sql(
        f"SELECT {', '.join(wanted)} FROM {table.name}"
        f" WHERE {column} IN ({', '.join(map(str, keys))}) ORDER BY {column}"
    )
    return [dict(zip(names, row, strict=True)) for row in found]


def test_bulk_insert_stores_what_an_insert_through_sqlalchemy_stores(app):
    """database.bulk_insert (COPY on PostgreSQL, rows through the columns' types straight to
    the driver on SQLite) stores the very values SQLAlchemy's own executemany would: dates,
    times in UTC, booleans, JSON (an empty list, and a list of text), and NULLs."""
    at = dt.datetime(2015, 7, 13, 21, 30, 5, 120, tzinfo=dt.timezone(dt.timedelta(hours=-6)))

    def operation(n: int, **values) -> dict:
        return {
            "id": n,
            "name": f"Operación {n}",
            "aliases": [],
            "description": None,
            "start_date": dt.date(2015, 7, n),
            "end_date": None,
            "date_precision": "day",
            "end_date_precision": None,
            "announced_by": None,
            "agents_deployed": n * 1000,
            "arrests_claimed": None,
            "created_at": at,
            "updated_at": at + dt.timedelta(microseconds=n),
            "deleted_at": None,
            "version": 1,
            **values,
        }

    def entry(seq: int) -> dict:
        return {
            "seq": seq,
            "at": at,
            "user_id": None,
            "user_email": "tests",
            "action": "create",
            "resource": "operation",
            "record_id": 7,
            "changes_json": '{"name":{"after":"Operación ñ","before":null}}',
            "prev_hash": "0" * 64,
            "hash": f"{seq:064x}",
        }

    operations, entries = Operation.__table__, AuditEntry.__table__
    given = [operation(1), operation(2, aliases=["Relámpago"], start_date=None)]
    with app.app_context():
        database.bulk_insert(db.session, operations, given)
        db.session.execute(insert(operations), [{**row, "id": row["id"] + 10} for row in given])
        database.bulk_insert(
            db.session,
            entries,
            [entry(1001), entry(1002)],
            statement=provenance._insert_entries(),
            renamed={"changes_json": "changes"},
        )
        db.session.execute(
            insert(entries),
            [
                {k: v for k, v in row.items() if k != "changes_json"}
                | {"changes": json.loads(row["changes_json"])}
                for row in (entry(1011), entry(1012))
            ],
        )
        bulk, through = (_stored(operations, "id", ids, ("id",)) for ids in ([1, 2], [11, 12]))
        # The changes' JSON text is the chain's own (compact) encoding: read back, as the
        # audit log reads it, it is the same.
        bulk_entries, through_entries = (
            [
                {c: v for c, v in row._mapping.items() if c not in ("id", "seq", "hash")}
                for row in db.session.execute(
                    select(entries).where(entries.c.seq.in_(seqs)).order_by(entries.c.seq)
                )
            ]
            for seqs in ([1001, 1002], [1011, 1012])
        )
        db.session.rollback()
    assert bulk == through
    assert bulk_entries == through_entries
    assert bulk[0]["aliases"] in ([], "[]") and bulk[1]["start_date"] is None


def test_an_operation_an_import_adds_has_its_aliases_stored_as_the_api_stores_them(
    app, run, factory
):
    """No aliases is an empty JSON list, on PostgreSQL too (COPY once stored it as {})."""
    people = [PEOPLE[0] + ["Operación"]] + [row + ["Relámpago"] for row in PEOPLE[1:]]
    mapping = {
        **PEOPLE_MAPPING,
        "columns": {**PEOPLE_MAPPING["columns"], "Operación": "operation.name"},
    }
    factory.operation(name="Operación Previa")  # through the API

    assert run(csv_bytes(people), mapping).exit_code == 0

    with app.app_context():
        aliases = dict(db.session.execute(select(Operation.name, Operation.aliases)).all())
        stored = dict(
            db.session.execute(select(Operation.name, func.cast(Operation.aliases, String))).all()
        )
    assert aliases == {"Operación Previa": [], "Relámpago": []}
    assert stored["Relámpago"] == stored["Operación Previa"]


def test_an_import_hands_every_object_back_to_the_garbage_collector(app, run):
    """An import keeps the objects alive before it out of the collector's full passes while
    it runs (gc.freeze), and hands them back when it ends, whether it wrote or found errors."""
    assert gc.get_freeze_count() == 0
    bad = [CLASHES[0], ["13/07/2015", "Nuevo León", "Monterrey", "armed_clash_alleged", "x", "1"]]

    assert run(csv_bytes(CLASHES), CLASH_MAPPING).exit_code == 0
    assert gc.get_freeze_count() == 0
    assert run(csv_bytes(bad), CLASH_MAPPING).exit_code != 0
    assert gc.get_freeze_count() == 0
    assert count_events(app) == 2


def count_events(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Event))
