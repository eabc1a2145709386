"""The indicator pages: an operation's dashboard, /indicators, /methodology, each chart's numbers
as CSV, and plotly.js with its map outlines served by the archive itself."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from archive import indicators
from archive.extensions import db
from archive.models import Operation
from archive.web import explain, plotly_assets

OLP = "Operación de Liberación y Protección del Pueblo"


# --- Helpers ---------------------------------------------------------------------------------


def page_text(fragment: str) -> str:
    """The words of an HTML fragment, tags dropped and spaces folded."""
    fragment = re.sub(r"<script\b.*?</script>", " ", fragment, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def row(body: str, key: str) -> str:
    """The text of the dashboard row of one indicator."""
    match = re.search(rf'<tr id="ind-{key}"[^>]*>(.*?)</tr>', body, re.S)
    assert match, f"no row for {key}"
    return page_text(match.group(1))


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def figure_json(body: str, name: str) -> dict:
    match = re.search(
        rf'<script type="application/json" id="fig-{name}">(.*?)</script>', body, re.S
    )
    assert match, f"no figure {name}"
    return json.loads(match.group(1))


@pytest.fixture
def olp(app, runner):
    """The demo archive loaded; answers the OLP operation's id."""
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        return db.session.scalars(select(Operation.id).where(Operation.name == OLP)).one()


@pytest.fixture
def massacre(factory):
    """A published operation whose one event two sources count differently: 30 or 40
    civilians killed by the state (best 30, the lower middle), 2 agents killed, 5 civilians
    injured, 100 agents deployed."""
    operation = factory.operation(name="Operativo Tejerías", agents_deployed=100)
    event = factory.event(
        title="Enfrentamiento en Las Tejerías",
        operation_id=operation,
        start_date=dt.date(2022, 10, 1),
        date_precision="day",
        agents_deployed=100,
        place_id=factory.place(
            admin1="Aragua", admin2="Santos Michelena", latitude=10.25, longitude=-67.17
        ),
    )
    first, second = factory.source(), factory.source()
    factory.casualty_count(event, first, count=30)
    factory.casualty_count(event, second, count=40)
    factory.casualty_count(
        event, first, affiliation="state_agent", outcome="killed", caused_by="non_state", count=2
    )
    factory.casualty_count(event, first, outcome="injured", count=5)
    factory.citation(first, "event", event)
    factory.update("events", event, status="verified", published=True)
    return {"operation": operation, "event": event}


# --- An operation's dashboard ----------------------------------------------------------------


def test_cota_905_dashboard_shows_no_ratio_and_why_in_english(client, olp):
    body = client.get(f"/operations/{olp}?lang=en").get_data(as_text=True)
    ratio = row(body, "civilian_agent_death_ratio")
    assert "undefined (no agents killed)" in ratio
    assert (
        "No agents were killed, so there is no ratio: 15 civilians died and the state lost no "
        "one." in ratio
    )
    assert not re.search(r"∞|inf", ratio)
    assert row(body, "civilians_killed_by_state").startswith("Civilians killed by the state 15")
    assert "State agents killed 15 civilians." in row(body, "civilians_killed_by_state")
    assert "No state agent was killed" in row(body, "agents_killed")
    assert "100 %" in row(body, "one_sided_event_share")
    # 15 killed × 1000 ÷ 250 agents deployed in the Cota 905 raid.
    assert "For every 1,000 agents deployed, 60 civilians were killed." in row(
        body, "deaths_per_1000_agents_deployed"
    )
    assert "Counted: verified events only." in page_text(body)


def test_cota_905_dashboard_shows_no_ratio_and_why_in_spanish(client, olp):
    body = client.get(f"/operations/{olp}?lang=es").get_data(as_text=True)
    ratio = row(body, "civilian_agent_death_ratio")
    assert "sin definir (ningún agente muerto)" in ratio
    assert (
        "Ningún agente murió, así que no hay razón: murieron 15 civiles y el Estado no perdió "
        "a nadie." in ratio
    )
    assert "Los agentes del Estado mataron a 15 civiles." in row(body, "civilians_killed_by_state")
    assert "100 %" in row(body, "one_sided_event_share")
    assert "Por cada 1.000 agentes desplegados murieron 60 civiles." in row(
        body, "deaths_per_1000_agents_deployed"
    )
    assert "Se cuentan solo los eventos verificados." in page_text(body)


def test_a_ratio_above_its_threshold_is_flagged_with_its_reference(client, massacre):
    body = client.get(f"/operations/{massacre['operation']}?lang=en").get_data(as_text=True)
    ratio = row(body, "civilian_agent_death_ratio")
    # best 30 ÷ 2; low 30 ÷ 2, high 40 ÷ 2.
    assert ratio.startswith("Civilian–agent death ratio 15 Above 10 15–20 10 (Chevigny")
    assert (
        "For every agent killed, 15 civilians were killed; above 10, the literature reads this "
        "as force beyond self-defence." in ratio
    )
    lethality = row(body, "lethality_index")
    # 30 ÷ 5 = 6, from 30 ÷ 5 to 40 ÷ 5 = 8.
    assert lethality.startswith("Lethality index 6 Above 1 6–8 1 (Cano")
    killed = row(body, "civilians_killed_by_state")
    assert killed.startswith("Civilians killed by the state 30 30–40 — 1 2")


def test_a_ratio_above_its_threshold_reads_in_spanish(client, massacre):
    body = client.get(f"/operations/{massacre['operation']}?lang=es").get_data(as_text=True)
    ratio = row(body, "civilian_agent_death_ratio")
    assert "Por encima de 10" in ratio
    assert (
        "Por cada agente muerto murieron 15 civiles; por encima de 10, la literatura lo "
        "interpreta como fuerza más allá de la defensa propia." in ratio
    )


def test_staff_may_count_drafts_and_the_page_says_so(client, browser_for, massacre, factory):
    draft = factory.event(title="Allanamiento sin verificar", operation_id=massacre["operation"])
    factory.casualty_count(draft, factory.source(), count=10)
    editor = browser_for("editor")
    url = f"/operations/{massacre['operation']}?lang=en"

    verified = editor.get(url).get_data(as_text=True)
    assert "Counted: verified events only." in page_text(verified)
    assert row(verified, "civilians_killed_by_state").startswith("Civilians killed by the state 30")

    drafts = editor.get(url + "&include_drafts=true").get_data(as_text=True)
    assert "drafts and events in review included" in page_text(drafts)
    assert row(drafts, "civilians_killed_by_state").startswith("Civilians killed by the state 40")

    # Anonymous readers cannot ask for drafts: the page counts verified events and says so.
    anonymous = client.get(url + "&include_drafts=true").get_data(as_text=True)
    assert "Counted: verified events only." in page_text(anonymous)
    assert row(anonymous, "civilians_killed_by_state").startswith(
        "Civilians killed by the state 30"
    )


def test_the_operation_page_carries_its_charts_and_their_data(client, massacre):
    body = client.get(f"/operations/{massacre['operation']}?lang=en").get_data(as_text=True)
    for name in ("deaths_by_side", "timeline", "map"):
        assert f'id="chart-{name}"' in body
    bars = figure_json(body, "deaths_by_side")["data"]
    assert [t["y"] for t in bars] == [[30], [2]]
    # Asymmetric error bars: up to high, down to low.
    assert (bars[0]["error_y"]["array"], bars[0]["error_y"]["arrayminus"]) == ([10.0], [0.0])
    link = re.search(r'href="([^"]*/indicators/charts/deaths_by_side\.csv[^"]*)"', body).group(1)
    rows = read_csv(client.get(html.unescape(link)))
    assert [
        (r["civilians_killed_by_state_best"], r["civilians_killed_by_state_high"]) for r in rows
    ] == [("30", "40")]


# --- /indicators ------------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", indicators.GROUPINGS)
def test_indicators_compares_groups_by_each_grouping(client, massacre, group_by):
    response = client.get(f"/indicators?group_by={group_by}&lang=en")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    label = {
        "operation": "Operativo Tejerías",
        "actor": "No force named",
        "admin1": "Aragua",
        "admin2": "Santos Michelena",
        "year": "2022",
        "month": "2022-10",
    }[group_by]
    table = page_text(re.search(r"<tbody>(.*?)</tbody>", body, re.S).group(1))
    assert table.startswith(f"{label} 1 30 (30–40) 2 15 (15–20) Above 10 6 (6–8) Above 1")
    total = page_text(re.search(r"<tfoot>(.*?)</tfoot>", body, re.S).group(1))
    assert total.startswith("Total 1 30 (30–40) 2 15")
    for name in ("deaths_by_side", "timeline", "lethality", "map"):
        assert f'id="chart-{name}"' in body


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("group_by=province", "group_by", "Choose one of the listed values."),
        ("date_from=julio", "date_from", "Enter a date as YYYY-MM-DD."),
        ("operation_id=abc", "operation_id", "Enter a whole number."),
    ],
)
def test_bad_parameters_give_a_readable_error_page(client, query, field, message):
    response = client.get(f"/indicators?{query}&lang=en")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    alert = re.search(r'<div class="alert alert-danger"[^>]*>(.*?)</div>', body, re.S)[1]
    assert page_text(alert) == f"These parameters cannot be used: {field} : {message}"
    assert "<tbody>" not in body


@pytest.mark.parametrize("role", [None, "editor"])
def test_the_page_and_its_chart_data_take_every_filter_the_api_takes(
    client, browser_for, auth, factory, massacre, role
):
    """/indicators is the API's figures on a page: each events-list filter narrows both the
    same way, those without a field of their own on the form (a place, published) included,
    and the form keeps them when the grouping changes."""
    elsewhere = factory.event(
        title="Otro operativo",
        operation_id=massacre["operation"],
        start_date=dt.date(2022, 11, 3),
        place_id=factory.place(admin1="Zulia", admin2="Maracaibo"),
    )
    reported = factory.source()
    factory.casualty_count(elsewhere, reported, count=7)
    factory.citation(reported, "event", elsewhere)
    factory.update("events", elsewhere, status="verified", published=True)
    place_id = client.get(f"/api/v1/events/{massacre['event']}").get_json()["place_id"]
    reader = browser_for(role) if role else client
    api = client.get(f"/api/v1/indicators?place_id={place_id}", headers=auth(role)).get_json()
    assert api["total"]["civilians_killed_by_state"]["best"] == 30  # not 37
    page = reader.get(f"/indicators?place_id={place_id}&lang=en")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    total = page_text(re.search(r"<tfoot>(.*?)</tfoot>", body, re.S).group(1))
    assert total.startswith("Total 1 30 (30–40)")
    assert f'<input type="hidden" name="place_id" value="{place_id}">' in body
    more = page_text(re.search(r'<p[^>]*id="more-filters">(.*?)</p>', body, re.S)[1])
    assert more == f"Also filtered by: place_id={place_id} . Remove these"
    assert '<a href="/indicators?group_by=operation">Remove these</a>' in body
    chart = "/indicators/charts/deaths_by_side.csv"
    (drawn,) = read_csv(reader.get(f"{chart}?place_id={place_id}"))
    assert drawn["civilians_killed_by_state_best"] == "30"
    assert read_csv(reader.get(f"{chart}?published=false")) == []
    assert len(read_csv(reader.get(f"{chart}?published=true"))) == 1


def test_a_bad_status_is_refused_on_the_page_as_by_the_api(client):
    assert client.get("/api/v1/indicators?status=bogus").status_code == 422
    response = client.get("/indicators?status=bogus&lang=en")
    assert response.status_code == 422
    assert "<code>status</code>" in response.get_data(as_text=True)


def test_chart_data_is_exactly_what_the_chart_draws(client, massacre):
    base = f"/indicators/charts/%s.csv?operation_id={massacre['operation']}"
    assert read_csv(client.get(base % "lethality")) == [
        {
            "group": str(massacre["operation"]),
            "label": "Operativo Tejerías",
            "lethality_index_best": "6.0",
            "lethality_index_low": "6.0",
            "lethality_index_high": "8.0",
            "threshold": "1.0",
            "exceeds": "True",
            "reason": "",
        }
    ]
    timeline = read_csv(client.get(base % "timeline"))
    assert timeline == [
        {
            "month": "2022-10",
            "civilians_killed_best": "30",
            "non_state_armed_killed_best": "0",
            "unknown_killed_best": "0",
            "agents_killed_best": "2",
        }
    ]
    (placed,) = read_csv(client.get(base % "map"))
    assert (placed["title"], placed["latitude"], placed["longitude"]) == (
        "Enfrentamiento en Las Tejerías",
        "10.25",
        "-67.17",
    )
    assert placed["civilians_killed_by_state_best"] == "30"


def test_lethality_chart_marks_undefined_groups_instead_of_drawing_zero(client, olp):
    body = client.get("/indicators?lang=en").get_data(as_text=True)
    figure = figure_json(body, "lethality")
    assert figure["data"][0]["y"] == [None, None]  # the OLP, and events without operation
    assert [a["text"] for a in figure["layout"]["annotations"] if a["text"] == "undefined"] == [
        "undefined",
        "undefined",
    ]
    rows = read_csv(client.get("/indicators/charts/lethality.csv"))
    assert [(r["lethality_index_best"], r["reason"]) for r in rows] == [
        ("", "no civilians injured"),
        ("", "no civilians injured"),
    ]


def test_the_map_counts_events_without_coordinates(client, olp):
    body = page_text(client.get(f"/operations/{olp}?lang=en").get_data(as_text=True))
    assert "Not on the map (no coordinates): 3" in body


# --- /methodology ----------------------------------------------------------------------------


def test_methodology_states_every_formula_and_threshold(client):
    body = client.get("/methodology?lang=en").get_data(as_text=True)
    text = page_text(body)
    for key, definition in indicators.DEFINITIONS.items():
        assert f'id="def-{key}"' in body
        assert definition.formula in text, key
    for key, threshold in indicators.thresholds().items():
        assert page_text(threshold.reference) in text, key
        assert f'id="thr-{key}"' in body
    assert "conventions of the research literature, not laws" in text
    assert "low = max(n, min r)" in text and "best = max(n, median r)" in text
    assert f"Method version: {indicators.METHOD_VERSION}." in text


def test_methodology_reads_in_spanish(client):
    text = page_text(client.get("/methodology?lang=es").get_data(as_text=True))
    assert "convenciones de la literatura" in text
    assert "muertos por el Estado ÷ agentes muertos" in text


def test_methodology_formulas_are_the_modules_and_all_translated(app):
    """explain.FORMULA_TEXTS repeats indicators.DEFINITIONS for translation: they must match."""
    marked = {str(t) for t in explain.FORMULA_TEXTS}
    assert marked == {d.formula for d in indicators.DEFINITIONS.values()}
    assert {str(t) for t in explain.UNIT_TEXTS} == {d.unit for d in indicators.DEFINITIONS.values()}
    with app.test_request_context(), force_locale("es"):
        untranslated = [f for f in marked if explain.translated(f) == f]
    assert untranslated == []


# --- Sentences, in both languages ------------------------------------------------------------


def block(**values) -> dict:
    """An indicators block: every key empty, then `values` as {key: (best, low, high, extra)}."""
    out = {
        k: {
            "best": 0,
            "low": 0,
            "high": 0,
            "threshold": None,
            "exceeds": None,
            "reason": None,
            "events": 1,
            "sources": 1,
        }
        for k in indicators.INDICATOR_KEYS
    }
    for key, entry in values.items():
        out[key].update(entry)
    return out


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "For every agent killed, 2.5 civilians were killed; that is not above 10, where "
            "the literature reads force beyond self-defence.",
        ),
        (
            "es",
            "Por cada agente muerto murieron 2,5 civiles; eso no supera 10, el nivel en que "
            "la literatura lee fuerza más allá de la defensa propia.",
        ),
    ],
)
def test_a_ratio_below_its_threshold_is_read_as_such(app, lang, expected):
    figures = block(
        civilian_agent_death_ratio={
            "best": 2.5,
            "low": 2,
            "high": 3,
            "threshold": 10,
            "exceeds": False,
        }
    )
    with app.test_request_context(), force_locale(lang):
        assert explain.sentence("civilian_agent_death_ratio", figures) == expected


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "No agents were killed, so there is no ratio: 1 civilian died and the state lost "
            "no one.",
        ),
        (
            "es",
            "Ningún agente murió, así que no hay razón: murió 1 civil y el Estado no perdió a "
            "nadie.",
        ),
    ],
)
def test_an_undefined_ratio_with_one_death_is_singular(app, lang, expected):
    figures = block(
        civilians_killed_by_state={"best": 1, "low": 1, "high": 1},
        civilian_agent_death_ratio={
            "best": None,
            "low": None,
            "high": None,
            "threshold": 10,
            "reason": "no agents killed",
        },
    )
    with app.test_request_context(), force_locale(lang):
        assert explain.sentence("civilian_agent_death_ratio", figures) == expected
        assert explain.number("civilian_agent_death_ratio", None) == (
            "undefined" if lang == "en" else "sin definir"
        )


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "no population figure for Miranda 2015"),
        ("es", "no hay cifra de población de Miranda 2015"),
    ],
)
def test_reasons_naming_places_are_translated(app, lang, expected):
    with app.test_request_context(), force_locale(lang):
        assert explain.reason("no population figure for Miranda 2015") == expected


def test_every_key_figure_has_a_sentence_in_both_languages(app):
    figures = block()
    for lang in ("en", "es"):
        with app.test_request_context(), force_locale(lang):
            for key in indicators.INDICATOR_KEYS:
                assert explain.sentence(key, figures), (lang, key)


# --- plotly.js and the map outlines, served by the archive ------------------------------------


def test_plotly_is_served_by_the_archive_with_long_caching(client):
    response = client.get(f"/vendor/plotly.min.js?v={plotly_assets.version()}")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.get_data().startswith(b"/**\n* plotly.js v")
    assert "max-age=31536000" in response.headers["Cache-Control"]
    again = client.get("/vendor/plotly.min.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("name", ["world_50m.json", "world_110m.json"])
def test_map_outlines_are_served_by_the_archive(client, name):
    with client.get(f"/static/vendor/topojson/{name}") as response:
        assert response.status_code == 200
        outlines = json.loads(response.get_data())
    assert {"coastlines", "land", "countries"} <= set(outlines["objects"])


def test_chart_pages_link_plotly_and_its_styles_locally(client, massacre):
    body = client.get(f"/operations/{massacre['operation']}").get_data(as_text=True)
    version = plotly_assets.version()
    assert f'src="/vendor/plotly.min.js?v={version}"' in body
    css = f'href="/vendor/plotly.css?v={version}"'
    assert f'id="plotly.js-style-global" class="no-inline-styles" {css}' in body
    assert f'id="{plotly_assets.maplibre_style_id()}"' in body
    assert 'data-topojson="/static/vendor/topojson/"' in body
    assert "cdn." not in body
    for name in ("plotly.css", "maplibre-gl.css"):
        css = client.get(f"/vendor/{name}")
        assert css.status_code == 200 and css.mimetype == "text/css"
    rules = client.get("/vendor/plotly.css").get_data(as_text=True)
    assert ".js-plotly-plot .plotly .modebar{" in rules
    assert ".plotly-notifier{" in rules


def test_only_chart_pages_admit_blob_images_for_saving_charts(client, massacre):
    """plotly.js saves a chart as a PNG through a blob: image; other pages keep the policy."""
    chart_page = client.get(f"/operations/{massacre['operation']}")
    policy = chart_page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:" in policy
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    for path in ("/methodology", "/events", f"/events/{massacre['event']}"):
        other = client.get(path).headers["Content-Security-Policy"]
        assert "img-src 'self' data:;" in other, path


def test_typed_text_stays_text_inside_the_charts(client, factory):
    title = "Operativo </script><b>905</b> & más"
    operation = factory.operation(name="OLP <i>Cota</i>")
    event = factory.published_event(
        title=title,
        operation_id=operation,
        place_id=factory.place(latitude=10.48, longitude=-66.93),
    )
    factory.casualty_count(event, factory.source(), count=3)
    body = client.get(f"/operations/{operation}").get_data(as_text=True)
    assert "</script><b>" not in body
    (point,) = figure_json(body, "map")["data"][0]["customdata"]
    assert point[0] == "Operativo &lt;/script&gt;&lt;b&gt;905&lt;/b&gt; &amp; más"
    bars = figure_json(body, "deaths_by_side")["data"][0]
    assert bars["x"] == ["OLP &lt;i&gt;Cota&lt;/i&gt;"]
    rows = read_csv(client.get(f"/indicators/charts/map.csv?operation_id={operation}"))
    assert [r["title"] for r in rows] == [title]  # the data as typed
