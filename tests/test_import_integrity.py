"""Bulk-inserted imports (ids taken ahead, COPY on PostgreSQL, audit entries in bulk) keep
the audit chain whole, leave nothing behind when they fail, and never collide with the ids
the API gives next."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from archive.extensions import db
from archive.models import (
    AuditEntry,
    CasualtyCount,
    Citation,
    Event,
    SearchOutbox,
    Source,
    SourceFile,
    StoredFile,
)
from tests import test_imports
from tests.test_imports import CLASH_MAPPING, CLASHES, csv_bytes

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


def _failing_import(factory, monkeypatch):
    """Make the next import's write fail in the database: an event given a taken id."""
    from archive.imports import engine

    taken = factory.event(title="Ya en el archivo")
    take_ids = engine.Writer._take_ids

    def clashing(writer, table, n):
        ids = take_ids(writer, table, n)
        return [taken, *ids[1:]] if table.name == "events" else ids

    monkeypatch.setattr(engine.Writer, "_take_ids", clashing)


def test_a_failed_import_leaves_no_file_in_the_store(app, run, factory, monkeypatch):
    _failing_import(factory, monkeypatch)
    files_before = _stored_files(app)
    result = run(csv_bytes(CLASHES), CLASH_MAPPING)
    assert result.exit_code != 0
    assert _stored_files(app) == files_before


def test_a_failed_import_leaves_nothing_and_the_api_creates_afterwards(
    app, run, runner, client, auth, factory, monkeypatch
):
    _failing_import(factory, monkeypatch)
    before = _counts(app)
    with app.app_context():
        db.session.execute(SearchOutbox.__table__.delete())
        db.session.commit()

    result = run(csv_bytes(CLASHES), CLASH_MAPPING)

    assert result.exit_code != 0
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
