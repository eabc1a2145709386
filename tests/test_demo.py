"""`demo load`: the real cases of DOMAIN.md section 6, published, cited, and loaded once."""

from __future__ import annotations

import pytest

from .audit_helpers import audit_count

OLP = "Operación de Liberación y Protección del Pueblo"


@pytest.fixture
def loaded(runner):
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    return result


def everything(client, resource: str, headers=None, **filters) -> list[dict]:
    """Every record of a list, page by page."""
    items, page = [], 1
    while True:
        params = {"page": page, "per_page": 200, **filters}
        body = client.get(f"/api/v1/{resource}", query_string=params, headers=headers).json
        items += body["items"]
        if len(items) >= body["total"]:
            return items
        page += 1


def one(items: list[dict], **match) -> dict:
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_demo_load_creates_the_olp_operation_with_its_forces(client, loaded):
    operation = one(everything(client, "operations"), name=OLP)  # anonymous reader
    assert "OLP" in operation["aliases"]
    assert operation["start_date"] == "2015-07-01"
    assert operation["date_precision"] == "month"
    actors = {a["id"]: a for a in everything(client, "actors")}
    forces = {actors[a["actor_id"]]["acronym"] for a in operation["actors"]}
    assert forces == {"PNB", "CICPC", "SEBIN", "GNB"}


def test_cota_905_event_has_fifteen_killed_and_no_officer_casualties(client, loaded):
    events = everything(client, "events")  # anonymous reader
    operation = one(everything(client, "operations"), name=OLP)
    cota = [e for e in events if "Cota 905" in e["title"] and e["event_type"] == "raid"]
    assert len(cota) == 1, [e["title"] for e in events]
    event = cota[0]
    assert event["operation_id"] == operation["id"]
    assert event["status"] == "verified" and event["published"] is True
    assert event["start_date"] == "2015-07-01" and event["date_precision"] == "month"
    assert "internal_notes" not in event

    place = client.get(f"/api/v1/places/{event['place_id']}").json
    assert place["locality"] == "Cota 905"
    assert place["admin1"] == "Distrito Capital"

    counts = everything(client, "casualty-counts", event_id=event["id"])
    by_cell = {(c["affiliation"], c["outcome"], c["caused_by"]): c["count"] for c in counts}
    killed_by_state = [
        n
        for (affiliation, outcome, caused_by), n in by_cell.items()
        if affiliation != "state_agent" and outcome == "killed" and caused_by == "state"
    ]
    assert killed_by_state == [15]
    agents = {k: n for k, n in by_cell.items() if k[0] == "state_agent"}
    assert {k[1] for k in agents} == {"killed", "injured"}
    assert set(agents.values()) == {0}


def test_kevin_valera_is_a_named_victim_anyone_can_read(client, loaded):
    victims = everything(client, "victims")  # anonymous reader
    valera = one(victims, name="Kevin Valera")
    assert valera["affiliation"] == "state_agent"
    assert valera["outcome"] == "killed"
    assert valera["caused_by"] == "non_state"
    assert valera["on_duty"] is False  # shot at home for his gun, not in an operation
    actor = client.get(f"/api/v1/actors/{valera['actor_id']}").json
    assert actor["name"] == "Policía Municipal de El Hatillo"
    event = client.get(f"/api/v1/events/{valera['event_id']}").json
    assert event["published"] is True and event["place_id"] is not None
    cited = everything(client, "citations", target_type="victim", target_id=valera["id"])
    assert cited


def test_other_reported_figures_are_loaded_as_reported(client, loaded):
    events = everything(client, "events")
    arrests = one(events, event_type="mass_detention")
    (count,) = everything(client, "casualty-counts", event_id=arrests["id"])
    assert (count["outcome"], count["caused_by"], count["count"]) == ("detained", "state", 134)
    source = client.get(f"/api/v1/sources/{count['source_id']}").json
    assert source["kind"] == "official_statement"

    helicoide = one(events, event_type="attack_on_security_forces")
    (count,) = everything(client, "casualty-counts", event_id=helicoide["id"])
    assert (count["affiliation"], count["outcome"], count["count"]) == ("state_agent", "injured", 2)


def test_events_with_citations_are_verified_and_published_for_anonymous_readers(
    client, auth, loaded
):
    staff_events = everything(client, "events", auth("viewer"))
    assert len(staff_events) >= 10
    public_ids = {e["id"] for e in everything(client, "events")}
    for event in staff_events:
        citations = everything(
            client, "citations", auth("viewer"), target_type="event", target_id=event["id"]
        )
        if citations:
            assert event["status"] == "verified", event["title"]
            assert event["published"] is True, event["title"]
            assert event["id"] in public_ids, event["title"]
            assert client.get(f"/api/v1/events/{event['id']}").status_code == 200


def test_every_published_event_has_a_citation_of_a_public_source(client, auth, loaded):
    published = everything(client, "events", auth("viewer"), published="true")
    assert published
    for event in published:
        citations = everything(client, "citations", target_type="event", target_id=event["id"])
        assert citations, event["title"]
        for citation in citations:
            source = client.get(f"/api/v1/sources/{citation['source_id']}")
            assert source.status_code == 200
            assert source.json["restricted"] is False


def test_every_casualty_count_names_its_source(client, auth, loaded):
    counts = everything(client, "casualty-counts", auth("viewer"))
    assert counts
    public = {c["id"] for c in everything(client, "casualty-counts")}
    for count in counts:
        assert count["source_id"] is not None
        source = client.get(f"/api/v1/sources/{count['source_id']}", headers=auth("viewer"))
        assert source.status_code == 200
        assert source.json["title"]
        if count["id"] in public:
            # An anonymous reader can follow the figure to its source.
            assert client.get(f"/api/v1/sources/{count['source_id']}").status_code == 200


def test_demo_load_does_not_invent_victims(client, auth, loaded):
    """Only the named or described people of the reports are victims; figures stay counts."""
    victims = everything(client, "victims", auth("viewer"))
    assert len(victims) <= 5
    for victim in victims:
        cited = everything(
            client, "citations", auth("viewer"), target_type="victim", target_id=victim["id"]
        )
        assert cited, victim


def test_running_demo_load_twice_changes_nothing(app, runner, db_rows, loaded):
    assert "created" in loaded.output
    before, entries = db_rows(), audit_count(app)
    assert entries > 0

    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert db_rows() == before
    assert audit_count(app) == entries


def test_demo_load_leaves_an_editors_later_decision_alone(
    app, client, auth, runner, db_rows, loaded
):
    event = everything(client, "events")[0]
    response = client.patch(
        f"/api/v1/events/{event['id']}", json={"published": False}, headers=auth("editor")
    )
    assert response.status_code == 200
    before, entries = db_rows(), audit_count(app)

    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    assert db_rows() == before
    assert audit_count(app) == entries
    assert client.get(f"/api/v1/events/{event['id']}").status_code == 404


def test_demo_load_if_empty_skips_an_archive_with_records(app, runner, factory, db_rows):
    factory.event()
    before = db_rows()
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert db_rows() == before


def test_demo_load_if_empty_loads_an_empty_archive(client, runner):
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert one(everything(client, "operations"), name=OLP)


def test_demo_load_is_audited_and_the_chain_verifies(app, client, auth, runner, loaded):
    log = client.get("/api/v1/audit?action=publish", headers=auth("admin")).json
    assert log["total"] == len(everything(client, "events"))
    assert {item["user_email"] for item in log["items"]} == {"demo-loader"}

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
