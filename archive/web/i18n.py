"""Languages: which one a request gets, the labels of the controlled lists, dates and numbers
in the reader's language, and the services' messages translated for the pages."""

from __future__ import annotations

import datetime as dt
import re

from babel.dates import format_skeleton
from flask import Flask, current_app, request
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from ..extensions import babel

LANG_COOKIE = "lang"
LANG_COOKIE_AGE = 365 * 24 * 3600


def languages() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    """?lang= first (and remembered), then the remembered choice, then the browser's."""
    for choice in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if choice in languages():
            return choice
    return request.accept_languages.best_match(languages()) or languages()[0]


def remember_language(response):
    choice = request.args.get("lang")
    if choice in languages() and request.cookies.get(LANG_COOKIE) != choice:
        response.set_cookie(
            LANG_COOKIE,
            choice,
            max_age=LANG_COOKIE_AGE,
            samesite="Lax",
            httponly=True,
            secure=request.is_secure,
        )
    if not request.path.startswith("/api/"):
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response


# --- Controlled-list labels ----------------------------------------------------------------
# Every value of archive/vocab.py, as a reader sees it. tests/test_i18n.py checks that each
# value has a label and that each label is translated.

LABELS = {
    "event_type": {
        "raid": _l("Raid"),
        "checkpoint": _l("Checkpoint"),
        "patrol": _l("Patrol"),
        "armed_clash_alleged": _l("Alleged armed clash"),
        "targeted_killing": _l("Targeted killing"),
        "mass_detention": _l("Mass detention"),
        "attack_on_security_forces": _l("Attack on security forces"),
        "protest": _l("Protest"),
        "other": _l("Other"),
    },
    "actor_kind": {
        "state_police": _l("State police"),
        "state_military": _l("State military"),
        "state_intelligence": _l("State intelligence"),
        "state_other": _l("Other state body"),
        "non_state_armed": _l("Non-state armed group"),
        "civilian_group": _l("Civilian group"),
        "other": _l("Other"),
    },
    "jurisdiction": {
        "national": _l("National"),
        "state": _l("State"),
        "municipal": _l("Municipal"),
    },
    "operation_actor_role": {"lead": _l("Lead"), "participating": _l("Participating")},
    "event_actor_role": {
        "perpetrator": _l("Perpetrator"),
        "target": _l("Target"),
        "present": _l("Present"),
    },
    "place_precision": {
        "exact": _l("Exact point"),
        "locality": _l("Locality"),
        "admin2": _l("Municipality"),
        "admin1": _l("State"),
        "country": _l("Country"),
    },
    "date_precision": {"day": _l("Day"), "month": _l("Month"), "year": _l("Year")},
    "status": {"draft": _l("Draft"), "in_review": _l("In review"), "verified": _l("Verified")},
    "sex": {
        "female": _l("Female"),
        "male": _l("Male"),
        "other": _l("Other"),
        "unknown": _l("Unknown"),
    },
    "affiliation": {
        "civilian": _l("Civilian"),
        "state_agent": _l("State agent"),
        "non_state_armed": _l("Non-state armed"),
        "unknown": _l("Unknown"),
    },
    "outcome": {
        "killed": _l("Killed"),
        "injured": _l("Injured"),
        "detained": _l("Detained"),
        "disappeared": _l("Disappeared"),
        "tortured": _l("Tortured"),
    },
    "caused_by": {"state": _l("State"), "non_state": _l("Non-state"), "unknown": _l("Unknown")},
    "on_duty": {"true": _l("On duty"), "false": _l("Off duty"), "unknown": _l("Unknown")},
    "source_kind": {
        "news_article": _l("News article"),
        "ngo_report": _l("NGO report"),
        "official_statement": _l("Official statement"),
        "social_media": _l("Social media"),
        "testimony": _l("Testimony"),
        "court_record": _l("Court record"),
        "media_file": _l("Media file"),
        "dataset": _l("Dataset"),
        "other": _l("Other"),
    },
    "reliability": {
        "A": _l("A — completely reliable"),
        "B": _l("B — usually reliable"),
        "C": _l("C — fairly reliable"),
        "D": _l("D — not usually reliable"),
        "E": _l("E — unreliable"),
        "F": _l("F — reliability cannot be judged"),
    },
    "credibility": {
        1: _l("1 — confirmed by other sources"),
        2: _l("2 — probably true"),
        3: _l("3 — possibly true"),
        4: _l("4 — doubtful"),
        5: _l("5 — improbable"),
        6: _l("6 — truth cannot be judged"),
    },
    "citation_target": {
        "operation": _l("Operation"),
        "event": _l("Event"),
        "victim": _l("Victim"),
        "casualty_count": _l("Casualty count"),
    },
    "action": {
        "create": _l("Creation"),
        "update": _l("Change"),
        "status_change": _l("Status change"),
        "publish": _l("Publication"),
        "unpublish": _l("Withdrawn from publication"),
        "delete": _l("Deletion"),
        "restore": _l("Restoration"),
        "attach_file": _l("File archived"),
        "login": _l("Sign-in"),
        "create_user": _l("Account created"),
        "change_role": _l("Role changed"),
        "activate_user": _l("Account reactivated"),
        "deactivate_user": _l("Account deactivated"),
        "issue_token": _l("API token issued"),
        "revoke_token": _l("API token revoked"),
        "export": _l("Export"),
    },
    "resource": {
        "events": _l("Events"),
        "operations": _l("Operations"),
        "places": _l("Places"),
        "actors": _l("Forces and groups"),
        "victims": _l("Victims"),
        "casualty-counts": _l("Casualty figures"),
        "sources": _l("Sources"),
        "citations": _l("Citations"),
        "indicators": _l("Indicators"),
        "context-figures": _l("Context figures"),
    },
    "role": {
        "viewer": _l("Viewer"),
        "researcher": _l("Researcher"),
        "editor": _l("Editor"),
        "admin": _l("Administrator"),
    },
}


def label(kind: str, value) -> str:
    """The reader's word for a controlled-list value; the value itself if it has none."""
    if value is None or value == "":
        return ""
    found = LABELS.get(kind, {}).get(value)
    return str(found) if found is not None else str(value)


def choices(kind: str) -> list[tuple[str, str]]:
    return [(str(value), str(text)) for value, text in LABELS[kind].items()]


# --- Dates and numbers ---------------------------------------------------------------------

SKELETONS = {"day": None, "month": "yMMMM", "year": "y"}


def partial_date(value: dt.date | None, precision: str | None = "day") -> str:
    """A date to the precision it is known: "13 jul 2015", "julio de 2015", "2015"."""
    if value is None:
        return ""
    skeleton = SKELETONS.get(precision or "day")
    if skeleton is None:
        return format_date(value, "medium")
    return format_skeleton(skeleton, value, locale=get_locale())


def date_range(start, start_precision, end, end_precision) -> str:
    first = partial_date(start, start_precision)
    if end is None or (end == start and end_precision == start_precision):
        return first
    return f"{first} – {partial_date(end, end_precision)}"


def number(value) -> str:
    return "" if value is None else format_decimal(value)


def timestamp(value: dt.datetime | None) -> str:
    return "" if value is None else format_datetime(value, "medium")


# --- The services' messages -----------------------------------------------------------------
# Services and schemas answer in English (the API's language). Pages show the reader's
# language: each known message shape is matched here and translated, its details kept.

MESSAGES = [
    (r"Missing data for required field\.", _l("This field is required.")),
    (r"Field may not be null\.", _l("This field is required.")),
    (r"Not a valid integer\.", _l("Enter a whole number.")),
    (r"Not a valid number\.", _l("Enter a number.")),
    (r"Not a valid boolean\.", _l("Choose yes or no.")),
    (
        r"Not a valid date: use YYYY-MM-DD, YYYY-MM or YYYY\.",
        _l("Enter a date as YYYY-MM-DD, YYYY-MM or YYYY (for example 2015-07-13 or 2015-07)."),
    ),
    (r"Not a valid date: use YYYY-MM-DD\.", _l("Enter a date as YYYY-MM-DD.")),
    (r"Must be one of: .*", _l("Choose one of the listed values.")),
    (r"Longer than maximum length (?P<n>\d+)\.", _l("Use at most %(n)s characters.")),
    (
        r"Must be greater than or equal to (?P<min>-?[\d.]+) and less than or equal to "
        r"(?P<max>-?[\d.]+)\.",
        _l("Enter a value from %(min)s to %(max)s."),
    ),
    (
        r"Must be greater than or equal to (?P<min>-?[\d.]+)\.",
        _l("Enter a value of at least %(min)s."),
    ),
    (r"Must not contain the NUL character\.", _l("Remove the NUL character.")),
    (
        r"end_date (?P<end>\S+) is before start_date (?P<start>\S+)\.",
        _l("The end date (%(end)s) is before the start date (%(start)s)."),
    ),
    (
        r"A date given to the (?P<given>\w+) cannot have (?P<precision>\w+) precision\.",
        _l("The precision does not match the date given."),
    ),
    (
        r"An event needs at least one citation before it can be verified or published\.",
        _l(
            "This event has no citation yet: cite at least one source before verifying or "
            "publishing it."
        ),
    ),
    (r"Only a verified event can be published\.", _l("Only a verified event can be published.")),
    (
        r"A published event must stay verified: unpublish it first\.",
        _l("A published event must stay verified: unpublish it first."),
    ),
    (r"No (?P<what>[\w ]+) with id (?P<id>[\d, ]+)\.", _l("There is no such record (id %(id)s).")),
    (r"Give latitude and longitude together\.", _l("Give latitude and longitude together.")),
    (r"An actor cannot be its own ancestor\.", _l("An actor cannot be its own ancestor.")),
    (
        r"A user with email (?P<email>\S+) already exists\.",
        _l("An account with the email %(email)s already exists."),
    ),
    (r"Not a valid email address\.", _l("Enter a valid email address.")),
    (r"Use at least (?P<n>\d+) characters\.", _l("Use at least %(n)s characters.")),
    (r"Your role \((?P<role>\w+)\) may not .*", _l("Your role may not do this.")),
    (
        r"This (?P<what>\w+) is still referred to by (?P<uses>.+); change or delete those first\.",
        _l("This record is still in use (%(uses)s); change or delete those first."),
    ),
    (
        r"Event (?P<id>\d+) is verified and this is its only citation; .*",
        _l(
            "The event is verified and this is its only citation: cite another source or move "
            "the event back to review first."
        ),
    ),
    (r"(?P<what>[\w ]+) (?P<id>\d+) is not deleted\.", _l("This record is not deleted.")),
    (
        r"Context figure (?P<id>\d+) is already the figure for (?P<region>.+) in "
        r"(?P<year>\d+); change that one instead\.",
        _l(
            "Record %(id)s is already the figure for %(region)s in %(year)s: change that one "
            "instead."
        ),
    ),
    (r"Give population, homicides or both\.", _l("Give the population, the homicides or both.")),
    (r"Must not be empty\.", _l("This field is required.")),
    (
        r"Source (?P<id>\d+) of this figure is deleted; restore it first\.",
        _l("The source of this figure (%(id)s) is deleted: restore it first."),
    ),
    (
        r"The file name must be at most (?P<n>\d+) characters, without NUL\.",
        _l("The file name is too long."),
    ),  # Search (archive/search.py).
    (
        r"The query is longer than (?P<n>\d+) characters\.",
        _l("The query is longer than %(n)s characters."),
    ),
    (r'The query has an unclosed quote \("\)\.', _l('The query has an unclosed quote (").')),
    (
        r"The query closes a parenthesis it never opened\.",
        _l("The query closes a parenthesis it never opened."),
    ),
    (
        r"The query opens a parenthesis it never closes\.",
        _l("The query opens a parenthesis it never closes."),
    ),
    (
        r"The query starts or ends with an operator \(AND, OR, NOT\) missing its term\.",
        _l("The query starts or ends with an operator (AND, OR, NOT) missing its term."),
    ),
    (
        r"Unknown field '(?P<name>[^']*)' in the query; fields: (?P<fields>.+)\.",
        _l("The query names an unknown field (%(name)s); the fields are: %(fields)s."),
    ),
    (r"The query does not parse: .*", _l("The query could not be read; check its syntax.")),
    (
        r"A wildcard needs at least two letters before it\.",
        _l("A wildcard (*) needs at least two letters before it."),
    ),
    (
        r"Ranges \(\[a TO b\]\) are not supported in the query; use date_from and date_to\.",
        _l("Ranges ([a TO b]) are not supported in the query: use the From and To dates."),
    ),
    (r"This kind of query is not supported: .*", _l("This kind of query is not supported.")),
    (
        r"Must be a whole number from (?P<low>\d+) to (?P<high>\d+)\.",
        _l("Enter a whole number from %(low)s to %(high)s."),
    ),
    (r"Must not be before date_from\.", _l("The end date is before the start date.")),
    (r"Unknown parameter; search takes: .*", _l("This parameter is not one search takes.")),
    # Imports (archive/imports): the report's errors and notes. A group named "message" holds
    # a message of its own, translated in turn.
    (
        r"(?P<value>.+) is not a whole number: use digits, optionally grouped in threes by "
        r"commas, dots or spaces \(5,042 or 5\.042\)\.",
        _l(
            "%(value)s is not a whole number: use digits, optionally grouped in threes by "
            "commas, dots or spaces (5,042 or 5.042)."
        ),
    ),
    (r"(?P<value>.+) is not a number\.", _l("%(value)s is not a number.")),
    (
        r"(?P<value>.+) is not yes or no \(true/false, sí/no, 1/0\)\.",
        _l("%(value)s is not yes or no (true/false, sí/no, 1/0)."),
    ),
    (r"(?P<value>.+) is no date: (?P<message>.+)\.", _l("%(value)s is no date: %(message)s.")),
    (r"month must be in 1\.\.12", _l("month must be in 1..12")),
    (r"day is out of range for month", _l("day is out of range for month")),
    (r"year (?P<year>-?\d+) is out of range", _l("year %(year)s is out of range")),
    (r"(?P<value>.+) is not a date\.", _l("%(value)s is not a date.")),
    (
        r"(?P<value>.+) does not match the date format (?P<format>.+)\.",
        _l("%(value)s does not match the date format %(format)s."),
    ),
    (
        r"(?P<value>.+) is not a date this import can read \(such as 2015-07-13, 13/07/2015, "
        r"11-Jan-07, 07/2015 or 2015\); give its format in date_formats\.",
        _l(
            "%(value)s is not a date this import can read (such as 2015-07-13, 13/07/2015, "
            "11-Jan-07, 07/2015 or 2015); give its format in date_formats."
        ),
    ),
    (
        r"The cell holds the spreadsheet error (?P<error>.+)\.",
        _l("The cell holds the spreadsheet error %(error)s."),
    ),
    (
        r"(?P<value>.+) maps to nothing in values\.(?P<key>[\w.]+); add it there\.",
        _l("%(value)s maps to nothing in values.%(key)s; add it there."),
    ),
    (
        r"(?P<value>.+) is not in the list for (?P<key>[\w.]+) \((?P<choices>.*)\); say what "
        r"it means in values\.(?P=key)\.",
        _l(
            "%(value)s is not in the list for %(key)s (%(choices)s); say what it means in "
            "values.%(key)s."
        ),
    ),
    (
        r"operation fields are given but no operation\.name\.",
        _l("operation fields are given but no operation.name."),
    ),
    (
        r"(?P<place>.+) is place (?P<id>\d+) \((?P<text>.*)\) in the archive\.",
        _l("%(place)s is place %(id)s (%(text)s) in the archive."),
    ),
    (
        r"(?P<place>.+) matches no place in the archive \(ignoring case and accents\): it will "
        r"be added as written\.",
        _l(
            "%(place)s matches no place in the archive (ignoring case and accents): it will be "
            "added as written."
        ),
    ),
    (
        r"(?P<place>.+) matches no place in the archive \(ignoring case and accents\): it was "
        r"added as written\.",
        _l(
            "%(place)s matches no place in the archive (ignoring case and accents): it was "
            "added as written."
        ),
    ),
    (
        r"No operation named (?P<name>.+) in the archive: it will be added\.",
        _l("No operation named %(name)s in the archive: it will be added."),
    ),
    (
        r"No operation named (?P<name>.+) in the archive: it was added\.",
        _l("No operation named %(name)s in the archive: it was added."),
    ),
    (
        r"Dates in both orders: row (?P<day_first>\d+) can only be day-first, row "
        r"(?P<month_first>\d+) only month-first; give the column's format in date_formats\.",
        _l(
            "Dates in both orders: row %(day_first)s can only be day-first, row "
            "%(month_first)s only month-first; give the column's format in date_formats."
        ),
    ),
    (
        r"Dates such as (?P<example>.+) could be day-first or month-first and no date in the "
        r"column tells which: read as day-first\. If they are month-first, set date_formats "
        r"(?P<setting>.+)\.",
        _l(
            "Dates such as %(example)s could be day-first or month-first and no date in the "
            "column tells which: read as day-first. If they are month-first, set date_formats "
            "%(setting)s."
        ),
    ),
    (
        r"Writing failed, nothing was kept: rows (?P<first>\d+) to (?P<last>\d+): "
        r"(?P<message>.+)",
        _l("Writing failed, nothing was kept: rows %(first)s to %(last)s: %(message)s"),
    ),
    (
        r"Writing failed, nothing was kept: (?P<message>.+)",
        _l("Writing failed, nothing was kept: %(message)s"),
    ),
]
_COMPILED = [(re.compile(pattern), text) for pattern, text in MESSAGES]


def translate_message(message: str) -> str:
    """The reader's-language version of a service message, or the message as it is."""
    for pattern, text in _COMPILED:
        match = pattern.fullmatch(message.strip())
        if match:
            values = match.groupdict()
            if "message" in values:
                values["message"] = translate_message(values["message"])
            return str(text) % values if values else str(text)
    return message


def translate_errors(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [translate_message(m) for m in messages] for name, messages in fields.items()}


def validation_errors(exc) -> dict[str, list[str]]:
    """A ValidationError as {field: [message, …]}, flattened as the API does, translated."""
    from ..api.errors import flatten_messages

    messages = exc.normalized_messages()
    return translate_errors(
        flatten_messages(messages if isinstance(messages, dict) else {"_": messages})
    )


def all_messages(exc) -> list[str]:
    """Every message of a ValidationError, or a Conflict's one, in the reader's language."""
    if hasattr(exc, "normalized_messages"):
        return [m for ms in validation_errors(exc).values() for m in ms]
    return [translate_message(exc.message)]


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.after_request(remember_language)
    app.jinja_env.globals.update(
        label=label,
        choices=choices,
        languages=languages,
        today=dt.date.today,
        service_message=translate_message,
    )
    app.jinja_env.filters.update(
        partial_date=partial_date, number=number, timestamp=timestamp, date_range=date_range
    )

    @app.context_processor
    def locale_context():
        return {"locale": str(get_locale()), "Markup": Markup}
