"""What a messy cell holds: numbers with thousands separators, dates in many spellings,
spreadsheet errors. Each reader answers the value or raises CellError saying why not.

Dates: ISO (2015-07-13, 2015-07, 2015), day and month as numbers in either order
(13/07/2015, 7/13/2015, 13-07-15), and with the month's name in English or Spanish
(11-Jan-07, 13 de julio de 2015, jul-2015). Whether 03/04/2015 is the 3rd of April or the 4th
of March is decided for a whole column from its data (detect_order); a column where nothing
decides it is read day first and the report says so.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from schemas.common import PrecisionDate

SPREADSHEET_ERROR = re.compile(
    r"^#(?:VALUE!|REF!|DIV/0!|N/A|NAME\?|NUM!|NULL!|SPILL!|CALC!|FIELD!|BLOCKED!|UNKNOWN!"
    r"|CONNECT!|BUSY!|GETTING_DATA)$",
    re.IGNORECASE,
)


class CellError(ValueError):
    pass


class _NoSuchDay(CellError):
    pass


def fold(text: str) -> str:
    """Lower case without accents and with single spaces: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def spreadsheet_error(value: Any) -> str | None:
    if isinstance(value, str) and SPREADSHEET_ERROR.match(value.strip()):
        return value.strip().upper()
    return None


def as_text(value: Any) -> str:
    """The cell as text: whole numbers without ".0", dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


# --- Numbers ---------------------------------------------------------------------------------

_PLAIN = re.compile(r"[-+]?\d+")
_WHOLE_DECIMAL = re.compile(r"[-+]?\d+[.,]0+")
_GROUPED = [
    re.compile(rf"[-+]?\d{{1,3}}(?:{sep}\d{{3}})+") for sep in (",", r"\.", "[ \u00a0\u202f']")
]
NOT_A_NUMBER = (
    "is not a whole number: use digits, optionally grouped in threes by commas, dots or "
    "spaces (5,042 or 5.042)"
)


def read_integer(value: Any) -> int:
    """A whole number: 5042, "5,042", "5.042", "5 042" or "12.0"; never a guess at "1.5"."""
    if isinstance(value, bool):
        raise CellError(f"{as_text(value)!r} {NOT_A_NUMBER}.")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise CellError(f"{value!r} {NOT_A_NUMBER}.")
    text = as_text(value)
    if _PLAIN.fullmatch(text):
        return int(text)
    if _WHOLE_DECIMAL.fullmatch(text):
        return int(re.split(r"[.,]", text)[0])
    if any(pattern.fullmatch(text) for pattern in _GROUPED):
        return int(re.sub(r"[^\d-]", "", text))
    raise CellError(f"{text!r} {NOT_A_NUMBER}.")


def read_float(value: Any) -> float:
    """A decimal number, with a dot or (when it has no dot) a comma as the decimal sign."""
    if isinstance(value, bool):
        raise CellError(f"{as_text(value)!r} is not a number.")
    if isinstance(value, (int, float)):
        return float(value)
    text = as_text(value)
    candidate = text.replace(",", ".") if "." not in text and text.count(",") == 1 else text
    try:
        return float(candidate)
    except ValueError:
        raise CellError(f"{text!r} is not a number.") from None


TRUE = {"true", "yes", "y", "1", "si", "s", "verdadero", "x"}
FALSE = {"false", "no", "n", "0", "falso"}


def read_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = fold(as_text(value))
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise CellError(f"{as_text(value)!r} is not yes or no (true/false, sí/no, 1/0).")


# --- Dates -----------------------------------------------------------------------------------

MONTHS = {
    **dict.fromkeys(("jan", "january", "ene", "enero"), 1),
    **dict.fromkeys(("feb", "february", "febrero"), 2),
    **dict.fromkeys(("mar", "march", "marzo"), 3),
    **dict.fromkeys(("apr", "april", "abr", "abril"), 4),
    **dict.fromkeys(("may", "mayo"), 5),
    **dict.fromkeys(("jun", "june", "junio"), 6),
    **dict.fromkeys(("jul", "july", "julio"), 7),
    **dict.fromkeys(("aug", "august", "ago", "agosto"), 8),
    **dict.fromkeys(("sep", "sept", "september", "set", "septiembre", "setiembre"), 9),
    **dict.fromkeys(("oct", "october", "octubre"), 10),
    **dict.fromkeys(("nov", "november", "noviembre"), 11),
    **dict.fromkeys(("dec", "december", "dic", "diciembre"), 12),
}
_SEP = r"[-/.\s]+"
_YMD = re.compile(rf"^(\d{{4}}){_SEP}(\d{{1,2}}){_SEP}(\d{{1,2}})$")
_YM = re.compile(rf"^(\d{{4}}){_SEP}(\d{{1,2}})$")
_Y = re.compile(r"^(\d{4})$")
_NUMERIC = re.compile(rf"^(\d{{1,2}}){_SEP}(\d{{1,2}}){_SEP}(\d{{2}}|\d{{4}})$")
_MY = re.compile(rf"^(\d{{1,2}}){_SEP}(\d{{4}})$")
_D_MON_Y = re.compile(rf"^(\d{{1,2}}){_SEP}([a-z]+)\.?{_SEP}(\d{{2}}|\d{{4}})$")
_MON_D_Y = re.compile(rf"^([a-z]+)\.?{_SEP}(\d{{1,2}}),?{_SEP}(\d{{4}})$")
_MON_Y = re.compile(rf"^([a-z]+)\.?{_SEP}(\d{{2}}|\d{{4}})$")
_TIME = re.compile(r"[T\s]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")

DAY_FIRST, MONTH_FIRST = "day-first", "month-first"
# The strptime format a detected order stands for, per separator and digits of the year.
ORDER_FORMATS = {DAY_FIRST: "%d{sep}%m{sep}{year}", MONTH_FIRST: "%m{sep}%d{sep}{year}"}


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:  # as strptime's %y reads it: 69-99 are 1900s, 00-68 2000s
        year += 1900 if year >= 69 else 2000
    return year


def _make(year: int, month: int = 1, day: int = 1, precision: str = "day") -> PrecisionDate:
    try:
        date = PrecisionDate(year, month, day)
    except ValueError as exc:
        raise _NoSuchDay(str(exc)) from None
    date.precision = precision
    return date


def _clean(text: str) -> str:
    text = fold(text)
    text = re.sub(r"\bde(l)?\b", " ", text)  # "13 de julio de 2015"
    text = _TIME.sub("", text.strip())
    return " ".join(text.split())


def _numeric_parts(text: str) -> tuple[int, int, str] | None:
    match = _NUMERIC.match(_clean(text))
    return (int(match[1]), int(match[2]), match[3]) if match else None


def read_date(value: Any, fmt: str | None = None, order: str | None = None) -> PrecisionDate:
    """A date and how much of it was given; `fmt` (strptime) or `order` settle 03/04/2015."""
    try:
        return _read_date(value, fmt, order)
    except _NoSuchDay as exc:
        raise CellError(f"{as_text(value)!r} is no date: {exc}.") from None


def _read_date(value: Any, fmt: str | None, order: str | None) -> PrecisionDate:
    if isinstance(value, dt.datetime):
        return _make(value.year, value.month, value.day)
    if isinstance(value, dt.date):
        return _make(value.year, value.month, value.day)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value).is_integer() and 1000 <= value <= 9999:
            return _make(int(value), precision="year")
        raise CellError(f"{as_text(value)!r} is not a date.")
    text = as_text(value)
    if fmt:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            partial = _partial(_clean(text))
            if partial is not None:
                return partial
            raise CellError(f"{text!r} does not match the date format {fmt!r}.") from None
        return _make(parsed.year, parsed.month, parsed.day, format_precision(fmt))
    clean = _clean(text)
    partial = _partial(clean)
    if partial is not None:
        return partial
    if match := _YMD.match(clean):
        return _make(int(match[1]), int(match[2]), int(match[3]))
    if match := _NUMERIC.match(clean):
        first, second, year = int(match[1]), int(match[2]), _year(match[3])
        month_first = order == MONTH_FIRST or (order is None and first <= 12 < second)
        day, month = (second, first) if month_first else (first, second)
        return _make(year, month, day)
    if (match := _D_MON_Y.match(clean)) and match[2] in MONTHS:
        return _make(_year(match[3]), MONTHS[match[2]], int(match[1]))
    if (match := _MON_D_Y.match(clean)) and match[1] in MONTHS:
        return _make(int(match[3]), MONTHS[match[1]], int(match[2]))
    if (match := _MON_Y.match(clean)) and match[1] in MONTHS:
        return _make(_year(match[2]), MONTHS[match[1]], precision="month")
    raise CellError(
        f"{text!r} is not a date this import can read (such as 2015-07-13, 13/07/2015, "
        "11-Jan-07, 07/2015 or 2015); give its format in date_formats."
    )


def _partial(clean: str) -> PrecisionDate | None:
    """A date given only to the year (2015) or the month (2015-07, 07/2015)."""
    if match := _Y.match(clean):
        return _make(int(match[1]), precision="year")
    if match := _YM.match(clean):
        return _make(int(match[1]), int(match[2]), precision="month")
    if match := _MY.match(clean):
        return _make(int(match[2]), int(match[1]), precision="month")
    return None


def format_precision(fmt: str) -> str:
    if "%d" in fmt or "%j" in fmt:
        return "day"
    if any(code in fmt for code in ("%m", "%b", "%B")):
        return "month"
    return "year"


def check_format(fmt: str) -> str | None:
    """Why `fmt` is no usable strptime format for a date, or None when it is."""
    if not any(code in fmt for code in ("%Y", "%y")):
        return "A date format needs the year (%Y or %y)."
    sample = dt.date(2015, 7, 13)
    try:
        written = sample.strftime(fmt)
        dt.datetime.strptime(written, fmt)
    except ValueError as exc:
        return f"Not a valid strptime format: {exc}."
    return None


class OrderEvidence:
    """What a column's values say about day-first against month-first."""

    def __init__(self) -> None:
        self.day_first: int | None = None  # row of the first value only day-first reads
        self.month_first: int | None = None
        self.ambiguous: int = 0
        self.example: str | None = None

    def add(self, row: int, value: Any) -> None:
        if not isinstance(value, str):
            return
        parts = _numeric_parts(value)
        if parts is None:
            return
        first, second, _ = parts
        if self.example is None:
            self.example = value.strip()
        if first > 12 and second <= 12:
            self.day_first = self.day_first or row
        elif second > 12 and first <= 12:
            self.month_first = self.month_first or row
        elif first <= 12 and second <= 12 and first != second:
            self.ambiguous += 1

    @property
    def order(self) -> str | None:
        if self.month_first and not self.day_first:
            return MONTH_FIRST
        if self.example is None:
            return None
        return DAY_FIRST

    @property
    def conflict(self) -> bool:
        return bool(self.day_first and self.month_first)

    @property
    def undecided(self) -> bool:
        """Dates such as 03/04/2015 and nothing to tell which order they follow."""
        return bool(self.ambiguous) and not self.day_first and not self.month_first

    def format(self) -> str | None:
        """The strptime format of the column's numeric dates, in the order the data show."""
        if self.order is None or self.example is None:
            return None
        clean = self.example.strip()
        sep = re.search(r"[-/.\s]", clean)
        year = clean.split(sep[0])[-1] if sep else ""
        template = ORDER_FORMATS[self.order]
        return template.format(sep=sep[0] if sep else "/", year="%Y" if len(year) == 4 else "%y")
