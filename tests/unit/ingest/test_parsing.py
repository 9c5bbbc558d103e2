import io

import docx
import openpyxl
import pytest

from supportdesk_ingest.parsing import UnreadableDocument, extract_text
from supportdesk_knowledge.chunking import chunk_document


def test_plain_text_and_markdown() -> None:
    assert "Returns" in extract_text("faq.md", b"# Returns\n\nWithin 30 days.")
    assert extract_text("notes.txt", "caf\xe9".encode("cp1252")) == "caf\xe9"


def test_html_drops_scripts() -> None:
    text = extract_text("page.html", b"<html><script>evil()</script><p>Opening hours: 9-5</p></html>")
    assert "Opening hours" in text
    assert "evil" not in text


def test_csv_rows_name_their_columns() -> None:
    text = extract_text("plans.csv", b"plan,price\nBasic,10 EUR\nPro,30 EUR\n")
    assert "plan: Pro · price: 30 EUR" in text


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
    assert "country: France · days: 4" in extract_text("s.xlsx", buffer.getvalue())


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


def test_html_keeps_its_structure_for_the_chunker() -> None:
    page = b"""<html><body><nav>Home | Shop</nav><h1>Returns</h1><p>You can return <b>most</b> items.</p>
    <h2>Size exchanges</h2><p>To exchange a size:</p><ul><li>Open your order</li><li>Pick a size</li></ul>
    <table><tr><th>Plan</th><th>Window</th></tr><tr><td>Basic</td><td>30 days</td></tr></table>
    <footer>(c) 2026</footer></body></html>"""
    assert extract_text("returns.html", page).split("\n\n") == [
        "# Returns",
        "You can return most items.",
        "## Size exchanges",
        "To exchange a size:",
        "- Open your order",
        "- Pick a size",
        "Plan: Basic · Window: 30 days",
    ]


def test_docx_headings_lists_and_tables_are_kept() -> None:
    document = docx.Document()
    document.add_heading("Care guide", level=1)
    document.add_paragraph("To wash a down jacket:")
    document.add_paragraph("Use a down wash", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table.rows[0].cells + table.rows[1].cells, ["Item", "Dryer", "Down", "3 hours"], strict=True):
        cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    assert extract_text("care.docx", buffer.getvalue()).split("\n\n") == [
        "# Care guide",
        "To wash a down jacket:",
        "- Use a down wash",
        "Item: Down · Dryer: 3 hours",
    ]


def test_a_multi_page_pdf_is_read_page_by_page() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for page in range(1, 4):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {page}: the Trail Tested promise covers packs for {page + 2} years.")
    text = extract_text("promise.pdf", bytes(pdf.output()))
    for page in range(1, 4):
        assert f"Page {page}: the Trail Tested promise covers packs for {page + 2} years." in " ".join(text.split())


def test_plain_text_sections_in_capitals_or_underlined_become_headings() -> None:
    text = (
        "HELP CENTER: FREQUENTLY ASKED QUESTIONS\n\n"
        "These are the questions we hear most.\n\n"
        "HOW TO REACH US\n\n"
        "Live chat is open 7 days a week.\n\n"
        "Paying for your order\n"
        "---------------------\n\n"
        "We accept Visa and PayPal.\n\n"
        "NOTE: THIS LINE IS A SHOUTED SENTENCE.\n"
        "IT GOES ON HERE\n"
    )
    assert extract_text("faq.txt", text.encode()).splitlines() == [
        "## HELP CENTER: FREQUENTLY ASKED QUESTIONS",
        "",
        "These are the questions we hear most.",
        "",
        "## HOW TO REACH US",
        "",
        "Live chat is open 7 days a week.",
        "",
        "## Paying for your order",
        "",
        "We accept Visa and PayPal.",
        "",
        # Sentences in capitals and lines inside a paragraph stay text.
        "NOTE: THIS LINE IS A SHOUTED SENTENCE.",
        "IT GOES ON HERE",
    ]


def test_a_plain_text_section_is_chunked_under_its_heading() -> None:
    text = "SHIPPING\n\nOrders ship in two days.\n\nRETURNS\n\nReturns are accepted within 30 days.\n"
    passages = chunk_document(extract_text("faq.txt", text.encode()))
    assert [(p.section, p.text) for p in passages] == [
        ("SHIPPING", "Orders ship in two days."),
        ("RETURNS", "Returns are accepted within 30 days."),
    ]
