"""Loading context figures (population, homicides per region and year) from a CSV file.

Every row is read and validated with the API's own schema before anything is written; a
file with any error writes nothing and names every problem by row and column. A row for a
region and year that already has a live figure updates that figure (a new revision in its
history) instead of adding a second one.

Numbers may carry thousands separators. The figures are whole numbers, so a separator is
only ever a thousands separator: digits grouped in threes by commas (1,234,567), by dots
(1.234.567) or by spaces are read as one number, and anything else ("1.5", "1,23",
"1.234,5", "1,234.567") is refused, never guessed at.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.context_figures import FIGURES, NEITHER_FIGURE, ContextFigureSchema

from . import records
from .extensions import db
from .models import Source
from .resources import RESOURCES, Conflict, find_context_figure, lock_context_figures

COLUMNS = ("country", "admin1", "admin2", "year", "population", "homicides", "source_id", "notes")
REQUIRED_COLUMNS = ("admin1", "year")
# What identifies a figure; a reload never rewrites these, only the figures themselves.
KEY_FIELDS = ("country", "admin1", "admin2", "year")
DELIMITERS = (",", ";", "\t")

_PLAIN = re.compile(r"-?\d+")
_GROUPED = [re.compile(rf"-?\d{{1,3}}(?:{sep}\d{{3}})+") for sep in (",", r"\.", "[ \u00a0\u202f]")]
NOT_A_COUNT = (
    "Not a whole number: use digits, optionally grouped in threes by commas or by dots "
    "(1,234,567 or 1.234.567)."
)


def parse_count(text: str) -> int:
    """A whole number, with or without thousands separators (see the module's note)."""
    value = text.strip()
    if _PLAIN.fullmatch(value):
        return int(value)
    if any(pattern.fullmatch(value) for pattern in _GROUPED):
        return int(re.sub(r"[^\d-]", "", value))
    raise ValueError(NOT_A_COUNT)


def parse_plain_integer(text: str) -> int:
    value = text.strip()
    if not _PLAIN.fullmatch(value):
        raise ValueError("Not a valid integer.")
    return int(value)


PARSERS = {
    "year": parse_plain_integer,
    "population": parse_count,
    "homicides": parse_count,
    "source_id": parse_plain_integer,
}


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    data: dict[str, Any]  # loaded by the schema
    given: set[str]  # the columns this row has a value in


@dataclass
class Problems:
    messages: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.messages)


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class LoadFailed(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def decode(raw: bytes) -> str:
    """UTF-8, with or without a byte-order mark."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadFailed(
            [f"file: not UTF-8 (byte {exc.start + 1} cannot be read); save it as UTF-8 CSV."]
        ) from None


def _delimiter(text: str) -> str:
    """The separator the header row uses: commas, or semicolons or tabs as some spreadsheets
    in Spanish write them (where the comma is the decimal sign)."""
    header = text.splitlines()[0] if text else ""
    return max(DELIMITERS, key=header.count)


def read_rows(text: str, default_source_id: int | None) -> list[Row]:
    """Every row, checked by the schema; LoadFailed listing every problem if any has one."""
    problems = Problems()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise LoadFailed(["file: empty; the first row must name the columns."])
    names = [cell.strip().lower() for cell in header]
    _check_header(names, default_source_id, problems)
    if problems:
        raise LoadFailed(problems.messages)

    rows, schema = [], ContextFigureSchema()
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(names):
            problems.add(f"row {number}", f"{len(cells)} cells, but the header names {len(names)}.")
            continue
        raw = {name: cell.strip() for name, cell in zip(names, cells, strict=False) if cell.strip()}
        row = _read_row(number, raw, default_source_id, schema, problems)
        if row is not None:
            rows.append(row)
    if not rows and not problems:
        problems.add("file", "no rows of figures below the header.")
    _check_sources(rows, default_source_id, problems)
    _check_repeats(rows, problems)
    if problems:
        raise LoadFailed(problems.messages)
    return rows


def _check_header(names: list[str], default_source_id: int | None, problems: Problems) -> None:
    for index, name in enumerate(names):
        if name not in COLUMNS:
            shown = name or f"(column {index + 1} has no name)"
            problems.add(
                f"row 1, {shown}", f"unknown column; the columns are {', '.join(COLUMNS)}."
            )
        elif names.index(name) != index:
            problems.add(f"row 1, {name}", "this column is named twice.")
    for name in REQUIRED_COLUMNS:
        if name not in names:
            problems.add(f"row 1, {name}", "this column is missing.")
    if "population" not in names and "homicides" not in names:
        problems.add("row 1", "give a population column, a homicides column or both.")
    if "source_id" not in names and default_source_id is None:
        problems.add("row 1, source_id", "give a source_id column or --source-id.")


def _read_row(
    number: int,
    raw: dict[str, str],
    default_source_id: int | None,
    schema: ContextFigureSchema,
    problems: Problems,
) -> Row | None:
    data: dict[str, Any] = {}
    unreadable = set()
    for name, cell in raw.items():
        parse = PARSERS.get(name)
        try:
            data[name] = parse(cell) if parse else cell
        except ValueError as exc:
            problems.add(f"row {number}, {name}", str(exc))
            unreadable.add(name)
    if "source_id" not in raw and default_source_id is not None:
        data["source_id"] = default_source_id
    try:
        loaded = schema.load(data)
    except ValidationError as exc:
        for name, messages in sorted(exc.normalized_messages().items()):
            if name in unreadable:
                continue  # reported above; the schema only saw it missing
            for message in messages if isinstance(messages, list) else [str(messages)]:
                if message == NEITHER_FIGURE and unreadable & set(FIGURES):
                    continue  # a figure was given, but could not be read
                problems.add(f"row {number}, {name}", message)
        return None
    return None if unreadable else Row(number, loaded, set(raw))


def _check_sources(rows: list[Row], default_source_id: int | None, problems: Problems) -> None:
    """Every source named must be a live record; --source-id is reported once, not per row."""
    wanted = {row.data["source_id"] for row in rows}
    if default_source_id is not None:
        wanted.add(default_source_id)
    live = set(
        db.session.scalars(
            select(Source.id).where(Source.id.in_(wanted), Source.deleted_at.is_(None))
        )
    )
    if default_source_id is not None and default_source_id not in live:
        problems.add("--source-id", f"No source with id {default_source_id}.")
    for row in rows:
        source_id = row.data["source_id"]
        if source_id not in live and "source_id" in row.given:
            problems.add(f"row {row.number}, source_id", f"No source with id {source_id}.")


def figure_key(data: dict[str, Any]) -> tuple:
    admin2 = data.get("admin2")
    return (
        data["country"],
        data["admin1"].lower(),
        admin2.lower() if admin2 else None,
        data["year"],
    )


def _check_repeats(rows: list[Row], problems: Problems) -> None:
    first: dict[tuple, int] = {}
    for row in rows:
        key = figure_key(row.data)
        if key in first:
            problems.add(
                f"row {row.number}",
                f"the same region and year as row {first[key]}; give each figure once.",
            )
        else:
            first.setdefault(key, row.number)


def write_rows(session: Session, user, rows: Iterable[Row]) -> Outcome:
    """Create or update each row's figure in the caller's transaction (it never commits)."""
    resource = RESOURCES["context-figures"]
    outcome = Outcome()
    lock_context_figures(session)
    for row in rows:
        data = row.data
        try:
            existing = find_context_figure(
                session, data["country"], data["admin1"], data.get("admin2"), data["year"]
            )
            if existing is None:
                records.create_record(session, user, resource, data)
                outcome.created += 1
                continue
            change = {k: v for k, v in data.items() if k not in KEY_FIELDS and k in row.given}
            change.setdefault("source_id", data["source_id"])
            figure = records.get_record(session, user, resource, existing)
            version = figure.version
            figure = records.update_record(session, user, resource, existing, change)
            if figure.version == version:
                outcome.unchanged += 1
            else:
                outcome.updated += 1
        except ValidationError as exc:
            messages = [
                f"row {row.number}, {name}: {' '.join(map(str, ms))}"
                for name, ms in sorted(exc.normalized_messages().items())
            ]
            raise LoadFailed(messages) from None
        except (Conflict, records.NotFound) as exc:
            raise LoadFailed([f"row {row.number}: {exc.message}"]) from None
    return outcome
