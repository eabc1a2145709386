"""Spanish and English complete: every message of the pages, every controlled-list value."""

from __future__ import annotations

import os

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from archive import vocab
from archive.web.i18n import LABELS, MESSAGES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGUAGES = ("es", "en")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def catalog(lang: str, kind: str = "po"):
    path = os.path.join(ROOT, "translations", lang, "LC_MESSAGES", f"messages.{kind}")
    with open(path, "rb") as f:
        return read_po(f, locale=lang) if kind == "po" else read_mo(f)


def source_messages() -> set[str]:
    """Every message the code and templates ask to translate, read from the sources."""
    method_map = [("archive/**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated(lang):
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog(lang) if m.id}
    missing = sorted(source_messages() - set(messages))
    assert not missing, f"not in the {lang} catalog (run `make translations`): {missing[:10]}"
    empty = [
        key
        for key, m in messages.items()
        if not (all(m.string) if isinstance(m.string, tuple) else m.string) or m.fuzzy
    ]
    assert not empty, f"untranslated in {lang}: {empty[:10]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_compiled_catalogs_match_their_sources(lang):
    def entries(messages):
        return {_key(m.id): _key(m.string) for m in messages if m.id}

    po, mo = entries(catalog(lang)), entries(catalog(lang, "mo"))
    assert po == mo, f"translations/{lang} .mo is stale: run `make translations`"


def _key(value):
    """Plural messages are tuples in one reader and lists in the other."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def test_every_controlled_value_has_a_label():
    lists = {
        "event_type": vocab.EVENT_TYPES,
        "actor_kind": vocab.ACTOR_KINDS,
        "jurisdiction": vocab.JURISDICTIONS,
        "operation_actor_role": vocab.OPERATION_ACTOR_ROLES,
        "event_actor_role": vocab.EVENT_ACTOR_ROLES,
        "place_precision": vocab.PLACE_PRECISIONS,
        "date_precision": vocab.DATE_PRECISIONS,
        "status": vocab.EVENT_STATUSES,
        "sex": vocab.SEXES,
        "affiliation": vocab.AFFILIATIONS,
        "outcome": vocab.OUTCOMES,
        "caused_by": vocab.CAUSED_BY,
        "on_duty": vocab.ON_DUTY,
        "source_kind": vocab.SOURCE_KINDS,
        "reliability": vocab.RELIABILITY,
        "credibility": vocab.CREDIBILITY,
        "citation_target": vocab.CITATION_TARGETS,
        "role": vocab.ROLES,
    }
    for kind, values in lists.items():
        assert set(LABELS[kind]) == set(values), kind


def test_the_labels_read_in_each_language(app):
    from archive.web.i18n import label

    for lang, expected in (("es", "Enfrentamiento alegado"), ("en", "Alleged armed clash")):
        with app.test_request_context(f"/?lang={lang}"):
            assert label("event_type", "armed_clash_alleged") == expected


def test_service_messages_are_translated_with_their_details(app):
    from archive.web.i18n import translate_message

    with app.test_request_context("/?lang=es"):
        text = translate_message("end_date 2015-07-01 is before start_date 2015-07-13.")
        assert "2015-07-01" in text and "2015-07-13" in text and "end_date" not in text
    assert all(pattern for pattern, _ in MESSAGES)
