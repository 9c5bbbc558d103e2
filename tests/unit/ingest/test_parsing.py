import io

import docx
import openpyxl
import pytest

from supportdesk_ingest.parsing import UnreadableDocument, extract_text


def test_plain_text_and_markdown() -> None:
    assert "Returns" in extract_text("faq.md", b"# Returns\n\nWithin 30 days.")
    assert extract_text("notes.txt", "caf\xe9".encode("cp1252")) == "caf\xe9"


def test_html_drops_scripts() -> None:
    text = extract_text("page.html", b"<html><script>evil()</script><p>Opening hours: 9-5</p></html>")
    assert "Opening hours" in text
    assert "evil" not in text


def test_csv_rows_name_their_columns() -> None:
    text = extract_text("plans.csv", b"plan,price\nBasic,10 EUR\nPro,30 EUR\n")
    assert "plan: Pro; price: 30 EUR." in text


def test_docx_and_xlsx() -> None:
    document = docx.Document()
    document.add_paragraph("Warranty lasts one year.")
    buffer = io.BytesIO()
    document.save(buffer)
    assert "Warranty lasts one year." in extract_text("w.docx", buffer.getvalue())

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["country", "days"])
    sheet.append(["France", 4])
    buffer = io.BytesIO()
    book.save(buffer)
    assert "country: France; days: 4." in extract_text("s.xlsx", buffer.getvalue())


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not a pdf", "cannot read .pdf"),
        ("broken.docx", b"PK\x03\x04garbage", "cannot read .docx"),
        ("broken.xlsx", b"not a zip", "cannot read .xlsx"),
        ("empty.txt", b"   \n", "no text"),
        ("image.png", b"\x89PNG", "unsupported file type .png"),
    ],
)
def test_bad_documents_give_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableDocument, match=reason):
        extract_text(name, data)
