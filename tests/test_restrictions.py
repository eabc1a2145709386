"""Restricted data: withheld from anonymous readers, and only editors may make it public."""


def test_anonymous_sees_a_published_event(client, factory):
    event_id = factory.published_event(title="Cota 905")
    response = client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 200
    assert response.json["title"] == "Cota 905"
    assert "internal_notes" not in response.json


def test_citations_of_a_withheld_identity_are_hidden_from_anonymous_readers(client, factory, auth):
    source = factory.source()
    event_id = factory.published_event(source_id=source)
    victim = factory.victim(event_id, name="Nombre Reservado", age=16)
    factory.citation(source, "victim", victim, excerpt="Nombre Reservado, 16 años")

    anonymous = client.get(f"/api/v1/citations?target_type=victim&target_id={victim}")
    assert anonymous.json["total"] == 0
    assert b"Nombre Reservado" not in anonymous.data
    viewer = client.get(
        f"/api/v1/citations?target_type=victim&target_id={victim}", headers=auth("viewer")
    )
    assert viewer.json["total"] == 1


def test_a_researcher_cannot_make_a_restricted_source_public(client, factory, auth, db_rows):
    source = factory.source(kind="testimony")
    before = db_rows()
    response = client.patch(
        f"/api/v1/sources/{source}", json={"restricted": False}, headers=auth("researcher")
    )
    assert response.status_code == 403
    assert db_rows() == before
    response = client.patch(
        f"/api/v1/sources/{source}", json={"restricted": False}, headers=auth("editor")
    )
    assert response.status_code == 200
    assert response.json["restricted"] is False


def test_a_researcher_cannot_lift_a_minors_restricted_identity(client, factory, auth):
    event_id = factory.event()
    created = client.post(
        "/api/v1/victims",
        json={"event_id": event_id, "outcome": "killed", "age": 15, "identity_restricted": False},
        headers=auth("researcher"),
    )
    assert created.status_code == 403
    created = client.post(
        "/api/v1/victims",
        json={"event_id": event_id, "outcome": "killed", "age": 15},
        headers=auth("researcher"),
    )
    assert created.json["identity_restricted"] is True
    victim = created.json["id"]
    lifted = client.patch(
        f"/api/v1/victims/{victim}", json={"identity_restricted": False}, headers=auth("researcher")
    )
    assert lifted.status_code == 403


def test_the_source_of_a_published_figure_can_be_opened_by_anyone(client, factory):
    """A casualty count names its source: an anonymous reader can trace the figure to it."""
    event_id = factory.published_event()
    source = factory.source(title="Informe de la Defensoría")
    count = factory.casualty_count(event_id, source, count=15)
    assert client.get(f"/api/v1/casualty-counts/{count}").json["source_id"] == source
    response = client.get(f"/api/v1/sources/{source}")
    assert response.status_code == 200
    assert response.json["title"] == "Informe de la Defensoría"
    assert source in [s["id"] for s in client.get("/api/v1/sources").json["items"]]


def test_the_source_of_an_unpublished_figure_stays_hidden(client, factory):
    event_id = factory.event()
    source = factory.source()
    factory.casualty_count(event_id, source)
    assert client.get(f"/api/v1/sources/{source}").status_code == 404
