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
]
_COMPILED = [(re.compile(pattern), text) for pattern, text in MESSAGES]


def translate_message(message: str) -> str:
    """The reader's-language version of a service message, or the message as it is."""
    for pattern, text in _COMPILED:
        match = pattern.fullmatch(message.strip())
        if match:
            return str(text) % match.groupdict() if match.groupdict() else str(text)
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
        label=label, choices=choices, languages=languages, today=dt.date.today
    )
    app.jinja_env.filters.update(
        partial_date=partial_date, number=number, timestamp=timestamp, date_range=date_range
    )

    @app.context_processor
    def locale_context():
        return {"locale": str(get_locale()), "Markup": Markup}
