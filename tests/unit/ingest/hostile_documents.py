"""Hostile documents, built by the tests (no binary fixtures): each one took
the ingest worker down before parsing was sandboxed and capped."""

import io
import os
import zipfile
from functools import cache

import docx

W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
MB = 1024 * 1024


def _zip(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx_with_body(body: bytes) -> bytes:
    """A real docx (python-docx's own template) whose document.xml holds `body`."""
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    template = zipfile.ZipFile(buffer)
    parts = {name: template.read(name) for name in template.namelist()}
    parts["word/document.xml"] = (
        b'<?xml version="1.0"?><w:document ' + W + b"><w:body>" + body + b"</w:body></w:document>"
    )
    return _zip(parts)


def paragraph(text: str) -> bytes:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode()


def many_paragraphs_docx(count: int) -> bytes:
    """Random words, so that it compresses like a real document (~3:1) and
    only its paragraph count gives it away."""
    return docx_with_body(b"".join(paragraph(os.urandom(6).hex()) for _ in range(count)))


def deeply_nested_docx(depth: int = 1_000) -> bytes:
    """Deeper than libxml2 parses (256), small enough to pass the zip checks."""
    return docx_with_body(b"<w:sdt><w:sdtContent>" * depth + paragraph("deep") + b"</w:sdtContent></w:sdt>" * depth)


@cache
def zip_bomb_docx(megabytes: int = 100) -> bytes:
    """A valid docx whose document.xml is `megabytes` of blanks: ~1,000:1."""
    valid = zipfile.ZipFile(io.BytesIO(docx_with_body(paragraph("bomb"))))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in valid.namelist():
            if name != "word/document.xml":
                archive.writestr(name, valid.read(name))
        with archive.open("word/document.xml", "w") as document:
            document.write(b'<?xml version="1.0"?><w:document ' + W + b"><w:body>")
            blanks = b" " * MB
            for _ in range(megabytes):
                document.write(blanks)
            document.write(paragraph("bomb") + b"</w:body></w:document>")
    return buffer.getvalue()


_XLSX_PARTS = {
    "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    b'+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
    b'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    b'spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": b'<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
    b'2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    b'<sheet name="Delivery" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    b'2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
}


def xlsx_with_sheet(dimension: str, rows: bytes) -> bytes:
    sheet = (
        b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + f'<dimension ref="{dimension}"/>'.encode()
        + b"<sheetData>"
        + rows
        + b"</sheetData></worksheet>"
    )
    return _zip({**_XLSX_PARTS, "xl/worksheets/sheet1.xml": sheet})


def cell_row(row: int, *values: str) -> bytes:
    cells = "".join(
        f'<c r="{chr(ord("A") + i)}{row}" t="inlineStr"><is><t>{value}</t></is></c>' for i, value in enumerate(values)
    )
    return f'<row r="{row}">{cells}</row>'.encode()


def huge_dimension_xlsx() -> bytes:
    """1.5 KB declaring A1:XFD5000, with five real cells, the last in row
    5000: openpyxl padded every row to 16,384 cells (6 s, 700 MB)."""
    rows = cell_row(1, "country", "days") + cell_row(2, "France", "4") + cell_row(5000, "Spain")
    return xlsx_with_sheet("A1:XFD5000", rows)


def zip_bomb_xlsx(megabytes: int = 50) -> bytes:
    """A sheet padded with `megabytes` of blanks between two real rows."""
    rows = cell_row(1, "country", "days") + b" " * (megabytes * MB) + cell_row(2, "France", "4")
    return xlsx_with_sheet("A1:B2", rows)


def quadratic_html(repeats: int = 40_000) -> bytes:
    """The standard library's html.parser (under BeautifulSoup) is quadratic
    on unclosed comments: 160 KB of this took 20 s."""
    return b"<p>Opening hours: 9-5</p>" + b"<!--" * repeats
