"""The parse process: each document parsed in a child of its own, killed at
its limits, reaped; the worker's event loop and memory untouched meanwhile."""

import asyncio
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl
import pytest
from pypdf import PdfWriter

from builders import watching
from hostile_documents import huge_dimension_xlsx, zip_bomb_docx
from supportdesk_ingest.errors import ParseLimitExceeded, UnreadableDocument
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.sandbox import ParseSandbox

MISBEHAVING = Path(__file__).with_name("misbehaving_parser.py")
MB = 1024 * 1024


def misbehaving(mode: str, *args: str) -> list[str]:
    return [sys.executable, "-I", "-B", str(MISBEHAVING), mode, *args]


def children() -> set[int]:
    """This process's child processes, zombies (not yet reaped) included."""
    mine, found = os.getpid(), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == mine:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def new_children() -> Callable[[], set[int]]:
    """Children started since the test began: the test session itself runs
    others (redis-server, the broker) that are not the sandbox's."""
    before = children()
    return lambda: children() - before


def samples() -> dict[str, bytes]:
    """One small, ordinary document of each supported format."""
    document = docx.Document()
    document.add_paragraph("Warranty lasts one year.")
    docx_bytes = io.BytesIO()
    document.save(docx_bytes)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["country", "days"])
    sheet.append(["France", 4])
    xlsx_bytes = io.BytesIO()
    book.save(xlsx_bytes)
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    pdf_bytes = io.BytesIO()
    writer.write(pdf_bytes)
    return {
        "notes.txt": b"Opening hours: 9-5",
        "faq.md": b"# Returns",
        "page.html": b"<p>Opening hours</p>",
        "plans.csv": b"plan,price\nPro,30 EUR\n",
        "blank.pdf": pdf_bytes.getvalue(),
        "warranty.docx": docx_bytes.getvalue(),
        "delivery.xlsx": xlsx_bytes.getvalue(),
    }


async def test_documents_are_parsed_in_a_child_that_is_reaped(new_children: Callable[[], set[int]]) -> None:
    sandbox = ParseSandbox(ParseLimits())
    documents = samples()
    assert await sandbox.extract_text("warranty.docx", documents["warranty.docx"]) == "Warranty lasts one year."
    assert await sandbox.extract_text("hours.md", "Öffnungszeiten: 9-17 \u55b6\u696d \U0001f552".encode()) == (
        "Öffnungszeiten: 9-17 \u55b6\u696d \U0001f552"
    )
    assert await sandbox.extract_text("delivery.xlsx", documents["delivery.xlsx"]) == "country: France · days: 4"
    assert await sandbox.extract_text("hours.xlsx", huge_dimension_xlsx()) == (
        "# Delivery\n\ncountry: France · days: 4\n\ncountry: Spain"
    )
    with pytest.raises(ParseLimitExceeded, match=r"^word/document.xml is compressed 1,\d\d\d:1, more than"):
        await sandbox.extract_text("bomb.docx", zip_bomb_docx())
    with pytest.raises(UnreadableDocument, match=r"^unsupported file type \.png$"):
        await sandbox.extract_text("image.png", b"\x89PNG")
    assert new_children() == set()


@pytest.mark.parametrize("name", list(samples()))
async def test_the_parse_process_never_imports_torch(name: str) -> None:
    sandbox = ParseSandbox(ParseLimits(), misbehaving("modules"))
    modules = set((await sandbox.extract_text(name, samples()[name])).split())
    assert "torch" not in modules
    assert "sentence_transformers" not in modules
    parser = {".docx": "docx", ".xlsx": "openpyxl", ".pdf": "pypdf", ".html": "lxml.etree"}.get(Path(name).suffix)
    assert parser is None or parser in modules, "the format's own parser ran"


async def test_a_parse_that_never_ends_is_killed_at_the_timeout(new_children: Callable[[], set[int]]) -> None:
    sandbox = ParseSandbox(ParseLimits(timeout_seconds=0.5), misbehaving("sleep"))
    started = time.monotonic()
    with pytest.raises(ParseLimitExceeded, match=r"^took longer than the 0.5 s allowed to parse$"):
        await sandbox.extract_text("notes.txt", b"hello")
    assert time.monotonic() - started < 2
    assert new_children() == set(), "killed and reaped"


async def test_a_busy_parse_ends_at_its_cpu_limit_while_the_event_loop_keeps_running() -> None:
    sandbox = ParseSandbox(ParseLimits(cpu_seconds=1, timeout_seconds=10), misbehaving("spin"))
    started = time.monotonic()
    async with watching() as watch:
        with pytest.raises(ParseLimitExceeded, match=r"^used more than the 1 s of CPU time allowed to parse$"):
            await sandbox.extract_text("notes.txt", b"hello")
    assert time.monotonic() - started < 5
    assert watch.longest_gap < 0.5, f"the event loop stalled for {watch.longest_gap:.2f} s"


async def test_a_parse_that_hoards_memory_ends_at_the_memory_limit_outside_this_process() -> None:
    sandbox = ParseSandbox(ParseLimits(memory_mb=256), misbehaving("hoard"))
    async with watching() as watch:
        with pytest.raises(ParseLimitExceeded, match=r"^exceeded the parse memory limit \(256 MB\)$"):
            await sandbox.extract_text("notes.txt", b"x" * (5 * MB))
    assert watch.peak_rss - watch.baseline_rss < 40 * MB
    assert watch.longest_gap < 0.5


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("segfault", r"^the parser crashed \(SIGSEGV\)$"), ("exit_early", r"ended without an answer \(exit status 3\)")],
)
async def test_a_parser_that_crashes_gives_a_reason(
    mode: str, reason: str, new_children: Callable[[], set[int]]
) -> None:
    with pytest.raises(UnreadableDocument, match=reason):
        await ParseSandbox(ParseLimits(), misbehaving(mode)).extract_text("notes.txt", b"hello")
    assert new_children() == set()


async def test_the_parse_process_writes_nothing_to_disk(tmp_path: Path) -> None:
    target = tmp_path / "copy.bin"
    with pytest.raises(UnreadableDocument, match="File too large"):
        await ParseSandbox(ParseLimits(), misbehaving("write", str(target))).extract_text("notes.txt", b"hello")
    assert target.stat().st_size == 0


async def test_a_cancelled_parse_leaves_no_process(new_children: Callable[[], set[int]]) -> None:
    parse = asyncio.create_task(ParseSandbox(ParseLimits(), misbehaving("sleep")).extract_text("notes.txt", b"hello"))
    while not new_children():
        await asyncio.sleep(0.01)
    parse.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parse
    assert new_children() == set()
