"""Text out of the supported document formats: bytes in, text out, nothing
else. Every count that grows with the input is capped (`ParseLimits`); time
and memory are capped by the process this runs in (`sandbox`).

Each parser's library is imported where it is used: a document is parsed in
a fresh process, which then imports only the library its format needs.
"""

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import PurePath
from typing import Any

from supportdesk_ingest.archives import check_zip
from supportdesk_ingest.errors import ParseLimitExceeded, UnreadableDocument
from supportdesk_ingest.limits import ParseLimits

DEFAULT_LIMITS = ParseLimits()
HTML_FEED_CHARS = 64 * 1024
_DEFAULT_SHEET = re.compile(r"^(Sheet|Feuil|Tabelle|Hoja)\d*$")
CELL_SEPARATOR = " · "
# Elements whose text is a paragraph of its own.
_HTML_BLOCK_TAGS = (
    "p div section article main header aside blockquote pre dd dt address figcaption caption form fieldset"
)
_HTML_BLOCKS = frozenset(_HTML_BLOCK_TAGS.split())
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# What a corrupt document raises: docx and xlsx are zip archives of XML (a
# broken one raises zipfile, KeyError, ValueError, or SyntaxError, the base
# of lxml's and ElementTree's XML errors); text formats raise csv and
# decoding errors.
READ_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, KeyError, ValueError, OSError, csv.Error, SyntaxError)


class _Text:
    """The document's text as it is extracted, refused as soon as it is longer
    than allowed (a 100-column csv header repeats on every row)."""

    SEPARATOR = "\n\n"

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.chars = 0

    def add(self, piece: str) -> None:
        self.chars += len(piece) + (len(self.SEPARATOR) if self.parts else 0)
        if self.chars > self.max_chars:
            raise ParseLimitExceeded(f"the text is longer than the {self.max_chars:,} characters allowed")
        self.parts.append(piece)

    def joined(self) -> str:
        return self.SEPARATOR.join(self.parts)


class _TableBudget:
    """Rows and cells of one document's tables (every sheet of a workbook)."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.rows = 0
        self.cells = 0

    def non_empty_rows(self, rows: Iterable[Sequence[object]]) -> Iterator[list[str]]:
        for row in rows:
            # Counted before a cell is converted: a row padded to column XFD is
            # 16,384 cells, and a skipped-to row 1,000,000 costs one each row.
            self.cells += max(1, len(row))
            if self.cells > self.limits.max_cells:
                raise ParseLimitExceeded(f"the document has more than the {self.limits.max_cells:,} cells allowed")
            values = ["" if value is None else str(value) for value in row]
            if any(value.strip() for value in values):
                self.rows += 1
                if self.rows > self.limits.max_rows:
                    raise ParseLimitExceeded(f"the document has more than the {self.limits.max_rows:,} rows allowed")
                yield values


def extension_of(filename: str) -> str:
    return PurePath(filename).suffix.lower()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _at_most(items: Iterable[object], limit: int, what: str) -> None:
    if sum(1 for _ in islice(items, limit + 1)) > limit:
        raise ParseLimitExceeded(f"the document has more than the {limit:,} {what} allowed")


_SETEXT_RULE = re.compile(r"[ \t]*(=+|-+)[ \t]*")
_MAX_HEADING_WORDS = 12


def _caps_heading(line: str) -> bool:
    """A line written in capitals, short and with no sentence's end: how
    plain-text documents mark their sections ("HOW TO REACH US")."""
    letters = [c for c in line if c.isalpha()]
    return (
        len(letters) >= 3
        and all(c.isupper() for c in letters)
        and len(line.split()) <= _MAX_HEADING_WORDS
        and not line.rstrip().endswith((".", "!", "?", ",", ";"))
    )


def _plain_headings(raw: str) -> str:
    """Plain text in the chunker's markdown: a line in capitals standing
    alone, or underlined with === or --- (setext), becomes a heading, so
    that its section's chunks carry it and never mix with the next section.
    All at one level: nothing tells a title from a section."""
    lines = raw.splitlines()
    out: list[str] = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        before = out[-1].strip() if out else ""
        after = lines[number + 1].strip() if number + 1 < len(lines) else ""
        if stripped and not before and _SETEXT_RULE.fullmatch(after) and len(stripped.split()) <= _MAX_HEADING_WORDS:
            out.append(f"## {stripped}")
        elif _SETEXT_RULE.fullmatch(line) and out and out[-1].startswith("#"):
            continue  # the rule under a heading just written
        elif stripped and not before and not after and _caps_heading(stripped):
            out.append(f"## {stripped}")
        else:
            out.append(line)
    return "\n".join(out)


def _plain(data: bytes, limits: ParseLimits, text: _Text) -> None:
    text.add(_plain_headings(_decode(data)))


def _pdf(data: bytes, limits: ParseLimits, text: _Text) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        _at_most(reader.pages, limits.max_pages, "pages")
        for page in reader.pages:
            text.add(page.extract_text() or "")
    except PyPdfError as exc:
        raise UnreadableDocument(f"cannot read .pdf file: {exc}") from exc


def _docx(data: bytes, limits: ParseLimits, text: _Text) -> None:
    check_zip(data, limits)
    import docx
    from docx.oxml.ns import qn

    document = docx.Document(io.BytesIO(data))
    body = document.element.body
    # Counted on the parsed tree, before python-docx builds a proxy per
    # paragraph and run (~70 µs each: a million paragraphs fit in 130 KB).
    _at_most(body.iter(), limits.max_xml_elements, "XML elements")
    _at_most(body.iterchildren(qn("w:p")), limits.max_paragraphs, "paragraphs")
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            _table_as_text([[cell.text for cell in row.cells] for row in block.rows], text)
        elif line := block.text.strip():
            style = block.style.name if block.style is not None else ""
            text.add(_docx_line(line, style or "", block._p.pPr is not None and block._p.pPr.numPr is not None))


def _docx_line(line: str, style: str, numbered: bool) -> str:
    """A paragraph in the chunker's markdown: headings by their level,
    list paragraphs (by style or numbering) as items."""
    if style == "Title":
        return f"# {line}"
    if style.startswith("Heading ") and style[8:].isdigit():
        return "#" * min(int(style[8:]), 6) + f" {line}"
    if numbered or style.startswith("List"):
        return f"- {line}"
    return line


def _xlsx(data: bytes, limits: ParseLimits, text: _Text) -> None:
    check_zip(data, limits)
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        budget = _TableBudget(limits)
        for sheet in book.worksheets:
            # A sheet's declared dimension is not checked against its cells:
            # openpyxl would pad every row to it (A1:XFD5000 is 82 million
            # cells from 1.5 KB). Without it each row ends at its last cell.
            sheet.reset_dimensions()
            if not _DEFAULT_SHEET.match(sheet.title):
                text.add(f"# {sheet.title}")
            _rows_as_text(budget.non_empty_rows(sheet.iter_rows(values_only=True)), text)
    finally:
        book.close()


def _rows_as_text(rows: Iterable[list[str]], text: _Text) -> None:
    """Each row becomes a sentence naming its columns, which embeds far better
    than bare cells."""
    header: list[str] | None = None
    has_body = False
    for row in rows:
        if header is None:
            header = row
            continue
        has_body = True
        text.add(CELL_SEPARATOR.join(_named_cells(header, row)))
    if header is not None and not has_body:
        text.add(", ".join(header) + ".")


def _named_cells(header: Sequence[str], row: Sequence[str]) -> Iterator[str]:
    for name, value in zip(header, row, strict=False):
        if value := " ".join(value.split()):
            yield f"{name.strip()}: {value}" if name.strip() else value


def _table_as_text(rows: list[list[str]], text: _Text) -> None:
    """A table in a document (docx, html): its rows named by its first row,
    written out as the chunker keeps them, one row whole."""
    header = [" ".join(cell.split()) for cell in rows[0]] if rows else []
    for row in rows[1:]:
        if named := CELL_SEPARATOR.join(_named_cells(header, row)):
            text.add(named)
    if header and len(rows) == 1:
        text.add(", ".join(header))


def _csv(data: bytes, limits: ParseLimits, text: _Text) -> None:
    # Process-wide, which is fine: a document is parsed in a process of its own.
    csv.field_size_limit(limits.max_csv_field_chars)
    budget = _TableBudget(limits)
    _rows_as_text(budget.non_empty_rows(csv.reader(io.StringIO(_decode(data)))), text)


def _html(data: bytes, limits: ParseLimits, text: _Text) -> None:
    # libxml2's HTML parser, not the standard library's: html.parser is
    # quadratic on some malformed input on this Python (120 KB of
    # "<a b='" takes over a minute). Fed in slices so that elements are
    # counted while the tree grows, not after.
    from lxml import etree

    parser = etree.HTMLPullParser(events=("start",))
    source = _decode(data)
    elements = 0
    for start in range(0, len(source), HTML_FEED_CHARS):
        parser.feed(source[start : start + HTML_FEED_CHARS])
        elements += sum(1 for _ in parser.read_events())
        if elements > limits.max_html_elements:
            raise ParseLimitExceeded(f"the document has more than the {limits.max_html_elements:,} elements allowed")
    root = parser.close()
    if root is None:
        return
    etree.strip_elements(
        root, "script", "style", "nav", "footer", etree.Comment, etree.ProcessingInstruction, with_tail=False
    )
    _HtmlBlocks(text).walk(root)


class _HtmlBlocks:
    """An HTML tree as the chunker reads text: headings as `#` lines, list
    items as `- ` lines, table rows named by their header cells, and every
    other block element a paragraph of its own."""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.inline: list[str] = []

    def flush(self) -> None:
        if line := " ".join("".join(self.inline).split()):
            self.text.add(line)
        self.inline.clear()

    @staticmethod
    def words(element: Any) -> str:
        return " ".join("".join(element.itertext()).split())

    def walk(self, element: Any) -> None:
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag in _HTML_HEADINGS or tag in ("li", "table", "br") or tag in _HTML_BLOCKS:
            self.flush()
        if tag in _HTML_HEADINGS:
            if words := self.words(element):
                self.text.add("#" * _HTML_HEADINGS[tag] + f" {words}")
        elif tag == "table":
            # This table's own rows and cells: a nested table's are its own.
            own_rows = element.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")
            rows = [[self.words(cell) for cell in row.xpath("./td|./th")] for row in own_rows]
            _table_as_text([row for row in rows if any(row)], self.text)
        elif tag == "li":
            # The item's own words (a nested list's tail included), then the nested lists' items.
            parts, nested = [element.text or ""], []
            for child in element:
                if isinstance(child.tag, str) and child.tag.lower() in ("ul", "ol"):
                    nested.append(child)
                else:
                    parts.append("".join(child.itertext()))
                parts.append(child.tail or "")
            if words := " ".join("".join(parts).split()):
                self.text.add(f"- {words}")
            for child in nested:
                self.walk(child)
        else:
            if element.text:
                self.inline.append(element.text)
            for child in element:
                self.walk(child)
                if child.tail:
                    self.inline.append(child.tail)
            if tag in _HTML_BLOCKS or tag in ("html", "body"):
                self.flush()


READERS: dict[str, Callable[[bytes, ParseLimits, _Text], None]] = {
    ".txt": _plain,
    ".md": _plain,
    ".html": _html,
    ".htm": _html,
    ".csv": _csv,
    ".pdf": _pdf,
    ".docx": _docx,
    ".xlsx": _xlsx,
}


def extract_text(filename: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> str:
    """The text of a document, or `UnreadableDocument` with the reason
    (`ParseLimitExceeded` when it breaks a limit)."""
    ext = extension_of(filename)
    reader = READERS.get(ext)
    if reader is None:
        raise UnreadableDocument(f"unsupported file type {ext or '(none)'}")
    text = _Text(limits.max_text_chars)
    try:
        reader(data, limits, text)
    except UnreadableDocument:
        raise
    except READ_ERRORS as exc:
        raise UnreadableDocument(f"cannot read {ext} file: {exc}") from exc
    result = text.joined()
    if not result.strip():
        raise UnreadableDocument("the document contains no text")
    return result
