"""A restricted victim's dataset id (external_dataset/external_id) can name the person: it is
withheld wherever the identity is, for readers without access (DOMAIN.md 3)."""

from __future__ import annotations

import pytest

from archive.extensions import db
from archive.models import Victim
from tests.test_exports import download, frames
from tests.test_search import find

DATASET = "layout:zq-dataset-reservado"
EXTERNAL = "ZQ-Personaje-Reservado-77"


@pytest.fixture
def restricted(app, factory):
    event_id = factory.published_event(title="Allanamiento nocturno")
    victim_id = factory.victim(event_id, name="Luis Gómez", identity_restricted=True)
    with app.app_context():
        victim = db.session.get(Victim, victim_id)
        victim.external_dataset, victim.external_id = DATASET, EXTERNAL
        db.session.commit()
    return event_id, victim_id


def _clean(text: str) -> bool:
    return EXTERNAL not in text and "zq-dataset" not in text and "Luis" not in text


def test_the_api_withholds_a_restricted_dataset_id(client, auth, restricted):
    event_id, victim_id = restricted
    for url in (
        f"/api/v1/victims/{victim_id}",
        "/api/v1/victims",
        f"/api/v1/victims?event_id={event_id}",
        f"/api/v1/events/{event_id}",
        "/api/v1/events",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _clean(response.get_data(as_text=True)), url
    staff = client.get(f"/api/v1/victims/{victim_id}", headers=auth("viewer")).json
    assert (staff["external_dataset"], staff["external_id"]) == (DATASET, EXTERNAL)


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_exports_withhold_a_restricted_dataset_id(client, auth, restricted, fmt):
    _response, body = download(client, "victims", format=fmt)
    data = frames(fmt, body, "victims")["data"]
    assert len(data) == 1
    assert _clean(data.to_csv())
    _response, body = download(client, "victims", format=fmt, headers=auth("viewer"))
    assert EXTERNAL in frames(fmt, body, "victims")["data"].to_csv()


def test_search_and_pages_withhold_a_restricted_dataset_id(client, restricted):
    event_id, _victim_id = restricted
    for q in (EXTERNAL, "zq", "ZQ-Personaje-Reservado-77", "luis"):
        answer = find(client, q)
        assert answer["total"] == 0 and answer["items"] == [], q
    assert find(client, "allanamiento")["total"] == 1
    page = client.get(f"/events/{event_id}")
    assert page.status_code == 200
    assert _clean(page.get_data(as_text=True))
