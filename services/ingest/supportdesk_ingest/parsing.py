"""Text out of the supported document formats."""

import csv
import io
import zipfile
from pathlib import PurePath

import docx
import openpyxl
from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PyPdfError


class UnreadableDocument(ValueError):
    """The bytes are not a readable document of the type its name says."""


def extension_of(filename: str) -> str:
    return PurePath(filename).suffix.lower()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _pdf(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n\n".join(page.extract_text() or "" for page in reader.pages)


def _docx(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    return "\n\n".join(p.text for p in document.paragraphs if p.text.strip())


def _xlsx(data: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    lines = []
    for sheet in book.worksheets:
        rows = [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)]
        lines += _rows_as_text(rows)
    return "\n\n".join(lines)


def _rows_as_text(rows: list[list[str]]) -> list[str]:
    """Each row becomes a sentence naming its columns, which embeds far better
    than bare cells."""
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if not body:
        return [", ".join(header) + "."]
    return [
        "; ".join(f"{h.strip()}: {v.strip()}" for h, v in zip(header, row, strict=False) if v.strip()) + "."
        for row in body
    ]


def _csv(data: bytes) -> str:
    return "\n\n".join(_rows_as_text(list(csv.reader(io.StringIO(_decode(data))))))


def _html(data: bytes) -> str:
    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "nav", "footer"]):
        tag.decompose()
    return soup.get_text("\n\n", strip=True)


def extract_text(filename: str, data: bytes) -> str:
    ext = extension_of(filename)
    try:
        match ext:
            case ".txt" | ".md":
                text = _decode(data)
            case ".html" | ".htm":
                text = _html(data)
            case ".csv":
                text = _csv(data)
            case ".pdf":
                text = _pdf(data)
            case ".docx":
                text = _docx(data)
            case ".xlsx":
                text = _xlsx(data)
            case _:
                raise UnreadableDocument(f"unsupported file type {ext or '(none)'}")
    except (PyPdfError, zipfile.BadZipFile, KeyError, ValueError, OSError, csv.Error) as exc:
        if isinstance(exc, UnreadableDocument):
            raise
        # docx/xlsx are zip files: a corrupt one raises zipfile/KeyError/ValueError.
        raise UnreadableDocument(f"cannot read {ext} file: {exc}") from exc
    if not text.strip():
        raise UnreadableDocument("the document contains no text")
    return text
