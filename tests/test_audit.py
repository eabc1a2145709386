"""The audit log: every change recorded with who, when, what; the hash chain catches tampering."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from archive import provenance
from archive.extensions import db
from archive.models import AuditEntry

from .audit_helpers import audit_count, audit_entries, raw_sql


def signed_in(factory, role: str, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {factory.user_token(role, email=email)}"}


def names_entry(output: str, seq: int) -> bool:
    return re.search(rf"\bentry {seq}\b", output) is not None


def test_an_events_whole_life_is_audited_with_who_when_and_what(app, client, factory):
    editor = signed_in(factory, "editor", "editora@example.org")
    started = dt.datetime.now(dt.UTC)

    event = client.post(
        "/api/v1/events", json={"title": "Allanamiento", "event_type": "raid"}, headers=editor
    ).json
    event_id, url = event["id"], f"/api/v1/events/{event['id']}"
    assert (
        client.patch(url, json={"title": "Allanamiento en Cota 905"}, headers=editor).status_code
        == 200
    )
    assert client.patch(url, json={"status": "in_review"}, headers=editor).status_code == 200
    source_id = client.post(
        "/api/v1/sources", json={"kind": "ngo_report", "title": "Informe"}, headers=editor
    ).json["id"]
    citation = {"source_id": source_id, "target_type": "event", "target_id": event_id}
    assert client.post("/api/v1/citations", json=citation, headers=editor).status_code == 201
    assert client.patch(url, json={"status": "verified"}, headers=editor).status_code == 200
    assert client.patch(url, json={"published": True}, headers=editor).status_code == 200
    assert client.patch(url, json={"published": False}, headers=editor).status_code == 200
    assert client.delete(url, headers=editor).status_code == 204
    assert client.post(f"{url}/restore", headers=editor).status_code == 200
    finished = dt.datetime.now(dt.UTC)

    entries = audit_entries(app, resource="event", record_id=event_id)
    assert [e["action"] for e in entries] == [
        "create",
        "update",
        "status_change",
        "status_change",
        "publish",
        "unpublish",
        "delete",
        "restore",
    ]
    editor_ids = {e["user_id"] for e in entries}
    assert len(editor_ids) == 1 and None not in editor_ids
    for entry in entries:
        assert entry["user_email"] == "editora@example.org"
        assert started - dt.timedelta(seconds=1) <= entry["at"] <= finished
        assert entry["at"].utcoffset() == dt.timedelta(0)

    create, update, review, verify, publish, unpublish, delete, restore = (
        e["changes"] for e in entries
    )
    assert create["title"] == {"before": None, "after": "Allanamiento"}
    assert create["event_type"] == {"before": None, "after": "raid"}
    assert update == {"title": {"before": "Allanamiento", "after": "Allanamiento en Cota 905"}}
    assert review == {"status": {"before": "draft", "after": "in_review"}}
    assert verify == {"status": {"before": "in_review", "after": "verified"}}
    assert publish == {"published": {"before": False, "after": True}}
    assert unpublish == {"published": {"before": True, "after": False}}
    assert delete["deleted_at"]["before"] is None and delete["deleted_at"]["after"]
    assert restore == {"deleted_at": {"before": delete["deleted_at"]["after"], "after": None}}

    history = client.get(f"{url}/history", headers=editor).json
    assert [item["action"] for item in history["items"]] == [e["action"] for e in entries]


@pytest.mark.parametrize(
    ("resource", "key"),
    [
        ("actors", "actor"),
        ("places", "place"),
        ("operations", "operation"),
        ("sources", "source"),
        ("victims", "victim"),
        ("casualty-counts", "casualty_count"),
        ("citations", "citation"),
    ],
)
def test_creating_updating_and_deleting_any_record_is_audited(app, client, factory, resource, key):
    editor = signed_in(factory, "editor", "editor@example.org")
    event_id, source_id = factory.event(), factory.source()
    bodies = {
        "actors": ({"name": "PNB", "kind": "state_police"}, {"acronym": "PNB"}),
        "places": ({"country": "VE", "admin1": "Miranda"}, {"admin2": "El Hatillo"}),
        "operations": ({"name": "OLP"}, {"aliases": ["Operación Liberación"]}),
        "sources": ({"kind": "news_article", "title": "Nota"}, {"publisher": "Diario"}),
        "victims": ({"event_id": event_id, "outcome": "killed"}, {"age": 19}),
        "casualty-counts": (
            {
                "event_id": event_id,
                "source_id": source_id,
                "affiliation": "civilian",
                "outcome": "killed",
                "caused_by": "state",
                "count": 15,
            },
            {"count": 14},
        ),
        "citations": (
            {"source_id": source_id, "target_type": "event", "target_id": event_id},
            {"locator": "p. 3"},
        ),
    }
    created, patch = bodies[resource]
    response = client.post(f"/api/v1/{resource}", json=created, headers=editor)
    assert response.status_code == 201, response.json
    record_id = response.json["id"]
    assert (
        client.patch(f"/api/v1/{resource}/{record_id}", json=patch, headers=editor).status_code
        == 200
    )
    assert client.delete(f"/api/v1/{resource}/{record_id}", headers=editor).status_code == 204

    entries = audit_entries(app, resource=key, record_id=record_id)
    assert [e["action"] for e in entries] == ["create", "update", "delete"]
    assert all(e["user_email"] == "editor@example.org" for e in entries)
    (field, after), *_ = patch.items()
    assert entries[1]["changes"][field]["after"] == after


def test_a_rejected_request_writes_no_audit_entry(app, client, factory, auth):
    event_id = factory.event()
    before = audit_count(app)
    url = f"/api/v1/events/{event_id}"
    assert client.patch(url, json={"title": "x"}, headers=auth("viewer")).status_code == 403
    assert (
        client.patch(url, json={"event_type": "bogus"}, headers=auth("editor")).status_code == 422
    )
    # Verifying needs a citation.
    assert client.patch(url, json={"status": "verified"}, headers=auth("editor")).status_code == 422
    assert audit_count(app) == before


def test_a_patch_that_changes_nothing_adds_no_entry(app, client, factory, auth):
    event_id = factory.event(title="Sin cambios")
    before = audit_count(app)
    response = client.patch(
        f"/api/v1/events/{event_id}", json={"title": "Sin cambios"}, headers=auth("editor")
    )
    assert response.status_code == 200
    assert audit_count(app) == before


# --- The hash chain --------------------------------------------------------------------------


@pytest.fixture
def logged(factory, app) -> int:
    """A short log of a few changes; answers how many entries it holds."""
    actor_id = factory.actor(name="Policía Municipal de El Hatillo")
    factory.update("actors", actor_id, acronym="PoliHatillo")
    factory.place()
    factory.published_event()
    factory.delete("actors", actor_id)
    return audit_count(app)


def test_audit_verify_passes_on_an_intact_log(runner, logged):
    assert logged >= 5
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert str(logged) in result.output


def test_audit_verify_passes_on_an_empty_log(runner):
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_altered_changes_are_detected_and_the_entry_named(app, runner, logged):
    entry = audit_entries(app, seq=3)[0]
    forged = {**entry["changes"], "forged": {"before": None, "after": "yes"}}
    assert raw_sql(app, "UPDATE audit_entries SET changes = :changes WHERE seq = 3", changes=forged)

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, 3), result.output


def test_a_changed_value_inside_changes_is_detected(app, runner, factory):
    event_id = factory.event(title="Quince muertos")
    factory.update("events", event_id, title="Quince muertos en Cota 905")
    factory.actor()
    seq = audit_entries(app, resource="event", record_id=event_id, action="update")[0]["seq"]
    changes = audit_entries(app, seq=seq)[0]["changes"]
    changes["title"]["after"] = "Enfrentamiento"
    raw_sql(
        app,
        "UPDATE audit_entries SET changes = :changes WHERE seq = :seq",
        changes=changes,
        seq=seq,
    )

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, seq), result.output


@pytest.mark.parametrize(
    "assignment",
    [
        "user_email = 'someone-else@example.org'",
        "action = 'publish'",
        "record_id = record_id + 1",
        "resource = 'place'",
        "prev_hash = hash",
        "hash = '" + "0" * 64 + "'",
    ],
)
def test_any_altered_column_is_detected(app, runner, logged, assignment):
    assert raw_sql(app, f"UPDATE audit_entries SET {assignment} WHERE seq = 2") == 1
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, 2), result.output


def test_a_rehashed_forgery_is_caught_at_the_next_entry(app, runner, logged):
    """Rewriting an entry and its own hash still breaks the link from the entry after it."""
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.seq == 3)).one()
        entry.changes = {"name": {"before": None, "after": "otro"}}
        entry.hash = provenance.entry_hash(entry)
        db.session.commit()

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, 4), result.output


@pytest.mark.parametrize("seq", [1, 3])
def test_a_removed_entry_is_detected(app, runner, logged, seq):
    assert raw_sql(app, "DELETE FROM audit_entries WHERE seq = :seq", seq=seq) == 1
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, seq), result.output


def test_removing_the_last_entries_is_detected(app, runner, logged):
    assert raw_sql(app, "DELETE FROM audit_entries WHERE seq >= :seq", seq=logged - 1) == 2
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, logged - 1), result.output


def test_emptying_the_log_is_detected(app, runner, logged):
    assert raw_sql(app, "DELETE FROM audit_entries") == logged
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, 1), result.output


def test_a_rehashed_forgery_of_the_last_entry_is_caught_by_the_head(app, runner, logged):
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.seq == logged)).one()
        entry.action = "restore"
        entry.hash = provenance.entry_hash(entry)
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, logged), result.output


def test_an_entry_appended_behind_the_heads_back_is_detected(app, runner, logged):
    raw_sql(app, "UPDATE audit_head SET seq = seq - 1")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert names_entry(result.output, logged), result.output


def test_removing_the_head_is_detected(app, runner, logged):
    assert raw_sql(app, "DELETE FROM audit_head") == 1
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "head" in result.output


def test_a_head_kept_elsewhere_catches_a_log_cut_short_with_its_head(app, runner, logged):
    kept = runner.invoke(args=["audit", "head"])
    assert kept.exit_code == 0
    seq, digest = kept.output.strip().split(":")
    assert int(seq) == logged and digest == audit_entries(app, seq=logged)[0]["hash"]
    assert runner.invoke(args=["audit", "verify", "--expect", kept.output.strip()]).exit_code == 0

    # Someone with database access removes the last entry and rewrites the head to match.
    raw_sql(app, "DELETE FROM audit_entries WHERE seq = :seq", seq=logged)
    previous = audit_entries(app, seq=logged - 1)[0]
    raw_sql(
        app, "UPDATE audit_head SET seq = :seq, hash = :h", seq=previous["seq"], h=previous["hash"]
    )
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0  # the database alone agrees
    result = runner.invoke(args=["audit", "verify", "--expect", kept.output.strip()])
    assert result.exit_code != 0
    assert names_entry(result.output, logged), result.output


def test_audit_verify_refuses_a_malformed_expectation(runner, logged):
    result = runner.invoke(args=["audit", "verify", "--expect", "tres"])
    assert result.exit_code == 2
    assert "SEQ:HASH" in result.output


# --- Reading the log over the API ------------------------------------------------------------


def test_admin_reads_the_audit_log(client, factory, auth, logged):
    response = client.get("/api/v1/audit", headers=auth("admin"))
    assert response.status_code == 200
    body = response.json
    assert body["total"] >= logged
    seqs = [item["seq"] for item in body["items"]]
    assert seqs == sorted(seqs, reverse=True)
    item = body["items"][-1]
    assert set(item) >= {"seq", "at", "user_email", "action", "resource", "record_id", "changes"}
    assert set(item) >= {"prev_hash", "hash"}

    actors = client.get("/api/v1/audit?resource=actor&per_page=2", headers=auth("admin")).json
    assert actors["per_page"] == 2
    assert len(actors["items"]) == 2
    assert {item["resource"] for item in actors["items"]} == {"actor"}
    assert actors["items"][0]["action"] == "delete"


@pytest.mark.parametrize("name", ["actors", "actor"])
def test_the_audit_log_filters_by_the_apis_resource_name_or_its_own(client, auth, logged, name):
    response = client.get(f"/api/v1/audit?resource={name}", headers=auth("admin"))
    assert response.json["total"] == 3  # created, updated, deleted
    assert {item["resource"] for item in response.json["items"]} == {"actor"}


def test_the_audit_log_refuses_an_unknown_resource(client, auth, logged):
    response = client.get("/api/v1/audit?resource=people", headers=auth("admin"))
    assert response.status_code == 422
    assert "resource" in response.json["error"]["fields"]


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 403), ("editor", 403)])
def test_only_admins_read_the_audit_log(client, auth, role, status):
    response = client.get("/api/v1/audit", headers=auth(role))
    assert response.status_code == status
    assert response.json["error"]["status"] == status


def test_audit_log_rejects_unknown_filters(client, auth):
    response = client.get("/api/v1/audit?colour=red", headers=auth("admin"))
    assert response.status_code == 422
    assert "colour" in response.json["error"]["fields"]


def test_entries_appended_in_bulk_read_back_as_given_and_verify(app, runner, logged):
    """provenance.Appender (bulk imports) encodes each entry's changes once and hashes the
    canonical form put together from its parts: the log must read back what was given, and
    `flask audit verify` must pass over entries written both ways."""
    from archive import database
    from archive.access import SystemActor

    given = [
        {"title": {"before": None, "after": "Enfrentamiento en Nuevo León — «Cd. Juárez»"}},
        {"latitude": {"before": None, "after": 25.6866}, "actors": {"before": None, "after": []}},
        {"count": {"before": 3, "after": 5042}, "published": {"before": None, "after": False}},
        {},
    ]
    with app.app_context(), database.writing():
        chain = provenance.Appender(db.session)
        user = SystemActor("importa@example.org", role="researcher")
        for number, changes in enumerate(given):
            chain.record(user, "create", "event", number + 1, changes, plain=number % 2 == 0)
        chain.record(None, "import", "source", None, {"when": dt.date(2015, 7, 13)})
        chain.close()
        db.session.commit()
    with app.app_context():
        kept = db.session.scalars(
            select(AuditEntry).where(AuditEntry.seq > logged).order_by(AuditEntry.seq)
        ).all()
        assert [e.changes for e in kept] == [*given, {"when": "2015-07-13"}]
        assert all(provenance.entry_hash(e) == e.hash for e in kept)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert str(logged + len(given) + 1) in result.output
