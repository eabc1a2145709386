"""End dates given to the month or year, like start dates: stored on the period's first day,
with `end_date_precision`, and read as covering the whole period (July – August 2015)."""

from __future__ import annotations

import pytest

API = "/api/v1"


def create(client, auth, resource: str, **fields):
    base = {"events": {"title": "Operativo", "event_type": "raid"}, "operations": {"name": "OLP"}}
    return client.post(
        f"{API}/{resource}", json={**base[resource], **fields}, headers=auth("editor")
    )


@pytest.mark.parametrize("resource", ["events", "operations"])
@pytest.mark.parametrize(
    "given, stored, precision",
    [
        ("2015-08-20", "2015-08-20", "day"),
        ("2015-08", "2015-08-01", "month"),
        ("2016", "2016-01-01", "year"),
    ],
)
def test_an_end_date_keeps_how_much_of_it_was_given(
    client, auth, resource, given, stored, precision
):
    response = create(client, auth, resource, start_date="2015-07", end_date=given)
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["end_date"], body["end_date_precision"]) == (stored, precision)
    assert (body["start_date"], body["date_precision"]) == ("2015-07-01", "month")
    read = client.get(f"{API}/{resource}/{body['id']}", headers=auth("viewer")).json
    assert (read["end_date"], read["end_date_precision"]) == (stored, precision)


@pytest.mark.parametrize("resource", ["events", "operations"])
@pytest.mark.parametrize(
    "start, end",
    [
        ("2015-07-13", "2015-07"),  # July 2015, from the 13th on
        ("2015-07-13", "2015"),
        ("2015-07", "2015-07"),
        ("2015-07", "2015-07-01"),
        ("2015", "2015-01-01"),
    ],
)
def test_an_end_given_to_the_month_or_year_covers_the_whole_period(
    client, auth, resource, start, end
):
    response = create(client, auth, resource, start_date=start, end_date=end)
    assert response.status_code == 201, response.json


@pytest.mark.parametrize("resource", ["events", "operations"])
@pytest.mark.parametrize(
    "start, end, message",
    [
        ("2015-07-13", "2015-07-12", "end_date 2015-07-12 is before start_date 2015-07-13."),
        ("2015-07-13", "2015-06", "end_date 2015-06 is before start_date 2015-07-13."),
        ("2015-07-13", "2014", "end_date 2014 is before start_date 2015-07-13."),
        ("2015-08", "2015-07", "end_date 2015-07 is before start_date 2015-08."),
    ],
)
def test_an_end_whose_whole_period_is_before_the_start_is_refused(
    client, auth, db_rows, resource, start, end, message
):
    before = db_rows()
    response = create(client, auth, resource, start_date=start, end_date=end)
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"end_date": [message]}
    assert db_rows() == before


@pytest.mark.parametrize(
    "end, precision, status",
    [
        ("2015-08-20", "month", 201),  # a full date may be given a coarser precision
        ("2015-08", "year", 201),
        ("2015-08", "day", 422),
        ("2015", "month", 422),
    ],
)
def test_an_explicit_end_precision_is_checked_against_the_date(
    client, auth, end, precision, status
):
    response = create(client, auth, "events", end_date=end, end_date_precision=precision)
    assert response.status_code == status, response.json
    if status == 422:
        assert list(response.json["error"]["fields"]) == ["end_date_precision"]
    else:
        assert response.json["end_date_precision"] == precision


def test_changing_the_end_follows_the_same_rules(client, auth):
    event = create(client, auth, "events", start_date="2015-07-13", end_date="2015-07-20").json
    url = f"{API}/events/{event['id']}"
    assert event["end_date_precision"] == "day"

    to_month = client.patch(url, json={"end_date": "2015-07"}, headers=auth("editor"))
    assert to_month.status_code == 200, to_month.json
    assert (to_month.json["end_date"], to_month.json["end_date_precision"]) == (
        "2015-07-01",
        "month",
    )

    earlier_start = client.patch(url, json={"start_date": "2015-08-02"}, headers=auth("editor"))
    assert earlier_start.status_code == 422
    assert earlier_start.json["error"]["fields"] == {
        "end_date": ["end_date 2015-07 is before start_date 2015-08-02."]
    }

    cleared = client.patch(url, json={"end_date": None}, headers=auth("editor"))
    assert (cleared.json["end_date"], cleared.json["end_date_precision"]) == (None, None)


@pytest.fixture
def dated_events(client, auth):
    spans = {
        "july_to_august": ("2015-07", "2015-08"),
        "july_13_to_july": ("2015-07-13", "2015-07"),
        "in_2015": ("2015", None),
        "july_13_to_14": ("2015-07-13", "2015-07-14"),
        "in_july": ("2015-07", None),
    }
    ids = {}
    for name, (start, end) in spans.items():
        response = create(client, auth, "events", title=name, start_date=start, end_date=end)
        assert response.status_code == 201, response.json
        ids[response.json["id"]] = name
    return ids


@pytest.mark.parametrize(
    "query, expected",
    [
        ("date_from=2015-08-20", "july_to_august in_2015"),
        ("date_from=2015-07-31", "july_to_august july_13_to_july in_2015 in_july"),
        ("date_from=2015-07-15", "july_to_august july_13_to_july in_2015 in_july"),
        ("date_from=2015-07-14", "july_to_august july_13_to_july in_2015 july_13_to_14 in_july"),
        ("date_from=2015-09-01", "in_2015"),
        ("date_from=2016-01-01", ""),
        ("date_to=2015-07-05", "july_to_august in_2015 in_july"),
        ("date_from=2015-08-20&date_to=2015-08-31", "july_to_august in_2015"),
    ],
)
def test_date_filters_treat_a_partial_date_as_its_whole_period(
    client, auth, dated_events, query, expected
):
    page = client.get(f"{API}/events?{query}&per_page=50", headers=auth("viewer")).json
    assert sorted(dated_events[item["id"]] for item in page["items"]) == sorted(expected.split())
