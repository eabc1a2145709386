"""Exports: each list and the indicators as CSV, XLSX and JSON, read back with pandas.

The archive of tests/test_visibility.py (a published event beside everything anonymous readers
may not see, each withheld thing marked by a SECRET string) serves the visibility tests.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pandas as pd
import pytest

from archive import codebook, exports
from archive.extensions import db
from archive.resources import RESOURCES
from tests import test_browser, test_visibility
from tests.test_visibility import PUBLIC, SECRET

archive = test_visibility.archive
browser, server, browsing = test_browser.browser, test_browser.server, test_browser.browsing

RECORD_EXPORTS = codebook.RECORD_EXPORTS
FORMATS = ("csv", "xlsx", "json")
# A column of each export whose values the API list must match, beside id and url.
SAMPLE_COLUMN = {
    "events": "title",
    "victims": "outcome",
    "casualty-counts": "count",
    "sources": "title",
    "citations": "source_id",
}


def download(client, what: str, headers=None, **params):
    """GET the export, its body read whole; asserts success."""
    with client.get(f"/api/v1/exports/{what}", query_string=params, headers=headers) as response:
        body = response.get_data()  # a download is closed once read, as a server does
    assert response.status_code == 200, body[:500]
    return response, body


def frames(fmt: str, body: bytes, what: str) -> dict[str, pd.DataFrame]:
    """The export read back with pandas: {"data": table} (+ "codebook" for XLSX)."""
    if fmt == "csv":
        return {"data": pd.read_csv(io.BytesIO(body), encoding="utf-8-sig")}
    if fmt == "json":
        return {"data": pd.read_json(io.StringIO(body.decode()), dtype=False)}
    sheets = pd.read_excel(io.BytesIO(body), sheet_name=None)
    return {"data": sheets[what], "codebook": sheets["codebook"]}


def api_list(client, what: str, headers=None, **filters) -> list[dict]:
    body = client.get(f"/api/v1/{what}", query_string={"per_page": 200, **filters}, headers=headers)
    assert body.status_code == 200, body.json
    return sorted(body.json["items"], key=lambda item: item["id"])


def all_text(fmt: str, body: bytes) -> str:
    """Everything an export holds, as text (XLSX unzipped)."""
    if fmt != "xlsx":
        text = body.decode("utf-8-sig")
        return json.dumps(json.loads(text), ensure_ascii=False) if fmt == "json" else text
    with zipfile.ZipFile(io.BytesIO(body)) as archive_file:
        return "\n".join(archive_file.read(n).decode() for n in archive_file.namelist())


# --- Each export equals the API's list ---------------------------------------------------------


@pytest.mark.parametrize("role", [None, "viewer"])
@pytest.mark.parametrize("what", RECORD_EXPORTS)
def test_each_format_holds_what_the_api_list_gives_that_reader(client, archive, auth, what, role):
    expected = api_list(client, what, auth(role))
    assert expected, "the archive has something of each resource for every reader"
    column = SAMPLE_COLUMN[what]
    for fmt in FORMATS:
        response, body = download(client, what, auth(role), format=fmt)
        data = frames(fmt, body, what)["data"]
        assert list(data["id"]) == [item["id"] for item in expected], fmt
        assert list(data[column]) == [item[column] for item in expected], fmt
        assert list(data["url"]) == [
            f"http://localhost/api/v1/{what}/{item['id']}" for item in expected
        ], fmt
        assert list(data["version"]) == [item["version"] for item in expected], fmt
        day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        disposition = response.headers["Content-Disposition"]
        assert f"constancia-{what}-{day}.{fmt}" in disposition and "attachment" in disposition


def test_the_url_column_opens_the_record(client, archive):
    _, body = download(client, "events", format="json")
    for row in json.loads(body):
        record = client.get(urlsplit(row["url"]).path)
        assert record.status_code == 200 and record.json["title"] == row["title"]


def test_lists_become_readable_cells(client, factory, auth):
    police, gang = factory.actor(name="PNB"), factory.actor(name="Banda", kind="non_state_armed")
    actors = [{"actor_id": gang, "role": "target"}, {"actor_id": police, "role": "perpetrator"}]
    event = factory.event(actors=actors)
    _, body = download(client, "events", auth("viewer"), format="json")
    (row,) = [r for r in json.loads(body) if r["id"] == event]
    assert row["actors"] == f"{police}:perpetrator; {gang}:target"


def test_csv_is_utf8_with_a_byte_order_mark_and_json_keeps_native_types(client, factory, auth):
    factory.event(title="Operación en Petare", agents_deployed=250)
    _, csv_body = download(client, "events", auth("viewer"), format="csv", columns="title")
    assert csv_body.startswith("\ufefftitle\r\n".encode())
    assert "Operación en Petare" in csv_body.decode("utf-8-sig")
    _, json_body = download(client, "events", auth("viewer"), format="json")
    (row,) = json.loads(json_body)
    assert row["agents_deployed"] == 250 and row["published"] is False
    assert row["internal_notes"] is None


def test_a_source_keeps_its_own_web_address_apart_from_its_record_url(client, factory, auth):
    source = factory.source(url="https://example.org/nota")
    _, body = download(client, "sources", auth("viewer"), format="json")
    (row,) = json.loads(body)
    assert row["source_url"] == "https://example.org/nota"
    assert row["url"] == f"http://localhost/api/v1/sources/{source}"


def test_text_that_looks_like_a_formula_stays_text_in_xlsx(client, factory, auth):
    factory.source(title='=HYPERLINK("http://example.org","x")')
    _, body = download(client, "sources", auth("viewer"), format="xlsx", columns="title")
    sheet = openpyxl.load_workbook(io.BytesIO(body))["sources"]
    cell = sheet["A2"]
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"


# --- Columns, filters and errors --------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_columns_choose_and_order_the_columns(client, archive, fmt):
    _, body = download(client, "victims", format=fmt, columns="outcome,id,url")
    data = frames(fmt, body, "victims")["data"]
    assert list(data.columns) == ["outcome", "id", "url"]


def test_an_unknown_column_is_refused_by_name_with_the_known_ones(client, archive):
    response = client.get("/api/v1/exports/victims?columns=id,nombre")
    assert response.status_code == 422
    (message,) = response.json["error"]["fields"]["columns"]
    assert "'nombre'" in message and "known columns: id, url, event_id, name," in message


def test_a_column_the_api_withholds_is_no_column_for_that_reader(client, archive, auth):
    anonymous = client.get("/api/v1/exports/events?columns=id,internal_notes")
    assert anonymous.status_code == 422
    assert "internal_notes" not in anonymous.json["error"]["fields"]["columns"][0].split(": ")[1]
    _, body = download(client, "events", auth("viewer"), format="json", columns="internal_notes")
    assert SECRET["internal notes"] in [row["internal_notes"] for row in json.loads(body)]


def test_an_unknown_export_is_404_naming_the_exports(client):
    response = client.get("/api/v1/exports/actors")
    assert response.status_code == 404
    message = response.json["error"]["message"]
    assert "'actors'" in message
    assert "events, victims, casualty-counts, sources, citations, indicators" in message


def test_bad_format_and_filters_are_422_like_the_list(client, archive):
    response = client.get("/api/v1/exports/events?format=pdf&date_from=ayer&colour=red")
    assert response.status_code == 422
    fields = response.json["error"]["fields"]
    assert set(fields) == {"format", "date_from", "colour"}
    listed = client.get("/api/v1/events?date_from=ayer&colour=red").json["error"]["fields"]
    assert fields["date_from"] == listed["date_from"] and fields["colour"] == listed["colour"]
    assert fields["format"] == ["Must be one of: csv, json, xlsx."]


def test_a_repeated_parameter_is_refused(client):
    response = client.get("/api/v1/exports/events?format=csv&format=json")
    assert response.status_code == 422 and "format" in response.json["error"]["fields"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_filters_narrow_the_export_like_the_list(client, factory, auth, fmt):
    operation = factory.operation()
    inside = [factory.event(operation_id=operation) for _ in range(2)]
    factory.event()
    _, body = download(client, "events", auth("viewer"), format=fmt, operation_id=operation)
    data = frames(fmt, body, "events")["data"]
    listed = api_list(client, "events", auth("viewer"), operation_id=operation)
    assert list(data["id"]) == [item["id"] for item in listed] == inside


# --- What anonymous readers get -----------------------------------------------------------------


@pytest.mark.parametrize("what", codebook.EXPORTS)
def test_anonymous_exports_are_free_of_every_withheld_thing(client, archive, what):
    for fmt in FORMATS:
        _, body = download(client, what, format=fmt)
        text = all_text(fmt, body)
        for name, marker in SECRET.items():
            assert marker not in text, f"{name} leaks into the {fmt} export of {what}"


def test_anonymous_exports_reach_the_public_records(client, archive):
    found = "\n".join(
        all_text(fmt, download(client, what, format=fmt)[1])
        for what in RECORD_EXPORTS
        for fmt in FORMATS
    )
    for name in ("event", "victim", "source", "citation excerpt"):
        assert PUBLIC[name] in found, name


def test_a_draft_is_never_in_an_anonymous_export_but_is_in_staff_ones(client, archive, auth):
    hidden = archive["hidden event"]
    for fmt in FORMATS:
        anonymous = frames(fmt, download(client, "events", format=fmt)[1], "events")["data"]
        staff = frames(fmt, download(client, "events", auth("viewer"), format=fmt)[1], "events")
        assert hidden not in set(anonymous["id"]) and archive["event"] in set(anonymous["id"])
        assert hidden in set(staff["data"]["id"])


def test_a_restricted_identity_leaves_empty_cells_for_anonymous_readers(client, archive):
    _, body = download(client, "victims", format="json")
    rows = {row["id"]: row for row in json.loads(body)}
    restricted = rows[archive["restricted victim"]]
    assert restricted["name"] is None and restricted["alias"] is None and restricted["age"] is None
    assert rows[archive["named victim"]]["name"] == PUBLIC["victim"]


# --- Audit, codebook sheet, streaming ---------------------------------------------------------


def test_every_export_is_an_audit_entry(client, archive, auth):
    download(client, "events", format="csv", operation_id=archive["operation"])
    download(client, "victims", auth("viewer"), format="xlsx", columns="id,outcome")
    entries = client.get("/api/v1/audit?action=export", headers=auth("admin")).json["items"]
    assert len(entries) == 2
    victims, events = entries  # newest first
    assert events["resource"] == "events" and events["user_email"] is None
    assert events["record_id"] is None
    assert events["changes"] == {
        "format": "csv",
        "filters": {"operation_id": str(archive["operation"])},
        "columns": [c.name for c in exports.readable_columns(None, "events")],
        "rows": 1,
    }
    assert victims["resource"] == "victims" and victims["user_email"].startswith("viewer")
    assert victims["changes"] == {
        "format": "xlsx",
        "filters": {},
        "columns": ["id", "outcome"],
        "rows": 3,
    }


def test_a_refused_export_is_not_audited(client, auth):
    assert client.get("/api/v1/exports/events?columns=nada").status_code == 422
    entries = client.get("/api/v1/audit?action=export", headers=auth("admin")).json
    assert entries["total"] == 0


@pytest.mark.parametrize("what", codebook.EXPORTS)
def test_the_codebook_sheet_describes_every_column_of_the_data_sheet(client, archive, auth, what):
    _, body = download(client, what, auth("editor"), format="xlsx")
    sheets = frames("xlsx", body, what)
    book = sheets["codebook"]
    described = book["column"].tolist()
    end = described.index(next(v for v in described if pd.isna(v)))
    assert described[:end] == list(sheets["data"].columns)
    assert book["description"][:end].notna().all() and book["type"][:end].notna().all()
    about = dict(zip(book["column"][end + 1 :], book["description"][end + 1 :], strict=True))
    from archive import indicators

    assert about["method_version"] == indicators.METHOD_VERSION
    assert about["exported_by"] == "editor" and about["export"] == what
    assert dt.datetime.fromisoformat(about["exported_at"]).date() == dt.datetime.now(dt.UTC).date()


def test_the_codebook_sheet_names_the_filters_and_an_anonymous_reader(client, archive):
    _, body = download(client, "events", format="xlsx", admin1="Distrito Capital")
    book = frames("xlsx", body, "events")["codebook"]
    about = dict(zip(book["column"], book["description"], strict=True))
    assert about["exported_by"] == "anonymous"
    assert about["filters"] == "admin1=Distrito Capital"
    assert "withheld" in about


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_stream_more_rows_than_one_chunk(app, client, factory, auth, fmt):
    app.config["EXPORT_CHUNK_ROWS"] = 2
    made = [factory.event() for _ in range(5)]
    response = client.get(f"/api/v1/exports/events?format={fmt}", headers=auth("viewer"))
    assert response.status_code == 200 and response.is_streamed
    pieces = list(response.response)
    # The header (or "["), three chunks of at most two rows, (and "]").
    assert len(pieces) == (4 if fmt == "csv" else 5)
    data = frames(fmt, b"".join(pieces), "events")["data"]
    assert list(data["id"]) == made


def test_xlsx_holds_more_rows_than_one_chunk(app, client, factory, auth):
    app.config["EXPORT_CHUNK_ROWS"] = 2
    made = [factory.event() for _ in range(5)]
    _, body = download(client, "events", auth("viewer"), format="xlsx")
    assert list(frames("xlsx", body, "events")["data"]["id"]) == made


def test_the_export_runs_without_http(app, factory):
    made = [factory.event(title=f"Evento {n}") for n in range(3)]
    factory.source(title="Fuente")
    with app.app_context():
        out = io.BytesIO()
        assert exports.write(db.session, None, "events", "csv", {}, out) == 0
        staff = factory_user(app)
        out = io.BytesIO()
        assert exports.write(db.session, staff, "events", "json", {"columns": "id"}, out) == 3
        assert json.loads(out.getvalue()) == [{"id": i} for i in made]
        out = io.BytesIO()
        assert exports.write(db.session, staff, "events", "xlsx", {}, out) == 3
        assert len(pd.read_excel(out, sheet_name="events")) == 3


def factory_user(app):
    from archive.models import User

    user = User(email="lector@example.org", role="viewer")
    db.session.add(user)
    db.session.flush()
    return user


# --- The indicators -----------------------------------------------------------------------------


@pytest.fixture
def indicator_archive(factory):
    """Two operations with published events: civilians killed by the state, and an agent."""
    ids = {}
    for name, civilians, agents in (("Operación Uno", 3, 1), ("Operación Dos", 2, 0)):
        operation = factory.operation(name=name)
        event = factory.published_event(
            operation_id=operation, start_date=dt.date(2015, 7, 13), date_precision="day"
        )
        for _ in range(civilians):
            factory.victim(event, affiliation="civilian", outcome="killed", caused_by="state")
        for _ in range(agents):
            factory.victim(
                event, affiliation="state_agent", outcome="killed", caused_by="non_state"
            )
        ids[name] = operation
    return ids


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("group_by", ["operation", "year"])
def test_the_indicators_export_equals_the_api_figures(client, indicator_archive, fmt, group_by):
    answer = client.get(f"/api/v1/indicators?group_by={group_by}").json
    _, body = download(client, "indicators", format=fmt, group_by=group_by)
    data = frames(fmt, body, "indicators")["data"]
    groups = answer["groups"]
    assert len(data) == (len(groups) + 1) * 17
    assert set(data["group_by"]) == {group_by}
    for group in groups:
        rows = data[(data["label"] == group["label"]) & ~data["is_total"].astype(bool)]
        assert list(rows["indicator"]) == list(group["indicators"])
        for _, row in rows.iterrows():
            figure = group["indicators"][row["indicator"]]
            for name in ("best", "low", "high", "events", "sources"):
                assert _same(row[name], figure[name]), (row["indicator"], name)
            assert _same(row["reason"], figure["reason"])
    total = data[data["is_total"].astype(bool)].set_index("indicator")
    for key, figure in answer["total"].items():
        assert _same(total.loc[key, "best"], figure["best"]), key
    assert set(data["method_version"].astype(str)) == {answer["method_version"]}


def _same(exported, given) -> bool:
    if given is None:
        return exported is None or pd.isna(exported)
    return exported == given


def test_the_indicators_export_names_the_groups_and_the_undefined_ratios(client, indicator_archive):
    _, body = download(client, "indicators", format="json", group_by="operation")
    rows = json.loads(body)
    ratio = {
        row["label"]: row
        for row in rows
        if row["indicator"] == "civilian_agent_death_ratio" and not row["is_total"]
    }
    assert ratio["Operación Uno"]["best"] == 3 and ratio["Operación Uno"]["threshold"] == 10
    assert ratio["Operación Uno"]["key"] == indicator_archive["Operación Uno"]
    assert ratio["Operación Uno"]["exceeds"] is False
    assert ratio["Operación Uno"]["threshold_reference"].startswith("Chevigny")
    assert ratio["Operación Dos"]["best"] is None and ratio["Operación Dos"]["reason"]
    assert {row["url"] for row in rows} == {"http://localhost/api/v1/indicators?group_by=operation"}


def test_indicator_parameters_are_checked_like_the_api(client):
    response = client.get("/api/v1/exports/indicators?group_by=planet&include_drafts=perhaps")
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"group_by", "include_drafts"}


# --- The codebook page and the export links -------------------------------------------------


def test_every_field_the_api_dumps_has_a_column_and_a_description(app):
    with app.test_request_context("/?lang=en"):
        for what in RECORD_EXPORTS:
            named = {c.field for c in codebook.columns(what) if c.field}
            fields = {n for n, f in RESOURCES[what].full_schema().fields.items() if not f.load_only}
            assert named == fields, what
            assert all(str(c.description) for c in codebook.columns(what))


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "The record's permanent address"),
        ("es", "La dirección permanente del registro"),
    ],
)
def test_the_codebook_page_reads_in_each_language(client, lang, text):
    page = client.get(f"/codebook?lang={lang}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert text in html
    for what in codebook.EXPORTS:
        assert f'id="export-{what}"' in html
    assert "internal_notes" in html and "threshold_reference" in html


def test_the_codebook_page_shows_one_export_when_asked(client):
    html = client.get("/codebook?what=victims&lang=en").get_data(as_text=True)
    assert 'id="export-victims"' in html and 'id="export-events"' not in html
    assert "identity_restricted" in html
    assert client.get("/codebook?what=planets").status_code == 404


def _export_hrefs(html: str) -> dict[str, dict]:
    hrefs = re.findall(r'href="(/api/v1/exports/[^"]+)"', html)
    found = {}
    for href in hrefs:
        parts = urlsplit(href.replace("&amp;", "&"))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        fmt = query.pop("format")
        found[fmt] = {"path": parts.path, **query}
    return found


def test_the_events_page_offers_its_filtered_list_for_download(client, archive):
    html = client.get("/events?admin1=Distrito+Capital&event_type=raid").get_data(as_text=True)
    links = _export_hrefs(html)
    assert set(links) == {"csv", "xlsx", "json"}
    assert links["csv"] == {
        "path": "/api/v1/exports/events",
        "admin1": "Distrito Capital",
        "event_type": "raid",
    }
    href = re.search(r'href="(/api/v1/exports/events[^"]+csv[^"]*)"', html)[1]
    response = client.get(href.replace("&amp;", "&"))
    assert response.status_code == 200 and response.get_data()


def test_the_sources_page_offers_the_sources_for_download(client, archive):
    links = _export_hrefs(client.get("/sources").get_data(as_text=True))
    assert links["xlsx"] == {"path": "/api/v1/exports/sources"}


def test_the_exports_index_lists_every_export(client):
    body = client.get("/api/v1/exports").json
    assert list(body["exports"]) == list(codebook.EXPORTS)
    assert body["exports"]["victims"] == "/api/v1/exports/victims"
    assert body["codebook"] == "/codebook"


# --- In a browser -------------------------------------------------------------------------------


def test_the_download_button_gives_the_filtered_list_in_a_browser(factory, browsing):
    from tests.browser_support import axe_violations

    operation = factory.operation()
    inside = factory.published_event(operation_id=operation, title="Allanamiento en Petare")
    factory.published_event(title="Otro hecho")
    page = browsing.open(accept_downloads=True)
    page.goto(f"/events?operation_id={operation}&lang=en")
    with page.expect_download() as info:
        page.click("a[aria-label='Download as CSV']")
    download = info.value
    day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert download.suggested_filename == f"constancia-events-{day}.csv"
    data = pd.read_csv(download.path(), encoding="utf-8-sig")
    assert list(data["id"]) == [inside] and list(data["title"]) == ["Allanamiento en Petare"]
    for lang in ("es", "en"):
        page.goto(f"/codebook?lang={lang}")
        assert axe_violations(page) == [], lang
