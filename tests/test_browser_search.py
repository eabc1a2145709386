"""In Chromium: a reader searches, narrows by a facet and opens a record, in Spanish, with axe
checking each page; a title carrying markup runs nothing."""

from __future__ import annotations

from . import test_browser
from .browser_support import axe_violations, describe_violations, screenshot
from .test_browser import public_case

# The browser, the live server and the pages' watch, as tests/test_browser.py makes them.
browser, server, browsing = test_browser.browser, test_browser.server, test_browser.browsing

XSS_TITLE = "Redada <img src=x onerror=\"document.title='pwned'\"> en Petare"


def test_a_reader_searches_narrows_and_opens_a_record_in_spanish(factory, browsing):
    case = public_case(factory)
    factory.published_event(title="Redada en la Cota 905", event_type="checkpoint")
    factory.published_event(source_id=factory.source(title=XSS_TITLE))
    page = browsing.open(locale="es-ES")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto("/")
    page.click("nav >> text=Buscar")
    page.fill("#q", "cota")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("[role=status]").inner_text() == "3 registros encontrados"
    assert page.locator(".snippet mark").count() >= 1
    violations = axe_violations(page)
    assert not violations, describe_violations(page.url, violations)
    screenshot(page, "search-es")

    with page.expect_navigation():
        page.click(".facet >> text=Allanamiento")  # the event type "raid", in Spanish
    assert page.locator("[role=status]").inner_text() == "1 registro encontrado"
    assert page.locator(".facet strong", has_text="Allanamiento").count() == 1

    with page.expect_navigation():
        page.click(".search-results a >> nth=0")
    assert page.url.endswith(f"/events/{case['event']}")

    page.goto("/search?q=petare")
    link = page.locator(".search-results a", has_text="Redada")
    assert link.inner_text() == XSS_TITLE  # shown as the text it is
    assert page.locator(".search-results img").count() == 0
    assert page.title() != "pwned" and not dialogs
