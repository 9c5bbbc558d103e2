"""Every count that grows with a document is capped while parsing, and zip
bombs are refused before anything is unpacked: the parsing functions alone,
in this process (the sandbox around them is tested in test_sandbox)."""

import io
import os
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator

import pytest
from pypdf import PdfWriter

from hostile_documents import (
    cell_row,
    deeply_nested_docx,
    docx_with_body,
    huge_dimension_xlsx,
    many_paragraphs_docx,
    paragraph,
    quadratic_html,
    xlsx_with_sheet,
    zip_bomb_docx,
    zip_bomb_xlsx,
)
from supportdesk_ingest.errors import ParseLimitExceeded, UnreadableDocument
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.parsing import extract_text

MB = 1024 * 1024


@pytest.fixture
def peak_memory() -> Iterator[Callable[[], int]]:
    """Peak bytes Python allocated during the test."""
    tracemalloc.start()
    yield lambda: tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()


def test_an_xlsx_is_read_by_its_cells_not_its_declared_dimension(peak_memory: Callable[[], int]) -> None:
    started = time.perf_counter()
    text = extract_text("delivery.xlsx", huge_dimension_xlsx())
    assert time.perf_counter() - started < 1, "rows padded to the declared A1:XFD5000"
    assert peak_memory() < 20 * MB
    assert text == "# Delivery\n\ncountry: France · days: 4\n\ncountry: Spain"


def test_cells_up_to_a_far_column_count_against_the_cap(peak_memory: Callable[[], int]) -> None:
    far = b"".join(f'<row r="{r}"><c r="XFD{r}"><v>1</v></c></row>'.encode() for r in range(1, 5001))
    with pytest.raises(ParseLimitExceeded, match="more than the 100,000 cells allowed"):
        extract_text("far.xlsx", xlsx_with_sheet("A1:XFD5000", far), ParseLimits(max_cells=100_000))
    assert peak_memory() < 20 * MB


def test_a_row_far_below_the_others_costs_a_cell_per_row_skipped() -> None:
    rows = cell_row(1, "country") + cell_row(1_048_576, "France")
    with pytest.raises(ParseLimitExceeded, match="cells allowed"):
        extract_text("tall.xlsx", xlsx_with_sheet("A1", rows), ParseLimits(max_cells=10_000))


@pytest.mark.parametrize(
    ("name", "build", "entry"),
    [("bomb.docx", zip_bomb_docx, "word/document.xml"), ("bomb.xlsx", zip_bomb_xlsx, "xl/worksheets/sheet1.xml")],
)
def test_zip_bombs_are_refused_before_anything_is_unpacked(
    name: str, build: Callable[[], bytes], entry: str, peak_memory: Callable[[], int]
) -> None:
    data = build()
    tracemalloc.reset_peak()
    with pytest.raises(ParseLimitExceeded, match=rf"{entry} is compressed 1,\d\d\d:1, more than the 100:1 allowed"):
        extract_text(name, data)
    assert peak_memory() < 5 * MB


def test_an_archive_may_unpack_to_so_much_and_hold_so_many_entries() -> None:
    random_text = os.urandom(MB).hex().encode()  # 2 MB that barely compresses
    with pytest.raises(ParseLimitExceeded, match=r"the archive unpacks to \d MB, more than the 1 MB allowed"):
        extract_text(
            "big.docx", docx_with_body(paragraph(random_text.decode())), ParseLimits(zip_max_uncompressed_mb=1)
        )

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(30):
            archive.writestr(f"part{i}.xml", b"<a/>")
    with pytest.raises(ParseLimitExceeded, match="30 entries, more than the 20 allowed"):
        extract_text("many.xlsx", buffer.getvalue(), ParseLimits(zip_max_entries=20))


def test_a_docx_of_too_many_paragraphs_is_refused_before_they_are_read() -> None:
    data = many_paragraphs_docx(101_000)  # 900 KB; python-docx took 7 s to read it
    started = time.perf_counter()
    with pytest.raises(ParseLimitExceeded, match="more than the 100,000 paragraphs allowed"):
        extract_text("long.docx", data)
    assert time.perf_counter() - started < 3


def test_a_docx_of_too_many_elements_is_refused() -> None:
    runs = b"<w:p>" + b"<w:r><w:t>a</w:t></w:r>" * 600 + b"</w:p>"
    with pytest.raises(ParseLimitExceeded, match="more than the 1,000 XML elements allowed"):
        extract_text("runs.docx", docx_with_body(runs), ParseLimits(max_xml_elements=1_000))


def test_a_deeply_nested_docx_is_unreadable() -> None:
    with pytest.raises(UnreadableDocument, match=r"^cannot read \.docx file: Excessive depth"):
        extract_text("deep.docx", deeply_nested_docx())


def test_a_pdf_of_too_many_pages_is_refused() -> None:
    writer = PdfWriter()
    for _ in range(11):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ParseLimitExceeded, match="more than the 10 pages allowed"):
        extract_text("pages.pdf", buffer.getvalue(), ParseLimits(max_pages=10))


def test_html_that_made_html_parser_quadratic_is_read_at_once() -> None:
    started = time.perf_counter()
    assert extract_text("hours.html", quadratic_html()) == "Opening hours: 9-5"
    assert time.perf_counter() - started < 1


def test_html_of_too_many_elements_is_refused() -> None:
    with pytest.raises(ParseLimitExceeded, match="more than the 1,000 elements allowed"):
        extract_text("tags.html", b"<b>x</b>" * 2_000, ParseLimits(max_html_elements=1_000))


def test_csv_rows_cells_and_fields_are_capped() -> None:
    rows = b"plan,price\n" + b"Basic,10 EUR\n" * 20
    with pytest.raises(ParseLimitExceeded, match="more than the 10 rows allowed"):
        extract_text("plans.csv", rows, ParseLimits(max_rows=10))
    with pytest.raises(ParseLimitExceeded, match="more than the 30 cells allowed"):
        extract_text("plans.csv", rows, ParseLimits(max_cells=30))
    with pytest.raises(UnreadableDocument, match=r"^cannot read \.csv file: field larger than field limit \(1000\)"):
        extract_text("wide.csv", b"a,b\n" + b"x" * 2_000 + b",y\n", ParseLimits(max_csv_field_chars=1_000))


def test_text_is_capped_however_it_is_made() -> None:
    # A wide header is repeated in every row's sentence: 100 KB of csv, 5 MB of text.
    header = ",".join(f"column {i:04} with a long descriptive name" for i in range(100))
    data = (header + "\n" + "\n".join([",".join(["x"] * 100)] * 500)).encode()
    assert len(data) < 120_000
    with pytest.raises(ParseLimitExceeded, match="the text is longer than the 1,000,000 characters allowed"):
        extract_text("wide.csv", data, ParseLimits(max_text_chars=1_000_000))
    with pytest.raises(ParseLimitExceeded, match="longer than the 1,000 characters"):
        extract_text("notes.txt", b"a" * 1_001, ParseLimits(max_text_chars=1_000))
    assert extract_text("notes.txt", b"a" * 1_000, ParseLimits(max_text_chars=1_000)) == "a" * 1_000
