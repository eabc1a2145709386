"""Search for readers without access: neither which records match, nor how public matches
are scored and ordered, may depend on records or fields they cannot read (DOMAIN.md 3)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_search import find

DAY = dt.date(2015, 1, 1)

QUERIES = [
    "alfa OR bravo",
    "alfa OR bravo OR charlie",
    '"alfa reunión" OR "bravo reunión"',
    "(alfa OR bravo) AND reunión",
    "(alfa OR bravo) NOT charlie",
    "alfa~ OR bravo~",
]


def _ranked(client, q, **params):
    answer = find(client, q, **params)
    return answer["total"], [(i["id"], i["score"]) for i in answer["items"]]


@pytest.mark.parametrize("q", QUERIES)
@pytest.mark.parametrize("sort", [None, "-date"])
def test_anonymous_scores_and_order_ignore_unpublished_records(client, factory, q, sort):
    params = {"sort": sort} if sort else {}
    first = factory.published_event(title="Alfa reunión", start_date=DAY)
    second = factory.published_event(title="Bravo reunión", start_date=DAY)
    before = _ranked(client, q, **params)
    assert before[0] == 2 and {i for i, _ in before[1]} == {first, second}
    # Records anonymous readers cannot see, all holding one of the words searched.
    for n in range(8):
        factory.event(title=f"Alfa reunión reservada {n}", start_date=DAY)
    after = _ranked(client, q, **params)
    assert after == before


NOTE = "zenobita"  # only in a published event's internal notes
HIDDEN_NAME = "Zacarinto Reservadez"  # only as a restricted victim's name


@pytest.fixture
def hidden_words(factory):
    shown = factory.published_event(title="Patrulla pública", start_date=DAY)
    factory.update("events", shown, internal_notes=f"apunte {NOTE} interno")
    factory.victim(shown, name=HIDDEN_NAME, identity_restricted=True)
    others = [
        factory.published_event(title=f"Patrulla pública {n}", start_date=DAY) for n in range(3)
    ]
    return shown, others


SENTINEL_QUERIES = [
    NOTE,
    f'"{NOTE}"',
    f'"apunte {NOTE}"',
    f"{NOTE}~",
    "zenobit~1",
    f"{NOTE} OR zacarinto",
    f"patrulla AND {NOTE}",
    f"patrulla AND (zacarinto OR {NOTE})",
    "zacarinto",
    '"zacarinto reservadez"',
    "zacarint~",
    "victim:zacarinto",
    "title:patrulla AND victim:zacarinto",
]


@pytest.mark.parametrize("q", SENTINEL_QUERIES)
@pytest.mark.parametrize(
    "params",
    [{}, {"sort": "-date"}, {"date_from": "2014-01-01", "date_to": "2016-01-01"}, {"page": 2}],
)
def test_a_hidden_word_finds_nothing_for_anonymous_readers_even_after_staff_searched_it(
    client, auth, hidden_words, q, params
):
    shown, _others = hidden_words
    staff = find(client, q, headers=auth("viewer"), **{**params, "page": 1})
    assert staff["total"] == 1 and staff["items"][0]["id"] == shown, q  # kept per searcher
    anonymous = find(client, q, **params)
    assert anonymous["total"] == 0 and anonymous["items"] == [], q
    assert all(not counts for counts in anonymous["facets"].values()), q


@pytest.mark.parametrize(
    "q", [f"patrulla NOT {NOTE}", "patrulla NOT zacarinto", f"patrulla AND NOT {NOTE}~"]
)
def test_a_hidden_word_excludes_nothing_for_anonymous_readers(client, auth, hidden_words, q):
    shown, others = hidden_words
    assert find(client, q, headers=auth("viewer"))["total"] == len(others)
    answer = find(client, q, per_page=2)
    assert answer["total"] == len(others) + 1
    listed = answer["items"] + find(client, q, per_page=2, page=2)["items"]
    assert {i["id"] for i in listed} == {shown, *others}
    assert all(NOTE not in i["snippet"] and "acarinto" not in i["snippet"] for i in listed)


def test_public_order_ignores_hidden_words_in_the_same_records(client, factory):
    a = factory.published_event(title="Alfa reunión", start_date=DAY)
    b = factory.published_event(title="Bravo reunión", start_date=DAY)
    before = _ranked(client, "alfa OR bravo")
    factory.update("events", a, internal_notes="alfa alfa alfa " * 20)
    factory.victim(b, name="Bravo Bravo", identity_restricted=True)
    assert _ranked(client, "alfa OR bravo") == before
