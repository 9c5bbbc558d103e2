"""What one document's parse may cost. Standard library only: the parse
process reads these and applies them before it imports any parser."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ParseLimits:
    # The parse process (enforced by the kernel and by the worker).
    timeout_seconds: float = 30
    memory_mb: int = 512
    cpu_seconds: int = 20
    # What a document may turn into.
    max_text_chars: int = 10_000_000
    # docx and xlsx are zip archives, checked before anything is unpacked.
    zip_max_entries: int = 2_000
    zip_max_uncompressed_mb: int = 100
    zip_max_ratio: int = 100
    # Counted while parsing. The defaults are far above what a real manual or
    # price list holds, and low enough that the slowest of them (python-docx
    # takes ~70 µs a paragraph) stays well inside the CPU limit.
    max_rows: int = 200_000
    max_cells: int = 2_000_000
    max_csv_field_chars: int = 131_072
    max_paragraphs: int = 100_000
    max_xml_elements: int = 1_000_000
    max_pages: int = 2_000
    max_html_elements: int = 500_000
