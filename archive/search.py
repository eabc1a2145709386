"""Full-text search over events, operations, actors and sources, with Whoosh (issue 8).

The only module that imports Whoosh. The database stays the source of truth; the index holds
one document per live record, built from what each audience may read (DOMAIN.md section 3):

- Access inside the index. Each document says whether anonymous readers may see it
  (`public`, decided by the same SQL conditions as the API, archive/access.py); their queries
  are filtered on it inside Whoosh, so results, totals and facets all come from the same
  filtered match set. Text only staff may read (internal notes, restricted victims'
  identities) lives in fields of its own (`notes`, `rvictim`) that an anonymous query never
  touches, and in a stored field snippets for anonymous readers are never built from.
  Deleted records have no document at all. Their scores too are counted over their own
  documents (AudienceStatistics): a record they cannot read changes neither their scores
  nor their order.
- Language. One chain for Spanish and English: Unicode NFKC, case folding, stop words of
  both, then two fields per text: an accent-folded unstemmed one (exact words, phrases,
  typo tolerance) and a stemmed one holding, at each position, the Spanish stem of the word
  as written, of the word without accents and with its likely accents restored, and the
  English stem (Spanish Snowball needs accents: "tejerias" alone never meets "Tejerías").
  A query word matches either.
- In step with the database. Changes of the records search shows are written, in their own
  transaction, into the `search_outbox` table (session events on flush); after commit
  whoever gets Whoosh's single writer lock without waiting applies the outbox, rebuilding
  each named document from the committed database, and deletes the rows it applied. A
  rolled-back change leaves no row; a busy lock leaves the rows for the next writer; a
  search applies what is pending before it reads.
- Speed. A searcher is kept per process and reused until the index changes; totals and facet
  counts come from the unscored match set and per-document columns, never from scoring.
  The page is chosen with numpy: each word's postings and each field's lengths are read in
  bulk (and kept per searcher) and scored with Whoosh's BM25F formula, the same scores its
  collector gives, ties (rounded to SCORE_DECIMALS) by document number; queries numpy does
  not score are left to Whoosh. Date filters read a column. Only the page is highlighted.
"""

from __future__ import annotations

import atexit
import calendar
import contextlib
import datetime as dt
import fcntl
import functools
import gc
import hashlib
import html
import io
import logging
import math
import multiprocessing
import os
import pickle
import re
import shutil
import struct
import threading
import unicodedata
import warnings
import zlib
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flask import current_app, has_app_context
from markupsafe import escape
from marshmallow import ValidationError
from sqlalchemy import delete, event, func, inspect, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, joinedload, selectinload
from whoosh import fields, formats, query, sorting, writing
from whoosh.analysis import Analyzer, Filter, RegexTokenizer, StopFilter, Token
from whoosh.codec.whoosh3 import (
    LENGTHS_COLUMN,
    WHOOSH3_HEADER_MAGIC,
    W3FieldWriter,
    W3LeafMatcher,
    _lenfield,
)
from whoosh.filedb.filestore import FileStorage
from whoosh.index import LockError
from whoosh.lang import stemmer_for_language, stopwords_for_language
from whoosh.matching.combo import ArrayUnionMatcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.qparser import FieldsPlugin, FuzzyTermPlugin, QueryParser
from whoosh.scoring import BM25F, BM25FScorer
from whoosh.searching import Searcher
from whoosh.system import pack_uint
from whoosh.util.numeric import byte_to_length

from . import access, database, vocab
from .models import (
    Actor,
    CasualtyCount,
    Citation,
    ContextFigure,
    Event,
    EventActor,
    Operation,
    OperationActor,
    Place,
    SearchOutbox,
    Source,
    SourceFile,
    Victim,
)

log = logging.getLogger(__name__)


def _union_max_quality(self: ArrayUnionMatcher) -> float:
    """The most any document left can score: what the part read ahead holds, or the sum of
    what each word still to read can add.

    Whoosh's own answer is the best of the words alone, though a union scores their sum. An
    OR of three or more words in a segment of 5,000 documents or fewer gets this matcher;
    once a page is full its collector drops whatever cannot beat the page's weakest score by
    that bound, and so dropped better matches further on: a staff search's words (each in
    its text, notes and withheld-name fields, in several stems) paged wrongly.
    """
    ahead = sum(m.max_quality() for m in self._submatchers if m.is_active()) * self._boost
    return max(max(self._a), ahead)


ArrayUnionMatcher.max_quality = _union_max_quality

TYPES = ("event", "operation", "actor", "source")
FACETS = ("type", "operation", "actor", "admin1", "year", "event_type", "status")
SORTS = ("relevance", "-date")
# The index column each facet counts.
FACET_COLUMNS = {
    "type": "type",
    "operation": "operation_id",
    "actor": "actors",
    "admin1": "admin1",
    "year": "year",
    "event_type": "event_type",
    "status": "status",
}
MAX_QUERY_LENGTH = 1000
# The start of an undated record: it sorts last newest-first, and no date range reaches it.
NO_DATE = 0
SNIPPET_CHARS = 240

# --- Language -------------------------------------------------------------------------------

_STEM_ES = stemmer_for_language("es")
_STEM_EN = stemmer_for_language("en")
# Accents a Spanish word typed without them most likely had, at its end, where the stemmer
# looks: "operacion" -> "operación", "policias" -> "policías".
_ACCENT_GUESSES = (("cion", "ción"), ("sion", "sión"), ("ias", "ías"), ("ia", "ía"))


@functools.lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Compatibility-normalised, case-folded, without accents: "Tejerías" -> "tejerias"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=200_000)
def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


STOP_WORDS = frozenset(
    word
    for language in ("es", "en")
    for listed in stopwords_for_language(language)
    for word in (_normal(listed), fold(listed))
)


@functools.lru_cache(maxsize=200_000)
def stems(word: str) -> tuple[str, ...]:
    """The stems a (lower-case) word is indexed and searched under, in both languages."""
    folded = fold(word)
    if folded.isdigit():
        return (folded,)
    guessed = next(
        (
            folded[: -len(end)] + accented
            for end, accented in _ACCENT_GUESSES
            if folded.endswith(end)
        ),
        folded,
    )
    found = (
        fold(_STEM_ES(word)),
        fold(_STEM_ES(folded)),
        fold(_STEM_ES(guessed)),
        fold(_STEM_EN(folded)),
    )
    return tuple(dict.fromkeys(found))


class _Normalise(Filter):
    def __call__(self, tokens):
        for t in tokens:
            t.text = _normal(t.text)
            yield t


class _Fold(Filter):
    def __call__(self, tokens):
        for t in tokens:
            t.text = fold(t.text)
            yield t


class _Stems(Filter):
    """Every stem of a word at the word's own position."""

    def __call__(self, tokens):
        for t in tokens:
            for stem in stems(t.text):
                t.text = stem
                yield t


def _words():
    return RegexTokenizer() | _Normalise()


def _content_words():
    return _words() | StopFilter(stoplist=STOP_WORDS, minsize=1, renumber=True)


_TOKEN_PATTERN = re.compile(RegexTokenizer().expression.pattern)


@functools.lru_cache(maxsize=8)
def _content(text: str) -> tuple[tuple[str, int], ...]:
    """_content_words() of a text as (word, position): the same text is indexed exact and
    stemmed, one field after the other, and split once."""
    found, position = [], 0
    for match in _TOKEN_PATTERN.finditer(text):
        word = _normal(match.group())
        if word not in STOP_WORDS:
            found.append((word, position))
            position += 1
    return tuple(found)


class _Indexed(Analyzer):
    """What a text field indexes: _content_words(), accent-folded (EXACT) or as every stem
    at the word's own position (STEMMED), without Whoosh's chain of generators per word."""

    def __init__(self, stemmed: bool):
        self.stemmed = stemmed

    def __eq__(self, other):
        return type(other) is type(self) and other.stemmed == self.stemmed

    def __call__(self, value: str, start_pos: int = 0, **kwargs):
        token = Token(positions=True, boost=1.0, removestops=True, mode="index")
        for word, position in _content(value):
            token.pos = start_pos + position
            token.stopped = False
            for text in stems(word) if self.stemmed else (fold(word),):
                token.text = text
                yield token


EXACT = _Indexed(stemmed=False)
STEMMED = _Indexed(stemmed=True)


def _pairs(text: str) -> set[str]:
    """The text's adjacent word pairs, accent-folded, "orden judicial": what a phrase of
    two words finds by a term, and a longer one narrows its candidates with."""
    words = [fold(word) for word, _position in _content(text)]
    return {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}


class _Pairs(Analyzer):
    """What a pairs field (`t_name_p`) indexes: _pairs()."""

    def __eq__(self, other):
        return type(other) is type(self)

    def __call__(self, value: str, **kwargs):
        token = Token(positions=False, boost=1.0, removestops=True, mode="index")
        for pair in sorted(_pairs(value)):
            token.text = pair
            token.stopped = False
            yield token


PAIRS = _Pairs()

# The text fields, indexed exact (`t_name`), and some stemmed too (`t_name_s`).
TEXT_FIELDS = ("all", "title", "actor", "operation", "place", "victim", "file", "notes", "rvictim")
# Those also indexed stemmed: the rest (names, places, file text, also inside `all`) are
# searched by their exact, accent-folded words when a query names their field.
STEMMED_FIELDS = frozenset({"all", "title", "notes", "rvictim"})
# Those also indexed as adjacent word pairs (`t_name_p`): the fields a word of a query naming
# no field is searched in.
PAIRED_FIELDS = frozenset({"all", "notes", "rvictim"})
# What a query may name, and the indexed fields each name searches for each audience.
QUERY_FIELDS = ("all", "title", "actor", "operation", "place", "victim", "file", "notes")
PUBLIC_TARGETS = {name: (name,) for name in QUERY_FIELDS if name != "notes"}
STAFF_TARGETS = {
    **PUBLIC_TARGETS,
    "all": ("all", "notes", "rvictim"),
    "victim": ("victim", "rvictim"),
    "notes": ("notes",),
}


def _date_field() -> fields.NUMERIC:
    return fields.NUMERIC(int, bits=32, sortable=True, shift_step=0, default=NO_DATE)


def _schema() -> fields.Schema:
    schema = fields.Schema(
        key=fields.ID(unique=True, stored=True),
        type=fields.ID(stored=True, sortable=True),
        rid=fields.STORED(),
        public=fields.ID(),
        # Dates as days (20160131): one term per value, and a column that date filters and
        # the newest-first order read. A record without one holds NO_DATE.
        start=_date_field(),
        last=_date_field(),
        operation_id=fields.ID(sortable=True),
        actor_id=fields.KEYWORD(),
        actors=fields.ID(sortable=True),
        admin1=fields.ID(sortable=True),
        admin1_key=fields.ID(),
        year=fields.ID(sortable=True),
        event_type=fields.ID(sortable=True),
        status=fields.ID(sortable=True),
        s_title=fields.STORED(),
        s_body=fields.STORED(),
        s_file=fields.STORED(),
        s_private=fields.STORED(),
        digest=fields.STORED(),
    )
    for name in TEXT_FIELDS:
        boost = 2.0 if name == "title" else 1.0
        schema.add(f"t_{name}", fields.TEXT(analyzer=EXACT, phrase=True, field_boost=boost))
        if name in STEMMED_FIELDS:
            schema.add(
                f"t_{name}_s", fields.TEXT(analyzer=STEMMED, phrase=False, field_boost=boost)
            )
        if name in PAIRED_FIELDS:  # found, never scored
            schema.add(f"t_{name}_p", fields.FieldType(formats.Existence(), PAIRS))
    return schema


SCHEMA = _schema()


def _signature(schema: fields.Schema) -> list[tuple]:
    """What an index built with an older schema differs in: it is rebuilt, not misread."""
    return [
        (
            name,
            type(f).__name__,
            f.stored,
            f.scorable,
            f.column_type is not None,
            getattr(f, "shift_step", None),
            getattr(f.format, "__class__", type(None)).__name__,
        )
        for name, f in sorted(schema.items())
    ]


SIGNATURE = _signature(SCHEMA)
# Text fields as a query names them; parsed with words only, then expanded (see _on_fields).
_PARSE_SCHEMA = fields.Schema(**{name: fields.TEXT(analyzer=_words()) for name in QUERY_FIELDS})


def _parser() -> QueryParser:
    parser = QueryParser("all", _PARSE_SCHEMA)
    parser.remove_plugin_class(FieldsPlugin)
    parser.add_plugin(FieldsPlugin(remove_unknown=False))
    parser.add_plugin(FuzzyTermPlugin())
    return parser


PARSER = _parser()

# --- Documents ------------------------------------------------------------------------------


def _strip_html(text: str | None) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", text)) if text else ""


def _join(*parts: Any) -> str:
    return "\n".join(str(p) for p in parts if p)


def _day(value: dt.date | None) -> int | None:
    return value.year * 10000 + value.month * 100 + value.day if value else None


def _period_end(day: dt.date, precision: str | None) -> dt.date:
    if precision == "year":
        return dt.date(day.year, 12, 31)
    if precision == "month":
        return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
    return day


def _document(kind: str, record_id: int, public: bool, **values: Any) -> dict[str, Any]:
    texts = {name: values.pop(name, "") or "" for name in TEXT_FIELDS if name != "all"}
    body, files, private = (
        values.pop("body", ""),
        texts["file"],
        _join(texts["notes"], texts["rvictim"]),
    )
    doc = {
        "key": f"{kind}:{record_id}",
        "type": kind,
        "rid": record_id,
        "public": "yes" if public else "no",
        "s_title": texts["title"],
        "s_body": body,
        "s_file": files,
        "s_private": private,
        **{k: v for k, v in values.items() if v not in (None, "")},
    }
    everything = _join(texts["title"], body, files)
    for name, text in {**texts, "all": everything}.items():
        if text:
            doc[f"t_{name}"] = text
            if name in STEMMED_FIELDS:
                doc[f"t_{name}_s"] = text
            if name in PAIRED_FIELDS:
                doc[f"t_{name}_p"] = text
    doc["digest"] = hashlib.sha256(repr(sorted(doc.items())).encode()).hexdigest()
    return doc


def _public_ids(session: Session, model, ids: list[int]) -> set[int]:
    return set(
        session.scalars(select(model.id).where(model.id.in_(ids), access.visible(model, None)))
    )


def _actor_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    rows = session.execute(
        select(Actor.id, Actor.name, Actor.acronym).where(Actor.id.in_(set(ids)))
    )
    return {i: _join(name, acronym) for i, name, acronym in rows}


def _event_documents(session: Session, ids: list[int]) -> dict[int, dict]:
    events = session.scalars(
        select(Event)
        .where(Event.id.in_(ids), Event.deleted_at.is_(None))
        .options(selectinload(Event.actors), joinedload(Event.place), joinedload(Event.operation))
    ).all()
    public = _public_ids(session, Event, ids)
    victims: dict[int, list[Victim]] = {}
    for victim in session.scalars(
        select(Victim).where(Victim.event_id.in_(ids), Victim.deleted_at.is_(None))
    ):
        victims.setdefault(victim.event_id, []).append(victim)
    names = _actor_names(session, (a.actor_id for e in events for a in e.actors))
    docs = {}
    for e in events:
        place = e.place if e.place is not None and e.place.deleted_at is None else None
        places = (
            _join(*(getattr(place, f) for f in ("locality", "admin3", "admin2", "admin1")))
            if place
            else ""
        )
        op = e.operation if e.operation is not None and e.operation.deleted_at is None else None
        operation = _join(op.name, *(op.aliases or ())) if op else ""
        actor_ids = sorted({a.actor_id for a in e.actors})
        actors = _join(*(names.get(i) for i in actor_ids))
        mine = victims.get(e.id, [])
        open_victims = _join(*(_join(v.name, v.alias) for v in mine if not v.identity_restricted))
        withheld = _join(*(_join(v.name, v.alias) for v in mine if v.identity_restricted))
        start = e.start_date
        end = e.end_date or e.start_date
        end_precision = e.end_date_precision if e.end_date else e.date_precision
        docs[e.id] = _document(
            "event",
            e.id,
            e.id in public,
            title=e.title,
            body=_join(
                _strip_html(e.description),
                e.official_account,
                places,
                operation,
                actors,
                e.event_type.replace("_", " "),
                open_victims,
            ),
            actor=actors,
            operation=operation,
            place=places,
            victim=open_victims,
            notes=e.internal_notes,
            rvictim=withheld,
            start=_day(start) or NO_DATE,
            last=_day(_period_end(end, end_precision)) if end else None,
            operation_id=str(op.id) if op else None,
            actor_id=" ".join(map(str, actor_ids)),
            actors=" ".join(map(str, actor_ids)),
            admin1=place.admin1 if place else None,
            admin1_key=fold(place.admin1) if place and place.admin1 else None,
            year=str(start.year) if start else None,
            event_type=e.event_type,
            status=e.status,
        )
    return docs


def _operation_documents(session: Session, ids: list[int]) -> dict[int, dict]:
    operations = session.scalars(
        select(Operation)
        .where(Operation.id.in_(ids), Operation.deleted_at.is_(None))
        .options(selectinload(Operation.actors))
    ).all()
    public = _public_ids(session, Operation, ids)
    names = _actor_names(session, (a.actor_id for o in operations for a in o.actors))
    docs = {}
    for o in operations:
        actors = _join(*(names.get(i) for i in sorted({a.actor_id for a in o.actors})))
        end = o.end_date or o.start_date
        end_precision = o.end_date_precision if o.end_date else o.date_precision
        docs[o.id] = _document(
            "operation",
            o.id,
            o.id in public,
            title=o.name,
            body=_join(*(o.aliases or ()), _strip_html(o.description), o.announced_by, actors),
            operation=_join(o.name, *(o.aliases or ())),
            actor=actors,
            start=_day(o.start_date) or NO_DATE,
            last=_day(_period_end(end, end_precision)) if end else None,
        )
    return docs


def _actor_documents(session: Session, ids: list[int]) -> dict[int, dict]:
    actors = session.scalars(select(Actor).where(Actor.id.in_(ids), Actor.deleted_at.is_(None)))
    public = _public_ids(session, Actor, ids)
    return {
        a.id: _document(
            "actor",
            a.id,
            a.id in public,
            title=f"{a.name} ({a.acronym})" if a.acronym else a.name,
            body=_join(a.acronym, a.kind.replace("_", " "), _strip_html(a.description)),
            actor=_join(a.name, a.acronym),
        )
        for a in actors
    }


def _source_documents(session: Session, ids: list[int]) -> dict[int, dict]:
    sources = session.scalars(select(Source).where(Source.id.in_(ids), Source.deleted_at.is_(None)))
    public = _public_ids(session, Source, ids)
    texts: dict[int, list[str]] = {}
    for source_id, text in session.execute(
        select(SourceFile.source_id, SourceFile.extracted_text)
        .where(
            SourceFile.source_id.in_(ids),
            SourceFile.deleted_at.is_(None),
            SourceFile.extracted_text.is_not(None),
        )
        .order_by(SourceFile.id)
    ):
        texts.setdefault(source_id, []).append(text)
    return {
        s.id: _document(
            "source",
            s.id,
            s.id in public,
            title=s.title,
            body=_join(s.publisher, s.author, s.notes),
            file=_join(*texts.get(s.id, ())),
            start=_day(s.published_at) or NO_DATE,
            last=_day(s.published_at),
        )
        for s in sources
    }


BUILDERS: dict[str, Callable[[Session, list[int]], dict[int, dict]]] = {
    "event": _event_documents,
    "operation": _operation_documents,
    "actor": _actor_documents,
    "source": _source_documents,
}
MODELS = {"event": Event, "operation": Operation, "actor": Actor, "source": Source}
CHUNK = 500
# Words whose documents a searcher keeps as sets.
TERMS_KEPT = 256
# Searches whose matches and facet counts a searcher keeps.
SEARCHES_KEPT = 32
# What a rebuild's writer may hold in memory before it spills sorted runs to disk (Whoosh's
# own estimate; the process grows by about 1.5 times as much). Once it spills, every posting
# is pickled out and back, a third of the rebuild: 100,000 events fit in about 2,500.
# The setting SEARCH_REINDEX_MB overrides it, for a server with less memory to spare.
REINDEX_MB = 3072
# From how many records a rebuild reads and analyses the later ones in a second process.
PARALLEL_DOCUMENTS = 20_000


_POSITIONS = formats.Positions()
_ONE_POSITION = pack_uint(1)


@functools.lru_cache(maxsize=100_000)
def _pickled_position(position: int) -> bytes:
    return _POSITIONS.encode([position])[len(_ONE_POSITION) :]


class _TermPool:
    """A rebuild's postings, gathered by term as the documents are added and written a block
    at a time: what Whoosh's writer does a posting at a time, in Python, and after sorting
    every posting (two thirds of a rebuild). The index written is the same, byte for byte
    in its postings, lengths, columns and stored fields; the text fields' postings are
    counted from each text split once (_content), not through a Token per word.

    Within the writer's memory bound (SEARCH_REINDEX_MB, Whoosh's estimate of its own
    pool) only: past it, what was gathered goes to Whoosh's pool, which spills sorted runs
    to disk, and the rest of the rebuild is Whoosh's own."""

    # A posting's estimated size here (document number, weight, the reference to its
    # value), and a term's (its key and arrays).
    POSTING_BYTES = 24
    TERM_BYTES = 240

    def __init__(self, writer, schema: fields.Schema | None = None):
        self.writer = writer
        self.schema = writer.schema if writer is not None else schema
        self.limit = writer.pool.limit if writer is not None else math.inf
        self.size = 0
        self.terms: dict[str, dict[str | bytes, tuple[array, array, list]]] = {}
        self.spilled = False
        # Frequencies encoded before.
        self._encoded: dict[int, bytes] = {}
        # The text fields this class counts postings of itself: (stemmed, with positions,
        # the field's boost) by field name.
        self._text = {
            name: (field.analyzer.stemmed, type(field.format) is formats.Positions, boost)
            for name, field in self.schema.items()
            if isinstance(getattr(field, "analyzer", None), _Indexed)
            and field.scorable
            and type(field.format) in (formats.Positions, formats.Frequency)
            and isinstance(boost := field.format.field_boost, float)
        }
        # The pairs fields, and the weight of each of their postings (their boost).
        self._pairs = {
            name: float(field.format.field_boost)
            for name, field in self.schema.items()
            if isinstance(getattr(field, "analyzer", None), _Pairs)
            and type(field.format) is formats.Existence
            and not field.scorable
        }

    def add_document(self, doc: Mapping[str, Any]) -> None:
        """What writer.add_document(**doc) does, for this index's schema."""
        if self.spilled:
            self.writer.add_document(**doc)
            return
        self._describe(doc, self._index(doc, self.writer.docnum))

    def _index(self, doc: Mapping[str, Any], docnum: int) -> dict[str, int]:
        """Gather a document's postings; answer its fields' lengths."""
        lengths = {}
        for name, value in doc.items():
            field = self.schema[name]
            if value is None or not field.indexed:
                continue
            terms = self.terms.get(name)
            if terms is None:
                terms = self.terms[name] = {}
            length = 0
            text = self._text.get(name)
            if text is not None:
                length = self._add_text(terms, *text, value, docnum)
            elif name in self._pairs:
                for pair in _pairs(value):
                    self._add(terms, pair, docnum, self._pairs[name], b"")
            else:
                for btext, freq, weight, vbytes in field.index(value):
                    if field.scorable:
                        length += freq
                    self._add(terms, btext, docnum, weight, vbytes)
            if length:
                lengths[name] = length
        return lengths

    def _describe(self, doc: Mapping[str, Any], lengths: Mapping[str, int]) -> None:
        """Write a document's lengths, columns and stored fields, as the next document."""
        w = self.writer
        perdoc, schema = w.perdocwriter, self.schema
        perdoc.start_doc(w.docnum)
        for name in sorted(doc):
            value = doc[name]
            if value is None:
                continue
            field = schema[name]
            perdoc.add_field(name, field, value if field.stored else None, lengths.get(name, 0))
            if field.column_type is not None:
                perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
        perdoc.finish_doc()
        w._added = True
        w.docnum += 1
        if self.size > self.limit:
            self._spill()

    def add_part(self, part: tuple[dict, list, int]) -> int:
        """Add the documents another process gathered (_gather_part), after those added so
        far; answer how many."""
        terms, described, size = part
        base = self.writer.docnum
        for name, theirs in terms.items():
            mine = self.terms.setdefault(name, {})
            for text, (docs, weights, values) in theirs.items():
                shifted = array("I")
                shifted.frombytes((np.frombuffer(docs, dtype=np.uint32) + base).tobytes())
                found = mine.get(text)
                if found is None:
                    mine[text] = (shifted, weights, values)
                else:
                    found[0].extend(shifted)
                    found[1].extend(weights)
                    found[2].extend(values)
        terms.clear()
        self.size += size
        if self.spilled or self.size > self.limit:
            self._spill()
        for doc, lengths in described:
            self._describe(doc, lengths)
        return len(described)

    def _add_text(
        self, terms: dict, stemmed: bool, positional: bool, boost: float, value: str, docnum: int
    ) -> int:
        """A text field's postings, as its format's word_values() would give them from
        _Indexed's tokens; answers the field's length."""
        positions: dict[str, list[int]] = {}
        for word, position in _content(value):
            for text in stems(word) if stemmed else (fold(word),):
                found = positions.get(text)
                if found is None:
                    positions[text] = [position]
                else:
                    found.append(position)
        size = length = 0
        encoded = self._encoded
        for text, ps in positions.items():
            n = len(ps)
            length += n
            if not positional:
                vbytes = encoded.get(n)
                if vbytes is None:
                    vbytes = encoded[n] = pack_uint(n)
            elif n == 1:
                # A new object each time, as Whoosh's: its block pickles refer to a value
                # met twice rather than write it again, and the postings would differ.
                vbytes = _ONE_POSITION + _pickled_position(ps[0])
            else:
                vbytes = _POSITIONS.encode(ps)
            entry = terms.get(text)
            if entry is None:
                entry = terms[text] = (array("I"), array("d"), [])
                size += self.TERM_BYTES + len(text)
            entry[0].append(docnum)
            entry[1].append(n * boost)
            entry[2].append(vbytes)
            size += self.POSTING_BYTES + len(vbytes)
        self.size += size
        return length

    def _add(self, terms: dict, btext: str | bytes, docnum: int, weight: float, vbytes) -> None:
        entry = terms.get(btext)
        if entry is None:
            entry = terms[btext] = (array("I"), array("d"), [])
            self.size += self.TERM_BYTES + len(btext)
        entry[0].append(docnum)
        entry[1].append(weight)
        entry[2].append(vbytes or b"")
        self.size += self.POSTING_BYTES + (len(vbytes) if vbytes else 0)

    def _spill(self) -> None:
        add = self.writer.pool.add
        for name, terms in self.terms.items():
            for text, (docs, weights, values) in terms.items():
                btext = text.encode() if isinstance(text, str) else text
                for docnum, weight, vbytes in zip(docs, weights, values, strict=True):
                    add((name, btext, docnum, weight, vbytes))
        self.terms.clear()
        self.spilled = True

    def write(self) -> None:
        """Write the postings gathered, before the writer commits (its own pool is empty)."""
        if self.spilled:
            return
        fw, schema = self.writer.fieldwriter, self.writer.schema
        if not isinstance(fw, W3FieldWriter):  # another codec: its own writing, in order
            self._spill()
            return
        for name in sorted(self.terms):
            terms = self.terms.pop(name)
            if not terms:
                continue
            fw.start_field(name, schema[name])
            # Text as str sorts as its UTF-8 bytes do.
            for text in sorted(terms):
                self._write_term(fw, text, *terms.pop(text))
            fw.finish_field()

    @staticmethod
    def _write_term(fw, text, docs: array, weights: array, values: list) -> None:
        fw.start_term(text.encode() if isinstance(text, str) else text)
        writer = fw._postwriter
        limit = writer._blocklimit
        for start in range(0, len(docs), limit):
            if start:
                writer._write_block()
            # As add_posting() fills a block, a posting at a time.
            block = slice(start, start + limit)
            writer._ids = docs[block]
            writer._weights = array("f", weights[block])
            writer._values = [v for v in values[block] if v]
            writer._maxweight = max(0, max(weights[block]))
            writer._minlength, writer._maxlength = None, 0
        fw.finish_term()


def _gather_part(engine: Engine, schema: fields.Schema, jobs: list, conn) -> None:
    """In a process of its own: the documents of `jobs` ((kind, ids) in order), their
    postings gathered from document number 0, sent back as (terms, [(doc, lengths)],
    estimated size) for _TermPool.add_part."""
    try:
        engine.dispose(close=False)  # the parent's connections stay the parent's
        pool = _TermPool(None, schema)
        described = []
        with Session(engine) as session:
            for kind, chunk in jobs:
                for doc in BUILDERS[kind](session, chunk).values():
                    described.append((doc, pool._index(doc, len(described))))
        conn.send((pool.terms, described, pool.size))
    except BaseException as exc:
        conn.send(RuntimeError(f"A rebuild's second process failed: {exc!r}"))
        raise
    finally:
        conn.close()


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = sorted(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _related(session: Session, wanted: dict[str, set[int]]) -> dict[str, set[int]]:
    """What else to refresh: the events showing a renamed record; an event's operation and
    the sources it rests on (whether anonymous readers see them follows the event)."""
    docs = {kind: set(wanted.get(kind, ())) for kind in TYPES}
    cascades = {
        "operation_events": Event.operation_id,
        "place_events": Event.place_id,
    }
    for kind, column in cascades.items():
        for chunk in _chunks(wanted.get(kind, ())):
            docs["event"] |= set(session.scalars(select(Event.id).where(column.in_(chunk))))
    for chunk in _chunks(wanted.get("actor_events", ())):
        docs["event"] |= set(
            session.scalars(select(EventActor.event_id).where(EventActor.actor_id.in_(chunk)))
        )
    for chunk in _chunks(wanted.get("event", ())):
        docs["operation"] |= {
            i for i in session.scalars(select(Event.operation_id).where(Event.id.in_(chunk))) if i
        }
        victims = select(Victim.id).where(Victim.event_id.in_(chunk))
        counts = select(CasualtyCount.id).where(CasualtyCount.event_id.in_(chunk))
        docs["source"] |= set(
            session.scalars(
                select(Citation.source_id).where(
                    or_(
                        Citation.event_id.in_(chunk),
                        Citation.victim_id.in_(victims),
                        Citation.casualty_count_id.in_(counts),
                    )
                )
            )
        )
        docs["source"] |= set(
            session.scalars(
                select(CasualtyCount.source_id).where(CasualtyCount.event_id.in_(chunk))
            )
        )
    for chunk in _chunks(docs["operation"]):
        docs["source"] |= set(
            session.scalars(select(Citation.source_id).where(Citation.operation_id.in_(chunk)))
        )
    return docs


def _all_ids(session: Session) -> dict[str, list[int]]:
    return {
        kind: list(session.scalars(select(model.id).where(model.deleted_at.is_(None))))
        for kind, model in MODELS.items()
    }


# --- The outbox: changes noted in their own transaction -------------------------------------


def _values(obj: Any, name: str) -> set[int]:
    """The attribute's value now and before this flush."""
    history = inspect(obj).attrs[name].history
    return {v for v in (*history.added, *history.unchanged, *history.deleted) if v is not None}


def _changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return state.deleted or any(state.attrs[n].history.has_changes() for n in names)


def _outbox_entries(obj: Any) -> set[tuple[str, int]]:
    if isinstance(obj, Event):
        return {("event", obj.id)} | {("operation", i) for i in _values(obj, "operation_id")}
    if isinstance(obj, EventActor | Victim):
        return {("event", i) for i in _values(obj, "event_id")}
    if isinstance(obj, CasualtyCount):
        return {("event", i) for i in _values(obj, "event_id")} | {
            ("source", i) for i in _values(obj, "source_id")
        }
    if isinstance(obj, Citation | ContextFigure | SourceFile):
        entries = {("source", i) for i in _values(obj, "source_id")}
        if isinstance(obj, Citation):
            entries |= {("event", i) for i in _values(obj, "event_id")}
            entries |= {("operation", i) for i in _values(obj, "operation_id")}
        return entries
    if isinstance(obj, Source):
        return {("source", obj.id)}
    if isinstance(obj, Operation):
        entries = {("operation", obj.id)}
        if _changed(obj, "name", "aliases", "deleted_at"):
            entries.add(("operation_events", obj.id))
        return entries
    if isinstance(obj, OperationActor):
        return {("operation", i) for i in _values(obj, "operation_id")}
    if isinstance(obj, Actor):
        entries = {("actor", obj.id)}
        if _changed(obj, "name", "acronym"):
            entries.add(("actor_events", obj.id))
        return entries
    if isinstance(obj, Place) and _changed(
        obj, "locality", "admin3", "admin2", "admin1", "deleted_at"
    ):
        return {("place_events", obj.id)}
    return set()


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, flush_context) -> None:
    entries: set[tuple[str, int]] = set()
    changed = [obj for obj in session.dirty if session.is_modified(obj)]
    for obj in (*session.new, *changed, *session.deleted):
        if getattr(obj, "id", 0) is None:
            continue
        entries |= _outbox_entries(obj)
    queue(session, entries)


def queue(session: Session, entries: set[tuple[str, int]]) -> None:
    """Write outbox rows for (kind, id) entries, applied to the index after commit."""
    if not entries:
        return
    now = dt.datetime.now(dt.UTC)
    database.bulk_insert(
        session,
        SearchOutbox.__table__,
        [{"kind": k, "record_id": i, "created_at": now} for k, i in sorted(entries)],
    )
    session.info["search_outbox"] = True


def inserted_entries(model: type, row: dict[str, Any]) -> set[tuple[str, int]]:
    """What _outbox_entries notes for a record inserted with these column values, for
    inserts that go past the session (a bulk import's executemany) and so past its flush."""
    if model is Event:
        entries = {("event", row["id"])}
        if row.get("operation_id") is not None:
            entries.add(("operation", row["operation_id"]))
        return entries
    if model is Victim:
        return {("event", row["event_id"])}
    if model is CasualtyCount:
        return {("event", row["event_id"]), ("source", row["source_id"])}
    if model is Citation:
        entries = {("source", row["source_id"])}
        for kind in ("event", "operation"):
            if row.get(f"{kind}_id") is not None:
                entries.add((kind, row[f"{kind}_id"]))
        return entries
    if model is Operation:
        return {("operation", row["id"]), ("operation_events", row["id"])}
    if model is Place:
        levels = ("locality", "admin3", "admin2", "admin1")
        return {("place_events", row["id"])} if any(row.get(n) for n in levels) else set()
    raise ValueError(f"no search entries known for inserted {model.__name__} rows")


_applying: ContextVar[bool] = ContextVar("constancia_search_applying", default=False)


@event.listens_for(Session, "after_commit")
def _apply_after_commit(session: Session) -> None:
    if not session.info.pop("search_outbox", False) or _applying.get():
        return
    if not has_app_context():
        return
    holder = index_for(current_app)
    if not holder.exists_cheaply():
        return  # built, with everything, by the first search or `flask search reindex`
    try:
        holder.apply_pending(session.get_bind(), wait=False)
    except Exception:  # the change is committed; its outbox rows wait for the next writer
        log.exception("Could not apply the search outbox; it stays queued.")


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop("search_outbox", None)


# --- The index ------------------------------------------------------------------------------


@dataclass
class Drift:
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    problem: str | None = None
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.stale or self.problem)


def _open_searcher(ix):
    # As in _try_open: the files of an index that no longer reads close, unwarned, here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return ix.searcher()
        except Exception:  # the caller reopens or rebuilds the index
            pass
        gc.collect()
    raise RuntimeError("The search index no longer reads.")


class SearchIndex:
    """One index folder as this process sees it: the open index and a reused searcher."""

    def __init__(self, path: str, reindex_mb: int = REINDEX_MB):
        self.path = path
        self.reindex_mb = reindex_mb
        self._lock = threading.RLock()
        self._ix = None
        self._searcher = None
        self._searcher_stamp: tuple = ()
        self._columns: dict[str, Any] = {}

    # Opening, and rebuilding when missing or corrupt.

    def _storage(self) -> FileStorage:
        # Read with plain reads, not mmap: a file truncated under a mapping kills the
        # process (SIGBUS) where a read raises an error the index recovers from.
        return FileStorage(self.path, supports_mmap=False)

    def discard(self, engine: Engine) -> None:
        """Throw away an index found unreadable and build it again from the database."""
        with self._lock:
            self._reset()
            with self._rebuild_lock():
                shutil.rmtree(self.path, ignore_errors=True)
            self.open(engine)

    def _try_open(self):
        # Whoosh leaves the files of an index it cannot read open; they close, unwarned,
        # when the error is dropped here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                ix = self._storage().open_index()
                ix.reader().close()
                if _signature(ix.schema) == SIGNATURE:
                    return ix
                ix.close()
            except Exception:  # missing, empty, or unreadable: rebuilt by the caller
                pass
            gc.collect()
        return None

    @contextlib.contextmanager
    def _rebuild_lock(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(os.path.abspath(self.path) + ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        if self._searcher is not None:
            with contextlib.suppress(Exception):
                self._searcher.close()
        self._ix = self._searcher = None
        self._columns = {}

    def open(self, engine: Engine, fill: bool = True):
        """The index, rebuilt from the database first if it is missing or unreadable (or
        created empty, for a caller about to fill it, when `fill` is False)."""
        with self._lock:
            if self._ix is not None and os.path.isdir(self.path):
                return self._ix
            self._reset()
            ix = self._try_open()
            if ix is None:
                with self._rebuild_lock():
                    ix = self._try_open()
                    if ix is None:
                        shutil.rmtree(self.path, ignore_errors=True)
                        os.makedirs(self.path)
                        ix = self._storage().create_index(SCHEMA)
                        if fill:
                            self._fill(ix, engine, timeout=60.0)
            self._ix = ix
            return ix

    def exists_cheaply(self) -> bool:
        """Whether there is an index to keep in step (a look at the folder, nothing read)."""
        return os.path.isdir(self.path) and self._storage().index_exists()

    def exists(self) -> bool:
        return self._try_open() is not None

    # Writing.

    def _fill(self, ix, engine: Engine, timeout: float, progress=None, processes: int = 1) -> int:
        """Replace the index's contents with every live record; answer how many. With two
        processes, a large archive's later records are read and analysed in a second one."""
        with Session(engine) as session:
            queued = list(session.scalars(select(SearchOutbox.id)))
            ids = _all_ids(session)
            jobs = [(kind, chunk) for kind, kind_ids in ids.items() for chunk in _chunks(kind_ids)]
            total = 0
            writer = ix.writer(timeout=timeout, limitmb=self.reindex_mb)
            # Whoosh reads each posting's field length back from disk to note the shortest
            # per block and term, a fifth of a rebuild; it only tightens the score bounds its
            # own collector skips blocks by (the page is scored with numpy, see _page).
            writer.codec.length_stats = False
            pool = _TermPool(writer)
            split = len(jobs)
            if processes > 1 and sum(map(len, ids.values())) >= PARALLEL_DOCUMENTS:
                # This process also merges and writes: it reads fewer records.
                split = len(jobs) * 2 // 5
            other = None
            try:
                if split < len(jobs):
                    context = multiprocessing.get_context("fork")
                    receiving, sending = context.Pipe(duplex=False)
                    other = context.Process(
                        target=_gather_part,
                        args=(engine, writer.schema, jobs[split:], sending),
                        daemon=True,
                    )
                    other.start()
                    sending.close()
                for kind, chunk in jobs[:split]:
                    for doc in BUILDERS[kind](session, chunk).values():
                        pool.add_document(doc)
                        total += 1
                    if progress:
                        progress(len(chunk))
                if other is not None:
                    part = receiving.recv()
                    if isinstance(part, BaseException):
                        raise part
                    total += pool.add_part(part)
                    if progress:
                        progress(sum(len(chunk) for _kind, chunk in jobs[split:]))
                pool.write()
            except BaseException:
                writer.cancel()
                raise
            finally:
                if other is not None:
                    receiving.close()
                    other.join(timeout=10)
                    if other.is_alive():
                        other.kill()
            writer.commit(mergetype=writing.CLEAR)
        self._forget(engine, queued)
        return total

    def _forget(self, engine: Engine, ids: list[int]) -> None:
        if not ids:
            return
        token = database.start_writing()
        try:
            with Session(engine) as session:
                for start in range(0, len(ids), CHUNK):
                    session.execute(
                        delete(SearchOutbox).where(SearchOutbox.id.in_(ids[start : start + CHUNK]))
                    )
                session.commit()
        finally:
            database.stop_writing(token)

    def reindex(self, engine: Engine, progress=None, processes: int | None = None) -> int:
        """Rebuild the index from the database (`flask search reindex`), in two processes
        when the machine has two cores or more."""
        if processes is None:
            processes = min(2, os.cpu_count() or 1)
        with self._lock:
            ix = self.open(engine, fill=False)
            return self._fill(ix, engine, timeout=120.0, progress=progress, processes=processes)

    def apply_pending(self, engine: Engine, wait: bool) -> bool:
        """Apply the outbox; answer False when another process holds the writer (its rows
        then stay for that process or the next)."""
        token = _applying.set(True)
        try:
            with self._lock:
                ix = self.open(engine)
                for _ in range(10):  # what others commit meanwhile, a few rounds at most
                    with Session(engine) as session:
                        rows = session.execute(
                            select(SearchOutbox.id, SearchOutbox.kind, SearchOutbox.record_id)
                        ).all()
                        if not rows:
                            return True
                        try:
                            writer = ix.writer(timeout=10.0 if wait else 0.0)
                        except LockError:
                            return False
                        try:
                            wanted: dict[str, set[int]] = {}
                            for _, kind, record_id in rows:
                                wanted.setdefault(kind, set()).add(record_id)
                            for kind, kind_ids in _related(session, wanted).items():
                                for chunk in _chunks(kind_ids):
                                    docs = BUILDERS[kind](session, chunk)
                                    for record_id in chunk:
                                        writer.delete_by_term("key", f"{kind}:{record_id}")
                                        if record_id in docs:
                                            writer.add_document(**docs[record_id])
                        except BaseException:
                            writer.cancel()
                            raise
                        writer.commit()
                    self._forget(engine, [row[0] for row in rows])
                return True
        finally:
            _applying.reset(token)

    # Reading.

    def searcher(self, engine: Engine):
        """The searcher, reused until the index changes."""
        with self._lock:
            for _ in range(2):
                try:
                    ix = self.open(engine)
                    stamp = self._stamp()
                    if self._searcher is None:
                        self._searcher = _open_searcher(ix)
                        self._columns = {}
                    elif stamp != self._searcher_stamp or not self._searcher.up_to_date():
                        # Not refresh(): it reuses the reader of a segment whose deletions
                        # changed, and so kept showing documents deleted since.
                        self._searcher.close()
                        self._searcher = _open_searcher(ix)
                        self._columns = {}
                    self._searcher_stamp = stamp
                    return self._searcher
                except Exception:  # the folder went away or broke under us: reopen
                    log.warning("Search index unreadable; reopening it.", exc_info=True)
                    self._reset()
                    if not self.exists():
                        continue
            raise RuntimeError("The search index cannot be opened.")

    def _stamp(self) -> tuple:
        """The index files' names, sizes and times: answers from what a searcher keeps in
        memory stop when a file changes under it (rewritten, truncated), and the searcher is
        opened again, or the index rebuilt when it no longer reads."""
        with os.scandir(self.path) as entries:
            return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries))

    def audience(self, searcher, value: str) -> set[int]:
        """The documents of an audience, found once per searcher."""
        key = f"audience:{value}"
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = set(searcher.docs_for_query(query.Term("public", value)))
        return found

    def counted(self, searcher, prepared: Prepared):
        """_count's answer, kept for the searcher's life for the most recent searches: the
        next page of a search, or the same search by another reader of the same audience,
        costs only its page."""
        key = (  # the query as typed: parsed the same way for the same audience
            prepared.staff,
            prepared.params.q,
            tuple(sorted(map(repr, prepared.filters))),
        )
        with self._lock:
            if searcher is not self._searcher:  # replaced meanwhile: its caches are not ours
                return _count(self, searcher, prepared)
            answer = self._recent(
                "counted", key, SEARCHES_KEPT, lambda: _count(self, searcher, prepared)
            )
        allowed, docs, facets = answer
        return allowed, docs, {name: dict(counts) for name, counts in facets.items()}

    def _recent(self, cache: str, key: Any, limit: int, make: Callable[[], Any]) -> Any:
        """`make()`'s answer for `key`, kept in the named cache for the searcher's life (the
        most recent `limit` keys)."""
        kept = self._columns.setdefault(cache, OrderedDict())
        found = kept.get(key)
        if found is None:
            found = kept[key] = make()
            while len(kept) > limit:
                kept.popitem(last=False)
        else:
            kept.move_to_end(key)
        return found

    def query_docs(self, searcher, q: query.Query) -> frozenset[int]:
        """What a phrase (or any query not made of words) matches, as Whoosh finds it (a
        phrase of adjacent words by its pairs, see _phrase_docs), kept for the searcher's
        life (the most recent few hundred)."""
        if _paired(q):
            return self._recent(
                "queries", repr(q), TERMS_KEPT, lambda: _phrase_docs(self, searcher, q)
            )
        return self._recent(
            "queries", repr(q), TERMS_KEPT, lambda: frozenset(searcher.docs_for_query(q))
        )

    def term_docs(self, searcher, q: query.Term) -> set[int]:
        """The documents holding a word, kept for the searcher's life (the most recent few
        hundred words)."""
        return self._recent(
            "terms",
            (q.fieldname, q.text),
            TERMS_KEPT,
            lambda: frozenset(self.postings(searcher, q.fieldname, q.text)[0].tolist()),
        )

    def postings(self, searcher, fieldname: str, text: str) -> tuple[np.ndarray, np.ndarray]:
        """A word's documents (ascending) and weights, read once per searcher (the most
        recent few hundred words): what finds, counts and scores it."""
        return self._recent(
            "postings",
            (fieldname, text),
            TERMS_KEPT,
            lambda: _term_postings(searcher, fieldname, text),
        )

    def lengths(self, searcher, fieldname: str) -> np.ndarray:
        """A text field's length in every document, as Whoosh's scorer reads it."""
        key = f"lengths:{fieldname}"
        found = self._columns.get(key)
        if found is None:
            table = np.array([byte_to_length(b) if b else 0 for b in range(256)], dtype=float)
            parts = []
            for leaf, _offset in searcher.reader().leaf_readers():
                count = leaf.doc_count_all()
                codes = np.zeros(count, dtype=np.uint8)
                column = leaf._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
                if column is None:
                    parts.append(np.ones(count))  # Whoosh's default length
                    continue
                raw = column._dbfile.get(column._basepos, min(column._count, count))
                codes[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
                parts.append(table[codes])
            found = self._columns[key] = np.concatenate(parts) if parts else np.zeros(0)
        return found

    def term_scores(
        self, searcher, fieldname: str, text: str, boost: float = 1.0, staff: bool = True
    ):
        """A word's documents and their scores, kept for the searcher's life (the most
        recent few hundred words); for anonymous readers with their audience's statistics."""

        def score():
            docs, weights = self.postings(searcher, fieldname, text)
            lengths = self.lengths(searcher, fieldname)[docs]
            stats = searcher if staff else self.statistics(searcher)
            scores = _bm25(stats, lengths, fieldname, text, weights)
            return docs, scores * boost if boost != 1.0 else scores

        return self._recent("scores", (fieldname, text, boost, staff), TERMS_KEPT, score)

    def statistics(self, searcher) -> AudienceStatistics:
        """The statistics anonymous readers' searches are scored with, kept per searcher."""
        found = self._columns.get("statistics")
        if found is None or found.searcher is not searcher:
            found = AudienceStatistics(self, searcher)
            if searcher is self._searcher:  # not one replaced meanwhile: its own are not ours
                self._columns["statistics"] = found
        return found

    def days(self, searcher, name: str) -> np.ndarray:
        """A date column's values for every document, read once per searcher."""
        key = f"days:{name}"
        found = self._columns.get(key)
        if found is None:
            parts = []
            for leaf, _offset in searcher.reader().leaf_readers():
                if leaf.has_column(name):
                    parts.append(np.fromiter(leaf.column_reader(name), dtype=np.int64))
                else:
                    parts.append(np.full(leaf.doc_count_all(), NO_DATE, dtype=np.int64))
            found = self._columns[key] = np.concatenate(parts) if parts else np.zeros(0, int)
        return found

    def column(self, searcher, name: str) -> Facet:
        """A facet's values, coded per document, read once per searcher."""
        found = self._columns.get(name)
        if found is None:
            raw: list = []
            for leaf, _offset in searcher.reader().leaf_readers():
                if leaf.has_column(name):
                    raw += list(leaf.column_reader(name, translate=True))
                else:
                    raw += [""] * leaf.doc_count_all()
            found = self._columns[name] = Facet.of(raw, several=name == "actors")
        return found

    def drift(self, engine: Engine) -> Drift:
        report = Drift()
        if not self.exists():
            report.problem = f"The search index in {self.path} is missing or unreadable."
            with Session(engine) as session:
                report.missing = [f"{k}:{i}" for k, ids in _all_ids(session).items() for i in ids]
            return report
        self.apply_pending(engine, wait=True)
        with Session(engine) as session:
            expected = {}
            for kind, ids in _all_ids(session).items():
                for chunk in _chunks(ids):
                    for doc in BUILDERS[kind](session, chunk).values():
                        expected[doc["key"]] = doc["digest"]
        reader = self.searcher(engine).reader()  # the reused searcher's: not closed here
        found = {s["key"]: s.get("digest") for s in reader.all_stored_fields()}
        report.checked = len(expected)
        report.missing = sorted(set(expected) - set(found))
        report.extra = sorted(set(found) - set(expected))
        report.stale = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        return report


# One per index folder in this process; a few at most (tests make one per app), the oldest
# closed when another is opened, and all of them at exit.
_INDEXES: OrderedDict[str, SearchIndex] = OrderedDict()
_INDEXES_LOCK = threading.Lock()
KEEP_OPEN = 4


def index_for(app) -> SearchIndex:
    path = os.path.abspath(app.config["SEARCH_INDEX_DIR"])
    with _INDEXES_LOCK:
        found = _INDEXES.get(path)
        if found is None:
            found = _INDEXES[path] = SearchIndex(
                path, int(app.config.get("SEARCH_REINDEX_MB", REINDEX_MB))
            )
            while len(_INDEXES) > KEEP_OPEN:
                _INDEXES.popitem(last=False)[1].close()
        _INDEXES.move_to_end(path)
        return found


@atexit.register
def _close_all() -> None:
    with _INDEXES_LOCK:
        while _INDEXES:
            _INDEXES.popitem()[1].close()


# --- Queries --------------------------------------------------------------------------------


def _fail(name: str, message: str):
    raise ValidationError({name: [message]})


_FUZZY_DEFAULT = re.compile(r"(\w)~(?![\d.])")


def _check_syntax(text: str) -> None:
    if len(text) > MAX_QUERY_LENGTH:
        _fail("q", f"The query is longer than {MAX_QUERY_LENGTH} characters.")
    if text.count('"') % 2:
        _fail("q", 'The query has an unclosed quote (").')
    depth = 0
    for part in re.sub(r'"[^"]*"', " ", text):
        depth += part == "("
        depth -= part == ")"
        if depth < 0:
            _fail("q", "The query closes a parenthesis it never opened.")
    if depth:
        _fail("q", "The query opens a parenthesis it never closes.")
    stripped = re.sub(r'"[^"]*"', " x ", text).split()
    operators = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}
    if stripped and (stripped[-1] in operators or stripped[0] in operators - {"NOT"}):
        _fail("q", "The query starts or ends with an operator (AND, OR, NOT) missing its term.")


def _fuzzy_defaults(text: str) -> str:
    """A bare trailing `~` tolerates two typos in words of five letters or more, one below."""

    def widen(match: re.Match) -> str:
        start = match.start()
        word = re.search(r"\w+$", text[: start + 1])
        return f"{match.group(1)}~{2 if word and len(word.group()) >= 5 else 1}"

    return _FUZZY_DEFAULT.sub(widen, text)


def _targets(name: str, staff: bool) -> tuple[str, ...]:
    targets = (STAFF_TARGETS if staff else PUBLIC_TARGETS).get(name)
    if targets is None:
        known = ", ".join(n for n in (STAFF_TARGETS if staff else PUBLIC_TARGETS) if n != "all")
        _fail("q", f"Unknown field {name!r} in the query; fields: {known}.")
    return targets


def _either(queries: list) -> query.Query:
    queries = [q for q in queries if q is not None]
    if not queries:
        return query.NullQuery
    return queries[0] if len(queries) == 1 else query.Or(queries)


def _word_query(target: str, word: str, boost: float) -> query.Query | None:
    if word in STOP_WORDS:
        return None
    if target not in STEMMED_FIELDS:
        return query.Term(f"t_{target}", fold(word), boost=boost)
    # The stemmed field alone: a word's stems include those of its accent-folded form, which
    # any exact match shares, so an exact term would only add a posting list to merge.
    variants = [query.Term(f"t_{target}_s", s, boost=boost) for s in stems(word)]
    return variants[0] if len(variants) == 1 else query.Or(variants)


def _on_fields(q: query.Query, staff: bool) -> query.Query:
    """The parsed query on the fields this audience may search, in their exact and stemmed
    forms; an error the parser tolerated becomes the 422 it deserves."""
    error = getattr(q, "error", None)
    if error:
        _fail("q", f"The query does not parse: {error}.")
    if isinstance(q, query.FuzzyTerm):
        text = fold(q.text)
        return _either(
            [
                query.FuzzyTerm(f"t_{t}", text, maxdist=q.maxdist, prefixlength=1, boost=q.boost)
                for t in _targets(q.fieldname, staff)
            ]
        )
    if isinstance(q, query.Prefix | query.Wildcard):
        text = fold(q.text)
        if len(text.replace("*", "").replace("?", "")) < 2:
            _fail("q", "A wildcard needs at least two letters before it.")
        return _either([q.__class__(f"t_{t}", text) for t in _targets(q.fieldname, staff)])
    if isinstance(q, query.Term):
        words = [t.text for t in _content_words()(q.text)] if isinstance(q.text, str) else []
        return _either(
            [
                _either([_word_query(t, w, q.boost) for w in words])
                if len(words) <= 1
                else query.Phrase(f"t_{t}", [fold(w) for w in words])
                for t in _targets(q.fieldname, staff)
            ]
        )
    if isinstance(q, query.Phrase):
        words = [fold(w) for w in q.words if w not in STOP_WORDS]
        targets = _targets(q.fieldname, staff)
        if len(words) == 1:
            return _either([_word_query(t, words[0], q.boost) for t in targets])
        if not words:
            return query.NullQuery
        return _either([query.Phrase(f"t_{t}", words, slop=q.slop, boost=q.boost) for t in targets])
    if isinstance(q, query.Every):
        return query.Every()
    if q.is_leaf():
        if isinstance(q, query.TermRange | query.NumericRange | query.DateRange):
            _fail(
                "q", "Ranges ([a TO b]) are not supported in the query; use date_from and date_to."
            )
        if q is query.NullQuery or isinstance(q, type(query.NullQuery)):
            return q
        _fail("q", f"This kind of query is not supported: {q}.")
    return q.apply(lambda child: _on_fields(child, staff))


def parse_query(text: str, staff: bool) -> query.Query:
    _check_syntax(text)
    try:
        parsed = PARSER.parse(_fuzzy_defaults(text))
    except Exception as exc:  # the parser's own failures name what went wrong
        _fail("q", f"The query does not parse: {exc}.")
    return _on_fields(parsed, staff).normalize()


# --- Parameters -----------------------------------------------------------------------------


@dataclass
class Params:
    q: str = ""
    type: str | None = None
    filters: list = field(default_factory=list)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sort: str = "relevance"
    page: int = 1
    per_page: int = 50


def _whole(value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("Not a valid integer.") from None
    if not low <= number <= high:
        raise ValueError(f"Must be a whole number from {low} to {high}.")
    return number


def _choice(values: tuple) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in values:
            raise ValueError(f"Must be one of: {', '.join(values)}.")
        return value

    return parse


def _iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("Not a valid date: use YYYY-MM-DD.") from None


MAX_ID = 2**31 - 1
FILTERS: dict[str, tuple[Callable[[str], Any], Callable[[Any], query.Query]]] = {
    "operation": (
        lambda v: _whole(v, 1, MAX_ID),
        lambda v: query.Term("operation_id", str(v)),
    ),
    "actor": (lambda v: _whole(v, 1, MAX_ID), lambda v: query.Term("actor_id", str(v))),
    "admin1": (str, lambda v: query.Term("admin1_key", fold(v))),
    "year": (lambda v: _whole(v, 1900, 2200), lambda v: query.Term("year", str(v))),
    "event_type": (_choice(vocab.EVENT_TYPES), lambda v: query.Term("event_type", v)),
    "status": (_choice(vocab.EVENT_STATUSES), lambda v: query.Term("status", v)),
}
PARAMS = ("q", "type", *FILTERS, "date_from", "date_to", "sort", "page", "per_page")


def parse_params(params: Mapping[str, str], default_per_page: int, max_per_page: int) -> Params:
    errors: dict[str, list[str]] = {}
    out = Params(per_page=default_per_page)
    parsers: dict[str, Callable[[str], Any]] = {
        "type": _choice(TYPES),
        "date_from": _iso_date,
        "date_to": _iso_date,
        "sort": _choice(SORTS),
        "page": lambda v: _whole(v, 1, MAX_ID),
        "per_page": lambda v: min(_whole(v, 1, MAX_ID), max_per_page),
    }
    for name, raw in params.items():
        if name not in PARAMS:
            errors[name] = [f"Unknown parameter; search takes: {', '.join(PARAMS)}."]
            continue
        if not isinstance(raw, str):
            errors[name] = ["Give this parameter as text."]
            continue
        try:
            if name == "q":
                out.q = raw.strip()
            elif name in FILTERS:
                parse, clause = FILTERS[name]
                out.filters.append(clause(parse(raw)))
            else:
                setattr(out, name, parsers[name](raw))
        except ValueError as exc:
            errors[name] = [str(exc)]
    if out.date_from and out.date_to and out.date_from > out.date_to:
        errors["date_to"] = ["Must not be before date_from."]
    if "sort" not in params and not out.q:
        out.sort = "-date"
    if errors:
        raise ValidationError(errors)
    return out


# --- Searching ------------------------------------------------------------------------------


def _highlight_terms(q: query.Query, searcher) -> tuple[set[str], set[str]]:
    """The words to mark: the query's own, and what its fuzzy and wildcard terms matched
    (a typo-tolerant word's, in the text fields only, as the search expanded it)."""
    exact, stemmed = set(), set()
    leaves = [q] if q.is_leaf() else list(q.leaves())
    for leaf in leaves:
        if isinstance(leaf, query.FuzzyTerm):
            marked = leaf.fieldname.startswith("t_")
            terms = [(leaf.fieldname, t) for t in _expansions(searcher, leaf)] if marked else ()
        elif isinstance(leaf, query.MultiTerm):
            terms = leaf.expanded_terms(searcher.reader())
        else:
            terms = leaf.terms(phrases=True) if leaf.has_terms() else ()
        for fieldname, text in terms:
            if not fieldname.startswith("t_"):
                continue
            text = text.decode("utf-8") if isinstance(text, bytes) else text
            (stemmed if fieldname.endswith("_s") else exact).add(text)
    return exact, stemmed


_WORD = re.compile(RegexTokenizer().expression.pattern)


# The same words, found without the tokenizer's group: findall gives the whole words.
_WORDS = re.compile(_WORD.pattern.replace("(\\.", "(?:\\."))
assert _WORDS.groups == 0


class _Marks:
    """Which words of a text a query matched (the query's own words, folded, or their
    stems), each distinct word checked once for all the page's snippets."""

    def __init__(self, exact: set[str], stemmed: set[str]):
        self.exact, self.stemmed = exact, stemmed
        self.known: dict[str, bool] = {}

    def matches(self, token: str) -> bool:
        found = self.known.get(token)
        if found is None:
            word = _normal(token)
            found = self.known[token] = word not in STOP_WORDS and (
                fold(word) in self.exact or any(s in self.stemmed for s in stems(word))
            )
        return found

    def count(self, text: str) -> tuple[int, frozenset[str]]:
        """How many words of `text` matched, and which (as written)."""
        words = _WORDS.findall(text)  # RegexTokenizer's words, without its Token objects
        hit = frozenset(w for w in set(words) if self.matches(w))
        if not hit:
            return 0, hit
        counts = Counter(words)
        return sum(counts[w] for w in hit), hit

    def window(self, text: str, hit: frozenset[str]) -> str:
        """An escaped window of `text` around its first matched word, each matched word in
        <mark>."""
        if not text:
            return ""
        spans = []
        if hit:
            for token in _WORDS.finditer(text):
                if token.group() in hit:
                    if spans and token.start() > spans[0][0] + SNIPPET_CHARS:
                        break  # past any window around the first
                    spans.append(token.span())
        first = spans[0][0] if spans else 0
        start = max(0, first - SNIPPET_CHARS // 4)
        if start:
            space = text.rfind(" ", 0, start)
            start = space + 1 if space >= 0 and start - space < 30 else start
        end = min(len(text), start + SNIPPET_CHARS)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space if space > start + SNIPPET_CHARS // 2 else end
        out, at = [], start
        for s, e in spans:
            if s < start or e > end:
                continue
            out += [str(escape(text[at:s])), "<mark>", str(escape(text[s:e])), "</mark>"]
            at = e
        out.append(str(escape(text[at:end])))
        snippet = "".join(out).replace("\n", " · ")
        return ("…" if start else "") + snippet + ("…" if end < len(text) else "")


def _snippet(stored: Mapping[str, Any], staff: bool, marks: _Marks) -> str:
    # The text with the most words matched; the title (shown beside it) only when nothing
    # else holds any.
    fields_read = ("s_body", "s_file", "s_private") if staff else ("s_body", "s_file")
    fields_read += ("s_title",)
    best, text, hit = 0, "", frozenset()
    for name in fields_read:
        found = stored.get(name) or ""
        count, words = marks.count(found)
        if count > best:
            best, text, hit = count, found, words
    if best:
        return marks.window(text, hit)
    return marks.window(stored.get("s_body") or stored.get("s_title") or "", frozenset())


@dataclass
class Facet:
    """A facet's values for every document of a searcher, as numbers counted in bulk: code 0
    is "no value", code i > 0 is `labels[i]`. A document with several values (an event's
    actors) has one (doc, code) pair per value."""

    labels: list[str]
    codes: np.ndarray  # per document, when each has one value at most
    pair_docs: np.ndarray | None = None  # per (doc, value) pair, when several
    pair_codes: np.ndarray | None = None

    @classmethod
    def of(cls, raw: list, several: bool) -> Facet:
        numbers: dict[str, int] = {}
        labels = [""]

        def code(value: Any) -> int:
            if value in (None, ""):
                return 0
            value = str(value)
            found = numbers.get(value)
            if found is None:
                found = numbers[value] = len(labels)
                labels.append(value)
            return found

        if not several:
            return cls(labels, np.fromiter(map(code, raw), dtype=np.int32, count=len(raw)))
        docs, codes = [], []
        for doc, value in enumerate(raw):
            for part in (value or "").split():
                docs.append(doc)
                codes.append(code(part))
        return cls(
            labels,
            np.zeros(len(raw), dtype=np.int32),
            np.array(docs, dtype=np.int64),
            np.array(codes, dtype=np.int32),
        )

    def counts(self, docs: np.ndarray, key: Callable[[str], Any] = str) -> dict[str, int]:
        """How many of `docs` (distinct document numbers) have each value, most first."""
        if self.pair_docs is None:
            found = np.bincount(self.codes[docs], minlength=len(self.labels))
        else:
            chosen = np.zeros(len(self.codes), dtype=bool)
            chosen[docs] = True
            found = np.bincount(self.pair_codes[chosen[self.pair_docs]], minlength=len(self.labels))
        counted = [(self.labels[i], int(found[i])) for i in np.flatnonzero(found[1:]) + 1]
        return dict(sorted(counted, key=lambda kv: (-kv[1], key(kv[0]))))


def _score(value: Any) -> float:
    """A hit's relevance; sorted by date, Whoosh gives the sort key, whose last part is the
    relevance negated."""
    if isinstance(value, tuple):
        value = -value[-1]
    return float(value or 0.0)


@dataclass
class Prepared:
    params: Params
    staff: bool
    user_query: query.Query
    # Queries that only narrow (audience, type, facets, dates): applied as sets of documents,
    # so they neither score nor keep Whoosh from skipping blocks that cannot make the page.
    filters: list[query.Query]


@dataclass(frozen=True)
class Days:
    """Documents whose date column (`start` or `last`) lies within low..high (either open):
    read from the column with numpy, never as a range of terms."""

    column: str
    low: int | None
    high: int | None


def _prepare(user, params: Mapping[str, str]) -> Prepared:
    config = current_app.config
    p = parse_params(params, config["API_DEFAULT_PER_PAGE"], config["API_MAX_PER_PAGE"])
    staff = access.is_staff(user)
    user_query = parse_query(p.q, staff) if p.q else query.Every()
    filters: list[query.Query] = list(p.filters)
    if p.type:
        filters.append(query.Term("type", p.type))
    if p.date_from:
        filters.append(Days("last", _day(p.date_from), None))
    if p.date_to:
        filters.append(Days("start", NO_DATE + 1, _day(p.date_to)))
    return Prepared(p, staff, user_query, filters)


# A posting list's block lengths, as Whoosh writes them (StructFile.write_int).
_INT = struct.Struct("!i")


def _block_postings(matcher: W3LeafMatcher) -> tuple[np.ndarray, np.ndarray]:
    """A term's documents and weights in one segment, from its posting blocks read in one
    piece: the same blocks Whoosh's matcher reads one small read at a time (each block's
    length, its pickled summary, then its pickled and compressed ids, weights and values),
    with the ids' differences added up by numpy, not one by one in Python."""
    length = matcher._length  # a 1-tuple as Whoosh's term info decodes it
    raw = matcher._postfile.get(matcher._startoffset, int(np.ravel(length)[0]))
    if not raw.startswith(WHOOSH3_HEADER_MAGIC):
        raise ValueError(f"Bad posting list for {matcher._term!r}")
    buffer = io.BytesIO(raw)
    at = len(WHOOSH3_HEADER_MAGIC)
    ids, weights = [], []
    while True:
        (length,) = _INT.unpack_from(raw, at)
        at += _INT.size
        end = at + abs(length)
        buffer.seek(at)
        count, _last, _maxweight, compressed, _low, _high = pickle.load(buffer)
        data = raw[buffer.tell() : end]
        block_ids, block_weights = pickle.loads(zlib.decompress(data) if compressed else data)[:2]
        block_ids = np.asarray(block_ids, dtype=np.int64)
        ids.append(block_ids if matcher._byteids else np.cumsum(block_ids))
        if block_weights is None:
            weights.append(np.ones(count, dtype=np.float32))
        elif isinstance(block_weights, float):
            weights.append(np.full(count, block_weights, dtype=np.float32))
        else:
            weights.append(np.asarray(block_weights, dtype=np.float32))
        if length < 0:  # the last block
            break
        at = end
    return np.concatenate(ids), np.concatenate(weights)


def _term_postings(searcher, fieldname: str, text: str) -> tuple[np.ndarray, np.ndarray]:
    """The documents holding a term and the term's weight in each (its frequency times the
    field's boost), in document order, read a term's posting blocks at a time."""
    docs, weights = [], []
    for sub, offset in searcher.subsearchers or [(searcher, 0)]:
        reader = sub.reader()
        if (fieldname, text) not in reader:
            continue
        matcher = reader.postings(fieldname, text)
        if isinstance(matcher, FilterMatcher):
            matcher = matcher.child
        if isinstance(matcher, W3LeafMatcher):
            sub_ids, sub_weights = _block_postings(matcher)
        else:
            pairs = []
            while matcher.is_active():
                pairs.append((matcher.id(), matcher.weight()))
                matcher.next()
            sub_ids = np.array([i for i, _ in pairs], dtype=np.int64)
            sub_weights = np.array([w for _, w in pairs], dtype=np.float32)
        if reader.has_deletions():
            keep = ~np.isin(sub_ids, np.fromiter(reader.deleted_docs_set, dtype=np.int64))
            sub_ids, sub_weights = sub_ids[keep], sub_weights[keep]
        docs.append(sub_ids + offset)
        weights.append(sub_weights)
    if not docs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    return np.concatenate(docs), np.concatenate(weights).astype(np.float64)


def _paired(q: query.Query) -> bool:
    """Whether a query is a phrase of adjacent words in a field indexed by pairs too."""
    return (
        isinstance(q, query.Phrase)
        and q.slop == 1
        and len(q.words) >= 2
        and f"{q.fieldname}_p" in SCHEMA
        and all(isinstance(word, str) for word in q.words)
    )


def _phrase_docs(holder: SearchIndex, searcher, q: query.Phrase) -> frozenset[int]:
    """What Whoosh's phrase query finds, without its check of each document holding all the
    words one at a time: the documents holding each adjacent pair of the phrase's words
    (all a phrase of two needs), then, for a longer one, the words' positions read in
    those documents only."""
    pairs = sorted({f"{a} {b}" for a, b in zip(q.words, q.words[1:], strict=False)})
    found: set[int] | None = None
    for pair in pairs:
        docs = holder.term_docs(searcher, query.Term(f"{q.fieldname}_p", pair))
        found = set(docs) if found is None else found & docs
        if not found:
            return frozenset()
    if len(q.words) == 2 or not found:
        return frozenset(found or ())
    return frozenset(_in_order(searcher, q.fieldname, q.words, found))


def _in_order(searcher, fieldname: str, words: list[str], candidates: set[int]) -> set[int]:
    """The candidates where the words stand one right after the other."""
    out: set[int] = set()
    for sub, offset in searcher.subsearchers or [(searcher, 0)]:
        reader = sub.reader()
        count = reader.doc_count_all()
        mine = sorted(d - offset for d in candidates if offset <= d < offset + count)
        if not mine or any((fieldname, word) not in reader for word in words):
            continue
        matchers = [reader.postings(fieldname, word) for word in words]
        for doc in mine:
            positions = []
            for matcher in matchers:
                if matcher.is_active() and matcher.id() < doc:
                    matcher.skip_to(doc)
                if not matcher.is_active() or matcher.id() != doc:
                    break
                positions.append(set(matcher.value_as("positions")))
            else:
                if any(
                    all(start + i in at for i, at in enumerate(positions[1:], 1))
                    for start in positions[0]
                ):
                    out.add(doc + offset)
    return out


def _docs(holder: SearchIndex, searcher, q: query.Query) -> set[int]:
    """The documents a query matches, as a set: words and their and/or/not combined as sets
    (each word's set kept per searcher); anything else (phrases, fuzzy words, ranges) as
    Whoosh finds it."""
    if isinstance(q, Days):
        days = holder.days(searcher, q.column)
        inside = np.ones(len(days), dtype=bool)
        if q.low is not None:
            inside &= days >= q.low
        if q.high is not None:
            inside &= days <= q.high
        return set(np.flatnonzero(inside).tolist())
    if isinstance(q, query.Term) and isinstance(q.text, str):
        return holder.term_docs(searcher, q)
    if isinstance(q, query.Or) and q.subqueries:
        return set().union(*(_docs(holder, searcher, child) for child in q.subqueries))
    if isinstance(q, query.And) and q.subqueries:
        wanted = [c for c in q.subqueries if not isinstance(c, query.Not)]
        unwanted = [c.query for c in q.subqueries if isinstance(c, query.Not)]
        if wanted:
            found = set(_docs(holder, searcher, wanted[0]))
            for child in wanted[1:]:
                found &= _docs(holder, searcher, child)
            for child in unwanted:
                found -= _docs(holder, searcher, child)
            return found
    if isinstance(q, query.AndNot):
        return _docs(holder, searcher, q.a) - _docs(holder, searcher, q.b)
    if isinstance(q, query.FuzzyTerm):
        return set().union(
            *(
                holder.term_docs(searcher, query.Term(q.fieldname, t))
                for t in _expansions(searcher, q)
            )
        )
    return holder.query_docs(searcher, q)


# Whoosh's default weighting, which its searcher scores with; the page is chosen by the same
# formula over numpy arrays (see _scored).
WEIGHTING = BM25F()
# Scores are compared rounded: Whoosh adds a document's parts in an order that depends on
# how its matchers were rearranged mid-search, so equal scores can differ in the last bits.
SCORE_DECIMALS = 6


def _expansions(searcher, q: query.FuzzyTerm) -> list[str]:
    """The indexed words a typo-tolerant word stands for (Whoosh walks the lexicon for them:
    found once per searcher)."""
    return list(_expanded(searcher, q.fieldname, q.text, q.maxdist, q.prefixlength))


@functools.lru_cache(maxsize=256)
def _expanded(searcher, fieldname: str, text: str, maxdist: int, prefixlength: int):
    fuzzy = query.FuzzyTerm(fieldname, text, maxdist=maxdist, prefixlength=prefixlength)
    return tuple(
        t.decode() if isinstance(t, bytes) else t for t in fuzzy._btexts(searcher.reader())
    )


# Whoosh scores an OR of three or more words in a segment of this many documents or fewer
# with a matcher that gives a typo-tolerant word's expansions 1 each, not their scores.
SMALL_SEGMENT = 5000


def _vectorised(q: query.Query, searcher) -> bool:
    """Whether _scored scores this query as Whoosh would: words, phrases, typo-tolerant
    words (in segments large enough), and their AND, OR and NOT."""
    if isinstance(q, query.Phrase):
        return q.fieldname in SCHEMA and SCHEMA[q.fieldname].scorable
    if isinstance(q, query.FuzzyTerm):
        leaves = [leaf for leaf, _offset in searcher.reader().leaf_readers()]
        return (
            q.boost == 1.0
            and q.fieldname in SCHEMA
            and SCHEMA[q.fieldname].scorable
            and all(leaf.doc_count_all() > SMALL_SEGMENT for leaf in leaves)
            and len(_expansions(searcher, q)) < query.Or.TOO_MANY_CLAUSES
        )
    if isinstance(q, query.Term):
        return isinstance(q.text, str) and q.fieldname in SCHEMA and SCHEMA[q.fieldname].scorable
    if isinstance(q, query.Or | query.And):
        if q.boost != 1.0 or not q.subqueries:
            return False
        wanted = [c for c in q.subqueries if not isinstance(c, query.Not)]
        if isinstance(q, query.Or) and len(wanted) != len(q.subqueries):
            return False
        return bool(wanted) and all(_vectorised(c, searcher) for c in wanted)
    if isinstance(q, query.AndNot):
        return q.boost == 1.0 and _vectorised(q.a, searcher)
    return False


def _at(docs: np.ndarray, found: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The scores of `docs` (all among `found`, both ascending)."""
    return scores[np.searchsorted(found, docs)]


def _bm25(stats, lengths: np.ndarray, fieldname: str, text: str, weights) -> np.ndarray:
    """BM25F as Whoosh's scorer computes it (whoosh.scoring.bm25), for many documents."""
    idf = stats.idf(fieldname, text)
    avgfl = stats.avg_field_length(fieldname) or 1
    k1, b = WEIGHTING.K1, WEIGHTING._field_B.get(fieldname, WEIGHTING.B)
    return idf * ((weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * lengths / avgfl)))


def _scored(
    holder: SearchIndex, searcher, q: query.Query, staff: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The documents a query matches (ascending) and their scores, as Whoosh scores them
    (for anonymous readers, with their audience's statistics: see AudienceStatistics)."""
    if isinstance(q, query.Term):
        return holder.term_scores(searcher, q.fieldname, q.text, q.boost, staff)
    if isinstance(q, query.Phrase):  # its words' scores, where they stand together
        docs = np.array(sorted(_docs(holder, searcher, q)), dtype=np.int64)
        scores = np.zeros(len(docs))
        for word in q.words:
            scores += _at(docs, *holder.term_scores(searcher, q.fieldname, word, staff=staff))
        return docs, scores * q.boost if q.boost != 1.0 else scores
    if isinstance(q, query.FuzzyTerm):  # the sum of its expansions' scores
        terms = [query.Term(q.fieldname, t) for t in _expansions(searcher, q)]
        if not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return _scored(holder, searcher, query.Or(terms), staff)
    if isinstance(q, query.Or):
        parts = [_scored(holder, searcher, c, staff) for c in q.subqueries]
        docs = np.concatenate([d for d, _ in parts])
        if not len(docs):
            return docs, np.zeros(0)
        unique, where = np.unique(docs, return_inverse=True)
        return unique, np.bincount(where, weights=np.concatenate([s for _, s in parts]))
    if isinstance(q, query.AndNot):
        docs, scores = _scored(holder, searcher, q.a, staff)
        unwanted = np.fromiter(_docs(holder, searcher, q.b), dtype=np.int64)
        keep = ~np.isin(docs, unwanted)
        return docs[keep], scores[keep]
    wanted = [c for c in q.subqueries if not isinstance(c, query.Not)]
    docs, scores = _scored(holder, searcher, wanted[0], staff)
    for child in wanted[1:]:
        other, more = _scored(holder, searcher, child, staff)
        docs, mine, theirs = np.intersect1d(docs, other, assume_unique=True, return_indices=True)
        scores = scores[mine] + more[theirs]
    for child in q.subqueries:
        if isinstance(child, query.Not):
            unwanted = np.fromiter(_docs(holder, searcher, child.query), dtype=np.int64)
            keep = ~np.isin(docs, unwanted)
            docs, scores = docs[keep], scores[keep]
    return docs, scores


class AudienceStatistics:
    """What BM25F scores with (documents, a word's documents, a field's average length),
    counted over the documents anonymous readers may see only: a record they cannot read
    (unpublished, restricted, deleted but not yet merged away) must change neither their
    scores nor their order, or a search would tell them it is there."""

    def __init__(self, holder: SearchIndex, searcher):
        self.holder, self.searcher = holder, searcher
        self.visible = np.zeros(searcher.doc_count_all(), dtype=bool)
        self.visible[list(holder.audience(searcher, "yes"))] = True
        self.count = int(self.visible.sum())
        self._averages: dict[str, float] = {}

    def idf(self, fieldname: str, text: str) -> float:
        found = self.holder.postings(self.searcher, fieldname, text)[0]
        frequency = int(self.visible[found].sum()) if len(found) else 0
        return math.log(max(self.count, 1) / (frequency + 1)) + 1

    def avg_field_length(self, fieldname: str) -> float:
        found = self._averages.get(fieldname)
        if found is None:
            lengths = self.holder.lengths(self.searcher, fieldname)
            total = float(lengths[self.visible[: len(lengths)]].sum()) if len(lengths) else 0.0
            found = self._averages[fieldname] = total / (self.count or 1)
        return found


class _AudienceScorer(BM25FScorer):
    def __init__(self, stats: AudienceStatistics, searcher, fieldname, text, b, k1, qf=1):
        self.idf = stats.idf(fieldname, text)
        self.avgfl = stats.avg_field_length(fieldname) or 1
        self.B, self.K1, self.qf = b, k1, qf
        self.setup(searcher, fieldname, text)


class AudienceBM25F(BM25F):
    """Whoosh's BM25F with an audience's statistics, for the queries numpy does not score."""

    def __init__(self, stats: AudienceStatistics):
        super().__init__()
        self.stats = stats

    def scorer(self, searcher, fieldname, text, qf=1):
        if not searcher.schema[fieldname].scorable:
            return super().scorer(searcher, fieldname, text, qf)
        b = self._field_B.get(fieldname, self.B)
        return _AudienceScorer(self.stats, searcher, fieldname, text, b, self.K1, qf=qf)


def _best(docs: np.ndarray, scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` documents by score (rounded), then document number."""
    rounded = np.round(scores, SCORE_DECIMALS)
    if limit < len(docs):
        cut = -np.partition(-rounded, limit - 1)[limit - 1]
        chosen = rounded >= cut
        docs, scores, rounded = docs[chosen], scores[chosen], rounded[chosen]
    order = np.lexsort((docs, -rounded))[:limit]
    return docs[order], scores[order]


def _allowed(holder: SearchIndex, searcher, prepared: Prepared) -> set[int] | None:
    """The documents this search may return, before its words: None for all."""
    allowed = None if prepared.staff else holder.audience(searcher, "yes")
    for narrowing in prepared.filters:
        found = _docs(holder, searcher, narrowing)
        allowed = set(found) if allowed is None else allowed & found
    return allowed


def _recovering(session: Session, work: Callable[[SearchIndex, Engine], Any]) -> Any:
    engine = session.get_bind()
    holder = index_for(current_app)
    try:
        return work(holder, engine)
    except Exception:  # an index broken on disk: rebuilt from the database, asked again
        log.exception("The search index failed; rebuilding it from the database.")
        holder.discard(engine)
        return work(holder, engine)


def search(session: Session, user, params: Mapping[str, str]) -> dict[str, Any]:
    """Search the archive as `user` may read it: the API's JSON answer.

    Raises marshmallow's ValidationError naming the parameter for bad input, including a
    query that does not parse.
    """
    prepared = _prepare(user, params)
    return _recovering(session, lambda holder, engine: _run(holder, engine, prepared))


def matching_records(session: Session, user, params: Mapping[str, str]) -> list[tuple[str, int]]:
    """Every record the same search finds, in its order, as (type, id), ignoring `page` and
    `per_page`: what a download of "exactly the records found" holds."""
    prepared = _prepare(user, params)

    def work(holder: SearchIndex, engine: Engine) -> list[tuple[str, int]]:
        holder.apply_pending(engine, wait=True)
        searcher = holder.searcher(engine)
        if isinstance(prepared.user_query, type(query.NullQuery)):
            return []
        allowed, docs, _facets = holder.counted(searcher, prepared)
        page = _page(holder, searcher, prepared, allowed, docs, len(docs))
        stored = [searcher.stored_fields(int(doc)) for doc, _score in page]
        return [(fields_["type"], fields_["rid"]) for fields_ in stored]

    return _recovering(session, work)


def _page(
    holder: SearchIndex, searcher, prepared: Prepared, allowed, docs: np.ndarray, limit: int
) -> list[tuple[int, float]]:
    """The first `limit` matches in the order asked, as (document, score): by relevance,
    score (rounded to SCORE_DECIMALS) first, then document number; newest first, start
    day, then score and document number. Words and their AND/OR/NOT are scored with numpy
    over the words' postings, exactly as Whoosh scores them; anything else by Whoosh."""
    q = prepared.user_query
    newest = prepared.params.sort == "-date"
    if limit <= 0 or not len(docs):
        return []
    if isinstance(q, query.Every) or _vectorised(q, searcher):
        if isinstance(q, query.Every):
            found, scores = np.sort(docs), np.ones(len(docs))
        else:
            found, scores = _scored(holder, searcher, q, prepared.staff)
            chosen = np.zeros(searcher.doc_count_all(), dtype=bool)
            chosen[docs] = True  # what the search may show: the audience's, filtered
            keep = chosen[found]
            found, scores = found[keep], scores[keep]
        if not newest:
            found, scores = _best(found, scores, limit)
        else:
            start = holder.days(searcher, "start")[found]
            order = np.lexsort((found, -np.round(scores, SCORE_DECIMALS), -start))[:limit]
            found, scores = found[order], scores[order]
        return list(zip(found.tolist(), scores.tolist(), strict=True))
    if not prepared.staff:  # Whoosh scores with the audience's statistics too
        searcher = Searcher(
            searcher.reader(),
            weighting=AudienceBM25F(holder.statistics(searcher)),
            closereader=False,
        )
    hits = _hits(searcher, prepared, allowed, limit)
    # By position, never list(hits): that asks len(), which walks every match again.
    page = [(hits.docnum(i), _score(hits.score(i))) for i in range(hits.scored_length())]
    if not newest:
        page.sort(key=lambda hit: (-round(hit[1], SCORE_DECIMALS), hit[0]))
    return page


def _hits(searcher, prepared: Prepared, allowed: set[int] | None, limit: int | None):
    if prepared.params.sort == "-date":
        order = [sorting.FieldFacet("start", reverse=True), sorting.ScoreFacet()]
        return searcher.search(prepared.user_query, limit=limit, sortedby=order, filter=allowed)
    return searcher.search(prepared.user_query, limit=limit, filter=allowed)


def _count(holder: SearchIndex, searcher, prepared: Prepared):
    """What a search may return before its words (None: everything), the documents it
    matches, and their facet counts."""
    if isinstance(prepared.user_query, type(query.NullQuery)):  # stop words alone
        matched, allowed = (), set()
    else:
        allowed = _allowed(holder, searcher, prepared)
        if isinstance(prepared.user_query, query.Every):
            matched = allowed if allowed is not None else searcher.reader().all_doc_ids()
        else:
            matched = _docs(holder, searcher, prepared.user_query)
            if allowed is not None:
                matched = allowed.intersection(matched)
    docs = np.fromiter(matched, dtype=np.int64)
    facets = {
        name: holder.column(searcher, column).counts(docs, int if name == "actor" else str)
        for name, column in FACET_COLUMNS.items()
    }
    return allowed, docs, facets


def _run(holder: SearchIndex, engine: Engine, prepared: Prepared) -> dict:
    p = prepared.params
    holder.apply_pending(engine, wait=True)
    searcher = holder.searcher(engine)
    allowed, docs, facets = holder.counted(searcher, prepared)

    items = []
    offset = (p.page - 1) * p.per_page
    if offset < len(docs):
        page = _page(holder, searcher, prepared, allowed, docs, offset + p.per_page)
        marks = _Marks(*_highlight_terms(prepared.user_query, searcher))
        for doc, score in page[offset:]:
            stored = searcher.stored_fields(doc)
            items.append(
                {
                    "type": stored["type"],
                    "id": stored["rid"],
                    "title": stored.get("s_title") or "",
                    "snippet": _snippet(stored, prepared.staff, marks),
                    "score": round(score, 4),
                }
            )
    return {
        "items": items,
        "total": len(docs),
        "page": p.page,
        "per_page": p.per_page,
        "facets": facets,
    }


def pending(session: Session) -> int:
    """How many changes wait to be applied to the index."""
    return session.scalar(select(func.count(SearchOutbox.id))) or 0


def live_count(session: Session) -> int:
    """How many records the index should hold."""
    return sum(
        session.scalar(select(func.count(model.id)).where(model.deleted_at.is_(None))) or 0
        for model in MODELS.values()
    )
