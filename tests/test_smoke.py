def test_front_page_points_at_the_api(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"/api/v1/openapi.json" in response.data


def test_anonymous_sees_a_published_event(client, factory):
    event_id = factory.published_event(title="Cota 905")
    response = client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 200
    assert response.json["title"] == "Cota 905"
    assert "internal_notes" not in response.json


def test_citations_of_a_withheld_identity_are_hidden_from_anonymous_readers(
    client, factory, auth
):
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
