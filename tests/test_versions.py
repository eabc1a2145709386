"""Record versions: every change makes a new one, sent as the ETag, and an edit made against
a version someone else has since replaced is refused (412) instead of undoing their work."""

from __future__ import annotations

import threading

import pytest

from archive import database, records
from archive.extensions import db
from archive.resources import RESOURCES

from .audit_helpers import audit_entries
from .factories import ADMIN

API = "/api/v1"
# One change that every resource accepts from its minimal payload (factories.MINIMAL).
CHANGE = {
    "actors": {"acronym": "PMS"},
    "places": {"locality": "Petare"},
    "operations": {"announced_by": "MPPRIJP"},
    "events": {"agents_deployed": 250},
    "victims": {"age": 24},
    "casualty-counts": {"count": 16},
    "sources": {"publisher": "PROVEA"},
    "citations": {"locator": "p. 3"},
    "context-figures": {"notes": "Proyección del INE"},
}


def make(client, auth, factory, resource: str) -> tuple[str, dict]:
    response = client.post(
        f"{API}/{resource}", json=factory.payload(resource), headers=auth("editor")
    )
    assert response.status_code == 201, response.json
    return f"{API}/{resource}/{response.json['id']}", response


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_a_new_record_is_at_version_1_and_each_change_delete_and_restore_adds_one(
    client, auth, factory, resource
):
    url, created = make(client, auth, factory, resource)
    assert created.json["version"] == 1
    assert created.headers["ETag"] == '"1"'

    changed = client.patch(url, json=CHANGE[resource], headers=auth("editor"))
    assert changed.status_code == 200, changed.json
    assert (changed.json["version"], changed.headers["ETag"]) == (2, '"2"')

    assert client.delete(url, headers=auth("editor")).status_code == 204
    restored = client.post(f"{url}/restore", headers=auth("editor"))
    assert restored.status_code == 200
    assert (restored.json["version"], restored.headers["ETag"]) == (4, '"4"')

    read = client.get(url, headers=auth("viewer"))
    assert (read.json["version"], read.headers["ETag"]) == (4, '"4"')


def test_a_change_that_changes_nothing_makes_no_new_version(client, auth, factory):
    url, _ = make(client, auth, factory, "sources")
    same = client.patch(
        url, json={"title": "Quince muertos en la Cota 905"}, headers=auth("editor")
    )
    assert (same.json["version"], same.headers["ETag"]) == (1, '"1"')


def test_publishing_is_a_change_like_any_other(client, auth, factory):
    event_id = factory.event()
    factory.citation(factory.source(), "event", event_id)
    url = f"{API}/events/{event_id}"
    verified = client.patch(url, json={"status": "verified"}, headers=auth("editor"))
    published = client.patch(url, json={"published": True}, headers=auth("editor"))
    assert (verified.json["version"], published.json["version"]) == (2, 3)


def test_the_version_is_not_a_field_clients_set_nor_one_the_audit_diffs(app, client, auth, factory):
    url, created = make(client, auth, factory, "events")
    refused = client.patch(url, json={"version": 7}, headers=auth("editor"))
    assert refused.status_code == 422 and "version" in refused.json["error"]["fields"]
    client.patch(url, json={"agents_deployed": 250}, headers=auth("editor"))
    for entry in audit_entries(app, resource="event", record_id=created.json["id"]):
        assert "version" not in entry["changes"]


def test_the_second_of_two_editors_who_read_the_same_version_gets_412(
    client, auth, factory, db_rows
):
    url, _ = make(client, auth, factory, "events")
    first = client.get(url, headers=auth("editor"))
    second = client.get(url, headers=auth("researcher"))
    assert first.headers["ETag"] == second.headers["ETag"] == '"1"'

    saved = client.patch(
        url,
        json={"title": "Operativo en la Cota 905"},
        headers={**auth("editor"), "If-Match": first.headers["ETag"]},
    )
    assert saved.status_code == 200
    assert saved.headers["ETag"] == '"2"'

    before = db_rows()
    stale = client.patch(
        url,
        json={"title": "Allanamiento en la Cota 905"},
        headers={**auth("researcher"), "If-Match": second.headers["ETag"]},
    )
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    error = stale.json["error"]
    assert error["status"] == 412 and error["fields"] == {}
    assert "someone else changed it" in error["message"]
    assert stale.json["current"]["title"] == "Operativo en la Cota 905"
    assert stale.json["current"]["version"] == 2
    assert db_rows() == before


def test_the_current_record_in_a_412_is_what_the_writer_may_see(client, auth, factory):
    url, _ = make(client, auth, factory, "events")
    client.patch(url, json={"internal_notes": "Confirmar."}, headers=auth("editor"))
    stale = client.patch(
        url, json={"agents_deployed": 3}, headers={**auth("researcher"), "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json["current"]["internal_notes"] == "Confirmar."


def test_a_delete_against_a_stale_version_is_refused(client, auth, factory, db_rows):
    url, _ = make(client, auth, factory, "sources")
    client.patch(url, json={"publisher": "PROVEA"}, headers=auth("editor"))
    before = db_rows()
    stale = client.delete(url, headers={**auth("editor"), "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json["current"]["publisher"] == "PROVEA"
    assert db_rows() == before
    assert client.delete(url, headers={**auth("editor"), "If-Match": '"2"'}).status_code == 204


@pytest.mark.parametrize(
    "if_match, status",
    [
        ('"2"', 200),
        ("*", 200),
        ('"1", "2"', 200),
        ('W/"2"', 200),
        ('"1"', 412),
        ('"1", "3"', 412),
        ('"abc"', 412),
        ("", 412),
    ],
)
def test_if_match_is_read_leniently(client, auth, factory, if_match, status):
    url, _ = make(client, auth, factory, "actors")
    client.patch(url, json={"acronym": "PMS"}, headers=auth("editor"))
    response = client.patch(
        url, json={"acronym": "PoliSucre"}, headers={**auth("editor"), "If-Match": if_match}
    )
    assert response.status_code == status, response.json


def test_without_if_match_the_last_write_wins_as_before(client, auth, factory):
    url, _ = make(client, auth, factory, "actors")
    client.patch(url, json={"acronym": "PMS"}, headers=auth("editor"))
    response = client.patch(url, json={"acronym": "PoliSucre"}, headers=auth("editor"))
    assert (response.status_code, response.json["version"]) == (200, 3)


def test_missing_and_forbidden_come_before_a_stale_version(client, auth, factory):
    url, _ = make(client, auth, factory, "sources")
    stale = {"If-Match": '"9"'}
    assert (
        client.patch(
            f"{API}/sources/999999", json={}, headers={**auth("editor"), **stale}
        ).status_code
        == 404
    )
    assert client.patch(url, json={}, headers={**auth("viewer"), **stale}).status_code == 403
    assert client.delete(url, headers={**auth("researcher"), **stale}).status_code == 403


def test_the_services_take_the_version_the_writer_read(app, factory):
    event_id = factory.event()
    events = RESOURCES["events"]
    with app.app_context(), database.writing():
        records.update_record(db.session, ADMIN, events, event_id, {"title": "Uno"}, 1)
        db.session.commit()
        with pytest.raises(records.StaleRecord) as stale:
            records.update_record(db.session, ADMIN, events, event_id, {"title": "Dos"}, 1)
        assert (stale.value.record.title, stale.value.record.version) == ("Uno", 2)
        assert "someone else changed it" in stale.value.message
        db.session.rollback()
        with pytest.raises(records.StaleRecord):
            records.delete_record(db.session, ADMIN, events, event_id, expected_version=1)
        db.session.rollback()
        records.delete_record(db.session, ADMIN, events, event_id, expected_version=2)
        db.session.commit()
        restored = records.restore_record(db.session, ADMIN, events, event_id)
        assert restored.version == 4
        db.session.commit()


def test_of_two_concurrent_saves_of_the_same_version_only_the_first_passes(app, factory):
    """The second writer waits for the first's lock, then finds the version it expected gone."""
    event_id = factory.event()
    events = RESOURCES["events"]
    outcome: dict[str, object] = {}

    def second_writer():
        with app.app_context(), database.writing():
            try:
                records.update_record(db.session, ADMIN, events, event_id, {"title": "B"}, 1)
                db.session.commit()
                outcome["second"] = "saved"
            except records.StaleRecord as exc:
                db.session.rollback()
                outcome["second"] = exc.record.title

    with app.app_context(), database.writing():
        records.update_record(db.session, ADMIN, events, event_id, {"title": "A"}, 1)
        second = threading.Thread(target=second_writer)
        second.start()
        second.join(timeout=0.5)
        assert second.is_alive(), "the second writer did not wait for the first one's lock"
        db.session.commit()
    second.join(timeout=30)
    assert outcome == {"second": "A"}


def test_the_api_description_names_etag_if_match_and_412(client):
    spec = client.get(f"{API}/openapi.json").json
    item = spec["paths"][f"{API}/events/{{record_id}}"]
    for method in ("patch", "delete"):
        assert "If-Match" in [p["name"] for p in item[method]["parameters"]]
        assert "412" in item[method]["responses"]
    for method in ("get", "patch"):
        assert "ETag" in item[method]["responses"]["200"]["headers"]
    assert spec["components"]["schemas"]["Event"]["properties"]["version"]["readOnly"]
