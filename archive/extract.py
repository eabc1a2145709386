"""The text of archived files (plain text, HTML, PDF), for search and nothing else.

Extraction never fails an upload: a file that cannot be read, or a kind this module does not
read (images, archives), gives None, and a malformed one is logged. PDFs are read with pypdf
(pure Python, no dependencies, actively maintained); HTML with lxml (libxml2's forgiving parser,
fast enough for the largest upload); text is decoded as UTF-8, else as Windows-1252 (whose
printable characters include all of Latin-1's), else as Latin-1 itself.
"""

from __future__ import annotations

import codecs
import functools
import io
import logging
import mimetypes
import re
import sys
import unicodedata

import lxml.html
import pypdf

log = logging.getLogger(__name__)

# About 400 pages of prose; configurable as EXTRACTED_TEXT_MAX_CHARS.
DEFAULT_MAX_CHARS = 1_000_000

HTML_TYPES = {"text/html", "application/xhtml+xml"}
PDF_TYPES = {"application/pdf"}
TEXT_TYPES = {"application/json", "application/x-ndjson"}
UNREAD_TEXT_TYPES = {"text/xml"}  # markup, but not HTML: its tags would pass for words

# Their content is never shown on the page.
HIDDEN_TAGS = ("script", "style", "template")
# Elements that a browser sets on their own line, so that their words never run together.
# fmt: off
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "legend", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
})
# fmt: on

BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)
WHITESPACE = re.compile(r"\s+")
# PDFs often set "fi", "fl"… as one glyph; NFC keeps them, and then "confirmó" is not found.
LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"}
)


def kind_of(media_type: str | None, filename: str | None) -> str | None:
    """Which reader a file needs: "pdf", "html", "text", or None when none of them."""
    kinds = [(media_type or "").split(";")[0].strip().lower()]
    if filename:
        kinds.append(mimetypes.guess_type(filename)[0] or "")
    for kind in kinds:
        if kind in PDF_TYPES:
            return "pdf"
        if kind in HTML_TYPES:
            return "html"
        if kind in TEXT_TYPES or (kind.startswith("text/") and kind not in UNREAD_TEXT_TYPES):
            return "text"
    return None


def extract_text(
    data: bytes,
    media_type: str | None,
    filename: str | None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str | None:
    """The file's readable text, normalised and at most `max_chars` long; None if unreadable."""
    kind = kind_of(media_type, filename)
    if kind is None:
        return None
    try:
        if kind == "pdf":
            text = _pdf_text(data, max_chars)
        elif kind == "html":
            text = _html_text(data)
        else:
            text = _plain_text(data)
    except Exception as exc:  # a malformed file must never fail the upload
        log.warning(
            "No text extracted from %r (%s): %s: %s", filename, kind, type(exc).__name__, exc
        )
        return None
    if text is None:
        return None
    return normalise(text, max_chars)


def normalise(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """NFC, no control or format characters, whitespace collapsed, cut at a word boundary."""
    # Whitespace shrinks to one space, so four times the limit is more than enough to read.
    text = text[: 4 * max_chars + 1000]
    text = unicodedata.normalize("NFC", _invisible().sub("", text.translate(LIGATURES)))
    text = WHITESPACE.sub(" ", text).strip()
    if len(text) > max_chars:
        cut = text[: max_chars + 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > max_chars // 2 else cut[:max_chars]).rstrip()
    return text


# The code points _invisible() removes, as (first, last) ranges, for the Unicode version
# they were read from: scanning all 1.1 million code points costs a process 0.2 to 0.8 s,
# once. Another version of Python's Unicode data is scanned instead (tests check the two
# agree).
INVISIBLE_UNIDATA_VERSION = "14.0.0"
INVISIBLE_RANGES = (
    (0x0000, 0x0008), (0x000E, 0x001B), (0x007F, 0x0084), (0x0086, 0x009F), (0x00AD, 0x00AD),
    (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0xD800, 0xDFFF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip


@functools.cache
def _invisible() -> re.Pattern[str]:
    """Control, format (soft hyphens, zero widths, marks) and surrogate code points."""
    if unicodedata.unidata_version == INVISIBLE_UNIDATA_VERSION:
        ranges = INVISIBLE_RANGES
    else:
        ranges = invisible_ranges()
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


def invisible_ranges() -> tuple[tuple[int, int], ...]:
    """The ranges of control, format and surrogate code points that are not whitespace, read
    from Python's Unicode data."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf", "Cs") and not char.isspace():
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return tuple((a, b) for a, b in ranges)


def decode(data: bytes, declared: str | None = None) -> str | None:
    """Bytes as text: by their byte-order mark, else UTF-8, else the encoding the file
    declares, else Windows-1252 or Latin-1."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data:
        return None  # binary, or UTF-16 without a mark: not text this module can trust
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return data.decode("latin-1")


def _plain_text(data: bytes) -> str | None:
    return decode(data)


def _html_text(data: bytes) -> str | None:
    declared = META_CHARSET.search(data[:4096])
    markup = decode(data, declared and declared.group(1).decode("ascii"))
    if markup is None:
        return None
    # lxml refuses a str that declares its own encoding; the bytes are decoded already.
    markup = XML_DECLARATION.sub("", markup, count=1)
    if not markup.strip():
        return ""
    document = lxml.html.document_fromstring(markup)
    for element in list(document.iter(*HIDDEN_TAGS)):
        element.drop_tree()  # keeps the text that follows the element
    for element in document.iter():
        if isinstance(element.tag, str) and element.tag.lower() in BLOCK_TAGS:
            element.text = " " + (element.text or "")
            element.tail = " " + (element.tail or "")
    return document.text_content()


def _pdf_text(data: bytes, max_chars: int) -> str | None:
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        log.info("No text extracted from an encrypted PDF that needs a password.")
        return None
    pages, length = [], 0
    for page in reader.pages:
        text = page.extract_text() or ""
        pages.append(text)
        length += len(text)
        if length > max_chars:  # the rest would be cut anyway
            break
    return "\n".join(pages)
