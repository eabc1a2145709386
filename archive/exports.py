"""Exports: the API's lists and the grouped indicators as CSV, XLSX or JSON, in bounded memory.

A record export holds what `GET /api/v1/<what>` gives the same reader (its dump schema and
visibility, so an anonymous export withholds exactly what the API withholds), every row, one
row per record ordered by id, flattened to cells: lists become "12:perpetrator; 15:target".
Rows are read `EXPORT_CHUNK_ROWS` at a time (a server-side cursor on PostgreSQL) and written
as they come, so memory does not grow with the number of rows.

Formats:
- CSV: UTF-8 with a byte-order mark (Excel needs it to read accents), a header row, "true"
  and "false" for yes/no cells, an empty cell for a value that is missing or withheld.
- JSON: one array of row objects with the CSV's columns and native types (pandas.read_json
  reads it as it is).
- XLSX: the table on a sheet named after the export (continued on "<what> 2"… past Excel's
  1,048,576 rows) and a "codebook" sheet describing every column, then the export's date,
  filters, method version and who ran it (a role, never an email).

`write()` is the whole export without HTTP (for the benchmark and the command line); the view
in archive/api/exports.py audits each export before any row leaves (see `audit`).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import HTMLSafeJSONProvider, access, codebook, provenance, records
from .models import User
from .resources import RESOURCES

FORMATS = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
DEFAULT_FORMAT = "csv"
# The parameters an export takes besides the list's filters (or the indicators' query).
OWN_PARAMS = ("format", "columns")
CHUNK_ROWS = 1000
XLSX_MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header's included


@dataclass
class Export:
    """One export asked for, checked: what, in which format, which columns, which filters."""

    what: str
    format: str
    columns: tuple[codebook.Column, ...]
    params: dict[str, str]  # the filters (or indicator parameters) as given
    conditions: list = field(default_factory=list)  # for records: the filters' SQL
    query: Any = None  # for the indicators: indicators.Query
    _answer: dict | None = None  # the indicators once computed

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def media_type(self) -> str:
        return FORMATS[self.format]

    def filename(self, day: dt.date | None = None) -> str:
        day = day or dt.datetime.now(dt.UTC).date()
        return f"constancia-{self.what}-{day:%Y%m%d}.{self.format}"


# --- Checking the request ----------------------------------------------------------------------


def prepare(user: User | None, what: str, params: Mapping[str, str]) -> Export:
    """The export `params` ask for; NotFound for an unknown export, ValidationError naming
    every bad parameter (format, columns, filters) otherwise."""
    if what not in codebook.EXPORTS:
        raise records.NotFound(
            f"No export {what!r}; the exports are: {', '.join(codebook.EXPORTS)}."
        )
    params = dict(params)
    errors: dict[str, list[str]] = {}
    fmt = params.pop("format", DEFAULT_FORMAT)
    if fmt not in FORMATS:
        errors["format"] = [f"Must be one of: {', '.join(FORMATS)}."]
    available = readable_columns(user, what)
    chosen = available
    asked = params.pop("columns", None)
    if asked is not None:
        chosen, problem = _choose(available, asked)
        if problem:
            errors["columns"] = [problem]
    export = Export(what, fmt, chosen, params)
    try:
        if what == "indicators":
            from . import indicators

            export.query = indicators.parse_query(params)
        else:
            export.conditions = records.parse_filters(RESOURCES[what], params)
    except ValidationError as exc:
        errors.update(exc.normalized_messages())
    if errors:
        raise ValidationError(errors)
    return export


def readable_columns(user: User | None, what: str) -> tuple[codebook.Column, ...]:
    """The columns of `what` this reader gets: a field the API withholds is no column."""
    if what == "indicators":
        return codebook.columns(what)
    shown = RESOURCES[what].dump_schema(user).fields
    return tuple(c for c in codebook.columns(what) if c.field is None or c.field in shown)


def _choose(available, asked: str) -> tuple[tuple, str | None]:
    by_name = {c.name: c for c in available}
    names = [n.strip() for n in asked.split(",") if n.strip()]
    if not names:
        return available, None
    unknown = [n for n in names if n not in by_name]
    if unknown:
        return available, (
            f"Unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known columns: {', '.join(by_name)}."
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return available, f"Give each column once: {', '.join(repeated)}."
    return tuple(by_name[n] for n in names), None


# --- Rows --------------------------------------------------------------------------------------


def chunk_rows() -> int:
    return int(current_app.config.get("EXPORT_CHUNK_ROWS", CHUNK_ROWS))


def count(session: Session, user: User | None, export: Export) -> int:
    """How many rows the export holds (a count in the database, not a read of the rows)."""
    if export.what == "indicators":
        answer = _indicators(session, user, export)
        return (len(answer["groups"]) + 1) * len(_indicator_keys())
    model = RESOURCES[export.what].model
    return session.scalar(
        select(func.count(model.id)).where(access.visible(model, user), *export.conditions)
    )


def rows(session: Session, user: User | None, export: Export) -> Iterator[list[list]]:
    """The export's rows, as lists of values in column order, a chunk at a time."""
    if export.what == "indicators":
        yield from _indicator_rows(session, user, export)
        return
    resource = RESOURCES[export.what]
    model = resource.model
    stmt = (
        select(model)
        .where(access.visible(model, user), *export.conditions)
        .order_by(model.id)
        .options(*resource.load_options)
        .execution_options(yield_per=chunk_rows())
    )
    schema = resource.dump_schema(user, many=True)
    link = record_url(export.what)
    cells = [_cell_maker(c, link) for c in export.columns]
    for partition in session.scalars(stmt).partitions():
        yield [[cell(item) for cell in cells] for item in schema.dump(partition)]


def record_url(what: str):
    """id -> the record's permanent address (built once: url_for per row is slow)."""
    prefix = url_for("api.get_record", name=what, record_id=0, _external=True)[:-1]
    return lambda record_id: f"{prefix}{record_id}"


def _cell_maker(column: codebook.Column, link):
    if column.name == "url":
        return lambda item: link(item["id"])
    name = column.field
    if column.type == "list":
        return lambda item: _joined(item.get(name))
    if name == "on_duty":
        return lambda item: _on_duty(item.get(name))
    return lambda item: item.get(name)


def _joined(values: list | None) -> str | None:
    """A list as one readable cell: "12:perpetrator; 15:target", "<sha256>:<file name>"."""
    if not values:
        return None
    return "; ".join(_item(v) for v in values)


def _item(value) -> str:
    if isinstance(value, dict):
        if "sha256" in value:  # an archived file of a source
            name = value.get("original_filename")
            return f"{value['sha256']}:{name}" if name else value["sha256"]
        return ":".join(str(v) for v in value.values() if v is not None)
    return str(value)


def _on_duty(value) -> str | None:
    """true, false or unknown as text in every format, so the column has one type."""
    if value is None:
        return None
    return str(value).lower()


def _indicator_keys() -> tuple[str, ...]:
    from . import indicators

    return indicators.INDICATOR_KEYS


def _indicators(session: Session, user: User | None, export: Export) -> dict:
    if export._answer is None:
        from . import indicators

        export._answer = indicators.grouped(session, user, export.query)
    return export._answer


def _indicator_rows(session, user, export: Export) -> Iterator[list[list]]:
    from . import indicators

    answer = _indicators(session, user, export)
    references = {k: t.reference for k, t in indicators.thresholds().items()}
    link = url_for(
        "api.grouped_indicators",
        **{**export.params, "group_by": answer["group_by"]},
        _external=True,
    )
    groups = [(g["key"], g["label"], False, g["indicators"]) for g in answer["groups"]]
    groups.append((None, "total", True, answer["total"]))
    chunk = []
    for key, label, is_total, figures in groups:
        for name in indicators.INDICATOR_KEYS:
            figure = figures[name]
            row = {
                **figure,
                "url": link,
                "group_by": answer["group_by"],
                "key": key,
                "label": label,
                "is_total": is_total,
                "indicator": name,
                "threshold_reference": (
                    references.get(name) if figure["threshold"] is not None else None
                ),
                "include_drafts": answer["include_drafts"],
                "method_version": answer["method_version"],
            }
            chunk.append([_plain(row.get(c.name)) for c in export.columns])
    yield chunk


def _plain(value):
    """numpy's numbers as Python's (pandas computes the indicators)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


# --- Writing -----------------------------------------------------------------------------------


def chunks(session: Session, user: User | None, export: Export) -> Iterator[bytes]:
    """The CSV or JSON export as bytes, a chunk of rows at a time."""
    if export.format == "csv":
        return _csv(rows(session, user, export), export.names)
    if export.format == "json":
        return _json(rows(session, user, export), export.names)
    raise ValueError(f"{export.format} is not a streamed format: use write_xlsx.")


def _csv(parts: Iterator[list[list]], names: list[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    for part in parts:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_value(v) for v in row] for row in part)
        yield buffer.getvalue().encode()


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _json(parts: Iterator[list[list]], names: list[str]) -> Iterator[bytes]:
    yield b"["
    first = True
    for part in parts:
        text = ",".join(
            json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) for row in part
        )
        if text:
            yield (
                (("\n" if first else ",\n") + text).translate(HTMLSafeJSONProvider.ESCAPES).encode()
            )
            first = False
    yield b"\n]\n"


def write_xlsx(
    session: Session, user: User | None, export: Export, out: IO[bytes], about: dict
) -> int:
    """The XLSX export into `out` (any binary file); answers the number of rows written.

    openpyxl's write-only workbook keeps each sheet's rows in a temporary file, not in memory.
    """
    workbook = Workbook(write_only=True)
    sheet_number, sheet, used, written = 1, None, XLSX_MAX_ROWS, 0
    for part in rows(session, user, export):
        for row in part:
            if used >= XLSX_MAX_ROWS:
                title = export.what if sheet_number == 1 else f"{export.what} {sheet_number}"
                sheet = workbook.create_sheet(title)
                sheet.append(export.names)
                sheet_number, used = sheet_number + 1, 1
            sheet.append([_xlsx_value(sheet, v) for v in row])
            used += 1
            written += 1
    if sheet is None:
        workbook.create_sheet(export.what).append(export.names)
    _codebook_sheet(workbook.create_sheet("codebook"), export, {**about, "rows": written})
    workbook.save(out)
    return written


def _xlsx_value(sheet, value):
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.startswith("="):
        # Text, not a formula: a title starting with "=" must not run in the reader's Excel.
        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"
        return cell
    return value


def _codebook_sheet(sheet, export: Export, about: dict) -> None:
    """Every column of the data sheet, then (after an empty row) the export's particulars."""
    # Fixed names, like the data columns; the descriptions are in the reader's language.
    sheet.append(["column", "description", "type", "values"])
    for column in export.columns:
        values = ", ".join(map(str, column.values)) or None
        sheet.append([column.name, str(column.description), column.type_label, values])
    sheet.append([])
    for key, value in about.items():
        sheet.append([key, _xlsx_value(sheet, _about_value(value))])


def _about_value(value):
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items()) or None
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return value


def particulars(user: User | None, export: Export) -> dict[str, Any]:
    """What the codebook sheet says about the export itself."""
    from . import indicators

    withheld = access.withholds_restricted(user)
    about = {
        "archive": current_app.config["ARCHIVE_NAME"],
        "export": export.what,
        "method_version": indicators.METHOD_VERSION,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "exported_by": user.role if user is not None else "anonymous",
        "filters": dict(export.params),
        "columns": export.names,
    }
    if withheld:
        about["withheld"] = _(
            "Read as an anonymous reader: unpublished records, restricted sources, internal "
            "notes and restricted identities are left out."
        )
    return about


def write(
    session: Session,
    user: User | None,
    what: str,
    fmt: str,
    params: Mapping[str, str],
    out: IO[bytes],
) -> int:
    """Export `what` in format `fmt` ("csv", "xlsx", "json") into the binary file `out`, as
    `user` (None: anonymous) may read it; `params` are the filters and `columns`, as the API
    takes them. Answers the number of rows. Needs an application context; not audited (the
    view calls `audit`). Raises NotFound / ValidationError as the API answers 404 / 422."""
    with _request_context():
        export = prepare(user, what, {**params, "format": fmt})
        if export.format == "xlsx":
            return write_xlsx(session, user, export, out, particulars(user, export))
        counted = _Counting(rows(session, user, export))
        writer = _csv if export.format == "csv" else _json
        for part in writer(counted, export.names):
            out.write(part)
        return counted.n


class _Counting:
    """Passes chunks of rows through, counting the rows."""

    def __init__(self, parts: Iterator[list[list]]):
        self.parts, self.n = parts, 0

    def __iter__(self):
        for part in self.parts:
            self.n += len(part)
            yield part


@contextlib.contextmanager
def _request_context():
    """URLs and the reader's language need a request; outside one, a stand-in."""
    if has_request_context():
        yield
    else:
        with current_app.test_request_context():
            yield


# --- Audit -------------------------------------------------------------------------------------


def audit(session: Session, user: User | None, export: Export, rows_count: int | None) -> None:
    """Record the export in the audit log (flushed, not committed): who, what, how, how much."""
    provenance.record(
        session,
        user,
        "export",
        export.what,
        None,
        {
            "format": export.format,
            "filters": dict(export.params),
            "columns": export.names,
            "rows": rows_count,
        },
    )
