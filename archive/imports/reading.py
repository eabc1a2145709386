"""Reading spreadsheets row by row: CSV in any delimiter and encoding, and XLSX.

Rows are yielded one at a time with their number as a spreadsheet shows it (the first line is
row 1), so a file is never held as a list of rows; the file's bytes are all that stays in
memory, and reading them twice (once to check, once to write) costs no more.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHUNK = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")
HEADER_SEARCH = 20  # rows looked at to find the header
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
# csv refuses fields longer than this by default (128 KB); a long description is allowed.
csv.field_size_limit(16 * 1024 * 1024)


class FileProblem(Exception):
    """The file cannot be read as a table at all (not a problem of one row)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Table:
    """A spreadsheet's header and a way to walk its rows (as often as needed)."""

    format: str  # "csv" or "xlsx"
    headers: list[str]
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None
    codec: str | None = None  # Python's name for the encoding
    _data: bytes = b""

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(row number, cells) for every row under the header, blank rows included."""
        width = len(self.headers)
        source = _csv_rows(self) if self.format == "csv" else _xlsx_rows(self._data)
        for number, cells in source:
            if number <= self.header_row:
                continue
            cells = list(cells)
            if len(cells) < width:
                cells.extend([None] * (width - len(cells)))
            yield number, cells

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"format": self.format, "header_row": self.header_row}
        if self.format == "csv":
            described["encoding"] = self.encoding
            described["delimiter"] = DELIMITER_NAMES.get(self.delimiter, self.delimiter)
        return described


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def open_table(data: bytes, filename: str | None = None) -> Table:
    """Recognise the format and find the header row; FileProblem when neither is possible."""
    if data.startswith(b"PK\x03\x04"):
        return _open_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileProblem(
            "This is an old Excel (.xls) file; save it as .xlsx or as CSV and import that."
        )
    return _open_csv(data)


def _header(rows: Iterator[tuple[int, list[Any]]]) -> tuple[int, list[str]]:
    """The header: the first row filled at least three quarters as wide as the widest of the first
    rows, so that a title or a note written above the table is not taken for it."""
    first: list[tuple[int, list[Any], int]] = []
    for number, cells in rows:
        filled = sum(not is_blank(c) for c in cells)
        if filled:
            first.append((number, cells, filled))
        if len(first) == HEADER_SEARCH:
            break
    if not first:
        raise FileProblem("The file has no rows: it needs a header row naming its columns.")
    widest = max(filled for _, _, filled in first)
    for number, cells, filled in first:
        if filled * 4 >= widest * 3:
            return number, _header_names(cells)
    raise AssertionError("the widest row is at least half as wide as itself")


def _header_names(cells: list[Any]) -> list[str]:
    """Each column's name as written, made unique: empty ones are "column 3", repeats "x (2)"."""
    while cells and is_blank(cells[-1]):
        cells = cells[:-1]
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells, start=1):
        name = "" if cell is None else unicodedata.normalize("NFC", str(cell)).strip()
        name = " ".join(name.split()) or f"column {index}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        seen.setdefault(name, 1)
        names.append(name)
    return names


# --- CSV -------------------------------------------------------------------------------------


def _encoding(data: bytes) -> str:
    """UTF-8 (with or without its byte-order mark) when every byte reads as UTF-8; otherwise
    Windows-1252, the Latin-1 that spreadsheets in Spanish save, or plain Latin-1."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), CHUNK):
            decoder.decode(data[start : start + CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        try:
            for start in range(0, len(data), CHUNK):
                data[start : start + CHUNK].decode("cp1252")
        except UnicodeDecodeError:
            return "latin-1"
        return "windows-1252"
    return "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"


ENCODING_NAMES = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8"}


def _text(data: bytes, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")


def _delimiter(sample: str) -> str:
    """The separator of the first lines: the sniffer's guess when the header line holds it,
    else whichever candidate the header line holds most (a comma when none)."""
    lines = [line for line in sample.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters="".join(DELIMITERS))
        if sniffed.delimiter in first:
            return sniffed.delimiter
    except csv.Error:
        pass
    best = max(DELIMITERS, key=first.count)
    return best if first.count(best) else ","


def _open_csv(data: bytes) -> Table:
    encoding = _encoding(data)
    with _text(data, encoding) as stream:
        sample = stream.read(64 * 1024)
    if "\x00" in sample:
        raise FileProblem("This is not a text (CSV) file nor an XLSX workbook.")
    table = Table(
        "csv",
        [],
        0,
        encoding=ENCODING_NAMES.get(encoding, encoding),
        delimiter=_delimiter(sample),
        codec=encoding,
        _data=data,
    )
    table.header_row, table.headers = _header(_csv_rows(table))
    return table


def _csv_rows(table: Table) -> Iterator[tuple[int, list[Any]]]:
    with _text(table._data, table.codec) as stream:
        reader = csv.reader(stream, delimiter=table.delimiter)
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as exc:
            raise FileProblem(f"Row {reader.line_num}: the CSV cannot be read ({exc}).") from None


# --- XLSX ------------------------------------------------------------------------------------


def _workbook(data: bytes):
    import openpyxl  # only imports that read a workbook pay for loading it

    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileProblem(f"The XLSX workbook cannot be read ({exc}).") from None


def _open_xlsx(data: bytes) -> Table:
    table = Table("xlsx", [], 0, _data=data)
    table.header_row, table.headers = _header(_xlsx_rows(data))
    return table


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[Any]]]:
    """The first sheet's rows, empty ones included, as typed values (numbers, dates, text;
    a formula's error as its text, such as "#VALUE!")."""
    workbook = _workbook(data)
    try:
        if not workbook.worksheets:
            raise FileProblem("The workbook has no sheets.")
        sheet = workbook.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            yield number, list(cells)
    finally:
        workbook.close()
