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
