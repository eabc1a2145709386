"""The JSON API as its users meet it: every resource's create, read, list, change, delete,
restore and history; the list filters, sort and paging; an event's way from draft to published.

Failures of each of these are in test_validation.py, who may do what in test_permissions.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

API = "/api/v1"
MISSING = 999_999

# For each resource: a new record with every field a user would fill in (its references built
# fresh), and a partial change of one field.
NEW: dict[str, Callable] = {
    "actors": lambda f: {
        "name": "Policía Municipal de El Hatillo",
        "acronym": "PoliHatillo",
        "kind": "state_police",
        "parent_id": f.actor(name="Policías municipales"),
        "jurisdiction": "municipal",
        "description": "Cuerpo de policía del municipio El Hatillo.",
    },
    "operations": lambda f: {
        "name": "Operación de Liberación y Protección del Pueblo",
        "aliases": ["OLP", "Operación Liberación del Pueblo"],
        "description": "Plan de seguridad anunciado en julio de 2015.",
        "start_date": "2015-07-13",
        "end_date": "2017-01-31",
        "date_precision": "day",
        "announced_by": "Ministerio del Poder Popular para Relaciones Interiores",
        "agents_deployed": 80000,
        "arrests_claimed": 134,
        "actors": [{"actor_id": f.actor(), "role": "lead"}],
    },
    "places": lambda f: {
        "country": "VE",
        "admin1": "Distrito Capital",
        "admin2": "Libertador",
        "admin3": "El Paraíso",
        "locality": "Cota 905",
        "latitude": 10.4846,
        "longitude": -66.9289,
        "precision": "exact",
    },
    "events": lambda f: {
        "title": "Operativo en la Cota 905",
        "description": "Allanamiento de varias viviendas del sector.",
        "event_type": "raid",
        "start_date": "2015-07-13",
        "end_date": "2015-07-14",
        "place_id": f.place(),
        "operation_id": f.operation(),
        "actors": [{"actor_id": f.actor(), "role": "perpetrator"}],
        "agents_deployed": 250,
        "official_account": "enfrentamiento",
        "internal_notes": "Confirmar la cifra de funcionarios.",
    },
    "victims": lambda f: {
        "event_id": f.event(),
        "name": "Kevin Valera",
        "alias": "El Flaco",
        "age": 24,
        "sex": "male",
        "affiliation": "civilian",
        "actor_id": None,
        "outcome": "killed",
        "caused_by": "state",
        "responsible_actor_id": f.actor(),
        "circumstances": "Muerto dentro de su vivienda.",
        "on_duty": None,
        "identity_restricted": False,
    },
    "casualty-counts": lambda f: {
        "event_id": f.event(),
        "source_id": f.source(),
        "affiliation": "civilian",
        "outcome": "killed",
        "caused_by": "state",
        "count": 15,
        "notes": "Cifra de la nota de prensa.",
    },
    "sources": lambda f: {
        "kind": "ngo_report",
        "title": "Informe sobre la OLP",
        "publisher": "PROVEA",
        "author": "Equipo de investigación",
        "url": "https://example.org/informe-olp",
        "published_at": "2015-10-01",
        "accessed_at": "2024-01-15",
        "language": "es",
        "reliability": "B",
        "restricted": False,
    },
    "citations": lambda f: {
        "source_id": f.source(),
        "target_type": "event",
        "target_id": f.event(),
        "field": "agents_deployed",
        "excerpt": "Más de 250 funcionarios participaron.",
        "locator": "p. 12",
        "credibility": 2,
    },
    "context-figures": lambda f: {
        "country": "VE",
        "admin1": "Distrito Capital",
        "admin2": "Libertador",
        "year": 2015,
        "population": 2_082_130,
        "homicides": 3_387,
        "source_id": f.source(),
        "notes": "Proyección de población del INE; homicidios del CICPC.",
    },
}
CHANGE = {
    "actors": {"acronym": "PMEH"},
    "operations": {"arrests_claimed": 200},
    "places": {"locality": "El Cementerio"},
    "events": {"title": "Operativo en la Cota 905 y El Cementerio"},
    "victims": {"outcome": "injured"},
    "casualty-counts": {"count": 14},
    "sources": {"publisher": "Efecto Cocuyo"},
    "citations": {"locator": "párrafo 3"},
    "context-figures": {"homicides": 3_400},
}
KEYS = {
    "actors": "actor",
    "operations": "operation",
    "places": "place",
    "events": "event",
    "victims": "victim",
    "casualty-counts": "casualty_count",
    "sources": "source",
    "citations": "citation",
    "context-figures": "context_figure",
}
RESOURCES = tuple(NEW)


def create(client, auth, resource: str, payload: dict, role: str = "researcher") -> dict:
    response = client.post(f"{API}/{resource}", json=payload, headers=auth(role))
    assert response.status_code == 201, response.json
    return response.json


def listed(client, auth, resource: str, query: str = "", role: str = "viewer") -> dict:
    response = client.get(f"{API}/{resource}?{query}", headers=auth(role))
    assert response.status_code == 200, response.json
    return response.json


def listed_ids(client, auth, resource: str, query: str = "") -> list[int]:
    return [item["id"] for item in listed(client, auth, resource, query)["items"]]


def test_the_tables_cover_every_resource_of_the_api(client):
    assert set(client.get(f"{API}/").json["resources"]) == set(NEW) == set(CHANGE) == set(KEYS)


# --- Each resource from create to history ----------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_create_answers_the_record_as_sent(client, factory, auth, resource):
    payload = NEW[resource](factory)
    response = client.post(f"{API}/{resource}", json=payload, headers=auth("researcher"))
    assert response.status_code == 201, response.json
    body = response.json
    assert type(body["id"]) is int
    assert {name: body[name] for name in payload} == payload
    assert response.headers["Location"].endswith(f"{API}/{resource}/{body['id']}")
    for stamp in ("created_at", "updated_at"):
        assert dt.datetime.fromisoformat(body[stamp]).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("resource", RESOURCES)
def test_detail_and_list_answer_what_create_answered(client, factory, auth, resource):
    created = create(client, auth, resource, NEW[resource](factory))
    detail = client.get(f"{API}/{resource}/{created['id']}", headers=auth("viewer"))
    assert detail.status_code == 200
    assert detail.json == created
    items = listed(client, auth, resource, "per_page=200")["items"]
    assert [item for item in items if item["id"] == created["id"]] == [created]


@pytest.mark.parametrize("resource", RESOURCES)
def test_patch_changes_only_the_given_fields(client, factory, auth, resource):
    created = create(client, auth, resource, NEW[resource](factory))
    change = CHANGE[resource]
    assert all(created[name] != value for name, value in change.items())
    response = client.patch(
        f"{API}/{resource}/{created['id']}", json=change, headers=auth("researcher")
    )
    assert response.status_code == 200, response.json
    assert (
        response.json
        == client.get(f"{API}/{resource}/{created['id']}", headers=auth("viewer")).json
    )
    expected = {**created, **change, "version": created["version"] + 1}
    del expected["updated_at"]
    assert {k: v for k, v in response.json.items() if k != "updated_at"} == expected


@pytest.mark.parametrize("resource", RESOURCES)
def test_delete_hides_the_record_and_restore_brings_it_back(client, factory, auth, resource):
    created = create(client, auth, resource, NEW[resource](factory))
    path = f"{API}/{resource}/{created['id']}"

    deleted = client.delete(path, headers=auth("editor"))
    assert deleted.status_code == 204
    assert deleted.data == b""
    assert client.get(path, headers=auth("editor")).status_code == 404
    assert created["id"] not in listed_ids(client, auth, resource, "per_page=200")
    assert client.patch(path, json=CHANGE[resource], headers=auth("editor")).status_code == 404

    restored = client.post(f"{path}/restore", headers=auth("editor"))
    assert restored.status_code == 200
    # Deleting and restoring are two revisions: the record is as it was, two versions on.
    assert {k: v for k, v in restored.json.items() if k != "updated_at"} == {
        **{k: v for k, v in created.items() if k != "updated_at"},
        "version": created["version"] + 2,
    }
    assert client.get(path, headers=auth("viewer")).status_code == 200
    assert created["id"] in listed_ids(client, auth, resource, "per_page=200")


@pytest.mark.parametrize("resource", RESOURCES)
def test_history_lists_every_revision_with_before_and_after(client, factory, auth, resource):
    payload = NEW[resource](factory)
    created = create(client, auth, resource, payload)
    path = f"{API}/{resource}/{created['id']}"
    (name, value), *_ = CHANGE[resource].items()
    assert client.patch(path, json={name: value}, headers=auth("researcher")).status_code == 200
    assert client.delete(path, headers=auth("editor")).status_code == 204
    assert client.post(f"{path}/restore", headers=auth("editor")).status_code == 200

    response = client.get(f"{path}/history", headers=auth("viewer"))
    assert response.status_code == 200
    items = response.json["items"]
    assert response.json["total"] == len(items) == 4
    assert [item["action"] for item in items] == ["create", "update", "delete", "restore"]
    assert {item["resource"] for item in items} == {KEYS[resource]}
    assert {item["record_id"] for item in items} == {created["id"]}
    assert [item["seq"] for item in items] == sorted(item["seq"] for item in items)
    create_entry, update_entry, delete_entry, restore_entry = items
    assert create_entry["user_email"].startswith("researcher-")
    assert all(
        create_entry["changes"][k] == {"before": None, "after": v}
        for k, v in payload.items()
        if v is not None
    )
    assert update_entry["changes"] == {name: {"before": created[name], "after": value}}
    assert delete_entry["user_email"].startswith("editor-")
    assert delete_entry["changes"]["deleted_at"]["before"] is None
    assert restore_entry["changes"]["deleted_at"]["after"] is None
    assert (
        restore_entry["changes"]["deleted_at"]["before"]
        == delete_entry["changes"]["deleted_at"]["after"]
    )


def test_history_of_another_record_is_not_mixed_in(client, factory, auth):
    first, second = factory.actor(), factory.actor()
    client.patch(f"{API}/actors/{second}", json={"acronym": "X"}, headers=auth("researcher"))
    items = client.get(f"{API}/actors/{first}/history", headers=auth("viewer")).json["items"]
    assert [(item["action"], item["record_id"]) for item in items] == [("create", first)]


# --- What a record answers -------------------------------------------------------------------


def test_an_event_starts_as_an_unpublished_draft_with_day_precision(client, factory, auth):
    body = create(client, auth, "events", NEW["events"](factory))
    assert body["status"] == "draft"
    assert body["published"] is False
    assert body["date_precision"] == "day"


@pytest.mark.parametrize(
    "start_date, stored, precision",
    [
        ("2015-07-13", "2015-07-13", "day"),
        ("2015-07", "2015-07-01", "month"),
        ("2015", "2015-01-01", "year"),
    ],
)
def test_a_start_date_may_be_partial_and_sets_its_precision(
    client, auth, start_date, stored, precision
):
    body = create(
        client, auth, "events", {"title": "Evento", "event_type": "raid", "start_date": start_date}
    )
    assert (body["start_date"], body["date_precision"]) == (stored, precision)
    operation = create(client, auth, "operations", {"name": "OLP", "start_date": start_date})
    assert (operation["start_date"], operation["date_precision"]) == (stored, precision)


def test_a_coarser_precision_than_the_date_given_is_kept(client, auth):
    body = create(
        client,
        auth,
        "events",
        {
            "title": "Evento",
            "event_type": "raid",
            "start_date": "2015-07",
            "date_precision": "year",
        },
    )
    assert (body["start_date"], body["date_precision"]) == ("2015-07-01", "year")


def test_patching_a_full_date_over_a_partial_one_sets_day_precision(client, auth):
    event = create(
        client, auth, "events", {"title": "E", "event_type": "raid", "start_date": "2015"}
    )
    response = client.patch(
        f"{API}/events/{event['id']}", json={"start_date": "2015-07-13"}, headers=auth("researcher")
    )
    assert (response.json["start_date"], response.json["date_precision"]) == ("2015-07-13", "day")


def test_defaults_of_a_new_record(client, factory, auth):
    victim = create(client, auth, "victims", {"event_id": factory.event(), "outcome": "killed"})
    assert (victim["affiliation"], victim["caused_by"]) == ("unknown", "unknown")
    assert victim["identity_restricted"] is False
    place = create(client, auth, "places", {"admin1": "Miranda", "admin2": "Sucre"})
    assert (place["country"], place["precision"]) == ("VE", "admin2")
    source = create(client, auth, "sources", {"kind": "testimony", "title": "Testimonio"})
    assert source["restricted"] is True
    assert source["files"] == []
    operation = create(client, auth, "operations", {"name": "OLP"})
    assert operation["aliases"] == []
    assert operation["actors"] == []
    count = create(
        client,
        auth,
        "casualty-counts",
        {
            "event_id": factory.event(),
            "source_id": factory.source(),
            "affiliation": "civilian",
            "outcome": "killed",
            "count": 15,
        },
    )
    # Who caused the deaths is left unknown, as for victims, until a source says.
    assert count["caused_by"] == "unknown"


def test_an_actors_state_flag_follows_its_kind(client, auth):
    police = create(client, auth, "actors", {"name": "PNB", "kind": "state_police"})
    gang = create(client, auth, "actors", {"name": "Tren de Aragua", "kind": "non_state_armed"})
    assert (police["is_state"], gang["is_state"]) == (True, False)


def test_patching_an_events_actors_replaces_the_list(client, factory, auth):
    first, second, third = factory.actor(), factory.actor(), factory.actor()
    event = create(
        client,
        auth,
        "events",
        {
            "title": "Evento",
            "event_type": "raid",
            "actors": [
                {"actor_id": first, "role": "perpetrator"},
                {"actor_id": second, "role": "target"},
            ],
        },
    )
    assert event["actors"] == [
        {"actor_id": first, "role": "perpetrator"},
        {"actor_id": second, "role": "target"},
    ]
    new_actors = [{"actor_id": third, "role": "present"}, {"actor_id": first, "role": "target"}]
    response = client.patch(
        f"{API}/events/{event['id']}", json={"actors": new_actors}, headers=auth("researcher")
    )
    assert response.status_code == 200
    assert response.json["actors"] == sorted(new_actors, key=lambda a: a["actor_id"])
    assert listed_ids(client, auth, "events", f"actor_id={second}") == []


def test_a_citation_can_be_pointed_at_another_target(client, factory, auth):
    event = factory.event()
    victim = factory.victim(event)
    citation = create(
        client,
        auth,
        "citations",
        {"source_id": factory.source(), "target_type": "event", "target_id": event},
    )
    assert (citation["target_type"], citation["target_id"], citation["field"]) == (
        "event",
        event,
        None,
    )
    response = client.patch(
        f"{API}/citations/{citation['id']}",
        json={"target_type": "victim", "target_id": victim, "field": "age"},
        headers=auth("researcher"),
    )
    assert response.status_code == 200, response.json
    assert (response.json["target_type"], response.json["target_id"], response.json["field"]) == (
        "victim",
        victim,
        "age",
    )
    assert listed_ids(client, auth, "citations", f"target_type=event&target_id={event}") == []


@pytest.mark.parametrize("target_type", ["operation", "event", "victim", "casualty_count"])
def test_a_citation_may_target_each_kind_of_record(client, factory, auth, target_type):
    event = factory.event()
    source = factory.source()
    target = {
        "operation": factory.operation,
        "event": lambda: event,
        "victim": lambda: factory.victim(event),
        "casualty_count": lambda: factory.casualty_count(event, source),
    }[target_type]()
    citation = create(
        client,
        auth,
        "citations",
        {"source_id": source, "target_type": target_type, "target_id": target},
    )
    assert (citation["target_type"], citation["target_id"]) == (target_type, target)


# --- Paging ----------------------------------------------------------------------------------


def test_list_pages_through_the_records(client, factory, auth):
    names = [f"Actor {n}" for n in range(1, 6)]
    ids = {name: factory.actor(name=name) for name in reversed(names)}
    pages = [listed(client, auth, "actors", f"page={p}&per_page=2") for p in (1, 2, 3, 4)]
    assert [(p["total"], p["page"], p["per_page"]) for p in pages] == [
        (5, 1, 2),
        (5, 2, 2),
        (5, 3, 2),
        (5, 4, 2),
    ]
    assert [[item["name"] for item in p["items"]] for p in pages] == [
        names[0:2],
        names[2:4],
        names[4:5],
        [],
    ]
    everything = listed(client, auth, "actors")
    assert (everything["page"], everything["per_page"], everything["total"]) == (1, 50, 5)
    assert [item["id"] for item in everything["items"]] == [ids[name] for name in names]


def test_per_page_is_capped_at_200(client, factory, auth):
    for n in range(201):
        factory.actor(name=f"Actor {n:03}")
    first = listed(client, auth, "actors", "per_page=1000")
    assert (first["total"], first["page"], first["per_page"], len(first["items"])) == (
        201,
        1,
        200,
        200,
    )
    second = listed(client, auth, "actors", "per_page=200&page=2")
    assert [item["name"] for item in second["items"]] == ["Actor 200"]
    assert len(listed(client, auth, "actors", "per_page=200")["items"]) == 200


def test_total_counts_what_the_filter_matched_not_the_page(client, factory, auth):
    for _ in range(3):
        factory.actor(kind="state_military")
    factory.actor(kind="state_police")
    page = listed(client, auth, "actors", "kind=state_military&per_page=1")
    assert (page["total"], len(page["items"])) == (3, 1)


# --- Filters and sort of events --------------------------------------------------------------


@pytest.fixture
def events_world(factory):
    """Four events spread over operations, actors, places, dates, types and states."""
    w = {
        "caracas": factory.place(admin1="Distrito Capital", admin2="Libertador"),
        "petare": factory.place(admin1="Miranda", admin2="Sucre", locality="Petare"),
        "baruta": factory.place(admin1="Miranda", admin2="Baruta", locality="Las Minas"),
        "olp": factory.operation(name="OLP"),
        "other_op": factory.operation(name="Dignidad Patria"),
        "pnb": factory.actor(name="PNB"),
        "cicpc": factory.actor(name="CICPC", kind="state_other"),
    }
    w["e1"] = factory.event(
        title="Cota 905",
        event_type="raid",
        start_date=dt.date(2015, 7, 13),
        end_date=dt.date(2015, 7, 14),
        place_id=w["caracas"],
        operation_id=w["olp"],
        actors=[{"actor_id": w["pnb"], "role": "perpetrator"}],
    )
    w["e2"] = factory.event(
        title="Protesta en Petare",
        event_type="protest",
        start_date=dt.date(2016, 3, 1),
        end_date=dt.date(2016, 3, 5),
        place_id=w["petare"],
        operation_id=w["other_op"],
        actors=[{"actor_id": w["cicpc"], "role": "present"}],
        status="in_review",
    )
    w["e3"] = factory.published_event(
        title="Ejecución en Baruta",
        event_type="targeted_killing",
        start_date=dt.date(2021, 7, 7),
        place_id=w["baruta"],
        actors=[
            {"actor_id": w["pnb"], "role": "perpetrator"},
            {"actor_id": w["cicpc"], "role": "perpetrator"},
        ],
    )
    w["e4"] = factory.event(
        title="Allanamiento en Libertador",
        event_type="raid",
        start_date=dt.date(2018, 5, 20),
        place_id=w["caracas"],
        operation_id=w["olp"],
    )
    return w


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", "e1 e2 e3 e4"),
        ("operation_id={olp}", "e1 e4"),
        ("operation_id={other_op}", "e2"),
        ("place_id={petare}", "e2"),
        ("actor_id={pnb}", "e1 e3"),
        ("actor_id={cicpc}", "e2 e3"),
        ("admin1=Miranda", "e2 e3"),
        ("admin1=distrito capital", "e1 e4"),
        ("admin2=Sucre", "e2"),
        ("admin1=Miranda&admin2=Baruta", "e3"),
        ("admin1=Zulia", ""),
        ("date_from=2016-03-03", "e2 e3 e4"),
        ("date_from=2016-03-06", "e3 e4"),
        ("date_to=2016-03-01", "e1 e2"),
        ("date_to=2015-07-12", ""),
        ("date_from=2015-07-14&date_to=2018-05-20", "e1 e2 e4"),
        ("status=draft", "e1 e4"),
        ("status=in_review", "e2"),
        ("status=verified", "e3"),
        ("event_type=raid", "e1 e4"),
        ("event_type=targeted_killing", "e3"),
        ("event_type=checkpoint", ""),
        ("published=true", "e3"),
        ("published=false", "e1 e2 e4"),
        ("event_type=raid&operation_id={olp}&date_from=2016-01-01", "e4"),
    ],
)
def test_event_filters(client, auth, events_world, query, expected):
    page = listed(client, auth, "events", query.format(**events_world))
    assert sorted(item["id"] for item in page["items"]) == sorted(
        events_world[name] for name in expected.split()
    )
    assert page["total"] == len(expected.split())


@pytest.mark.parametrize(
    "query, expected",
    [
        ("sort=start_date", "e1 e2 e4 e3"),
        ("sort=-start_date", "e3 e4 e2 e1"),
        ("", "e3 e4 e2 e1"),  # newest first unless asked otherwise
        ("sort=title", "e4 e1 e3 e2"),
        ("sort=-title", "e2 e3 e1 e4"),
        ("sort=event_type,-start_date", "e2 e4 e1 e3"),
        ("sort=-event_type,start_date", "e3 e1 e4 e2"),
        ("sort=-start_date&event_type=raid", "e4 e1"),
        ("sort=start_date&per_page=2&page=2", "e4 e3"),
    ],
)
def test_event_sort(client, auth, events_world, query, expected):
    ids = listed_ids(client, auth, "events", query)
    assert ids == [events_world[name] for name in expected.split()]


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("start_date", "d13 d20 undated"),
        ("-start_date", "undated d20 d13"),
        ("end_date,-id", "d13 d20 undated"),
        ("-end_date", "undated d20 d13"),
    ],
)
def test_undated_records_sort_the_same_on_every_database(client, factory, auth, sort, expected):
    """No date sorts as the latest date: last oldest-first, first newest-first."""
    ids = {"undated": factory.event(title="Sin fecha")}
    for day in (13, 20):
        ids[f"d{day}"] = factory.event(
            title=f"Evento {day}",
            start_date=dt.date(2015, 7, day),
            end_date=dt.date(2015, 7, 28) if day == 20 else dt.date(2015, 7, 14),
        )
    assert listed_ids(client, auth, "events", f"sort={sort}") == [ids[k] for k in expected.split()]


def test_anonymous_readers_filter_only_within_published_events(client, auth, events_world):
    response = client.get(f"{API}/events?operation_id={events_world['olp']}")
    assert response.json["total"] == 0
    response = client.get(f"{API}/events?admin1=Miranda")
    assert [item["id"] for item in response.json["items"]] == [events_world["e3"]]


# --- Filters of what hangs off events --------------------------------------------------------


@pytest.fixture
def hanging_world(factory):
    """Victims, counts and citations on two events, from two sources."""
    w = {
        "e1": factory.event(),
        "e2": factory.event(),
        "s1": factory.source(),
        "s2": factory.source(),
    }
    w["op"] = factory.operation()
    w["v1"] = factory.victim(w["e1"], affiliation="civilian", outcome="killed")
    w["v2"] = factory.victim(w["e1"], affiliation="state_agent", outcome="injured")
    w["v3"] = factory.victim(w["e2"], affiliation="civilian", outcome="detained")
    w["c1"] = factory.casualty_count(w["e1"], w["s1"], affiliation="civilian", count=15)
    w["c2"] = factory.casualty_count(w["e1"], w["s2"], affiliation="civilian", count=7)
    w["c3"] = factory.casualty_count(
        w["e2"], w["s1"], affiliation="state_agent", outcome="injured", count=3
    )
    w["t1"] = factory.citation(w["s1"], "event", w["e1"])
    w["t2"] = factory.citation(w["s2"], "event", w["e2"], field="title")
    w["t3"] = factory.citation(w["s1"], "victim", w["v1"])
    w["t4"] = factory.citation(w["s2"], "casualty_count", w["c1"])
    w["t5"] = factory.citation(w["s1"], "operation", w["op"])
    return w


@pytest.mark.parametrize(
    "resource, query, expected",
    [
        ("victims", "event_id={e1}", "v1 v2"),
        ("victims", "event_id={e2}", "v3"),
        ("victims", "affiliation=civilian", "v1 v3"),
        ("victims", "affiliation=non_state_armed", ""),
        ("victims", "outcome=injured", "v2"),
        ("victims", "event_id={e1}&affiliation=civilian", "v1"),
        ("casualty-counts", "event_id={e1}", "c1 c2"),
        ("casualty-counts", "affiliation=state_agent", "c3"),
        ("casualty-counts", "outcome=killed", "c1 c2"),
        ("casualty-counts", "source_id={s1}", "c1 c3"),
        ("casualty-counts", "event_id={e1}&source_id={s2}", "c2"),
        ("citations", "source_id={s1}", "t1 t3 t5"),
        ("citations", "target_type=event", "t1 t2"),
        ("citations", "target_type=victim", "t3"),
        ("citations", "target_type=casualty_count", "t4"),
        ("citations", "target_type=operation", "t5"),
        ("citations", "target_type=event&target_id={e1}", "t1"),
        ("citations", "target_type=victim&target_id={v1}", "t3"),
        ("citations", "target_type=event&target_id={e2}&source_id={s1}", ""),
        ("citations", "field=title", "t2"),
    ],
)
def test_filters_of_victims_counts_and_citations(
    client, auth, hanging_world, resource, query, expected
):
    page = listed(client, auth, resource, query.format(**hanging_world))
    assert sorted(item["id"] for item in page["items"]) == sorted(
        hanging_world[name] for name in expected.split()
    )
    assert page["total"] == len(expected.split())


@pytest.mark.parametrize(
    "resource, query, expected",
    [
        ("casualty-counts", "sort=count", "c3 c2 c1"),
        ("casualty-counts", "sort=-count", "c1 c2 c3"),
        ("victims", "sort=-outcome", "v1 v2 v3"),
        ("victims", "sort=affiliation,-id", "v3 v1 v2"),
    ],
)
def test_sort_of_other_resources(client, auth, hanging_world, resource, query, expected):
    ids = listed_ids(client, auth, resource, query)
    assert ids == [hanging_world[name] for name in expected.split()]


def test_actor_and_place_filters(client, factory, auth):
    force = factory.actor(name="GNB", kind="state_military", jurisdiction="national")
    unit = factory.actor(name="Destacamento 51", kind="state_military", parent_id=force)
    gang = factory.actor(name="Tren de Aragua", kind="non_state_armed")
    assert listed_ids(client, auth, "actors", "kind=state_military") == [unit, force]
    assert listed_ids(client, auth, "actors", "kind=non_state_armed") == [gang]
    assert listed_ids(client, auth, "actors", f"parent_id={force}") == [unit]
    assert listed_ids(client, auth, "actors", "jurisdiction=national") == [force]
    assert listed_ids(client, auth, "actors", "sort=-name") == [gang, force, unit]

    petare = factory.place(admin1="Miranda", admin2="Sucre", locality="Petare")
    cota = factory.place()
    assert listed_ids(client, auth, "places", "admin1=miranda") == [petare]
    assert listed_ids(client, auth, "places", "admin2=Libertador") == [cota]
    assert listed_ids(client, auth, "places", "precision=locality") == [petare, cota]


def test_text_filters_match_accented_capitals_on_every_database(client, factory, auth):
    """SQLite's own lower() folds only ASCII: `Último` must still find `Último`."""
    place = factory.place(admin1="Ámbito Estadal", admin2="Ñemby")
    event = factory.event(place_id=place)
    source = factory.source(publisher="Últimas Noticias")
    factory.citation(source, "event", event)
    for query in ("admin1=Ámbito Estadal", "admin1=ámbito estadal", "admin2=ÑEMBY"):
        assert listed_ids(client, auth, "events", query) == [event], query
    for query in ("publisher=Últimas Noticias", "publisher=últimas noticias"):
        assert listed_ids(client, auth, "sources", query) == [source], query


def test_source_filters(client, factory, auth):
    report = factory.source(kind="ngo_report", publisher="PROVEA", language="es", reliability="B")
    testimony = factory.source(kind="testimony", language="es")
    article = factory.source(kind="news_article", publisher="El Pitazo", language="en")
    assert listed_ids(client, auth, "sources", "kind=testimony") == [testimony]
    assert listed_ids(client, auth, "sources", "publisher=provea") == [report]
    assert listed_ids(client, auth, "sources", "language=es") == [report, testimony]
    assert listed_ids(client, auth, "sources", "reliability=B") == [report]
    assert listed_ids(client, auth, "sources", "restricted=true") == [testimony]
    assert listed_ids(client, auth, "sources", "restricted=false") == [report, article]


# --- An event from draft to published --------------------------------------------------------


def test_an_event_goes_from_draft_through_review_to_verified_and_published(client, factory, auth):
    event = create(
        client, auth, "events", {"title": "Operativo en la Cota 905", "event_type": "raid"}
    )
    path = f"{API}/events/{event['id']}"
    assert client.get(path).status_code == 404  # a draft is not public

    in_review = client.patch(path, json={"status": "in_review"}, headers=auth("researcher"))
    assert in_review.status_code == 200
    assert in_review.json["status"] == "in_review"

    citation = create(
        client,
        auth,
        "citations",
        {
            "source_id": factory.source(),
            "target_type": "event",
            "target_id": event["id"],
            "excerpt": "Más de 250 funcionarios participaron.",
        },
    )
    verified = client.patch(
        path, json={"status": "verified", "published": True}, headers=auth("editor")
    )
    assert verified.status_code == 200, verified.json
    assert (verified.json["status"], verified.json["published"]) == ("verified", True)

    public = client.get(path)
    assert public.status_code == 200
    assert public.json["title"] == "Operativo en la Cota 905"
    assert "internal_notes" not in public.json
    assert client.get(f"{API}/citations/{citation['id']}").status_code == 200
    assert [item["id"] for item in client.get(f"{API}/events").json["items"]] == [event["id"]]

    history = client.get(f"{path}/history", headers=auth("viewer")).json["items"]
    assert [(item["action"], item["changes"]) for item in history] == [
        ("create", history[0]["changes"]),
        ("status_change", {"status": {"before": "draft", "after": "in_review"}}),
        ("status_change", {"status": {"before": "in_review", "after": "verified"}}),
        ("publish", {"published": {"before": False, "after": True}}),
    ]


def test_an_editor_can_unpublish_and_send_an_event_back_to_review(client, factory, auth):
    event = factory.published_event()
    path = f"{API}/events/{event}"
    response = client.patch(
        path, json={"published": False, "status": "in_review"}, headers=auth("editor")
    )
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["published"]) == ("in_review", False)
    assert client.get(path).status_code == 404
    back = client.patch(path, json={"status": "draft"}, headers=auth("researcher"))
    assert back.json["status"] == "draft"
