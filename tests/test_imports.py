"""Bulk import (issue 11): files in every format and encoding, messy cells, the report, all
rows or none, duplicates, provenance, and two real datasets imported through presets.

Most tests go through `flask import run` as a researcher would; a few call the services the
page will call. Expected figures are counted by hand from the files written here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import pathlib

import openpyxl
import pytest
from sqlalchemy import func, select

from archive import access, imports, provenance, records
from archive.extensions import db
from archive.models import (
    AuditEntry,
    CasualtyCount,
    Citation,
    Event,
    Place,
    Source,
    SourceFile,
    Victim,
)
from archive.resources import RESOURCES

DATA = pathlib.Path(__file__).parent / "data" / "imports"
RESEARCHER = access.SystemActor("tests", role="researcher")

# One row per clash, in Spanish, as a researcher's spreadsheet holds it.
CLASHES = [
    ["Fecha", "Estado", "Municipio", "Tipo", "Civiles muertos", "Soldados muertos"],
    ["13/07/2015", "Nuevo León", "Monterrey", "armed_clash_alleged", "3", "1"],
    ["14/07/2015", "Tamaulipas", "Reynosa", "raid", "5,042", "0"],
]
CLASH_MAPPING = {
    "rows": "event",
    "columns": {
        "Fecha": "event.start_date",
        "Estado": "place.admin1",
        "Municipio": "place.admin2",
        "Tipo": "event.event_type",
        "Civiles muertos": None,
        "Soldados muertos": None,
    },
    "constants": {"place.country": "MX", "event.title": "Enfrentamiento en {Municipio}"},
    "counts": [
        {
            "columns": ["Civiles muertos"],
            "affiliation": "civilian",
            "outcome": "killed",
            "caused_by": "state",
        },
        {
            "columns": ["Soldados muertos"],
            "affiliation": "state_agent",
            "outcome": "killed",
            "caused_by": "non_state",
        },
    ],
}


def csv_bytes(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.fixture
def files(tmp_path):
    """files(name, data) writes a file for the command line and answers its path."""

    def write(name: str, data: bytes | dict) -> str:
        path = tmp_path / name
        if isinstance(data, dict):
            data = json.dumps(data, ensure_ascii=False).encode()
        path.write_bytes(data)
        return str(path)

    return write


@pytest.fixture
def run(runner, files):
    """run(data, mapping, *options) imports the file through `flask import run`."""

    def invoke(data: bytes, mapping: dict | None, *options: str, name: str = "casos.csv"):
        args = ["import", "run", files(name, data)]
        if mapping is not None:
            args += ["--mapping", files("mapping.json", mapping)]
        return runner.invoke(args=[*args, *options])

    return invoke


def count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def events(app) -> list[Event]:
    with app.app_context():
        found = db.session.scalars(select(Event).order_by(Event.id)).all()
        for event in found:
            _ = event.place  # loaded while the session is open
        return found


def counts_by_cell(app) -> dict[tuple[str, str, str], int]:
    with app.app_context():
        rows = db.session.execute(
            select(
                CasualtyCount.affiliation,
                CasualtyCount.outcome,
                CasualtyCount.caused_by,
                func.sum(CasualtyCount.count),
            ).group_by(CasualtyCount.affiliation, CasualtyCount.outcome, CasualtyCount.caused_by)
        )
        return {(a, o, c): total for a, o, c, total in rows}


def json_report(result) -> dict:
    return json.loads(result.stdout)


# --- Formats and encodings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [
        (",", "utf-8"),
        (";", "utf-8"),
        ("\t", "utf-8"),
        (",", "utf-8-sig"),
        (";", "utf-8-sig"),
        (",", "latin-1"),
        (";", "latin-1"),
        ("\t", "latin-1"),
    ],
)
def test_csv_in_each_delimiter_and_encoding_is_imported_with_its_accents(
    app, run, delimiter, encoding
):
    result = run(csv_bytes(CLASHES, delimiter, encoding), CLASH_MAPPING)

    assert result.exit_code == 0, result.output
    imported = events(app)
    assert [(e.title, e.start_date, e.place.admin1) for e in imported] == [
        ("Enfrentamiento en Monterrey", dt.date(2015, 7, 13), "Nuevo León"),
        ("Enfrentamiento en Reynosa", dt.date(2015, 7, 14), "Tamaulipas"),
    ]
    assert counts_by_cell(app) == {
        ("civilian", "killed", "state"): 3 + 5042,
        ("state_agent", "killed", "non_state"): 1 + 0,
    }


def test_xlsx_is_read_with_its_typed_cells(app, run):
    rows = [
        CLASHES[0],
        [dt.datetime(2015, 7, 13), "Nuevo León", "Monterrey", "armed_clash_alleged", 3, 1],
        ["14/07/2015", "Tamaulipas", "Reynosa", "raid", "5,042", 0.0],
    ]

    result = run(xlsx_bytes(rows), CLASH_MAPPING, name="casos.xlsx")

    assert result.exit_code == 0, result.output
    assert [(e.start_date, e.date_precision) for e in events(app)] == [
        (dt.date(2015, 7, 13), "day"),
        (dt.date(2015, 7, 14), "day"),
    ]
    assert counts_by_cell(app)[("civilian", "killed", "state")] == 5045


def test_an_old_xls_file_is_refused_with_a_reason(run):
    result = run(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, CLASH_MAPPING, name="a.xls")

    assert result.exit_code == 1
    assert "save it as .xlsx or as CSV" in result.output


# --- Headers matched in Spanish and English --------------------------------------------------


def test_inspect_prints_only_the_mapping_for_spanish_headers(runner, files):
    path = files("casos.csv", csv_bytes(CLASHES + [["", "", "", "", "", ""]], ";"))

    result = runner.invoke(args=["import", "inspect", path])

    assert result.exit_code == 0
    mapping = json.loads(result.stdout)
    assert mapping["rows"] == "event"
    assert mapping["columns"] == {
        "Fecha": "event.start_date",
        "Estado": "place.admin1",
        "Municipio": "place.admin2",
        "Tipo": "event.event_type",
        "Civiles muertos": None,
        "Soldados muertos": None,
    }
    assert mapping["counts"] == [
        {
            "columns": ["Civiles muertos"],
            "affiliation": "civilian",
            "outcome": "killed",
            "caused_by": "unknown",
        },
        {
            "columns": ["Soldados muertos"],
            "affiliation": "state_agent",
            "outcome": "killed",
            "caused_by": "non_state",
        },
    ]
    assert mapping["date_formats"] == {"Fecha": "%d/%m/%Y"}
    assert "No title column" in result.stderr


def test_inspect_recognises_english_headers_of_one_row_per_person(runner, files):
    rows = [
        ["ID", "Name", "Age", "Gender", "Date", "City", "State"],
        ["7", "Ana Pérez", "34", "F", "2015-01-02", "Aloha", "OR"],
    ]
    path = files("people.csv", csv_bytes(rows))

    result = runner.invoke(args=["import", "inspect", path])

    assert result.exit_code == 0
    mapping = json.loads(result.stdout)
    assert mapping["rows"] == "victim"
    assert mapping["external_id"] == "ID"
    assert mapping["columns"] == {
        "ID": None,
        "Name": "victim.name",
        "Age": "victim.age",
        "Gender": "victim.sex",
        "Date": "event.start_date",
        "City": "place.locality",
        "State": "place.admin1",
    }


def test_a_mapping_printed_by_inspect_imports_the_file(app, runner, files):
    data = csv_bytes(CLASHES, ";")
    path = files("casos.csv", data)
    mapping = json.loads(runner.invoke(args=["import", "inspect", path]).stdout)
    mapping_path = files("mapping.json", mapping)

    result = runner.invoke(args=["import", "run", path, "--mapping", mapping_path])

    assert result.exit_code == 0, result.output
    assert [e.event_type for e in events(app)] == ["armed_clash_alleged", "raid"]


# --- Messy cells -----------------------------------------------------------------------------


def test_dates_in_several_spellings_keep_the_precision_they_were_given(app, run):
    rows = [
        ["Fecha", "Título"],
        ["11-Jan-07", "a"],
        ["13 de julio de 2015", "b"],
        ["07/2015", "c"],
        ["2015", "d"],
        ["2016-02-29", "e"],
    ]
    mapping = {
        "columns": {"Fecha": "event.start_date", "Título": "event.title"},
        "constants": {"event.event_type": "other"},
    }

    result = run(csv_bytes(rows), mapping)

    assert result.exit_code == 0, result.output
    assert [(e.start_date, e.date_precision) for e in events(app)] == [
        (dt.date(2007, 1, 11), "day"),
        (dt.date(2015, 7, 13), "day"),
        (dt.date(2015, 7, 1), "month"),
        (dt.date(2015, 1, 1), "year"),
        (dt.date(2016, 2, 29), "day"),
    ]


def _dated(dates: list[str]) -> tuple[bytes, dict]:
    rows = [["Fecha", "Título"]] + [[d, f"evento {i}"] for i, d in enumerate(dates)]
    mapping = {
        "columns": {"Fecha": "event.start_date", "Título": "event.title"},
        "constants": {"event.event_type": "other"},
    }
    return csv_bytes(rows), mapping


def test_a_day_above_twelve_makes_the_whole_column_day_first(app, run):
    result = run(*_dated(["03/04/2015", "13/04/2015"]))

    assert result.exit_code == 0, result.output
    assert [e.start_date for e in events(app)] == [dt.date(2015, 4, 3), dt.date(2015, 4, 13)]


def test_a_day_in_second_place_makes_the_whole_column_month_first(app, run):
    result = run(*_dated(["03/04/2015", "04/13/2015"]))

    assert result.exit_code == 0, result.output
    assert [e.start_date for e in events(app)] == [dt.date(2015, 3, 4), dt.date(2015, 4, 13)]


def test_dates_that_could_be_either_order_are_read_day_first_and_reported(run):
    result = run(*_dated(["03/04/2015", "05/06/2015"]), "--dry-run", "--json")

    assert result.exit_code == 0
    notes = json_report(result)["notes"]
    assert len(notes) == 1
    assert notes[0]["column"] == "Fecha"
    assert "could be day-first or month-first" in notes[0]["message"]
    assert "%m/%d/%Y" in notes[0]["message"]


def test_a_column_with_dates_in_both_orders_is_an_error(app, run, db_rows):
    before = db_rows()

    result = run(*_dated(["13/04/2015", "04/13/2015"]), "--json")

    assert result.exit_code == 1
    errors = json_report(result)["errors"]
    assert errors[0]["column"] == "Fecha"
    assert "row 2 can only be day-first, row 3 only month-first" in errors[0]["message"]
    assert db_rows() == before


def test_a_date_format_in_the_mapping_settles_the_order(app, run):
    data, mapping = _dated(["03/04/2015"])

    result = run(data, {**mapping, "date_formats": {"Fecha": "%m/%d/%Y"}})

    assert result.exit_code == 0, result.output
    assert [e.start_date for e in events(app)] == [dt.date(2015, 3, 4)]


def test_blank_lines_are_skipped_and_counted(app, run):
    rows = [CLASHES[0], ["", "", "", "", "", ""], CLASHES[1], [], CLASHES[2]]

    result = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    report = json_report(result)
    assert report["rows"] == {"read": 2, "blank": 2, "skipped": 0, "with_errors": 0}
    assert report["created"]["events"] == 2


def test_a_totals_row_is_an_error_until_the_mapping_skips_it(app, run):
    rows = [*CLASHES, ["TOTAL", "", "", "", "5,045", "1"]]

    refused = run(csv_bytes(rows), CLASH_MAPPING, "--json")
    skipping = {**CLASH_MAPPING, "skip": [{"column": "Fecha", "pattern": "^TOTAL"}]}
    accepted = run(csv_bytes(rows), skipping, "--json")

    assert refused.exit_code == 1
    assert {e["row"] for e in json_report(refused)["errors"]} == {4}
    assert accepted.exit_code == 0, accepted.output
    assert json_report(accepted)["rows"]["skipped"] == 1
    assert counts_by_cell(app)[("civilian", "killed", "state")] == 5045


# --- The report, and all rows or none --------------------------------------------------------


def test_errors_in_many_rows_are_all_reported_and_nothing_is_written(app, run, db_rows):
    rows = [
        CLASHES[0],
        ["#VALUE!", "Nuevo León", "Monterrey", "raid", "1", "0"],
        ["14/07/2015", "Tamaulipas", "Reynosa", "bombing", "2", "0"],
        ["15/07/2015", "Tamaulipas", "Reynosa", "raid", "1.5", "0"],
        ["16/07/2015", "Tamaulipas", "Reynosa", "raid", "2", "#DIV/0!"],
        ["32/07/2015", "Tamaulipas", "Reynosa", "raid", "2", "0"],
        CLASHES[1],
    ]
    before = db_rows()

    result = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 1
    report = json_report(result)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (2, "Fecha"),
        (3, "Tipo"),
        (4, "Civiles muertos"),
        (5, "Soldados muertos"),
        (6, "Fecha"),
    ]
    messages = [e["message"] for e in report["errors"]]
    assert "spreadsheet error #VALUE!" in messages[0]
    assert "'bombing' is not in the list for event.event_type" in messages[1]
    assert "'1.5' is not a whole number" in messages[2]
    assert "#DIV/0!" in messages[3]
    assert report["rows"] == {"read": 6, "blank": 0, "skipped": 0, "with_errors": 5}
    assert report["written"] is False
    assert db_rows() == before


def test_the_text_report_names_row_column_and_reason(run):
    rows = [CLASHES[0], ["#VALUE!", "Nuevo León", "Monterrey", "raid", "1", "0"]]

    result = run(csv_bytes(rows), CLASH_MAPPING)

    assert result.exit_code == 1
    assert "row 2, column 'Fecha': The cell holds the spreadsheet error #VALUE!." in (result.stdout)
    assert "Nothing was written" in result.stderr


def test_an_error_on_the_last_row_of_a_large_file_writes_nothing(app, run, db_rows):
    rows = [CLASHES[0]]
    rows += [[f"{1 + i % 28}/07/2015", "Sonora", f"M{i}", "raid", "1", "0"] for i in range(4999)]
    rows.append(["01/08/2015", "Sonora", "Hermosillo", "raid", "uno", "0"])
    before = db_rows()

    result = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 1
    report = json_report(result)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(5001, "Civiles muertos")]
    assert report["rows"]["read"] == 5000
    assert db_rows() == before


def test_a_dry_run_without_errors_exits_0_and_writes_nothing(app, run, db_rows):
    before = db_rows()

    result = run(csv_bytes(CLASHES), CLASH_MAPPING, "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    report = json_report(result)
    assert report["created"]["events"] == 2
    assert report["created"]["casualty_counts"] == 4
    assert report["created"]["places"] == 2
    assert report["written"] is False
    assert db_rows() == before


def test_a_value_the_mapping_does_not_translate_is_an_error(app, run):
    rows = [["Nombre", "Sexo", "Fecha"], ["Ana", "M", "2015"], ["Luis", "X", "2015"]]
    mapping = {
        "rows": "victim",
        "columns": {"Nombre": "victim.name", "Sexo": "victim.sex", "Fecha": "event.start_date"},
        "values": {"victim.sex": {"M": "male", "F": "female"}},
        "constants": {
            "event.title": "Caso",
            "event.event_type": "other",
            "victim.outcome": "killed",
        },
    }

    result = run(csv_bytes(rows), mapping, "--json")

    assert result.exit_code == 1
    assert json_report(result)["errors"] == [
        {
            "row": 3,
            "column": "Sexo",
            "message": "'X' maps to nothing in values.victim.sex; add it there.",
        }
    ]
    assert count(app, Victim) == 0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"colums": {}}, "colums"),
        ({"rows": "people"}, "rows"),
        ({"columns": {**CLASH_MAPPING["columns"], "Fecha": "event.when"}}, "columns.Fecha"),
        ({"columns": {**CLASH_MAPPING["columns"], "Fechas": "event.end_date"}}, "columns.Fechas"),
        ({"skip": [{"column": "Fecha", "pattern": "(["}]}, "skip.0.pattern"),
        (
            {"counts": [{"columns": ["Civiles muertos"], "outcome": "killed"}]},
            "counts.0.affiliation",
        ),
        ({"date_formats": {"Fecha": "%d/%m"}}, "date_formats.Fecha"),
        ({"values": {"event.event_type": {"x": "bombing"}}}, "values.event.event_type.x"),
    ],
)
def test_a_mapping_that_cannot_be_used_is_refused_naming_the_key(app, run, change, key, db_rows):
    before = db_rows()

    result = run(csv_bytes(CLASHES), {**CLASH_MAPPING, **change})

    assert result.exit_code == 1
    assert f"mapping: {key}: " in result.stderr
    assert db_rows() == before


# --- Places ----------------------------------------------------------------------------------


def test_places_in_capitals_without_accents_match_the_archive_and_are_noted(app, run, factory):
    existing = factory.create("places", country="MX", admin1="Nuevo León", admin2="Monterrey")
    rows = [CLASHES[0], ["13/07/2015", "NUEVO LEON", "MONTERREY", "raid", "1", "0"]]

    result = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    assert [e.place_id for e in events(app)] == [existing]
    assert count(app, Place) == 1
    [note] = json_report(result)["notes"]
    assert note["row"] == 2
    assert f"is place {existing} (Monterrey, Nuevo León, MX)" in note["message"]


def test_a_place_not_in_the_archive_is_added_as_written_and_noted(app, run):
    rows = [CLASHES[0], ["13/07/2015", "CHIHUAHUA", "CD. JUAREZ", "raid", "1", "0"]]

    result = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    [event] = events(app)
    assert (event.place.admin1, event.place.admin2) == ("CHIHUAHUA", "CD. JUAREZ")
    [note] = json_report(result)["notes"]
    assert "'CD. JUAREZ, CHIHUAHUA, MX' matches no place in the archive" in note["message"]


# --- Duplicates ------------------------------------------------------------------------------


def test_importing_the_same_file_twice_creates_nothing_the_second_time(app, run):
    data = csv_bytes(CLASHES)
    first = run(data, CLASH_MAPPING)
    tables = (Event, Place, CasualtyCount, Citation, Source, SourceFile)
    after_first = [count(app, table) for table in tables]

    second = run(data, CLASH_MAPPING, "--json")

    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert [count(app, table) for table in tables] == after_first
    report = json_report(second)
    assert report["created"] == dict.fromkeys(report["created"], 0)
    assert report["skipped"]["events"] == 2
    assert [d["row"] for d in report["duplicates"]] == [2, 3]


def test_rows_of_one_file_that_look_alike_stay_separate_events(app, run):
    rows = [CLASHES[0], CLASHES[1], CLASHES[1]]

    result = run(csv_bytes(rows), CLASH_MAPPING)
    again = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    assert count(app, Event) == 2
    assert counts_by_cell(app)[("civilian", "killed", "state")] == 6
    assert json_report(again)["skipped"]["events"] == 2
    assert count(app, Event) == 2


def test_an_event_already_in_the_archive_is_reported_and_skipped(app, run, factory):
    place = factory.create("places", country="MX", admin1="Nuevo León", admin2="Monterrey")
    existing = factory.event(
        title="Enfrentamiento en Monterrey.", start_date=dt.date(2015, 7, 13), place_id=place
    )

    result = run(csv_bytes(CLASHES[:2]), CLASH_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    report = json_report(result)
    assert report["duplicates"] == [
        {
            "row": 2,
            "record": "event",
            "id": existing,
            "reason": "same date, same place and a similar title ('Enfrentamiento en Monterrey.')",
        }
    ]
    assert report["skipped"] == {**report["skipped"], "events": 1, "casualty_counts": 2}
    assert count(app, Event) == 1
    assert count(app, CasualtyCount) == 0


def test_the_user_may_update_duplicates_instead(app, run, factory):
    place = factory.create("places", country="MX", admin1="Nuevo León", admin2="Monterrey")
    existing = factory.event(
        title="Enfrentamiento en Monterrey",
        start_date=dt.date(2015, 7, 13),
        place_id=place,
        event_type="raid",
    )

    result = run(csv_bytes(CLASHES[:2]), CLASH_MAPPING, "--on-duplicate", "update", "--json")

    assert result.exit_code == 0, result.output
    assert json_report(result)["updated"]["events"] == 1
    [event] = events(app)
    assert (event.id, event.event_type, event.version) == (existing, "armed_clash_alleged", 2)
    assert count(app, CasualtyCount, CasualtyCount.event_id == existing) == 2
    with app.app_context():  # the update's own entry sits between the import's entries
        assert provenance.verify_chain(db.session).ok


def test_a_later_file_of_the_same_dataset_is_recognised_by_its_external_ids(app, run):
    mapping = {
        **CLASH_MAPPING,
        "columns": {**CLASH_MAPPING["columns"], "Folio": None},
        "external_id": "Folio",
    }
    header = [*CLASHES[0], "Folio"]
    first = [header, [*CLASHES[1], "A-1"]]
    corrected = [header, ["13/07/2015", "Nuevo León", "Monterrey", "raid", "4", "1", "A-1"]]
    run(csv_bytes(first), mapping)

    result = run(csv_bytes(corrected), mapping, "--on-duplicate", "update", "--json")

    assert result.exit_code == 0, result.output
    report = json_report(result)
    assert report["duplicates"][0]["reason"] == "same external id 'A-1'"
    [event] = events(app)
    assert (event.event_type, event.external_id) == ("raid", "A-1")
    # A figure from another file is another source's figure: both are kept.
    with app.app_context():
        figures = db.session.execute(
            select(CasualtyCount.count, CasualtyCount.source_id).where(
                CasualtyCount.affiliation == "civilian"
            )
        ).all()
    assert sorted(count for count, _ in figures) == [3, 4]
    assert len({source for _, source in figures}) == 2


# --- Provenance ------------------------------------------------------------------------------


def test_every_record_cites_the_stored_file_at_its_row(app, run):
    data = csv_bytes(CLASHES)

    result = run(data, CLASH_MAPPING)

    assert result.exit_code == 0, result.output
    sha256 = hashlib.sha256(data).hexdigest()
    with app.app_context():
        [source] = db.session.scalars(select(Source)).all()
        assert (source.kind, source.title) == ("dataset", "casos.csv")
        assert [(f.sha256, f.size) for f in source.files] == [(sha256, len(data))]
        store = provenance.FileStore(app.config["FILES_DIR"])
        with open(store.check(sha256), "rb") as f:
            assert f.read() == data
        cited = {
            (c.target_type, c.target_id): c.locator
            for c in db.session.scalars(select(Citation).where(Citation.source_id == source.id))
        }
        by_title = {e.title: e.id for e in db.session.scalars(select(Event))}
        counts = db.session.scalars(select(CasualtyCount)).all()
    assert cited[("event", by_title["Enfrentamiento en Monterrey"])] == "row 2"
    assert cited[("event", by_title["Enfrentamiento en Reynosa"])] == "row 3"
    rows_of_counts = {(c.event_id, c.affiliation): cited[("casualty_count", c.id)] for c in counts}
    assert rows_of_counts[(by_title["Enfrentamiento en Reynosa"], "civilian")] == "row 3"
    assert all(c.source_id == source.id for c in counts)
    assert len(cited) == 2 + 4


def test_imported_events_arrive_as_drafts(app, run):
    run(csv_bytes(CLASHES), CLASH_MAPPING)

    assert {(e.status, e.published) for e in events(app)} == {("draft", False)}


def test_the_import_is_one_audited_action_naming_file_mapping_and_counts(app, run):
    data = csv_bytes(CLASHES)

    run(data, CLASH_MAPPING)

    with app.app_context():
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "import"))
        changes, source_id = entry.changes, entry.record_id
        assert (entry.resource, entry.user_email) == ("source", "cli")
        assert db.session.scalars(select(Source.id)).all() == [source_id]
        assert provenance.verify_chain(db.session).ok
    assert changes["file"] == {
        "name": "casos.csv",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    assert changes["mapping"] == CLASH_MAPPING
    assert changes["counts"]["created"]["events"] == 2
    assert changes["counts"]["created"]["casualty_counts"] == 4


# --- Services, as the page will call them ----------------------------------------------------


def test_the_service_answers_a_report_that_serialises_to_json(app):
    with app.app_context():
        store = provenance.FileStore(app.config["FILES_DIR"])
        report = imports.run_import(
            db.session,
            RESEARCHER,
            store,
            csv_bytes(CLASHES),
            "casos.csv",
            CLASH_MAPPING,
            dry_run=True,
        )
        db.session.rollback()
    body = json.loads(json.dumps(report.to_dict()))
    assert body["ok"] is True
    assert body["file"]["format"] == "csv"
    assert body["created"]["events"] == 2


def test_a_written_import_leaves_the_connection_as_it_found_it(app):
    """On SQLite the write gets a larger page cache; the connection, back in the pool after,
    has its own size again."""

    def cache_size():
        return db.session.connection().exec_driver_sql("PRAGMA cache_size").scalar()

    with app.app_context():
        before = cache_size() if db.engine.dialect.name == "sqlite" else None
        store = provenance.FileStore(app.config["FILES_DIR"])
        report = imports.run_import(
            db.session, RESEARCHER, store, csv_bytes(CLASHES), "casos.csv", CLASH_MAPPING
        )
        assert report.written
        if before is not None:
            assert cache_size() == before
        db.session.commit()
        assert count(app, Event) == 2
        assert provenance.verify_chain(db.session).ok


def test_a_viewer_may_not_import(app):
    viewer = access.SystemActor("someone", role="viewer")
    with app.app_context():
        store = provenance.FileStore(app.config["FILES_DIR"])
        with pytest.raises(access.AccessDenied):
            imports.run_import(
                db.session, viewer, store, csv_bytes(CLASHES), "c.csv", CLASH_MAPPING
            )


# --- Real datasets, through presets ----------------------------------------------------------


def test_washington_post_fatal_force_rows_import_through_a_preset(app, runner):
    sample = str(DATA / "wapo-fatal-police-shootings-sample.csv")
    preset = str(DATA / "wapo-fatal-police-shootings.mapping.json")
    saved = runner.invoke(
        args=[
            "import",
            "run",
            sample,
            "--mapping",
            preset,
            "--dry-run",
            "--save-preset",
            "fatal-force",
        ]
    )

    result = runner.invoke(args=["import", "run", sample, "--preset", "fatal-force"])

    assert saved.exit_code == 0, saved.output
    assert result.exit_code == 0, result.output
    with app.app_context():
        people = db.session.execute(
            select(
                Victim.name,
                Victim.age,
                Victim.sex,
                Victim.outcome,
                Victim.caused_by,
                Victim.external_id,
                Event.start_date,
                Place.locality,
                Place.admin1,
                Place.country,
            )
            .join(Event, Event.id == Victim.event_id)
            .join(Place, Place.id == Event.place_id)
            .order_by(Victim.id)
        ).all()
    assert len(people) == 22
    assert people[0] == (
        "Tim Elliot",
        53,
        "male",
        "killed",
        "state",
        "3",
        dt.date(2015, 1, 2),
        "Shelton",
        "WA",
        "US",
    )
    assert people[8][:3] == ("Autumn Steele", 34, "female")
    assert people[-1][:3] == ("Alejandro Salazar", None, "male")  # age left blank there
    assert count(app, Event) == 22


def test_cide_clashes_with_counts_per_side_and_a_totals_row_import_through_a_preset(app, runner):
    sample = str(DATA / "cide-enfrentamientos-sample.tsv")
    preset = str(DATA / "cide-enfrentamientos.mapping.json")
    runner.invoke(
        args=["import", "run", sample, "--mapping", preset, "--dry-run", "--save-preset", "cide"]
    )

    result = runner.invoke(args=["import", "run", sample, "--preset", "cide", "--json"])

    assert result.exit_code == 0, result.output
    report = json_report(result)
    assert report["rows"] == {"read": 21, "blank": 0, "skipped": 1, "with_errors": 0}
    assert report["created"]["events"] == 20
    # The totals row under the data, summed by hand from the 20 rows (9999: no data).
    assert counts_by_cell(app) == {
        ("state_agent", "killed", "non_state"): 9,  # PMUF 4 + 1 + 4
        ("non_state_armed", "killed", "state"): 16,  # DOF
        ("civilian", "killed", "unknown"): 2,  # CIF
        ("state_agent", "injured", "non_state"): 2,  # MAL 1 + PMUL 1
        ("non_state_armed", "injured", "state"): 5,  # DOL
        ("civilian", "injured", "unknown"): 14,  # CIL 1 + 7 + 1 + 5
        ("unknown", "detained", "state"): 19,  # DE 2 + 7 + 4 + 1 + 5
    }
    with app.app_context():
        chain = provenance.verify_chain(db.session)
    assert chain.ok and chain.checked == count(app, AuditEntry)
    first = events(app)[0]
    assert (first.title, first.start_date, first.place.admin1, first.external_id) == (
        "Enfrentamiento 1 de la base CIDE-PPD en Michoacán de Ocampo (municipio 15)",
        dt.date(2007, 1, 16),
        "Michoacán de Ocampo",
        "1",
    )


def test_a_title_above_the_table_is_not_taken_for_the_header(app, run):
    rows = [["Enfrentamientos reportados, julio de 2015"], [], *CLASHES]

    result = run(csv_bytes(rows), CLASH_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    report = json_report(result)
    assert report["file"]["header_row"] == 3
    assert report["rows"]["read"] == 2


def test_inspect_names_the_cells_a_controlled_list_needs_values_for(runner, files):
    rows = [["Nombre", "Sexo", "Fecha"], ["Ana", "F", "2015"], ["Luis", "M", "2015"]]
    path = files("personas.csv", csv_bytes(rows))

    result = runner.invoke(args=["import", "inspect", path])

    assert result.exit_code == 0
    assert json.loads(result.stdout)["columns"]["Sexo"] == "victim.sex"
    assert "Column 'Sexo' feeds victim.sex, but 'F', 'M' are not in its list" in result.stderr


def test_a_latitude_without_its_longitude_is_an_error_of_its_row(app, run):
    rows = [["Fecha", "Lugar", "Lat"], ["2015-07-13", "Cota 905", "10.48"]]
    mapping = {
        "columns": {
            "Fecha": "event.start_date",
            "Lugar": "place.locality",
            "Lat": "place.latitude",
        },
        "constants": {"event.title": "Operativo en {Lugar}", "event.event_type": "raid"},
    }

    result = run(csv_bytes(rows), mapping, "--json")

    assert result.exit_code == 1
    assert json_report(result)["errors"] == [
        {"row": 2, "column": "place.longitude", "message": "Give latitude and longitude together."}
    ]
    assert count(app, Place) == 0


def test_a_file_over_the_size_limit_is_refused(app, run):
    app.config["FILES_MAX_BYTES"] = 10

    result = run(csv_bytes(CLASHES), CLASH_MAPPING)

    assert result.exit_code == 1
    assert "larger than the limit of 10 bytes" in result.output


PEOPLE = [
    ["Fecha", "Municipio", "Nombre", "Edad", "Sexo"],
    ["13/07/2015", "Sucre", "José Pérez", "23", "M"],
    ["13/07/2015", "SUCRE", "Luis Gómez", "17", "M"],
    ["14/07/2015", "Sucre", "Ana Ruiz", "", "F"],
]
PEOPLE_MAPPING = {
    "rows": "victim",
    "columns": {
        "Fecha": "event.start_date",
        "Municipio": "place.admin2",
        "Nombre": "victim.name",
        "Edad": "victim.age",
        "Sexo": "victim.sex",
    },
    "values": {"victim.sex": {"M": "male", "F": "female"}},
    "constants": {
        "place.admin1": "Miranda",
        "event.title": "Operativo en {Municipio}",
        "event.event_type": "raid",
        "victim.outcome": "killed",
        "victim.caused_by": "state",
    },
    "event_key": ["event.start_date", "place.admin2"],
}


def test_rows_per_person_with_equal_event_keys_form_one_event(app, run):
    result = run(csv_bytes(PEOPLE), PEOPLE_MAPPING, "--json")

    assert result.exit_code == 0, result.output
    assert json_report(result)["created"]["events"] == 2
    with app.app_context():
        people = db.session.execute(
            select(Victim.name, Victim.event_id, Victim.identity_restricted).order_by(Victim.id)
        ).all()
    assert [name for name, _, _ in people] == ["José Pérez", "Luis Gómez", "Ana Ruiz"]
    assert people[0][1] == people[1][1] != people[2][1]
    assert people[1][2] is True  # 17 years old: a minor's identity is restricted


def test_importing_rows_per_person_twice_creates_nothing_the_second_time(app, run):
    run(csv_bytes(PEOPLE), PEOPLE_MAPPING)

    again = run(csv_bytes(PEOPLE), PEOPLE_MAPPING, "--json")

    assert again.exit_code == 0, again.output
    report = json_report(again)
    assert report["skipped"]["events"] == 2
    assert report["skipped"]["victims"] == 3
    assert (count(app, Event), count(app, Victim)) == (2, 3)
    with app.app_context():
        assert provenance.verify_chain(db.session).ok


# --- History and search of what an import makes -----------------------------------------------


def test_each_record_an_import_makes_keeps_its_whole_first_version_in_its_history(app, run):
    """The "create" entry of every imported record (events, places, operations, people,
    figures and citations) holds the record as the API's schema shows it once stored."""
    people = [PEOPLE[0] + ["Operación"]] + [row + ["Relámpago"] for row in PEOPLE[1:]]
    mapping = {
        **PEOPLE_MAPPING,
        "columns": {**PEOPLE_MAPPING["columns"], "Operación": "operation.name"},
    }
    assert run(csv_bytes(CLASHES), CLASH_MAPPING).exit_code == 0
    result = run(csv_bytes(people), mapping, name="personas.csv")
    assert result.exit_code == 0, result.output

    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "create").order_by(AuditEntry.seq)
        ).all()
        kept = {(e.resource, e.record_id): e.changes for e in entries}
        made = {}
        for resource in RESOURCES.values():
            for record in db.session.scalars(select(resource.model)):
                made[(resource.key, record.id)] = records.diff(
                    {}, records.snapshot(resource, record)
                )
        assert provenance.verify_chain(db.session).ok
    assert {key for key, _ in made} >= {
        "event",
        "place",
        "operation",
        "victim",
        "casualty_count",
        "citation",
    }
    assert kept == made


def test_the_search_index_follows_an_import(app, run, client, auth, factory):
    factory.operation(name="Operación Previa")  # the index exists before the import
    assert client.get("/api/v1/search", query_string={"q": "previa"}).status_code == 200

    assert run(csv_bytes(CLASHES), CLASH_MAPPING).exit_code == 0

    response = client.get(
        "/api/v1/search",
        query_string={"q": "Reynosa", "type": "event"},
        headers=auth("editor"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        [reynosa] = db.session.scalars(select(Event.id).where(Event.title.contains("Reynosa")))
    assert [(i["type"], i["id"]) for i in response.json["items"]] == [("event", reynosa)]


# --- The dataset's own ids in the API ----------------------------------------------------------


def _external_ids(app, model) -> dict[int, tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(select(model.id, model.external_dataset, model.external_id))
        return {record_id: (dataset, external) for record_id, dataset, external in rows}


def test_the_api_shows_the_dataset_ids_an_import_kept_and_takes_none(app, run, client, auth):
    assert run(csv_bytes(PEOPLE), {**PEOPLE_MAPPING, "external_id": "Nombre"}).exit_code == 0
    [(event_id, (event_dataset, event_external))] = list(_external_ids(app, Event).items())[:1]
    victims = _external_ids(app, Victim)
    victim_id = next(i for i, (_, external) in victims.items() if external == "José Pérez")

    event = client.get(f"/api/v1/events/{event_id}", headers=auth("researcher"))
    victim = client.get(f"/api/v1/victims/{victim_id}", headers=auth("researcher"))

    assert event.status_code == victim.status_code == 200
    assert (event.json["external_dataset"], event.json["external_id"]) == (
        event_dataset,
        event_external,
    )
    assert event_dataset.startswith("layout:") and event_external
    assert (victim.json["external_dataset"], victim.json["external_id"]) == victims[victim_id]
    listed = client.get("/api/v1/victims", headers=auth("researcher")).json["items"]
    assert {v["id"]: v["external_id"] for v in listed} == {
        i: external for i, (_, external) in victims.items()
    }
    # Read-only: the API takes neither on a write, as it takes no id.
    for body in ({"external_id": "X-1"}, {"external_dataset": "otro"}):
        refused = client.patch(f"/api/v1/events/{event_id}", json=body, headers=auth("editor"))
        assert refused.status_code == 422, refused.json
        assert set(refused.json["error"]["fields"]) == set(body)
    assert _external_ids(app, Event)[event_id] == (event_dataset, event_external)


def test_a_withheld_identity_withholds_its_dataset_id_from_anonymous_readers(
    app, client, factory, auth
):
    event_id = factory.published_event()
    minor = factory.victim(event_id, name="Luis Gómez", age=17)
    adult = factory.victim(event_id, name="José Pérez", age=23)
    with app.app_context():
        for victim_id, external in ((minor, "wapo-1"), (adult, "wapo-2")):
            db.session.get(Victim, victim_id).external_id = external
            db.session.get(Victim, victim_id).external_dataset = "layout:wapo"
        db.session.commit()

    shown = {v["id"]: v for v in client.get(f"/api/v1/victims?event_id={event_id}").json["items"]}
    staff = client.get(f"/api/v1/victims/{minor}", headers=auth("viewer")).json

    assert "name" not in shown[minor] and "external_id" not in shown[minor]
    assert "external_dataset" not in shown[minor]
    assert shown[adult]["external_id"] == "wapo-2"
    assert (staff["name"], staff["external_id"]) == ("Luis Gómez", "wapo-1")


def give_the_next_import_a_taken_event_id(factory, monkeypatch) -> None:
    """Make the next import's write fail in the database: its first event is given the id
    of an event already in the archive."""
    from archive.imports import engine

    taken = factory.event(title="Ya en el archivo")
    take_ids = engine.Writer._take_ids

    def clashing(writer, counts):
        ids = take_ids(writer, counts)
        if "events" in ids:
            ids["events"] = [taken, *ids["events"][1:]]
        return ids

    monkeypatch.setattr(engine.Writer, "_take_ids", clashing)


def test_a_write_the_database_refuses_keeps_nothing_and_names_the_rows(
    app, run, factory, monkeypatch
):
    """A row the checks pass but the database refuses (here: an event given the id of one
    already there, as a bug or another writer might) fails the whole import, reported."""
    give_the_next_import_a_taken_event_id(factory, monkeypatch)
    before = (
        count(app, Event),
        count(app, CasualtyCount),
        count(app, Citation),
        count(app, Source),
    )

    result = run(csv_bytes(CLASHES), CLASH_MAPPING, "--json")

    assert result.exit_code != 0
    [error] = json_report(result)["errors"]
    assert error["message"].startswith("Writing failed, nothing was kept: rows 2 to 3: ")
    assert not json_report(result)["written"]
    after = (count(app, Event), count(app, CasualtyCount), count(app, Citation), count(app, Source))
    assert after == before
    with app.app_context():
        assert provenance.verify_chain(db.session).ok
