"""The /search page: box, facets, results with snippets and links, pages, downloads, errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from sqlalchemy import select

from archive.extensions import db
from archive.models import AuditEntry

from .test_files import upload
from .web_helpers import text

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def archive(factory):
    """Three published events of two years and two states, an unpublished one, a source."""
    caracas = factory.place(admin1="Distrito Capital")
    miranda = factory.place(admin1="Miranda", admin2="Sucre", locality="Petare")
    operation = factory.operation(name="Operación Gran Cacique Guaicaipuro")
    ids = {
        "cota": factory.published_event(
            title="Masacre en la Cota 905",
            description="Enfrentamientos en la Cota 905 con varias víctimas.",
            start_date=dt.date(2021, 7, 8),
            place_id=caracas,
            operation_id=operation,
        ),
        "tejerias": factory.published_event(
            title="Allanamiento en Las Tejerías",
            description="Operaciones policiales en el barrio.",
            start_date=dt.date(2022, 10, 9),
            place_id=miranda,
            event_type="checkpoint",
        ),
        "petare": factory.published_event(
            title="Operaciones en Petare",
            description="Allanamientos casa por casa.",
            start_date=dt.date(2022, 3, 1),
            place_id=miranda,
        ),
        "hidden": factory.event(title="Allanamientos sin publicar", start_date=dt.date(2022, 1, 1)),
        "operation": operation,
    }
    return ids


def links(body: str, pattern: str) -> list[str]:
    return re.findall(pattern, body)


def test_the_search_box_alone_runs_no_search(client):
    response = client.get("/search?lang=en")
    assert response.status_code == 200
    body = text(response)
    assert 'name="q"' in body and 'role="search"' in body
    assert "records found" not in body


def test_results_link_to_their_pages_with_marked_snippets(client, archive):
    body = text(client.get("/search?q=barrio&lang=en"))
    assert "1 record found" in body
    assert f'href="/events/{archive["tejerias"]}">Allanamiento en Las Tejerías</a>' in body
    assert "Operaciones policiales en el <mark>barrio</mark>." in body


def test_a_stemmed_word_finds_every_form_and_hides_the_unpublished(client, archive):
    body = text(client.get("/search?q=allanamiento&lang=en"))
    found = set(map(int, links(body, r'href="/events/(\d+)"')))
    assert found == {archive["tejerias"], archive["petare"]}
    assert "sin publicar" not in body


def test_facets_count_and_link_to_the_filtered_search(client, archive):
    body = text(client.get("/search?q=allanamiento&type=event&lang=en"))
    # Both events found are in Miranda; their years are 2022.
    assert re.search(r'<a href="/search\?[^"]*admin1=Miranda[^"]*">Miranda</a> \(2\)', body)
    assert re.search(r'<a href="/search\?[^"]*year=2022[^"]*">2022</a> \(2\)', body)
    assert "Checkpoint</a> (1)" in body and "Raid</a> (1)" in body

    filtered = text(client.get("/search?q=allanamiento&type=event&event_type=checkpoint&lang=en"))
    assert "1 record found" in filtered
    assert set(map(int, links(filtered, r'href="/events/(\d+)"'))) == {archive["tejerias"]}
    # The chosen value is shown with a link that removes it.
    assert re.search(r"<strong>Checkpoint</strong> \(1\)", filtered)
    assert 'aria-label="Remove the filter Checkpoint"' in filtered


def test_the_operation_facet_shows_its_name(client, archive):
    body = text(client.get("/search?q=cota&lang=en"))
    assert f"operation={archive['operation']}" in body
    assert "Operación Gran Cacique Guaicaipuro</a> (1)" in body


def test_pages_split_the_results_and_link_to_the_next(client, archive):
    first = text(client.get("/search?type=event&per_page=2&lang=en"))
    assert "3 records found" in first
    assert len(links(first, r'href="/events/(\d+)"')) == 2
    assert "Page 1 of 2" in first
    assert re.search(r'rel="next" href="\?[^"]*page=2', first)
    second = text(client.get("/search?type=event&per_page=2&page=2&lang=en"))
    assert len(links(second, r'href="/events/(\d+)"')) == 1


def test_a_query_that_does_not_parse_is_explained_not_a_500(client, archive):
    response = client.get('/search?q="Cota 905&lang=en')
    assert response.status_code == 422
    body = text(response)
    assert "The search could not be run" in body
    assert "unclosed quote" in body
    assert 'value="&#34;Cota 905"' in body  # the query stays in the box, to be corrected


def test_a_query_that_does_not_parse_is_explained_in_spanish(client, archive):
    response = client.get("/search?q=(cota&lang=es")
    assert response.status_code == 422
    assert "La consulta abre un paréntesis que nunca cierra." in text(response)


def test_a_bad_filter_names_the_field(client, archive):
    response = client.get("/search?q=cota&year=abc&lang=en")
    assert response.status_code == 422
    assert "<code>year</code>" in text(response)


def test_html_in_titles_and_snippets_is_shown_as_text(client, factory):
    # A source's title is plain text, kept as typed; its snippet is made from it here.
    factory.published_event(source_id=factory.source(title=f"Redada {XSS}"))
    body = text(client.get("/search?q=redada&lang=en"))
    assert "1 record found" in body
    assert "<script>alert" not in body and "<img src=x" not in body
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert f">Redada {escaped}</a>" in body  # the title, escaped by the template
    assert f'<p class="small mb-0 snippet"><mark>Redada</mark> {escaped}</p>' in body


def test_a_source_is_found_by_the_text_of_its_file(client, factory, auth):
    source_id = factory.source(title="Nota de prensa")
    page = b"<html><body><p>Testimonio del vecino Yoleidys</p><script>oculto</script></body></html>"
    assert upload(client, auth("researcher"), source_id, page, "nota.html").status_code == 201
    factory.published_event(source_id=source_id)  # cited by a published event: public
    body = text(client.get("/search?q=yoleidys&lang=en"))
    assert f'href="/sources/{source_id}">Nota de prensa</a>' in body
    assert "<mark>Yoleidys</mark>" in body
    assert "1 record found" in text(client.get("/search?q=oculto+OR+yoleidys&lang=en"))


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_csv_download_holds_every_record_found_not_only_the_page(client, archive):
    body = text(client.get("/search?type=event&per_page=1&lang=en"))
    match = re.search(r'href="(/search\.csv\?[^"]*)"', body)
    assert match and "per_page" not in match.group(1) and "page=" not in match.group(1)
    response = client.get(match.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    expected = {archive["cota"], archive["tejerias"], archive["petare"]}
    assert {int(r["id"]) for r in rows} == expected
    assert list(rows[0]) == ["type", "id", "title", "url", "page_url"]
    cota = next(r for r in rows if int(r["id"]) == archive["cota"])
    assert cota["type"] == "event"
    assert cota["title"] == "Masacre en la Cota 905"
    assert cota["url"] == f"http://localhost/api/v1/events/{archive['cota']}"
    assert cota["page_url"] == f"http://localhost/events/{archive['cota']}"


def test_json_download_follows_the_search_order(client, archive):
    response = client.get("/search.json?type=event&sort=-date")
    assert response.mimetype == "application/json"
    rows = json.loads(response.data)
    assert [r["id"] for r in rows] == [archive["tejerias"], archive["petare"], archive["cota"]]
    assert rows[0] == {
        "type": "event",
        "id": archive["tejerias"],
        "title": "Allanamiento en Las Tejerías",
        "url": f"http://localhost/api/v1/events/{archive['tejerias']}",
        "page_url": f"http://localhost/events/{archive['tejerias']}",
    }


def test_downloads_hold_only_what_the_reader_may_see(client, browser_for, archive):
    anonymous = {r["id"] for r in json.loads(client.get("/search.json?q=allanamientos").data)}
    assert archive["hidden"] not in anonymous
    staff = browser_for("researcher")
    seen = {r["id"] for r in json.loads(staff.get("/search.json?q=allanamientos").data)}
    assert archive["hidden"] in seen


def test_a_download_is_audited_as_an_export(app, client, archive):
    client.get("/search.csv?q=cota&type=event")
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert (entry.action, entry.resource) == ("export", "search")
        assert entry.changes["format"] == "csv"
        assert entry.changes["filters"] == {"q": "cota", "type": "event"}
        assert entry.changes["rows"] == 1


def test_a_download_of_a_query_that_does_not_parse_is_a_422(client, archive):
    response = client.get("/search.json?q=cota+AND")
    assert response.status_code == 422


def test_the_page_reads_in_spanish(client, archive):
    body = text(client.get("/search?q=tejerias&lang=es"))
    assert "1 registro encontrado" in body
    assert "Descargar lo encontrado:" in body
    assert ">Buscar</a>" in body  # the menu's link


def test_the_menu_links_to_search(client):
    assert 'href="/search">Search</a>' in text(client.get("/?lang=en"))


def test_filters_without_words_still_hide_the_unpublished(client, archive):
    # Whoosh folds And([Every(), …]) into Every(): every filter, "public" included, was lost.
    answer = client.get("/api/v1/search?type=event").json
    assert {item["id"] for item in answer["items"]} == {
        archive["cota"],
        archive["tejerias"],
        archive["petare"],
    }
    assert answer["total"] == 3
    assert answer["facets"]["status"] == {"verified": 3}
    body = text(client.get("/search?year=2022&lang=en"))
    assert "sin publicar" not in body and "Draft" not in body
