"""Context figures: official population and homicides per region and year, each from a source.

Through the API (create, change, delete, restore, history and audit; what is refused and
why; who sees a figure from a restricted source), the `context load` command, and the pages.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from archive.extensions import db
from archive.models import ContextFigure

from .audit_helpers import audit_entries
from .web_helpers import post_form, text

API = "/api/v1/context-figures"


def figure(source_id: int, **overrides) -> dict:
    return {
        "admin1": "Miranda",
        "year": 2016,
        "population": 3_166_000,
        "homicides": 1_432,
        "source_id": source_id,
        **overrides,
    }


def create(client, auth, payload: dict, role: str = "researcher") -> dict:
    response = client.post(API, json=payload, headers=auth(role))
    assert response.status_code == 201, response.json
    return response.json


def stored(app) -> list[tuple]:
    with app.app_context():
        return [
            (f.country, f.admin1, f.admin2, f.year, f.population, f.homicides, f.source_id)
            for f in db.session.scalars(
                select(ContextFigure)
                .where(ContextFigure.deleted_at.is_(None))
                .order_by(ContextFigure.id)
            )
        ]


# --- The API ---------------------------------------------------------------------------------


def test_create_change_delete_restore_are_audited_and_kept_in_the_history(
    app, client, factory, auth
):
    source = factory.source(title="Proyecciones de población, INE")
    created = create(client, auth, figure(source, admin2="Sucre", notes="Proyección"))
    assert {k: created[k] for k in ("country", "admin1", "admin2", "year", "version")} == {
        "country": "VE",
        "admin1": "Miranda",
        "admin2": "Sucre",
        "year": 2016,
        "version": 1,
    }
    url = f"{API}/{created['id']}"
    assert client.get(url).json["population"] == 3_166_000  # anyone reads it

    changed = client.patch(url, json={"homicides": 1_500}, headers=auth("researcher"))
    assert changed.status_code == 200, changed.json
    assert (changed.json["homicides"], changed.json["version"]) == (1_500, 2)
    assert client.delete(url, headers=auth("editor")).status_code == 204
    assert client.get(url, headers=auth("viewer")).status_code == 404
    assert client.post(f"{url}/restore", headers=auth("editor")).json["version"] == 4

    history = client.get(f"{url}/history", headers=auth("viewer")).json["items"]
    assert [h["action"] for h in history] == ["create", "update", "delete", "restore"]
    assert history[0]["user_email"].startswith("researcher-")
    assert history[0]["changes"]["population"] == {"before": None, "after": 3_166_000}
    assert history[0]["changes"]["source_id"] == {"before": None, "after": source}
    assert history[1]["changes"] == {"homicides": {"before": 1_432, "after": 1_500}}
    logged = audit_entries(app, resource="context_figure", record_id=created["id"])
    assert [e["action"] for e in logged] == ["create", "update", "delete", "restore"]
    assert [e["seq"] for e in logged] == [h["seq"] for h in history]


@pytest.mark.parametrize(
    "change, fields",
    [
        ({"year": None}, {"year"}),
        ({"year": 1899}, {"year"}),
        ({"population": -1}, {"population"}),
        ({"homicides": -3}, {"homicides"}),
        ({"population": None, "homicides": None}, {"population", "homicides"}),
        ({"source_id": 999_999}, {"source_id"}),
        ({"admin1": "  "}, {"admin1"}),
        ({"country": "Venezuela"}, {"country"}),
    ],
)
def test_invalid_figures_are_refused_naming_the_field(
    client, factory, auth, db_rows, change, fields
):
    payload = {k: v for k, v in {**figure(factory.source()), **change}.items() if v is not None}
    before = db_rows()
    response = client.post(API, json=payload, headers=auth("researcher"))
    assert response.status_code == 422, response.json
    assert set(response.json["error"]["fields"]) == fields
    assert db_rows() == before


def test_the_messages_say_what_is_wrong(client, factory, auth):
    payload = figure(factory.source(), year=None, population=-1, homicides=None)
    fields = client.post(API, json=payload, headers=auth("researcher")).json["error"]["fields"]
    assert fields == {
        "year": ["Field may not be null."],
        "population": [
            "Must be greater than or equal to 0 and less than or equal to 9223372036854775807."
        ],
    }
    neither = figure(factory.source(), population=None, homicides=None)
    fields = client.post(API, json=neither, headers=auth("researcher")).json["error"]["fields"]
    assert fields == {
        "population": ["Give population, homicides or both."],
        "homicides": ["Give population, homicides or both."],
    }
    unknown = client.post(API, json=figure(999_999), headers=auth("researcher")).json
    assert unknown["error"]["fields"] == {"source_id": ["No source with id 999999."]}


def test_a_change_may_not_clear_the_only_figure(client, factory, auth, db_rows):
    created = create(client, auth, figure(factory.source(), homicides=None))
    before = db_rows()
    response = client.patch(
        f"{API}/{created['id']}", json={"population": None}, headers=auth("researcher")
    )
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"population", "homicides"}
    assert db_rows() == before


def test_a_second_live_figure_for_the_same_region_and_year_is_refused(
    client, factory, auth, db_rows
):
    source = factory.source()
    first = create(client, auth, figure(source))
    before = db_rows()
    again = client.post(
        API, json=figure(source, admin1=" MIRANDA ", population=1), headers=auth("researcher")
    )
    assert again.status_code == 409, again.json
    message = again.json["error"]["message"]
    assert message == (
        f"Context figure {first['id']} is already the figure for MIRANDA, VE in 2016; "
        "change that one instead."
    )
    assert db_rows() == before

    # Another municipality, or another year, is another figure; the same one in any case is not.
    sucre = create(client, auth, figure(source, admin2="Sucre"))
    create(client, auth, figure(source, year=2017))
    same_sucre = client.post(API, json=figure(source, admin2="SUCRE"), headers=auth("editor"))
    assert same_sucre.status_code == 409
    assert f"Context figure {sucre['id']} " in same_sucre.json["error"]["message"]
    # Nor may a change move a figure onto one that exists.
    moved = client.patch(f"{API}/{sucre['id']}", json={"admin2": None}, headers=auth("researcher"))
    assert moved.status_code == 409
    assert f"Context figure {first['id']} " in moved.json["error"]["message"]

    # A deleted figure leaves its place free; it cannot come back while another holds it.
    assert client.delete(f"{API}/{first['id']}", headers=auth("editor")).status_code == 204
    replacement = create(client, auth, figure(source, population=3_200_000))
    restored = client.post(f"{API}/{first['id']}/restore", headers=auth("editor"))
    assert restored.status_code == 409
    assert f"Context figure {replacement['id']} " in restored.json["error"]["message"]


def test_a_source_in_use_by_a_figure_cannot_be_deleted(client, factory, auth):
    source = factory.source()
    created = create(client, auth, figure(source))
    refused = client.delete(f"/api/v1/sources/{source}", headers=auth("editor"))
    assert refused.status_code == 409
    assert "1 context figures" in refused.json["error"]["message"]
    assert client.delete(f"{API}/{created['id']}", headers=auth("editor")).status_code == 204
    assert client.delete(f"/api/v1/sources/{source}", headers=auth("editor")).status_code == 204
    # Its figure cannot come back without it.
    restored = client.post(f"{API}/{created['id']}/restore", headers=auth("editor"))
    assert restored.status_code == 409
    assert f"Source {source} of this figure is deleted" in restored.json["error"]["message"]


def test_a_figure_from_a_restricted_source_is_withheld_from_anonymous_readers(
    client, factory, auth
):
    public_source = factory.source(title="Anuario estadístico")
    secret_source = factory.source(title="Informe confidencial", restricted=True)
    public = create(client, auth, figure(public_source))
    secret = create(client, auth, figure(secret_source, admin1="Zulia", notes="NO-PUBLICAR"))

    assert client.get(f"{API}/{secret['id']}").status_code == 404
    assert [f["id"] for f in client.get(API).json["items"]] == [public["id"]]
    assert client.get(f"{API}?source_id={secret_source}").json["total"] == 0
    assert client.get(f"{API}?admin1=zulia").json["total"] == 0
    assert b"NO-PUBLICAR" not in client.get(f"{API}?per_page=200").data
    # The figure's own source becomes traceable; the restricted one stays hidden.
    assert client.get(f"/api/v1/sources/{public_source}").status_code == 200
    assert client.get(f"/api/v1/sources/{secret_source}").status_code == 404

    viewer = client.get(f"{API}/{secret['id']}", headers=auth("viewer"))
    assert viewer.status_code == 200 and viewer.json["notes"] == "NO-PUBLICAR"
    assert client.get(API, headers=auth("viewer")).json["total"] == 2


def test_filters_and_sorting(client, factory, auth):
    ine, cicpc = factory.source(), factory.source()
    miranda = create(client, auth, figure(ine))
    sucre = create(client, auth, figure(ine, admin2="Sucre", year=2015))
    zulia = create(client, auth, figure(cicpc, admin1="Zulia", year=2015, population=None))
    colombia = create(client, auth, figure(cicpc, country="CO", admin1="Antioquia"))

    def ids(query: str) -> list[int]:
        response = client.get(f"{API}?{query}")
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids("admin1=MIRANDA&sort=id") == [miranda["id"], sucre["id"]]
    assert ids("admin2=sucre") == [sucre["id"]]
    assert ids("year=2015&sort=admin1") == [sucre["id"], zulia["id"]]
    assert ids(f"source_id={cicpc}&sort=id") == [zulia["id"], colombia["id"]]
    assert ids("country=CO") == [colombia["id"]]
    assert ids("sort=-year,admin1")[:2] == [colombia["id"], miranda["id"]]
    bad = client.get(f"{API}?year=15")
    assert bad.status_code == 422 and "year" in bad.json["error"]["fields"]


def test_the_openapi_description_lists_the_resource(client):
    spec = client.get("/api/v1/openapi.json").json
    assert {"/api/v1/context-figures", "/api/v1/context-figures/{record_id}"} <= set(spec["paths"])
    schema = spec["components"]["schemas"]["ContextFigure"]
    assert set(schema["required"]) == {"admin1", "year", "source_id"}
    assert {"country", "admin2", "population", "homicides", "notes"} <= set(schema["properties"])


# --- flask context load ----------------------------------------------------------------------


def load(runner, tmp_path, content: str | bytes, *args: str):
    path = tmp_path / "figures.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return runner.invoke(args=["context", "load", str(path), *args])


def test_load_creates_figures_read_with_their_thousands_separators(app, runner, factory, tmp_path):
    ine = factory.source(title="INE")
    cicpc = factory.source(title="CICPC")
    content = (
        "\ufeffCountry,ADMIN1,Admin2,Year,Population,Homicides,source_id\n"
        'VE,Miranda,,2016,"3.166.000",1432,\n'
        'VE,Miranda,Sucre,2016,"1,234,567",,\n'
        "VE,Zulia,,2016,4 300 000,2005," + str(cicpc) + "\n"
        ",,,,,,\n"
    )
    result = load(runner, tmp_path, content, "--source-id", str(ine))
    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated, 0 unchanged" in result.output
    assert stored(app) == [
        ("VE", "Miranda", None, 2016, 3_166_000, 1_432, ine),
        ("VE", "Miranda", "Sucre", 2016, 1_234_567, None, ine),
        ("VE", "Zulia", None, 2016, 4_300_000, 2_005, cicpc),
    ]
    created = audit_entries(app, resource="context_figure")
    assert [(e["action"], e["user_email"]) for e in created] == [("create", "cli")] * 3


def test_load_reads_semicolon_separated_files(app, runner, factory, tmp_path):
    source = factory.source()
    content = f"admin1;year;population;source_id\nLara;2016;1.900.000;{source}\n"
    result = load(runner, tmp_path, content)
    assert result.exit_code == 0, result.output
    assert stored(app) == [("VE", "Lara", None, 2016, 1_900_000, None, source)]


def test_a_dry_run_checks_and_counts_but_writes_nothing(app, runner, factory, tmp_path, db_rows):
    source = factory.source()
    factory.create("context-figures", **figure(source))
    before = db_rows()
    content = "admin1,year,homicides\nMiranda,2016,1500\nLara,2016,700\n"
    result = load(runner, tmp_path, content, "--source-id", str(source), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output and "1 created, 1 updated, 0 unchanged" in result.output
    assert db_rows() == before


def test_a_file_with_bad_rows_writes_nothing_and_names_every_problem(
    app, runner, factory, tmp_path, db_rows
):
    source = factory.source()
    before = db_rows()
    content = (
        "admin1,year,population,homicides\n"
        "Miranda,2016,3166000,1432\n"  # row 2: fine
        "Lara,2016,-5,\n"  # row 3: negative
        "Zulia,,4300000,\n"  # row 4: no year
        "Falcón,2016,1.5,\n"  # row 5: not a whole number
        "Sucre,2016,,\n"  # row 6: neither figure
        "miranda,2016,1,\n"  # row 7: row 2 again
    )
    result = load(runner, tmp_path, content, "--source-id", str(source))
    assert result.exit_code != 0
    output = result.output
    assert "row 3, population: Must be greater than or equal to 0" in output
    assert "row 4, year: Missing data for required field." in output
    assert "row 5, population: Not a whole number" in output
    assert "row 6, population: Give population, homicides or both." in output
    assert "row 7: the same region and year as row 2" in output
    assert "row 2" not in output.replace("as row 2", "")
    assert "nothing was written" in output
    assert db_rows() == before


def test_a_bad_header_or_source_is_reported_before_any_row(app, runner, factory, tmp_path, db_rows):
    before = db_rows()
    result = load(
        runner, tmp_path, "admin1,year,poblacion\nMiranda,2016,3166000\n", "--source-id", "1"
    )
    assert result.exit_code != 0
    assert "row 1, poblacion: unknown column" in result.output
    assert "give a population column, a homicides column or both" in result.output

    missing_source = load(runner, tmp_path, "admin1,year,population\nMiranda,2016,1\n")
    assert "row 1, source_id: give a source_id column or --source-id." in missing_source.output

    gone = load(runner, tmp_path, "admin1,year,population,source_id\nMiranda,2016,1,424242\n")
    assert gone.exit_code != 0
    assert "row 2, source_id: No source with id 424242." in gone.output
    assert db_rows() == before

    not_utf8 = load(runner, tmp_path, "admin1,year,population\nMérida,2016,1\n".encode("latin-1"))
    assert not_utf8.exit_code != 0 and "not UTF-8" in not_utf8.output


def test_loading_again_updates_the_figures_instead_of_duplicating_them(
    app, runner, client, factory, auth, tmp_path
):
    source = factory.source()
    first = (
        "admin1,admin2,year,population,homicides\n"
        "Miranda,,2016,3166000,1432\n"
        "Miranda,Sucre,2016,700000,95\n"
    )
    assert load(runner, tmp_path, first, "--source-id", str(source)).exit_code == 0
    second = (
        "ADMIN1,admin2,year,population,homicides\n"
        "MIRANDA,,2016,,1500\n"  # an empty cell leaves the stored population as it is
        "Miranda,SUCRE,2016,700000,95\n"  # as stored already
        "Miranda,Sucre,2017,,300\n"  # new
    )
    result = load(runner, tmp_path, second, "--source-id", str(source))
    assert result.exit_code == 0, result.output
    assert "1 created, 1 updated, 1 unchanged" in result.output
    assert stored(app) == [
        ("VE", "Miranda", None, 2016, 3_166_000, 1_500, source),
        ("VE", "Miranda", "Sucre", 2016, 700_000, 95, source),
        ("VE", "Miranda", "Sucre", 2017, None, 300, source),
    ]
    miranda = client.get(f"{API}?admin1=Miranda&year=2016&sort=id").json["items"][0]
    history = client.get(f"{API}/{miranda['id']}/history", headers=auth("viewer")).json["items"]
    assert [(h["action"], h["user_email"]) for h in history] == [
        ("create", "cli"),
        ("update", "cli"),
    ]
    assert history[1]["changes"] == {"homicides": {"before": 1_432, "after": 1_500}}


# --- The pages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lang, heading, population, homicides, whole",
    [
        ("es", "Cifras de contexto", "3.166.000", "1.432", "todo el estado"),
        ("en", "Context figures", "3,166,000", "1,432", "whole state"),
    ],
)
def test_the_list_page_renders_in_each_language(
    client, factory, auth, lang, heading, population, homicides, whole
):
    source = factory.source(title="Proyecciones de población, INE")
    secret = factory.source(title="Informe confidencial", restricted=True)
    create(client, auth, figure(source))
    create(client, auth, figure(secret, admin1="Zulia", notes="NO-PUBLICAR"))
    response = client.get(f"/context-figures?lang={lang}")
    assert response.status_code == 200
    page = text(response)
    for shown in (heading, population, homicides, whole):
        assert shown in page, shown
    assert f'href="/sources/{source}"' in page and "Proyecciones de población, INE" in page
    assert "Zulia" not in page and "NO-PUBLICAR" not in page
    assert 'href="/context-figures"' in page  # in the menu


def test_a_researcher_enters_and_edits_a_figure_through_the_pages(app, browser_for, factory):
    client = browser_for("researcher")
    source = factory.source()
    form = {
        "country": "VE",
        "admin1": "Carabobo",
        "admin2": "",
        "year": "2016",
        "population": "2.245.744",
        "homicides": "",
        "source_id": str(source),
        "notes": "",
    }
    created = post_form(client, "/context-figures/new", form)
    assert created.status_code == 302, text(created)[:3000]
    assert created.headers["Location"].endswith("/context-figures")
    assert stored(app) == [("VE", "Carabobo", None, 2016, 2_245_744, None, source)]

    again = post_form(client, "/context-figures/new?lang=en", form)
    assert again.status_code == 409
    assert "is already the figure for Carabobo, VE in 2016" in text(again)

    with app.app_context():
        figure_id = db.session.scalar(select(ContextFigure.id))
    edit_url = f"/context-figures/{figure_id}/edit"
    assert client.get(edit_url).status_code == 200
    changed = post_form(client, edit_url, {**form, "homicides": "1,023", "version": "1"})
    assert changed.status_code == 302, text(changed)[:3000]
    assert stored(app) == [("VE", "Carabobo", None, 2016, 2_245_744, 1_023, source)]
    listing = text(client.get("/context-figures?lang=es"))
    assert "2.245.744" in listing and f"/context-figures/{figure_id}/edit" in listing
