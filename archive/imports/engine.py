"""Checking and importing the rows: every row is validated before anything is written, and
then all of them are written in the caller's transaction, or none.

The dry pass reads every row, checks it with the API's schemas and counts what it would do
(the report of a dry run), keeping each row's checked plan in a temporary file. When it found
no error, the live pass writes those plans: each record gets the checks records.create_record
gives it (the resource's apply and check, run on a Draft: its row of column values) and its
own audit entry, but records go in a chunk of rows at a time, table by table, and their
entries are appended to the chain in bulk (provenance.Appender).
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import functools
import gc
import hashlib
import inspect
import io
import pickle
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.casualty_counts import CasualtyCountSchema
from schemas.common import show_date
from schemas.events import EventSchema
from schemas.operations import OperationSchema
from schemas.places import PlaceSchema
from schemas.victims import VictimSchema

from .. import access, database, provenance, records, search, sourcefiles
from ..models import (
    CasualtyCount,
    Citation,
    Event,
    Operation,
    Place,
    Source,
    SourceFile,
    UTCDateTime,
    Victim,
    utcnow,
)
from ..resources import RESOURCES, Conflict
from .cells import (
    CellError,
    OrderEvidence,
    as_text,
    fold,
    read_boolean,
    read_date,
    read_float,
    read_integer,
    spreadsheet_error,
)
from .mapping import BRACES, TARGETS, CountSpec, ImportMapping, Target
from .reading import Table, is_blank

ON_DUPLICATE = ("skip", "update")
CHUNK_ROWS = 500  # rows whose records the live pass inserts together
LOAD_CACHE = 4096  # loaded places and figures remembered
CELL_CACHE = 65536  # cells read remembered, per column and value
_UNREAD = object()
RECORDS = ("events", "victims", "casualty_counts", "places", "operations", "citations")
SIMILAR = 0.85  # how alike two folded titles or names must be to count as the same
MAX_EXTERNAL_ID = 200

Progress = Callable[[str, int, int], None]


@dataclass
class Problem:
    row: int | None
    column: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = [f"row {self.row}"] if self.row is not None else []
        if self.column:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where) or 'file'}: {self.message}"


def _tally() -> dict[str, int]:
    return dict.fromkeys(RECORDS, 0)


@dataclass
class Report:
    """What an import read, found wrong, and did (or, in a dry run, would do)."""

    filename: str | None
    sha256: str
    size: int
    table: dict[str, Any]
    dataset: str
    dry_run: bool
    on_duplicate: str
    rows_read: int = 0
    blank_rows: int = 0
    skipped_rows: int = 0
    created: dict[str, int] = field(default_factory=_tally)
    updated: dict[str, int] = field(default_factory=_tally)
    unchanged: dict[str, int] = field(default_factory=_tally)
    skipped: dict[str, int] = field(default_factory=_tally)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    rows_with_errors: int = 0
    source_id: int | None = None
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, Any]:
        return {
            "rows": {
                "read": self.rows_read,
                "blank": self.blank_rows,
                "skipped": self.skipped_rows,
                "with_errors": self.rows_with_errors,
            },
            "created": dict(self.created),
            "updated": dict(self.updated),
            "unchanged": dict(self.unchanged),
            "skipped": dict(self.skipped),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": {
                "name": self.filename,
                "sha256": self.sha256,
                "size": self.size,
                **self.table,
            },
            "dataset": self.dataset,
            "dry_run": self.dry_run,
            "on_duplicate": self.on_duplicate,
            "ok": self.ok,
            "written": self.written,
            "source_id": self.source_id,
            **self.counts(),
            "duplicates": list(self.duplicates),
            "errors": [p.to_dict() for p in self.errors],
            "notes": [p.to_dict() for p in self.notes],
        }


def dataset_key(headers: list[str]) -> str:
    """Which dataset a file belongs to, as far as its layout tells: files with the same
    columns (another year of the same release) share it, and so share external ids."""
    digest = hashlib.sha256("\x1f".join(fold(h) for h in headers).encode()).hexdigest()
    return f"layout:{digest[:16]}"


@dataclass
class RowPlan:
    number: int
    event: dict[str, Any]
    place: dict[str, Any] | None
    place_text: str | None
    operation: dict[str, Any] | None
    victim: dict[str, Any] | None
    counts: list[tuple[CountSpec, dict[str, Any]]]
    external_id: str | None
    event_external_id: str | None
    event_key: tuple | None


def _similar(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    a, b = fold(a), fold(b)
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= SIMILAR


def _place_key(place: dict[str, Any]) -> tuple:
    return _folded_place(tuple(place.get(level) for level in PLACE_LEVELS))


PLACE_LEVELS = ("country", "admin1", "admin2", "admin3", "locality")


@functools.lru_cache(maxsize=LOAD_CACHE)
def _folded_place(levels: tuple) -> tuple:
    """A place's key: its country, and its other levels folded (a file names the same places
    over and over, each folded once)."""
    country, *names = levels
    return (country, *(fold(name or "") for name in names))


def _place_text(place: dict[str, Any]) -> str:
    levels = ("locality", "admin3", "admin2", "admin1", "country")
    return ", ".join(str(place[level]) for level in levels if place.get(level))


def _external(value: str) -> str:
    """An id short enough for its column; a longer one (a composite key) by its hash."""
    if len(value) <= MAX_EXTERNAL_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class Job:
    """One import of one file with one mapping."""

    def __init__(
        self,
        session: Session,
        user,
        table: Table,
        mapping: ImportMapping,
        report: Report,
        progress: Progress | None = None,
    ):
        self.session, self.user, self.table, self.mapping = session, user, table, mapping
        self.report = report
        self.progress = progress
        self.headers = table.headers
        self.sources = mapping.sources()
        self.orders: dict[str, str] = {}
        self.total_rows = 0
        self.current_row: int | None = None
        self.event_schema = EventSchema()
        self.place_schema = PlaceSchema()
        self._loads: dict[tuple, dict[str, Any]] = {}
        self._cells: dict[tuple, Any] = {}
        self.operation_schema = OperationSchema()
        self.victim_schema = VictimSchema(partial=("event_id",))
        self.count_schema = CasualtyCountSchema(partial=("event_id", "source_id"))
        self.folded_values = {
            key: {fold(cell): meant for cell, meant in table_.items()}
            for key, table_ in mapping.values.items()
        }

    # --- Pass 0: how each date column writes its dates --------------------------------------

    def detect_dates(self) -> None:
        """Tell day-first from month-first per date column, from all of its values."""
        date_sources = {
            source: target
            for target, source in self.sources.items()
            if TARGETS[target].kind == "date" and source not in self.mapping.date_formats
        }
        evidence = {source: OrderEvidence() for source in date_sources}
        for number, cells in self.table.rows():
            self.total_rows += 1
            if not evidence:
                continue
            row = dict(zip(self.headers, cells, strict=False))
            for source, target in date_sources.items():
                evidence[source].add(number, self._raw(row, source, target))
        for source, seen in evidence.items():
            column = source
            if seen.conflict:
                self.report.errors.append(
                    Problem(
                        None,
                        column,
                        f"Dates in both orders: row {seen.day_first} can only be day-first, "
                        f"row {seen.month_first} only month-first; give the column's format "
                        "in date_formats.",
                    )
                )
            elif seen.undecided:
                self.report.notes.append(
                    Problem(
                        None,
                        column,
                        f"Dates such as {seen.example!r} could be day-first or month-first and "
                        "no date in the column tells which: read as day-first. If they are "
                        f'month-first, set date_formats {{"{column}": "{_month_first(seen)}"}}.',
                    )
                )
            if seen.order:
                self.orders[source] = seen.order

    # --- Reading one row --------------------------------------------------------------------

    def _raw(self, row: dict[str, Any], source: str, target: str) -> Any:
        if source.startswith("constants."):
            constant = self.mapping.constants[target]
            if isinstance(constant, str) and BRACES.search(constant):
                return self._filled(row, constant)
            return constant
        return row.get(source)

    def _filled(self, row: dict[str, Any], template: str) -> str:
        """The template with each {column} as _brace reads it, remembered for the cells seen
        before (a title made of a place and a type repeats)."""
        try:
            key = (_braced, template, *(row.get(header) for header in _braced(template)))
            found = self._cells.get(key, _UNREAD)
        except TypeError:  # a value that cannot be a key
            found = key = None
        if found is _UNREAD or key is None:
            found = BRACES.sub(lambda m: self._brace(row, m[1]), template)
            if key is not None:
                if len(self._cells) >= CELL_CACHE:
                    self._cells.clear()
                self._cells[key] = found
        return found

    def _brace(self, row: dict[str, Any], header: str) -> str:
        """A column's cell as text, through the values that column's codes have."""
        value = row.get(header)
        found, meant = self._lookup(header, value)
        if not found and self.mapping.columns.get(header):
            found, meant = self._lookup(self.mapping.columns[header], value)
        if found:
            value = meant
        return as_text(value)

    def _lookup(self, key: str, value: Any) -> tuple[bool, Any]:
        table = self.mapping.values.get(key)
        if table is None or value is None:
            return False, None
        text = as_text(value)
        if text in table:
            return True, table[text]
        folded = fold(text)
        if folded in self.folded_values[key]:
            return True, self.folded_values[key][folded]
        return False, None

    def _cell(self, value: Any, source: str, target: Target) -> Any:
        """The cell read as its field's type; CellError saying why it cannot be."""
        error = spreadsheet_error(value)
        if error:
            raise CellError(f"The cell holds the spreadsheet error {error}.")
        if not source.startswith("constants."):
            found, meant = self._lookup(source, value)
            if found:
                value = meant
        found, meant = self._lookup(target.key, value)
        if found:
            value = meant
        elif (
            target.key in self.mapping.values
            and not is_blank(value)
            and (target.kind != "choice" or read_choice(value, target) is None)
        ):
            raise CellError(
                f"{as_text(value)!r} maps to nothing in values.{target.key}; add it there."
            )
        if is_blank(value):
            return None
        if target.kind == "text":
            return as_text(value)
        if target.kind == "integer":
            return read_integer(value)
        if target.kind == "float":
            return read_float(value)
        if target.kind == "boolean":
            return read_boolean(value)
        if target.kind == "date":
            fmt = self.mapping.date_formats.get(source)
            date = read_date(value, fmt, self.orders.get(source))
            return show_date(date, date.precision)
        choice = read_choice(value, target)
        if choice is None:
            raise CellError(
                f"{as_text(value)!r} is not in the list for {target.key} "
                f"({', '.join(map(str, target.choices))}); say what it means in "
                f"values.{target.key}."
            )
        return choice

    def _read_cell(self, value: Any, source: str, target: Target) -> Any:
        """_cell(value, source, target), remembered for values seen before in the column (a
        file repeats its dates, places and codes); a cell that cannot be read is not
        remembered (it raises again, for the report of each row)."""
        try:
            key = (source, target.key, type(value), value)
            found = self._cells.get(key, _UNREAD)
        except TypeError:  # a value that cannot be a key
            return self._cell(value, source, target)
        if found is _UNREAD:
            if len(self._cells) >= CELL_CACHE:
                self._cells.clear()
            found = self._cells[key] = self._cell(value, source, target)
        return found

    def plan(self, number: int, cells: list[Any]) -> RowPlan | None:
        """The row read and validated, or None when it is blank, skipped or has errors."""
        if all(is_blank(c) for c in cells):
            self.report.blank_rows += 1
            return None
        self.report.rows_read += 1
        row = dict(zip(self.headers, cells, strict=False))
        for rule in self.mapping.skip:
            if rule.pattern.search(as_text(row.get(rule.column))):
                self.report.skipped_rows += 1
                return None
        problems: list[Problem] = []
        values: dict[str, dict[str, Any]] = {
            "event": {},
            "place": {},
            "victim": {},
            "operation": {},
        }
        unread: set[str] = set()
        for target_key, source in self.sources.items():
            target = TARGETS[target_key]
            try:
                value = self._read_cell(self._raw(row, source, target_key), source, target)
            except CellError as exc:
                problems.append(Problem(number, source, str(exc)))
                unread.add(target_key)
                continue
            if value is not None:
                values[target.record][target.name] = value
        event = self._load(self.event_schema, values["event"], "event", number, problems, unread)
        place = operation = victim = None
        if ("latitude" in values["place"]) != ("longitude" in values["place"]):
            # The rule check_place applies when the place is written, checked before.
            missing = "place.longitude" if "latitude" in values["place"] else "place.latitude"
            problems.append(
                Problem(
                    number,
                    self.sources.get(missing, missing),
                    "Give latitude and longitude together.",
                )
            )
        if values["place"]:
            place = self._load(
                self.place_schema, values["place"], "place", number, problems, unread
            )
        if values["operation"]:
            if "name" not in values["operation"]:
                problems.append(
                    Problem(number, None, "operation fields are given but no operation.name.")
                )
            operation = self._load(
                self.operation_schema, values["operation"], "operation", number, problems, unread
            )
        if self.mapping.rows == "victim":
            victim = self._load(
                self.victim_schema, values["victim"], "victim", number, problems, unread
            )
        counts = self._counts(row, number, problems)
        if problems:
            self.report.errors.extend(problems)
            self.report.rows_with_errors += 1
            return None
        external_id = None
        if self.mapping.external_id:
            external_id = as_text(row.get(self.mapping.external_id)) or None
        key = self._event_key(row, values) if self.mapping.rows == "victim" else None
        if self.mapping.rows == "event":
            event_external_id = external_id
        elif key is not None:
            event_external_id = "|".join(str(part) for part in key)
        else:
            event_external_id = None
        return RowPlan(
            number=number,
            event=event,
            place=place,
            place_text=_place_text(place) if place else None,
            operation=operation,
            victim=victim,
            counts=counts,
            external_id=_external(external_id) if external_id else None,
            event_external_id=_external(event_external_id) if event_external_id else None,
            event_key=key,
        )

    def _load(
        self, schema, data, record: str, number: int, problems: list[Problem], unread: set[str]
    ) -> dict:
        """The record's fields through the API's schema; a field whose cell could not be read
        is reported once, for the cell, not again as missing."""
        try:
            return self._cached_load(schema, data)
        except ValidationError as exc:
            for name, messages in _flat(exc.normalized_messages()).items():
                if f"{record}.{name}" in unread:
                    continue
                column = self.sources.get(f"{record}.{name}", f"{record}.{name}")
                problems.append(Problem(number, column, " ".join(messages)))
            return {}

    def _cached_load(self, schema, data: dict[str, Any]) -> dict[str, Any]:
        """schema.load(data), remembered for data seen before: a file names the same places
        and the same figures over and over. The memory is bounded; a load that fails is not
        remembered (it raises again, for the report of each row)."""
        try:
            key = (id(schema), *sorted(data.items()))
            hash(key)
        except TypeError:  # a list value (aliases): not remembered
            return schema.load(data)
        loaded = self._loads.get(key)
        if loaded is None:
            if len(self._loads) >= LOAD_CACHE:
                self._loads.clear()
            loaded = self._loads[key] = schema.load(data)
        return dict(loaded)

    def _counts(self, row: dict[str, Any], number: int, problems: list[Problem]) -> list:
        counts = []
        for spec in self.mapping.counts:
            total, given = 0, False
            for header in spec.columns:
                value = row.get(header)
                try:
                    if spreadsheet_error(value):
                        raise CellError(
                            f"The cell holds the spreadsheet error {spreadsheet_error(value)}."
                        )
                    found, meant = self._lookup(header, value)
                    if found:
                        value = meant
                    if is_blank(value):
                        continue
                    total += read_integer(value)
                    given = True
                except CellError as exc:
                    problems.append(Problem(number, header, str(exc)))
            if not given:
                continue
            data = {
                "affiliation": spec.affiliation,
                "outcome": spec.outcome,
                "caused_by": spec.caused_by,
                "count": total,
            }
            try:
                counts.append((spec, self._cached_load(self.count_schema, data)))
            except ValidationError as exc:
                for messages in _flat(exc.normalized_messages()).values():
                    problems.append(Problem(number, ", ".join(spec.columns), " ".join(messages)))
        return counts

    def _event_key(self, row: dict[str, Any], values: dict[str, dict]) -> tuple | None:
        if not self.mapping.event_key:
            return None
        parts = []
        for item in self.mapping.event_key:
            if item in TARGETS:
                target = TARGETS[item]
                value = values[target.record].get(target.name)
                parts.append(fold(value) if isinstance(value, str) else value)
            else:
                parts.append(fold(as_text(row.get(item))))
        return tuple(parts)

    # --- Passes -----------------------------------------------------------------------------

    def run(self, writer: Writer, keep: IO[bytes] | None = None) -> None:
        """The dry pass: read and check every row, and count what it would do. Each row's
        plan goes to `keep` (a file, so memory does not grow with the file's rows), for the
        live pass to write without reading and checking the rows again."""
        kept: list[tuple[int, RowPlan]] = []
        for done, (number, cells) in enumerate(self.table.rows(), start=1):
            self.current_row = number
            plan = self.plan(number, cells)
            if plan is not None:
                if keep is not None:
                    kept.append((done, plan))
                    if len(kept) >= CHUNK_ROWS:
                        # A chunk of plans at a time: what they share is written once.
                        pickle.dump(kept, keep, pickle.HIGHEST_PROTOCOL)
                        kept = []
                writer.apply(plan)
            if self.progress:
                self.progress("checking", done, self.total_rows)
        if kept:
            pickle.dump(kept, keep, pickle.HIGHEST_PROTOCOL)

    def write(self, writer: Writer, kept: IO[bytes]) -> None:
        """The live pass: the plans the dry pass kept, applied in the order of their rows."""
        kept.seek(0)
        while True:
            try:
                chunk = pickle.load(kept)
            except EOFError:
                break
            for done, plan in chunk:
                self.current_row = plan.number
                writer.apply(plan)
                writer.row_done(plan.number)
                if self.progress:
                    self.progress("importing", done, self.total_rows)
        if self.progress:
            self.progress("importing", self.total_rows, self.total_rows)


def _month_first(seen: OrderEvidence) -> str:
    fmt = seen.format() or "%d/%m/%Y"
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def read_choice(value: Any, target: Target) -> Any:
    """The controlled-list value a cell names, in any case, spaces for underscores."""
    if value in target.choices:
        return value
    text = as_text(value)
    if text in target.choices:
        return text
    plain = re.sub(r"[\s-]+", "_", fold(text))
    for choice in target.choices:
        if isinstance(choice, str) and fold(choice) == plain:
            return choice
        if not isinstance(choice, str) and str(choice) == text:
            return choice
    return None


def _flat(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, list):
        return {prefix or "_schema": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flat(value, name))
        else:
            flat[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return flat


# --- What the passes do with each row --------------------------------------------------------


class New:
    """A record the live pass has made but not inserted yet: its id, once flush() knows it."""

    __slots__ = ("id",)

    def __init__(self):
        self.id: int | None = None


@functools.lru_cache(maxsize=256)
def _braced(template: str) -> tuple[str, ...]:
    """The columns a constant's template names in braces."""
    return tuple(BRACES.findall(template))


class Draft:
    """A record about to be inserted, held as its row of column values: it reads and writes
    its attributes, properties and methods as an instance of its model would, so that the
    resource's own apply and check run on it unchanged, without the cost of an ORM object
    (and its change tracking) for each of the thousands of records an import makes.

    The row is the draft's own attribute dictionary, so a column reads and writes at the
    speed of a plain attribute; anything else is looked up on the model (__getattr__)."""

    model: type  # each model's drafts are of a subclass of their own (_draft_class)

    def __new__(cls, model: type, row: dict[str, Any]):
        draft = object.__new__(_draft_class(model))
        object.__setattr__(draft, "__dict__", row)
        return draft

    def __init__(self, model: type, row: dict[str, Any]):
        pass

    @property
    def row(self) -> dict[str, Any]:
        return self.__dict__

    def __getattr__(self, name: str) -> Any:
        """No column: the attribute as the model has it. A property, method or constant is
        put on the drafts' class, where the next read finds it at once."""
        cls = type(self)
        if name in cls.__dict__:  # put there before: it raised AttributeError itself
            raise AttributeError(name)
        read, kept = _model_attribute(self.model, name)
        if kept is _RELATIONSHIP:
            return read(self)
        setattr(cls, name, kept)
        return getattr(self, name)


@functools.cache
def _draft_class(model: type) -> type:
    """The class of `model`'s drafts, on which the model's properties and constants are put
    as they are first read."""
    for column in sa_inspect(model).column_attrs:
        assert column.key not in ("model", "row"), f"{model.__name__}.{column.key} hides Draft's"
    return type(f"Draft{model.__name__}", (Draft,), {"model": model})


_RELATIONSHIP = object()


@functools.cache
def _model_attribute(model: type, name: str) -> tuple[Callable[[Draft], Any], Any]:
    """How a Draft of `model` reads an attribute that is no column: a relationship (empty on
    a new record), a property or method of the model, or a constant of its class. Answers
    the reader, and what the drafts' class may keep to read it the same way (_RELATIONSHIP:
    nothing, a relationship's list is new for each draft)."""
    if name.startswith("__"):
        raise AttributeError(name)
    relationships = {r.key: r.uselist for r in sa_inspect(model).relationships}
    if name in relationships:
        if relationships[name]:
            return (lambda draft: []), _RELATIONSHIP
        return (lambda draft: None), _RELATIONSHIP
    found = inspect.getattr_static(model, name)  # AttributeError when the model has none
    if isinstance(found, property):
        return found.fget, found
    if inspect.isfunction(found):
        return (lambda draft: found.__get__(draft, model)), found
    value = getattr(model, name)
    # A function read from the class (a staticmethod's) stays one, not a draft's method.
    return (lambda draft: value), staticmethod(value) if inspect.isfunction(value) else value


@functools.cache
def _blank_row(model) -> tuple[tuple[str, Any], ...]:
    """Every column of a new record of `model`, with the default the session would give it
    before the insert (records._fill_defaults); the others empty."""
    row = []
    for attr in sa_inspect(model).column_attrs:
        column = attr.columns[0]
        assert attr.key == column.key, f"{model.__name__}.{attr.key} is column {column.key}"
        default = column.default
        row.append((attr.key, default.arg if default is not None and default.is_scalar else None))
    return tuple(row)


@functools.cache
def _insert_fills(model) -> tuple[tuple[str, Callable | None], ...]:
    """The columns a callable default fills when the record leaves them empty, as the insert
    through the session would: each with its default, or None for a time (created_at,
    updated_at), which is the time the record goes in (Writer.flush's, for its chunk)."""
    return tuple(
        (
            column.key,
            None
            if isinstance(column.type, UTCDateTime)
            else functools.partial(column.default.arg, None),
        )
        for column in model.__table__.columns
        if column.default is not None and column.default.is_callable
    )


@functools.cache
def _references(model) -> tuple[str, ...]:
    """The columns of `model` that refer to other records: those that may hold a New."""
    return tuple(column.key for column in model.__table__.columns if column.foreign_keys)


@dataclass
class _Pending:
    resource: Any
    draft: Draft
    ref: New


# The order a chunk's records are inserted in: each table after those it refers to.
INSERT_ORDER = ("places", "operations", "events", "victims", "casualty-counts", "citations")
# Fields that are rows of other tables: a record given them is written through the session.
ORM_ONLY = frozenset({"actors"})


def _is_new(record_id) -> bool:
    """Made by this import: a stand-in id of the dry pass, or a New of the live pass."""
    return isinstance(record_id, New) or (isinstance(record_id, int) and record_id < 0)


class IdRanges:
    """A set of ids kept as sorted ranges: the ids an import makes come in runs, so the set
    of records it made stays small however many they are."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, record_id: int) -> None:
        if self.ends and record_id == self.ends[-1] + 1:
            self.ends[-1] = record_id
        elif record_id not in self:
            at = bisect.bisect(self.starts, record_id)
            self.starts.insert(at, record_id)
            self.ends.insert(at, record_id)

    def __contains__(self, record_id: int) -> bool:
        at = bisect.bisect(self.starts, record_id) - 1
        return at >= 0 and self.starts[at] <= record_id <= self.ends[at]


class Writer:
    """Resolves each row against the archive (places, duplicates) and records what happens.

    The dry writer only counts, handing out stand-in ids (negative) for records it would
    create; the live writer creates and updates them through the records services.
    """

    def __init__(self, job: Job, live: bool, on_duplicate: str, source_id: int | None):
        self.job, self.live, self.on_duplicate = job, live, on_duplicate
        self.session, self.user, self.report = job.session, job.user, job.report
        self.dataset = self.report.dataset
        self.source_id = source_id
        self._stand_in = 0
        self.places = self._index_places()
        self.operations = self._index_operations()
        self.groups: dict[tuple, tuple[int, str]] = {}  # event key -> (event id, fate)
        self.claimed: set[tuple[str, int]] = set()
        self.created: dict[str, IdRanges] = {key: IdRanges() for key in RECORDS}
        self.noted_places: set[tuple] = set()
        self.checked: set[tuple[str, int]] = set()  # references found live in the archive
        self.pending: list[_Pending] = []  # records made, to be inserted by flush()
        self.rows_pending = 0
        self.first_pending_row: int | None = None
        self.failed_rows: tuple[int | None, int | None] | None = None
        self.chain: provenance.Appender | None = None
        # Whether the archive holds records of this dataset at all: when not, no row of the
        # file can match one by its external id, and the look-up per row is skipped.
        self.dataset_known = {
            key: self.session is not None
            and self.session.scalar(
                select(model.id)
                .where(model.external_dataset == self.dataset, model.deleted_at.is_(None))
                .limit(1)
            )
            is not None
            for key, model in (("events", Event), ("victims", Victim))
        }
        if live:
            access.require(self.user, "create", "records")
            self.chain = provenance.Appender(self.session)

    def _index_places(self) -> dict[tuple, tuple[int, str]]:
        index: dict[tuple, tuple[int, str]] = {}
        stmt = select(Place).where(Place.deleted_at.is_(None)).order_by(Place.id)
        for place in self.session.scalars(stmt):
            data = {
                c: getattr(place, c) for c in ("country", "admin1", "admin2", "admin3", "locality")
            }
            index.setdefault(_place_key(data), (place.id, _place_text(data)))
        return index

    def _index_operations(self) -> dict[str, int]:
        index: dict[str, int] = {}
        stmt = select(Operation.id, Operation.name).where(Operation.deleted_at.is_(None))
        for operation_id, name in self.session.execute(stmt.order_by(Operation.id)):
            index.setdefault(fold(name), operation_id)
        return index

    def _new_id(self) -> int:
        self._stand_in -= 1
        return self._stand_in

    def _create(self, resource: str, data: dict[str, Any], row: int, cite: str | None):
        """A new record: a stand-in id in the dry pass; in the live pass a New reference, whose
        id is known once flush() has inserted it."""
        key = resource.replace("-", "_")
        self.report.created[key] += 1
        if not self.live:
            return self._new_id()
        ref = self._insert(resource, data)
        if cite:
            self._cite(cite, ref, row, new=True)
        return ref

    # References this writer resolved itself (the dataset source, an event just created or
    # found) need no check; those a mapping may give directly do, once per record named.
    CHECKED_REFERENCES = {"events", "victims", "places", "operations"}

    def _insert(self, resource_name: str, data: dict[str, Any]) -> New:
        """What records.create_record does (the same checks, the same audited "create" entry),
        batched: the record is made and checked now, as a Draft, and inserted with the others
        of its chunk by flush(), which then appends their entries to the chain in the order
        they were made."""
        resource = RESOURCES[resource_name]
        if resource_name in self.CHECKED_REFERENCES:
            self._check_references(resource, data)
        ref = New()
        if not ORM_ONLY.isdisjoint(data):
            # Links to actors are rows of their own: this record goes through the session.
            self.flush()
            record = resource.model()
            records._fill_defaults(record)
            resource.apply(record, data)
            resource.check(self.session, self.user, record, data, None)
            self.session.add(record)
            self.session.flush()
            ref.id = record.id
            self.created[resource.key + "s"].add(record.id)
            changes = records.created_changes(resource, record)
            self.chain.record(self.user, "create", resource.key, record.id, changes, plain=True)
            return ref
        draft = Draft(resource.model, dict(_blank_row(resource.model)))
        resource.apply(draft, data)
        if not (resource_name == "citations" and isinstance(data["target_id"], New)):
            # check_citation looks its target up; a record this import makes exists.
            resource.check(self.session, self.user, draft, data, None)
        self.pending.append(_Pending(resource, draft, ref))
        return ref

    def _check_references(self, resource, data: dict[str, Any]) -> None:
        """records._check_references, for the references not made by this import and not
        checked before in it."""
        unchecked = {}
        for name, value in data.items():
            if name not in resource.references or value is None or isinstance(value, New):
                continue
            if name == "actors" or (name, value) not in self.checked:
                unchecked[name] = value
        if unchecked:
            records._check_references(self.session, resource, unchecked)
            self.checked.update((n, v) for n, v in unchecked.items() if n != "actors")

    def row_done(self, number: int) -> None:
        """Called after each row: the live writer inserts its records a chunk at a time."""
        if not self.live:
            return
        if self.first_pending_row is None:
            self.first_pending_row = number
        self.rows_pending += 1
        if self.rows_pending >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        """Insert the records made since the last flush, table by table (a reference to a
        record made in the same chunk is resolved once its table is written), then append
        their "create" entries to the audit chain in the order the records were made, and
        note them for the search index."""
        first, self.rows_pending, self.first_pending_row = self.first_pending_row, 0, None
        if not self.pending:
            return
        by_table: dict[str, list[_Pending]] = {}
        for item in self.pending:
            by_table.setdefault(item.resource.name, []).append(item)
        # The chunk's records go in together: one time for them all and for their entries.
        now = utcnow()
        ids = self._take_ids({name: len(items) for name, items in by_table.items()})
        try:
            for name in INSERT_ORDER:
                items = by_table.pop(name, None)
                if items:
                    self._insert_rows(items, ids[name], now)
        except IntegrityError:
            # The rows of the chunk went in together: say which rows they were.
            self.failed_rows = (first, self.job.current_row)
            raise
        assert not by_table, f"no insert order for {sorted(by_table)}"
        entries: set[tuple[str, int]] = set()
        for item in self.pending:
            resource, draft = item.resource, item.draft
            changes = records.created_changes(resource, draft, draft.row)
            record_id = draft.row["id"]
            self.chain.record(
                self.user, "create", resource.key, record_id, changes, plain=True, at=now
            )
            entries |= search.inserted_entries(resource.model, draft.row)
        self.chain.flush()
        search.queue(self.session, entries)
        self.pending = []

    def _insert_rows(self, items: list[_Pending], ids: list[int], now) -> None:
        """One table's rows of the chunk, with the ids taken for them: their references to
        records of the chunk resolved, then one executemany (or COPY)."""
        model = items[0].resource.model
        fills = _insert_fills(model)
        references = _references(model)
        created = self.created[items[0].resource.key + "s"]
        rows = []
        for item, record_id in zip(items, ids, strict=True):
            row = item.draft.row
            row["id"] = item.ref.id = record_id
            for name in references:
                value = row[name]
                if type(value) is New:
                    row[name] = value.id
            for name, fill in fills:
                if row[name] is None:
                    row[name] = now if fill is None else fill()
            rows.append(row)
            created.add(record_id)
        database.bulk_insert(self.session, model.__table__, rows)

    def _take_ids(self, counts: dict[str, int]) -> dict[str, list[int]]:
        """Ids for the chunk's new rows of each resource's table: from the tables' sequences
        on PostgreSQL, all in one query; on SQLite after each table's largest, this
        transaction holding the database's write lock."""
        tables = {name: RESOURCES[name].model.__table__.name for name in counts}
        if self.session.get_bind().dialect.name != "postgresql":
            taken = {}
            for name, count in counts.items():
                table = RESOURCES[name].model.__table__
                last = self.session.scalar(select(func.max(table.c.id))) or 0
                taken[name] = list(range(last + 1, last + 1 + count))
            return taken
        names = list(counts)
        query = " UNION ALL ".join(
            f"SELECT {i} AS n, nextval(pg_get_serial_sequence(:table_{i}, 'id'))"
            f" FROM generate_series(1, :count_{i})"
            for i in range(len(names))
        )
        values = {f"table_{i}": tables[name] for i, name in enumerate(names)}
        values |= {f"count_{i}": counts[name] for i, name in enumerate(names)}
        taken = {name: [] for name in names}
        for i, record_id in self.session.execute(sql_text(query), values):
            taken[names[i]].append(record_id)
        return {name: sorted(found) for name, found in taken.items()}

    def _cite(self, target_type: str, target_id, row: int, new: bool = False) -> None:
        """Cite the dataset at the row, unless the record (found, not `new`) already does."""
        locator = f"row {row}"
        if not new:
            self.flush()
        column = getattr(Citation, Citation.TARGET_COLUMNS[target_type])
        exists = (
            None
            if new
            else self.session.scalar(
                select(Citation.id).where(
                    column == target_id,
                    Citation.source_id == self.source_id,
                    Citation.locator == locator,
                    Citation.deleted_at.is_(None),
                )
            )
        )
        if exists is not None:
            return
        self.report.created["citations"] += 1
        self._insert(
            "citations",
            {
                "source_id": self.source_id,
                "target_type": target_type,
                "target_id": target_id,
                "locator": locator,
            },
        )

    def _update(self, resource: str, record_id: int, data: dict[str, Any], row: int, cite: str):
        """Update a record found in the archive; one already as the row says is unchanged."""
        key = resource.replace("-", "_")
        record = self.session.get(RESOURCES[resource].model, record_id)
        if all(getattr(record, name) == value for name, value in data.items()):
            self.report.unchanged[key] += 1
            if self.live:
                self._cite(cite, record_id, row)
            return
        self.report.updated[key] += 1
        if self.live:
            self.flush()
            records.update_record(self.session, self.user, RESOURCES[resource], record_id, data)
            self.chain.resync()  # update_record appended to the chain itself
            self._cite(cite, record_id, row)

    # --- Places and operations ----------------------------------------------------------------

    def place_id(self, plan: RowPlan) -> int | None:
        if plan.place is None:
            return plan.event.get("place_id")
        key = _place_key(plan.place)
        found = self.places.get(key)
        if found is not None:
            place_id, text = found
            if text != plan.place_text and key not in self.noted_places and not _is_new(place_id):
                self.noted_places.add(key)
                self.report.notes.append(
                    Problem(
                        plan.number,
                        self._place_column(),
                        f"{plan.place_text!r} is place {place_id} ({text}) in the archive.",
                    )
                )
            return place_id
        verb = "was" if self.live else "will be"
        self.report.notes.append(
            Problem(
                plan.number,
                self._place_column(),
                f"{plan.place_text!r} matches no place in the archive (ignoring case and "
                f"accents): it {verb} added as written.",
            )
        )
        self.noted_places.add(key)
        place_id = self._create("places", plan.place, plan.number, None)
        self.places[key] = (place_id, plan.place_text)
        return place_id

    def _place_column(self) -> str:
        fed = [
            source
            for target, source in self.job.sources.items()
            if target.startswith("place.") and not source.startswith("constants.")
        ]
        return ", ".join(fed) or "place"

    def operation_id(self, plan: RowPlan) -> int | None:
        if plan.operation is None:
            return plan.event.get("operation_id")
        key = fold(plan.operation["name"])
        if key in self.operations:
            return self.operations[key]
        verb = "was" if self.live else "will be"
        self.report.notes.append(
            Problem(
                plan.number,
                self.job.sources.get("operation.name"),
                f"No operation named {plan.operation['name']!r} in the archive: it {verb} added.",
            )
        )
        operation_id = self._create("operations", plan.operation, plan.number, None)
        self.operations[key] = operation_id
        return operation_id

    # --- Duplicates ---------------------------------------------------------------------------

    def _free(self, kind: str, record_id: int) -> bool:
        return (kind, record_id) not in self.claimed and record_id not in self.created[kind]

    def _duplicate(self, plan: RowPlan, kind: str, record_id: int, reason: str) -> None:
        self.claimed.add((kind, record_id))
        label = kind[:-1]
        self.report.duplicates.append(
            {"row": plan.number, "record": label, "id": record_id, "reason": reason}
        )

    def find_event(self, plan: RowPlan, place_id) -> int | None:
        if plan.event_external_id and self.dataset_known["events"]:
            stmt = select(Event.id).where(
                Event.external_dataset == self.dataset,
                Event.external_id == plan.event_external_id,
                Event.deleted_at.is_(None),
            )
            for event_id in self.session.scalars(stmt.order_by(Event.id)):
                if self._free("events", event_id):
                    self._duplicate(
                        plan,
                        "events",
                        event_id,
                        f"same external id {plan.event_external_id!r}",
                    )
                    return event_id
        start = plan.event.get("start_date")
        if start is None or place_id is None or _is_new(place_id):
            return None
        stmt = select(Event.id, Event.title).where(
            Event.start_date == start, Event.place_id == place_id, Event.deleted_at.is_(None)
        )
        for event_id, title in self.session.execute(stmt.order_by(Event.id)):
            if self._free("events", event_id) and _similar(title, plan.event.get("title")):
                self._duplicate(
                    plan,
                    "events",
                    event_id,
                    f"same date, same place and a similar title ({title!r})",
                )
                return event_id
        return None

    def find_victim(self, plan: RowPlan, place_id) -> int | None:
        if plan.external_id and self.dataset_known["victims"]:
            stmt = select(Victim.id).where(
                Victim.external_dataset == self.dataset,
                Victim.external_id == plan.external_id,
                Victim.deleted_at.is_(None),
            )
            for victim_id in self.session.scalars(stmt.order_by(Victim.id)):
                if self._free("victims", victim_id):
                    self._duplicate(
                        plan, "victims", victim_id, f"same external id {plan.external_id!r}"
                    )
                    return victim_id
        name = plan.victim.get("name")
        start = plan.event.get("start_date")
        if not name or start is None or place_id is None or _is_new(place_id):
            return None
        stmt = (
            select(Victim.id, Victim.name)
            .join(Event, Event.id == Victim.event_id)
            .where(
                Event.start_date == start,
                Event.place_id == place_id,
                Event.deleted_at.is_(None),
                Victim.deleted_at.is_(None),
            )
            .order_by(Victim.id)
        )
        for victim_id, other in self.session.execute(stmt):
            if self._free("victims", victim_id) and _similar(other, name):
                self._duplicate(
                    plan,
                    "victims",
                    victim_id,
                    f"same date, same place and a similar name ({other!r})",
                )
                return victim_id
        return None

    # --- One row ------------------------------------------------------------------------------

    def apply(self, plan: RowPlan) -> None:
        place_id = self.place_id(plan)
        operation_id = self.operation_id(plan)
        event_data = dict(plan.event)
        if place_id is not None:
            event_data["place_id"] = place_id
        if operation_id is not None:
            event_data["operation_id"] = operation_id
        event_id, fate = self._event(plan, event_data, place_id)
        if plan.victim is not None:
            self._victim(plan, event_id, fate, place_id)
        self._counts(plan, event_id, fate)

    def _event(self, plan: RowPlan, data: dict[str, Any], place_id: int | None):
        if plan.event_key is not None and plan.event_key in self.groups:
            return self.groups[plan.event_key]
        existing = self.find_event(plan, place_id)
        if existing is None:
            data = {**data, "status": "draft", **self._external(plan.event_external_id)}
            event_id = self._create("events", data, plan.number, "event")
            result = (event_id, "created")
        elif self.on_duplicate == "update":
            self._update("events", existing, data, plan.number, "event")
            result = (existing, "updated")
        else:
            self.report.skipped["events"] += 1
            result = (existing, "skipped")
        if plan.event_key is not None:
            self.groups[plan.event_key] = result
        return result

    def _external(self, external_id: str | None) -> dict[str, str]:
        """The columns that let a later import of the dataset recognise the record; set with
        the record itself, as the schemas (and so the API) do not take them."""
        if external_id is None:
            return {}
        return {"external_dataset": self.dataset, "external_id": external_id}

    def _victim(self, plan: RowPlan, event_id: int, fate: str, place_id: int | None) -> None:
        # A person of an event this import creates is new, unless the dataset's id says not;
        # the dry pass and the live pass must decide alike.
        known = fate != "created" or plan.external_id is not None
        existing = self.find_victim(plan, place_id) if known else None
        if existing is None:
            data = {**plan.victim, "event_id": event_id, **self._external(plan.external_id)}
            self._create("victims", data, plan.number, "victim")
        elif self.on_duplicate == "update":
            self._update("victims", existing, plan.victim, plan.number, "victim")
        else:
            self.report.skipped["victims"] += 1

    def _counts(self, plan: RowPlan, event_id: int, fate: str) -> None:
        for _spec, data in plan.counts:
            if fate == "skipped":
                self.report.skipped["casualty_counts"] += 1
                continue
            existing = None
            if fate == "updated" and self.source_id is not None:
                existing = self.session.scalar(
                    select(CasualtyCount.id).where(
                        CasualtyCount.event_id == event_id,
                        CasualtyCount.source_id == self.source_id,
                        CasualtyCount.affiliation == data["affiliation"],
                        CasualtyCount.outcome == data["outcome"],
                        CasualtyCount.caused_by == data["caused_by"],
                        CasualtyCount.deleted_at.is_(None),
                    )
                )
            if existing is not None:
                self._update(
                    "casualty-counts",
                    existing,
                    {"count": data["count"]},
                    plan.number,
                    "casualty_count",
                )
                continue
            self._create(
                "casualty-counts",
                {**data, "event_id": event_id, "source_id": self.source_id},
                plan.number,
                "casualty_count",
            )


# --- The source every imported record cites --------------------------------------------------


def existing_source(session: Session, sha256: str) -> int | None:
    """The live dataset source that holds this very file, if it was imported before."""
    return session.scalar(
        select(Source.id)
        .join(SourceFile, SourceFile.source_id == Source.id)
        .where(
            SourceFile.sha256 == sha256,
            SourceFile.deleted_at.is_(None),
            Source.deleted_at.is_(None),
            Source.kind == "dataset",
        )
        .order_by(Source.id)
        .limit(1)
    )


def dataset_source(session, user, store, data: bytes, filename: str | None, max_bytes: int):
    sha256 = hashlib.sha256(data).hexdigest()
    found = existing_source(session, sha256)
    if found is not None:
        return found
    title = filename or f"Imported dataset {sha256[:12]}"
    source = records.create_record(
        session, user, RESOURCES["sources"], {"kind": "dataset", "title": title[:500]}
    )
    sourcefiles.attach_file(
        session, user, store, source.id, io.BytesIO(data), filename, None, max_bytes
    )
    return source.id


WRITE_FAILURES = (ValidationError, Conflict, access.AccessDenied, records.NotFound, IntegrityError)


def execute(
    session: Session,
    user,
    store: provenance.FileStore,
    data: bytes,
    filename: str | None,
    table: Table,
    mapping: ImportMapping,
    *,
    dry_run: bool,
    on_duplicate: str,
    max_bytes: int,
    progress: Progress | None = None,
) -> Report:
    sha256 = hashlib.sha256(data).hexdigest()
    report = Report(
        filename=filename,
        sha256=sha256,
        size=len(data),
        table=table.describe(),
        dataset=dataset_key(table.headers),
        dry_run=dry_run,
        on_duplicate=on_duplicate,
    )
    job = Job(session, user, table, mapping, report, progress)
    with _collecting_only_new_objects():
        job.detect_dates()
        report.source_id = existing_source(session, sha256)
        if dry_run:
            job.run(Writer(job, False, on_duplicate, report.source_id))
            return report
        with tempfile.TemporaryFile() as kept:
            job.run(Writer(job, False, on_duplicate, report.source_id), kept)
            if report.errors:
                return report
            return _write(session, user, store, data, filename, job, kept, max_bytes)


@contextlib.contextmanager
def _collecting_only_new_objects():
    """While an import runs, the garbage collector's full passes skip the objects that were
    alive before it (the application's modules, schemas, mappers...): an import makes
    hundreds of thousands of objects, enough to set off a full pass every few thousand rows,
    and each pass over everything the process holds cost more than the rest of the rows'
    work. Nothing is left uncollected: the objects are handed back to the collector after
    (gc.unfreeze), and the objects the import makes are collected as usual meanwhile. When
    objects are frozen already (by the server, or by an import running in another thread),
    they are left as they are."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _write(session, user, store, data, filename, job: Job, kept: IO[bytes], max_bytes: int):
    """The live pass, once the dry pass found no error: the file stored as a dataset source,
    the rows' records written and audited, and the import itself audited."""
    report, mapping, on_duplicate = job.report, job.mapping, job.report.on_duplicate
    sha256 = report.sha256
    checked = report.counts()
    report.created, report.updated, report.skipped = _tally(), _tally(), _tally()
    report.unchanged = _tally()
    report.duplicates, notes = [], report.notes
    report.notes = [note for note in notes if note.row is None]
    report.source_id = dataset_source(session, user, store, data, filename, max_bytes)
    writer = Writer(job, True, on_duplicate, report.source_id)
    try:
        with database.large_page_cache(session):
            job.write(writer, kept)
            writer.flush()
            writer.chain.close()
    except WRITE_FAILURES as exc:
        message = getattr(exc, "message", None) or _flat_message(exc)
        row = job.current_row
        if writer.failed_rows is not None:
            first, last = writer.failed_rows
            row = first if first == last else None
            if first != last:
                message = f"rows {first} to {last}: {message}"
        report.errors.append(Problem(row, None, f"Writing failed, nothing was kept: {message}"))
        return report
    provenance.record(
        session,
        user,
        "import",
        "source",
        report.source_id,
        {
            "file": {"name": filename, "sha256": sha256, "size": len(data)},
            "mapping": mapping.document,
            "on_duplicate": on_duplicate,
            "counts": report.counts(),
            "checked": checked,
        },
    )
    report.written = True
    return report


def _flat_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        flat = _flat(exc.normalized_messages())
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in flat.items())
    return str(exc).splitlines()[0]
