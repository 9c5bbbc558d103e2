"""Builds the evaluation corpus: every document of `eval/corpus/` in the format
an operator would upload.

Text formats (.md, .html, .txt, .csv) are shipped as they are. Binary formats
are generated, so that git holds no binaries and their content can be read
and reviewed as text:

- `name.docx.md` and `name.pdf.md` are a small subset of Markdown (`#` to
  `###` headings, paragraphs, `- ` and `1. ` list items, `|` tables, and `---`
  for a page break) written as a Word document with real Heading and List
  styles and a real table, or as a PDF in Helvetica;
- `name.xlsx.yaml` lists worksheets, each a name and rows, the first row the
  header.

Usage: python eval/build.py OUTDIR
"""

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docx
import openpyxl
import yaml
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from openpyxl.styles import Font

CORPUS = Path(__file__).resolve().parent / "corpus"
SHIPPED = {".md", ".html", ".txt", ".csv"}
GENERATED = {".docx", ".xlsx", ".pdf"}

LIST_ITEM = re.compile(r"^(-|\d+\.) (.+)$")
HEADING = re.compile(r"^(#{1,3}) (.+)$")
TABLE_RULE = re.compile(r"^\|[\s:|-]+\|$")


@dataclass(frozen=True)
class Block:
    """One block of a document outline. `kind` is heading, paragraph, item,
    table or page; `marker` is a list item's "-" or "1."."""

    kind: str
    text: str = ""
    level: int = 0
    marker: str = ""
    rows: tuple[tuple[str, ...], ...] = ()


def parse_outline(source: str) -> list[Block]:
    """The blocks of a Markdown-subset source. Consecutive text lines are one
    paragraph, as in Markdown."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    table: list[tuple[str, ...]] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()
        if table:
            blocks.append(Block("table", rows=tuple(table)))
            table.clear()

    for raw in source.splitlines():
        line = raw.strip()
        is_row = line.startswith("|")
        # A block ends at a blank line, at a line that starts another block,
        # and where a table starts or stops.
        if not line or line == "---" or HEADING.match(line) or LIST_ITEM.match(line) or is_row != bool(table):
            flush()
        if is_row:
            if not TABLE_RULE.match(line):
                table.append(tuple(cell.strip() for cell in line.strip("|").split("|")))
        elif not line:
            continue
        elif line == "---":
            blocks.append(Block("page"))
        elif heading := HEADING.match(line):
            blocks.append(Block("heading", heading.group(2), level=len(heading.group(1))))
        elif item := LIST_ITEM.match(line):
            blocks.append(Block("item", item.group(2), marker=item.group(1)))
        else:
            paragraph.append(line)
    flush()
    return blocks


def write_docx(blocks: list[Block], path: Path) -> None:
    document = docx.Document()
    for block in blocks:
        if block.kind == "heading":
            document.add_heading(block.text, level=block.level)
        elif block.kind == "paragraph":
            document.add_paragraph(block.text)
        elif block.kind == "item":
            document.add_paragraph(block.text, style="List Bullet" if block.marker == "-" else "List Number")
        elif block.kind == "table":
            table = document.add_table(rows=0, cols=len(block.rows[0]), style="Table Grid")
            for index, row in enumerate(block.rows):
                cells = table.add_row().cells
                for cell, value in zip(cells, row, strict=True):
                    cell.text = value
                    if index == 0:
                        cell.paragraphs[0].runs[0].bold = True
        elif block.kind == "page":
            document.add_page_break()
    if blocks and blocks[0].kind == "heading":
        document.core_properties.title = blocks[0].text
    document.save(str(path))


def write_pdf(blocks: list[Block], path: Path) -> None:
    # Core fonts only, so the PDF needs no font files; fpdf2 refuses text
    # outside latin-1 with them, which keeps the sources plain.
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    heading_sizes = {1: 18, 2: 14, 3: 12}
    for block in blocks:
        if block.kind == "heading":
            pdf.set_font("Helvetica", style="B", size=heading_sizes[block.level])
            pdf.ln(3)
            pdf.multi_cell(0, 8, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif block.kind == "paragraph":
            pdf.set_font("Helvetica", size=11)
            pdf.multi_cell(0, 6, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        elif block.kind == "item":
            pdf.set_font("Helvetica", size=11)
            pdf.set_x(pdf.l_margin + 5)
            pdf.multi_cell(0, 6, f"{block.marker} {block.text}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif block.kind == "table":
            pdf.set_font("Helvetica", size=10)
            with pdf.table(text_align="LEFT", first_row_as_headings=True) as table:
                for row in block.rows:
                    table_row = table.row()
                    for value in row:
                        table_row.cell(value)
            pdf.ln(3)
        elif block.kind == "page":
            pdf.add_page()
    if blocks and blocks[0].kind == "heading":
        pdf.set_title(blocks[0].text)
    pdf.set_author("Ridgeline Outfitters")
    pdf.output(str(path))


def write_xlsx(source: dict[str, Any], path: Path) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for sheet_source in source["sheets"]:
        sheet = book.create_sheet(sheet_source["name"])
        for row in sheet_source["rows"]:
            sheet.append([str(value) for value in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    book.save(str(path))


def built_name(source: Path) -> str | None:
    """The file name `source` builds, or None when it is not a document."""
    suffixes = source.suffixes
    if len(suffixes) >= 2 and suffixes[-2] in GENERATED:
        return source.name.removesuffix(source.suffix)
    if source.suffix in SHIPPED:
        return source.name
    return None


def build_corpus(target: Path) -> list[Path]:
    """Writes every document of the corpus into `target`, in its final
    format, and returns their paths (sorted by name)."""
    target.mkdir(parents=True, exist_ok=True)
    built: list[Path] = []
    for source in sorted(CORPUS.iterdir()):
        name = built_name(source)
        if name is None:
            raise ValueError(f"{source.name} is neither a shipped document nor a source of a generated one")
        path = target / name
        if path.suffix == ".docx":
            write_docx(parse_outline(source.read_text(encoding="utf-8")), path)
        elif path.suffix == ".pdf":
            write_pdf(parse_outline(source.read_text(encoding="utf-8")), path)
        elif path.suffix == ".xlsx":
            write_xlsx(yaml.safe_load(source.read_text(encoding="utf-8")), path)
        else:
            shutil.copyfile(source, path)
        built.append(path)
    return sorted(built)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the evaluation corpus into a directory.")
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args()
    for path in build_corpus(args.outdir):
        sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
