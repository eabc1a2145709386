"""End to end, in Chromium: people entering, reviewing and reading a case through the pages.

Every page visited is checked with axe-core (no serious or critical violation), in Spanish
and English; no page may log a console error or ask for anything outside 127.0.0.1.
Screenshots of the key pages land in test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright
from sqlalchemy import func, select

from archive.extensions import db
from archive.models import Citation, Event, Operation, Source, SourceFile, Victim

from .browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    LiveServer,
    Watch,
    axe_violations,
    describe_violations,
    local_only,
    missing_tools,
    screenshot,
    sign_in,
    watch_page,
    with_lang,
)
from .conftest import IN_CI

MINOR_NAME = "Yusmary Quiñones Arrechedera"
ADULT_NAME = "Wilmer Antonio Bracho"
FILE_BYTES = b"Nota de prensa archivada: quince muertos en la Cota 905.\n"
LANGS = ("es", "en")


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    missing = missing_tools()
    if missing:
        message = "the browser tests need " + "; ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(app):
    live = LiveServer(app)
    yield live
    live.stop()


class Browsing:
    """Opens pages, each in a context of its own (its own cookies: its own person)."""

    def __init__(self, browser, server):
        self.browser = browser
        self.server = server
        self.opened: list[tuple[object, Watch]] = []
        self.watches: dict[int, Watch] = {}

    def open(self, **options):
        watch = Watch()
        options.setdefault("locale", "en-US")
        context = self.browser.new_context(base_url=self.server.url, **options)
        context.set_default_timeout(15_000)
        context.route("**/*", local_only(watch, self.server.url))
        self.opened.append((context, watch))
        page = context.new_page()
        watch_page(watch, page)
        self.watches[id(page)] = watch
        return page

    def watch(self, page) -> Watch:
        return self.watches[id(page)]

    def close(self) -> tuple[list[str], list[str]]:
        outside, errors = [], []
        for context, watch in self.opened:
            context.close()
            outside += watch.outside_requests
            errors += watch.console_errors
        return outside, errors


@pytest.fixture
def browsing(browser, server):
    session = Browsing(browser, server)
    yield session
    outside, errors = session.close()
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert not errors, "the pages logged errors:\n" + "\n".join(errors)


# --- Helpers ---------------------------------------------------------------------------------


def save(page) -> None:
    """Press the form's Save button and wait for the answer, whatever it is."""
    with page.expect_navigation():
        page.click("#main form[method=post] button[type=submit] >> nth=-1")


def id_in(page, kind: str) -> int:
    """The record number in the page's address, which must be a page of `kind`."""
    match = re.search(rf"/{kind}/(\d+)(?:[?#]|$)", page.url)
    if not match:
        problems = page.locator(".alert-danger, .invalid-feedback").all_inner_texts()
        raise AssertionError(f"not a page of {kind}: {page.url}: {problems}")
    return int(match.group(1))


def press_status_button(page, action: str) -> None:
    with page.expect_navigation():
        page.click(f"#main form:has(input[name=action][value={action}]) button[type=submit]")
    assert page.locator(".alert-danger").count() == 0, page.inner_text("main")


def stored(app, model, record_id):
    with app.app_context():
        return db.session.get(model, record_id)


def public_case(factory, **overrides) -> dict:
    """A published event of July–August 2015 with a restricted minor, an adult named victim,
    a figure and a cited source, in an operation: something on every reading page."""
    actor = factory.actor(name="Policía Nacional Bolivariana", acronym="PNB")
    place = factory.place()
    operation = factory.operation(
        name="Operación de Liberación del Pueblo",
        start_date=dt.date(2015, 7, 1),
        date_precision="month",
        actors=[{"actor_id": actor, "role": "lead"}],
    )
    source = factory.source(title="Quince muertos en la Cota 905", publisher="PROVEA")
    event = factory.event(
        title="Operativo en la Cota 905",
        start_date=dt.date(2015, 7, 1),
        date_precision="month",
        end_date=dt.date(2015, 8, 1),
        end_date_precision="month",
        operation_id=operation,
        place_id=place,
        actors=[{"actor_id": actor, "role": "perpetrator"}],
        agents_deployed=250,
        **overrides,
    )
    factory.victim(event, name=MINOR_NAME, age=16, affiliation="civilian", caused_by="state")
    factory.victim(event, name=ADULT_NAME, age=34, affiliation="civilian", caused_by="state")
    factory.casualty_count(event, source, count=15)
    factory.citation(source, "event", event, excerpt="Quince personas murieron.")
    factory.citation(source, "operation", operation)
    factory.update("events", event, status="verified", published=True)
    return {"event": event, "operation": operation, "source": source, "actor": actor}


# --- 1. Entering a case -----------------------------------------------------------------------


def enter_case(page, tmp_path) -> dict:
    """A researcher, signed in, enters an operation, an event in it, a minor killed in it,
    a source with its archived file and the citation of that source on the event."""
    page.goto("/operations/new?lang=en")
    page.fill("#name", "Operación de Liberación del Pueblo")
    page.fill("#start_date", "2015-07")
    page.fill("#end_date", "2015-08")
    save(page)
    operation = id_in(page, "operations")

    page.goto("/")
    page.click("#main a[href='/events/new']")
    page.fill("#title", "Operativo en la Cota 905")
    page.select_option("#event_type", "raid")
    page.fill("#start_date", "2015-07")
    page.fill("#end_date", "2015-08")
    page.select_option("#operation_id", str(operation))
    page.fill("#agents_deployed", "250")
    save(page)
    event = id_in(page, "events")
    assert "July 2015 – August 2015" in page.inner_text("main dl")

    page.click(f"#main a[href='/victims/new?event_id={event}']")
    assert page.input_value("#event_id") == str(event)
    page.fill("#name", MINOR_NAME)
    page.fill("#age", "16")
    page.select_option("#sex", "female")
    page.select_option("#affiliation", "civilian")
    page.select_option("#outcome", "killed")
    page.select_option("#caused_by", "state")
    save(page)
    assert id_in(page, "events") == event
    row = page.locator("#main tr", has_text=MINOR_NAME)
    assert row.locator(".badge", has_text="Restricted").count() == 1

    upload = tmp_path / "nota-provea.txt"
    upload.write_bytes(FILE_BYTES)
    page.goto("/sources/new")
    page.fill("#title", "Quince muertos en la Cota 905")
    page.select_option("#kind", "news_article")
    page.fill("#publisher", "PROVEA")
    page.set_input_files("#file", str(upload))
    save(page)
    source = id_in(page, "sources")

    page.goto(f"/events/{event}")
    page.click(f"#main a[href='/citations/new?target_type=event&target_id={event}']")
    assert page.input_value("#target_id") == str(event)
    page.select_option("#source_id", str(source))
    page.fill("#excerpt", "Quince personas murieron en el operativo.")
    page.fill("#locator", "párrafo 3")
    save(page)
    assert id_in(page, "events") == event
    return {"operation": operation, "event": event, "source": source}


def test_a_researcher_enters_a_case_with_an_archived_file(app, factory, browsing, tmp_path):
    page = browsing.open()
    sign_in(page, factory.account("researcher"))
    ids = enter_case(page, tmp_path)

    citation = page.locator("#main li.citation")
    assert citation.count() == 1
    assert "Quince muertos en la Cota 905" in citation.inner_text()
    assert "nota-provea.txt" in citation.inner_text()

    page.goto(f"/sources/{ids['source']}")
    expected = hashlib.sha256(FILE_BYTES).hexdigest()
    assert page.inner_text("#main code.sha256").strip() == expected
    assert "nota-provea.txt" in page.inner_text("#main")

    with app.app_context():
        event = db.session.get(Event, ids["event"])
        assert (event.title, event.status, event.published) == (
            "Operativo en la Cota 905",
            "draft",
            False,
        )
        assert (event.start_date, event.date_precision) == (dt.date(2015, 7, 1), "month")
        assert (event.end_date, event.end_date_precision) == (dt.date(2015, 8, 1), "month")
        assert event.operation_id == ids["operation"]
        assert db.session.get(Operation, ids["operation"]).start_date == dt.date(2015, 7, 1)
        victim = db.session.scalars(select(Victim).where(Victim.event_id == event.id)).one()
        assert (victim.name, victim.age, victim.identity_restricted) == (MINOR_NAME, 16, True)
        files = db.session.scalars(
            select(SourceFile).where(SourceFile.source_id == ids["source"])
        ).all()
        assert [f.sha256 for f in files] == [expected]
        citation = db.session.scalars(select(Citation)).one()
        assert (citation.source_id, citation.event_id) == (ids["source"], ids["event"])
        assert db.session.get(Source, ids["source"]).publisher == "PROVEA"


# --- 2. Review and publication ---------------------------------------------------------------


def test_an_editor_verifies_and_publishes_a_cited_event(app, factory, browsing):
    event = factory.event(title="Allanamiento en La Vega")
    factory.citation(
        factory.source(title="Testimonio de vecinos", restricted=False), "event", event
    )

    researcher = browsing.open()
    sign_in(researcher, factory.account("researcher"))
    researcher.goto(f"/events/{event}")
    assert researcher.locator("#main form:has(input[value=verify])").count() == 0
    press_status_button(researcher, "submit")
    assert stored(app, Event, event).status == "in_review"

    editor = browsing.open()
    sign_in(editor, factory.account("editor"))
    editor.goto("/review")
    waiting = editor.locator("#main section", has=editor.locator("#q-in_review"))
    with editor.expect_navigation():
        waiting.get_by_role("link", name="Allanamiento en La Vega").click()
    assert id_in(editor, "events") == event
    press_status_button(editor, "verify")
    assert stored(app, Event, event).status == "verified"
    press_status_button(editor, "publish")
    record = stored(app, Event, event)
    assert (record.status, record.published) == ("verified", True)
    assert editor.locator("#main .badge", has_text="Published").count() == 1

    reader = browsing.open()
    response = reader.goto(f"/events/{event}")
    assert response.status == 200
    assert reader.inner_text("h1") == "Allanamiento en La Vega"


# --- 3. The public reading room, in Spanish --------------------------------------------------


def test_an_anonymous_reader_reads_the_event_in_spanish_without_the_minor(factory, browsing):
    case = public_case(factory)
    page = browsing.open(locale="en-US")
    response = page.goto(f"/events/{case['event']}?lang=es")
    assert response.status == 200
    assert page.get_attribute("html", "lang") == "es"
    assert page.inner_text("h1") == "Operativo en la Cota 905"
    assert "julio de 2015 – agosto de 2015" in page.inner_text("#main dl")
    assert ADULT_NAME in page.inner_text("#main")
    html = page.content()
    assert MINOR_NAME not in html
    assert "Quiñones" not in html and "Yusmary" not in html
    # The choice is remembered: the next page, without ?lang=, is in Spanish too.
    page.goto("/events")
    assert page.get_attribute("html", "lang") == "es"
    assert MINOR_NAME not in page.content()


# --- 4. A stale edit ---------------------------------------------------------------------------

MEANWHILE = {
    "en": "Saved meanwhile by someone else",
    "es": "Guardado mientras tanto por otra persona",
}


@pytest.mark.parametrize("lang", LANGS)
def test_a_stale_edit_is_refused_and_shows_the_other_change(app, factory, browsing, lang):
    event = factory.event(title="Allanamiento en Petare")
    first, second = browsing.open(), browsing.open()
    sign_in(first, factory.account("researcher"))
    sign_in(second, factory.account("researcher"))
    for page in (first, second):
        page.goto(f"/events/{event}?lang={lang}")
        page.goto(f"/events/{event}/edit")
        assert page.get_attribute("html", "lang") == lang
        assert page.input_value("#title") == "Allanamiento en Petare"

    first.fill("#title", "Allanamiento en Petare (Barrio José Félix Ribas)")
    save(first)
    assert id_in(first, "events") == event

    second.fill("#title", "Allanamiento en Petare, sector 5 de Julio")
    save(second)
    assert re.search(rf"/events/{event}/edit$", second.url)
    assert second.locator("#form-error").is_visible()
    title_field = second.locator("#main .stale-field", has=second.locator("#title"))
    assert MEANWHILE[lang] in title_field.inner_text()
    assert (
        title_field.locator(".their-value").inner_text()
        == "Allanamiento en Petare (Barrio José Félix Ribas)"
    )
    assert second.input_value("#title") == "Allanamiento en Petare, sector 5 de Julio"
    assert stored(app, Event, event).title == "Allanamiento en Petare (Barrio José Félix Ribas)"


# --- 5. Accessibility ------------------------------------------------------------------------


def staff_pages(case: dict, deleted_source: int) -> list[str]:
    event, operation, source = case["event"], case["operation"], case["source"]
    return [
        "/",
        "/events",
        f"/events/{event}",
        "/operations",
        f"/operations/{operation}",
        "/sources",
        f"/sources/{source}",
        "/actors",
        f"/actors/{case['actor']}",
        "/events/new",
        f"/victims/new?event_id={event}",
        f"/citations/new?target_type=event&target_id={event}",
        f"/events/{event}/edit",
        "/review",
        "/admin/users",
        "/deleted",
        f"/events/{event}/history",
        "/indicators",
        "/methodology",
    ]


def public_pages(case: dict) -> list[str]:
    return [
        "/",
        "/events",
        f"/events/{case['event']}",
        "/operations",
        f"/operations/{case['operation']}",
        "/sources",
        f"/sources/{case['source']}",
        "/actors",
        "/login",
        "/indicators",
        "/methodology",
    ]


def check_page(page, browsing, path: str, found: list[str]) -> None:
    """Visit and check one page; problems are gathered so that one run shows them all."""
    response = page.goto(path)
    if response is None or response.status >= 400:
        found.append(f"{path}: answered {response and response.status}")
        return
    errors = browsing.watch(page).take_console_errors()
    if errors:
        found.append("\n".join(errors))
    violations = axe_violations(page)
    if violations:
        found.append(describe_violations(path, violations))


def test_every_page_passes_axe_in_both_languages(factory, browsing):
    case = public_case(factory)
    deleted = factory.source(title="Fuente duplicada")
    factory.delete("sources", deleted)
    found: list[str] = []

    admin = browsing.open()
    sign_in(admin, factory.account("admin"))
    for lang in LANGS:
        for path in staff_pages(case, deleted):
            check_page(admin, browsing, with_lang(path, lang), found)
        # The event form as it comes back with an error beside a field.
        admin.goto(with_lang("/events/new", lang))
        save(admin)
        assert admin.locator("#title.is-invalid").count() == 1
        violations = axe_violations(admin)
        if violations:
            found.append(describe_violations(f"/events/new with an error ({lang})", violations))

    anonymous = browsing.open()
    for lang in LANGS:
        for path in public_pages(case):
            check_page(anonymous, browsing, with_lang(path, lang), found)

    assert not found, "\n\n".join(found)


@pytest.mark.parametrize("path", ["/", "/events", "/events/new", "/login"])
def test_the_first_tab_reaches_a_visible_skip_link(factory, browsing, path):
    page = browsing.open()
    if path != "/login":
        sign_in(page, factory.account("researcher"))
    page.goto(path)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        """() => {
          const el = document.activeElement, box = el.getBoundingClientRect();
          const style = getComputedStyle(el);
          return {cls: el.className, href: el.getAttribute('href'), width: box.width,
                  height: box.height, top: box.top, left: box.left,
                  visible: style.visibility !== 'hidden' && style.opacity !== '0',
                  clip: style.clip, clipPath: style.clipPath};
        }"""
    )
    assert "skip-link" in focused["cls"], focused
    assert focused["href"] == "#main"
    assert focused["visible"] and focused["width"] > 40 and focused["height"] > 16, focused
    assert focused["top"] >= 0 and focused["left"] >= 0, focused
    assert focused["clip"] in ("auto", "") and focused["clipPath"] in ("none", ""), focused
    page.keyboard.press("Enter")
    # Following the link is not synchronous with the key press: wait for it, within a timeout.
    page.wait_for_url(lambda url: url.endswith("#main"), timeout=10_000)


# --- 6. Nothing leaves the machine ------------------------------------------------------------


def test_the_guard_refuses_and_records_requests_leaving_127_0_0_1(browsing):
    """The check every test ends with works: an outside request is refused and noted."""
    page = browsing.open()
    with pytest.raises(PlaywrightError):
        page.goto("http://example.org/")
    watch = browsing.watch(page)
    assert watch.outside_requests == ["http://example.org/"]
    watch.outside_requests.clear()
    watch.take_console_errors()


# --- 7. Screenshots and the phone ------------------------------------------------------------


def test_screenshots_of_the_key_pages(factory, browsing):
    """For a person to look at (test-artifacts/screenshots/), and no page wider than a phone."""
    case = public_case(factory)
    factory.event(title="Detención masiva en El Valle")  # a draft, for the review queue
    email = factory.account("editor")
    page = browsing.open(viewport={"width": 1280, "height": 900})
    sign_in(page, email)
    for lang in LANGS:
        for name, path in (
            ("home", "/"),
            ("events", "/events"),
            ("event", f"/events/{case['event']}"),
            ("review", "/review"),
        ):
            page.goto(with_lang(path, lang))
            screenshot(page, f"{name}-{lang}")
        page.goto(with_lang("/events/new", lang))
        page.fill("#start_date", "julio")
        save(page)
        assert page.locator("#form-error").is_visible()
        screenshot(page, f"event-form-error-{lang}")

    phone = browsing.open(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(phone, email)
    for lang in LANGS:
        for name, path in (("event", f"/events/{case['event']}"), ("events", "/events")):
            phone.goto(with_lang(path, lang))
            screenshot(phone, f"phone-{name}-{lang}")
            width = phone.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} ({lang}) is {width}px wide on a phone"


# --- 8. Indicators and their charts, offline --------------------------------------------------

OLP = "Operación de Liberación y Protección del Pueblo"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def demo_operation(app) -> int:
    """Load the demo archive; answer the OLP operation's id."""
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        return db.session.scalars(select(Operation.id).where(Operation.name == OLP)).one()


def drawn_charts(page) -> list[dict]:
    """Wait for plotly.js to draw every chart of the page (the map with its outlines, fetched
    from the archive); answer what each chart holds."""
    page.wait_for_function(
        """() => {
          const charts = [...document.querySelectorAll('.js-chart')];
          return charts.length > 0 && charts.every(
            el => el.classList.contains('js-plotly-plot') && el.querySelector('svg.main-svg'));
        }"""
    )
    if page.locator("#chart-map").count():
        page.wait_for_function(
            """() => [...document.querySelectorAll('#chart-map .geo .layer.coastlines path')]
                       .some(p => (p.getAttribute('d') || '').length > 100)"""
        )
    return page.evaluate(
        """() => [...document.querySelectorAll('.js-chart')].map(el => ({
          id: el.id,
          plot: el.classList.contains('js-plotly-plot'),
          svg: el.querySelectorAll('svg.main-svg').length,
          outlines: [...el.querySelectorAll('.geo .layer path')]
            .filter(p => (p.getAttribute('d') || '').length > 100).length,
          points: el.querySelectorAll('.scattergeo path.point').length,
          caption: el.closest('figure').querySelector('figcaption').innerText,
        }))"""
    )


def check_charts(page, expected: list[str]) -> list[dict]:
    charts = drawn_charts(page)
    assert [c["id"] for c in charts] == [f"chart-{name}" for name in expected]
    for chart in charts:
        assert chart["plot"] and chart["svg"] >= 1, chart
        assert chart["caption"].strip(), chart  # the accessible name of the figure
    (the_map,) = [c for c in charts if c["id"] == "chart-map"]
    assert the_map["outlines"] >= 3, the_map  # land, countries, coastlines
    violations = axe_violations(page)
    assert not violations, describe_violations(page.url, violations)
    return charts


@pytest.mark.parametrize("lang", LANGS)
def test_the_demo_operation_draws_its_charts_offline(app, browsing, lang):
    operation = demo_operation(app)
    page = browsing.open(viewport={"width": 1280, "height": 900})
    page.goto(f"/operations/{operation}?lang={lang}")
    charts = check_charts(page, ["deaths_by_side", "timeline", "map"])
    # The demo's places have no coordinates: the map says so rather than inventing any.
    assert charts[2]["points"] == 0
    assert ("Not on the map" if lang == "en" else "Fuera del mapa") in charts[2]["caption"]
    screenshot(page, f"operation-dashboard-{lang}")


@pytest.mark.parametrize("group_by", ["operation", "month"])
def test_the_indicators_page_draws_every_chart_offline(app, factory, browsing, group_by):
    demo_operation(app)
    event = factory.published_event(
        title="Enfrentamiento en Las Tejerías",
        place_id=factory.place(admin1="Aragua", latitude=10.25, longitude=-67.17),
    )
    factory.casualty_count(event, factory.source(), count=12)
    page = browsing.open(viewport={"width": 1280, "height": 900})
    for lang in LANGS:
        page.goto(f"/indicators?group_by={group_by}&lang={lang}")
        charts = check_charts(page, ["deaths_by_side", "timeline", "lethality", "map"])
        assert charts[3]["points"] == 1  # the one event with coordinates
        screenshot(page, f"indicators-{group_by}-{lang}")


def test_a_chart_is_saved_as_a_png_without_leaving_the_machine(app, browsing):
    operation = demo_operation(app)
    page = browsing.open(accept_downloads=True)
    page.goto(f"/operations/{operation}?lang=en")
    drawn_charts(page)
    page.hover("#chart-deaths_by_side")
    with page.expect_download() as download:
        page.click('#chart-deaths_by_side .modebar-btn[data-title="Download plot as a PNG"]')
    saved = download.value
    assert saved.suggested_filename == f"constancia-operation-{operation}-deaths_by_side.png"
    with open(saved.path(), "rb") as picture:
        assert picture.read(8) == PNG_SIGNATURE
    # No button of the chart sends it anywhere.
    titles = page.locator("#chart-deaths_by_side .modebar-btn").evaluate_all(
        "buttons => buttons.map(b => b.getAttribute('data-title'))"
    )
    assert not [t for t in titles if "Share" in t or "cloud" in t.lower()], titles


# --- Import ----------------------------------------------------------------------------------


def clash_rows(n: int) -> bytes:
    """A spreadsheet of `n` clashes, one a row, in the layout tests/test_imports.py maps."""
    lines = ["Fecha,Estado,Municipio,Tipo,Civiles muertos,Soldados muertos"]
    for i in range(n):
        day = dt.date(2015, 1, 1) + dt.timedelta(days=i % 365)
        lines.append(f"{day:%d/%m/%Y},Sinaloa,Municipio {i},raid,{i % 4},{i % 2}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("lang", LANGS)
def test_a_researcher_imports_a_spreadsheet_watching_its_progress(
    app, factory, browsing, tmp_path, lang
):
    from .test_imports import CLASH_MAPPING

    # Enough rows that checking and writing them outlast the page's first polls (1 s).
    rows = 4000
    path = tmp_path / "enfrentamientos.csv"
    path.write_bytes(clash_rows(rows))
    page = browsing.open()
    sign_in(page, factory.account("researcher"))
    statuses: list[dict] = []

    def record_status(route):
        answer = route.fetch()
        statuses.append(answer.json())
        route.fulfill(response=answer)

    page.route("**/status", record_status)
    found: list[str] = []

    page.goto(f"/import?lang={lang}")
    page.set_input_files("#file", str(path))
    with page.expect_navigation():
        page.click("#main form button[type=submit]")
    assert page.locator("#mapping").count() == 1, page.inner_text("main")
    violations = axe_violations(page)
    if violations:
        found.append(describe_violations(f"/import mapping ({lang})", violations))
    page.fill("#mapping", json.dumps(CLASH_MAPPING))
    with page.expect_navigation(timeout=120_000):
        page.click("#main form[data-import-progress] button[type=submit]", no_wait_after=True)
    assert page.locator("#import-report").count() == 1, page.inner_text("main")
    violations = axe_violations(page)
    if violations:
        found.append(describe_violations(f"/import dry run ({lang})", violations))
    screenshot(page, f"import-dry-run-{lang}")
    with page.expect_navigation(timeout=120_000):
        page.click("#confirm-form button[type=submit]", no_wait_after=True)

    assert page.locator(".alert-success").count() == 1, page.inner_text("main")
    assert not found, "\n\n".join(found)
    # The bar was shown and fed while the rows were checked and written.
    assert any(s["stage"] and 0 < s["done"] <= s["total"] == rows for s in statuses), statuses
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Event)) == rows
