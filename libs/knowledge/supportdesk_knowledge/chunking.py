"""Structure-aware chunking, sized in the embedding model's tokens.

The parsers hand over text in a small markdown dialect: `#` headings, `- `
or `1. ` list items, `| a | b |` tables, and rows already written as
"Column: value · Column: value" (spreadsheets). A chunk never crosses a
heading and carries its heading path ("Returns › Size exchanges"); a list
stays with the sentence that leads into it; a table row names its columns
and is cut only if it alone is over size. Sizes are counted in the model's tokens: characters say
nothing about what the model reads, and what it does not read (past its
sequence length) it silently drops.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

TokenCounter = Callable[[str], int]
BatchTokenCounter = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREVIATION = re.compile(
    r"(?:\b(?:[ap]\.m|e\.g|i\.e|etc|vs|approx|incl|no|nos|st|mr|mrs|ms|dr|jr|sr|inc|ltd|co|dept|ext|fig)|"
    r"\b[A-Z](?:\.[A-Z])+)\.$",
    re.IGNORECASE,
)
# Every pattern here is linear in its input: documents are hostile input, and
# chunking runs in the worker, outside the parse sandbox.
_ABBREVIATION_TAIL = 24
_HEADING = re.compile(r"(#{1,6})[ \t]+(\S.*)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_RULE_CELL = re.compile(r":?-{3,}:?")
SECTION_SEPARATOR = " › "
CELL_SEPARATOR = " · "
_LINK = re.compile(r"\[([^\[\]\n]{0,300})\]\([^()\s]{0,2000}\)")
_EMPHASIS = re.compile(r"\*\*|__|`")


def split_sentences(text: str) -> list[str]:
    """Sentences, not cut after an abbreviation ("by 1 p.m. Pacific Time")."""
    sentences: list[list[str]] = []
    for piece in _SENTENCE_END.split(text):
        if not (piece := piece.strip()):
            continue
        # Only the end of the sentence so far is looked at, and its parts are
        # joined once: hostile text can make one sentence of every piece.
        if sentences and _ABBREVIATION.search(sentences[-1][-1][-_ABBREVIATION_TAIL:]):
            sentences[-1].append(piece)
        else:
            sentences.append([piece])
    return [" ".join(parts) for parts in sentences]


def approximate_tokens(text: str) -> int:
    """Word pieces of an English text are about 1.3 per word; for callers
    without the model's tokenizer."""
    return int(len(text.split()) * 1.3) + 1


_ANAPHOR = re.compile(r"(?:it|its|they|their|them|this|these|that|those|he|she|his|her|both)\b", re.IGNORECASE)


@dataclass(frozen=True)
class AnswerUnit:
    """The smallest piece of a passage that can answer: a sentence, a list
    item or a table row."""

    text: str
    lead: str = ""
    """What it cannot be read without: a list item's lead-in ("These items
    are final sale:"), or the sentence before one that starts "It ..."."""

    @property
    def quoted(self) -> str:
        """As an answer quotes it: with its lead, so that it stands alone."""
        if not self.lead:
            return self.text
        item = self.text.removeprefix("- ").rstrip(";, ")
        return f"{self.lead} {item}" if item.endswith((".", "!", "?")) else f"{self.lead} {item}."


def answer_units(text: str) -> list[AnswerUnit]:
    """A passage's units, in order: its lines (list items and table rows
    whole), prose lines cut into sentences."""
    units: list[AnswerUnit] = []
    lead = previous = ""
    for line in text.split("\n"):
        if not (line := line.strip()):
            continue
        if line.startswith("- "):
            units.append(AnswerUnit(line, lead))
            previous = ""  # "It ..." after a list refers to no one item
            continue
        lead = line if line.endswith(":") else ""
        if lead:
            continue  # a lead-in answers nothing alone; its items carry it
        for sentence in split_sentences(line):
            units.append(AnswerUnit(sentence, previous if _ANAPHOR.match(sentence) else ""))
            previous = sentence
    return units


@dataclass(frozen=True)
class Passage:
    section: str
    """The heading path above the text, "" before the first heading."""
    text: str


@dataclass
class _Block:
    text: str
    whole: bool = False
    """A table row or a list with its lead-in: cut only if it alone is over size."""


@dataclass
class _Section:
    path: str
    blocks: list[_Block] = field(default_factory=list)


def _plain(text: str) -> str:
    """Markdown's inline marks out: the model and the user see the words."""
    return _EMPHASIS.sub("", _LINK.sub(r"\1", text))


def _is_rule(line: str) -> bool:
    """A table's header rule: |---|:--:|---|."""
    cells = line.strip().strip("|").split("|")
    return all(_RULE_CELL.fullmatch(cell.strip()) for cell in cells)


def _cells(line: str) -> list[str]:
    return [_plain(cell).strip() for cell in line.strip().strip("|").split("|")]


def _sections(text: str) -> Iterator[_Section]:
    """The text's sections, each with its blocks: paragraphs, lists (with the
    paragraph before them when it leads in, ending with ":"), table rows."""
    headings: list[tuple[int, str]] = []
    section = _Section("")
    paragraph: list[str] = []
    items: list[str] = []
    header: list[str] | None = None

    def end_paragraph() -> None:
        if paragraph:
            section.blocks.append(_Block(_plain(" ".join(" ".join(paragraph).split()))))
            paragraph.clear()

    def end_list() -> None:
        if not items:
            return
        lead = section.blocks.pop().text if section.blocks and section.blocks[-1].text.endswith(":") else ""
        listed = "\n".join(f"- {_plain(item)}" for item in items)
        section.blocks.append(_Block(f"{lead}\n{listed}" if lead else listed, whole=True))
        items.clear()

    lines = text.splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            end_paragraph()
            continue
        item = _LIST_ITEM.match(line)
        if items and not item and line[:1].isspace():
            items[-1] += " " + stripped  # an item's continuation line
            continue
        if not item:
            end_list()
        heading = _HEADING.match(stripped)
        is_row = stripped.startswith("|") and stripped.count("|") >= 2
        if not is_row:
            header = None
        if heading or is_row or item:
            end_paragraph()
        if heading:
            level, title = len(heading.group(1)), heading.group(2).rstrip(" \t#")
            if section.blocks:
                yield section
            headings = [(lvl, name) for lvl, name in headings if lvl < level] + [(level, title)]
            section = _Section(SECTION_SEPARATOR.join(name for _, name in headings))
        elif is_row:
            following = lines[number + 1] if number + 1 < len(lines) else ""
            if header is None and _is_rule(following):
                header = _cells(stripped)
            elif not _is_rule(stripped):
                cells = _cells(stripped)
                if header:
                    row = CELL_SEPARATOR.join(f"{h}: {v}" if h else v for h, v in zip(header, cells, strict=False) if v)
                else:
                    row = CELL_SEPARATOR.join(c for c in cells if c)
                if row:
                    section.blocks.append(_Block(row, whole=True))
        elif item:
            items.append(line[item.end() :].strip())
        else:
            paragraph.append(stripped)
    end_paragraph()
    end_list()
    if section.blocks:
        yield section


def _packed(units: list[str], count: TokenCounter, limit: int, lead: str = "") -> list[str]:
    """Units joined into pieces of at most `limit` tokens, each piece led by
    `lead` (a list's lead-in goes with every part of a long list). Counts add
    up unit by unit (word pieces never span whitespace): linear in the text."""
    out: list[str] = []
    base = [lead] if lead else []
    floor = count(lead) if lead else 0
    piece, size = list(base), floor
    for unit in units:
        tokens = count(unit)
        if len(piece) > len(base) and size + tokens > limit:
            out.append("\n".join(piece))
            piece, size = list(base), floor
        piece.append(unit)
        size += tokens
    if len(piece) > len(base):
        out.append("\n".join(piece))
    return out


def _pieces(block: _Block, count: TokenCounter, limit: int) -> list[str]:
    """A block cut to fit: a list by items (each part with the lead-in),
    prose by sentences, and a sentence longer than a chunk by words."""
    if count(block.text) <= limit:
        return [block.text]
    if block.whole and "\n" in block.text:
        first, *rest = block.text.split("\n")
        lead, items = ("", [first, *rest]) if first.startswith("- ") else (first, rest)
        if count(lead) < limit // 2:
            return _packed(items, count, limit, lead)
    out: list[str] = []
    for unit in split_sentences(block.text.replace("\n", " ")):
        if count(unit) <= limit:
            out.append(unit)
        else:
            out += [p.replace("\n", " ") for p in _packed(unit.split(), count, limit)]
    return out


class _Counts:
    """Token counts, each text counted once: packing asks for a sentence's
    count up to four times (in its block, as a piece, twice as overlap)."""

    def __init__(self, count: TokenCounter, batch: BatchTokenCounter | None) -> None:
        self.count = count
        self.batch = batch
        self.known: dict[str, int] = {}

    def prefetch(self, texts: Iterable[str]) -> None:
        """Counts `texts` ahead, in one call of `batch` (when there is one)."""
        if self.batch is None:
            return
        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        if missing:
            self.known.update(zip(missing, self.batch(missing), strict=True))

    def __call__(self, text: str) -> int:
        tokens = self.known.get(text)
        if tokens is None:
            tokens = self.known[text] = self.count(text)
        return tokens


def _units(block: _Block) -> list[str]:
    """What `_pieces` counts of a block over size: its lines (a list's
    lead-in and items) and its sentences."""
    lines = block.text.split("\n") if block.whole else []
    return lines + split_sentences(block.text.replace("\n", " "))


def chunk_document(
    text: str,
    count: TokenCounter = approximate_tokens,
    max_tokens: int = 200,
    overlap_tokens: int = 30,
    count_batch: BatchTokenCounter | None = None,
) -> list[Passage]:
    """Packs each section's blocks into passages of at most `max_tokens`.
    Within a section, prose carries up to `overlap_tokens` of whole sentences
    into the next passage, so a fact cut at a boundary is whole in one.
    `count_batch`, if given, counts as `count` does, many texts at once: the
    blocks, then the sentences of those over size, are counted in two calls
    instead of one call each."""
    sections = list(_sections(text))
    blocks = [block for section in sections for block in section.blocks]
    counts = _Counts(count, count_batch)
    counts.prefetch(block.text for block in blocks)
    counts.prefetch(unit for block in blocks if counts(block.text) > max_tokens for unit in _units(block))
    passages: list[Passage] = []
    for section in sections:
        current: list[str] = []
        size = 0
        for block in section.blocks:
            for piece in _pieces(block, counts, max_tokens):
                tokens = counts(piece)
                if current and size + tokens > max_tokens:
                    passages.append(Passage(section.path, "\n".join(current)))
                    carried: list[str] = []
                    carried_size = 0
                    last = current[-1]
                    if "\n" not in last and CELL_SEPARATOR not in last:
                        for sentence in reversed(split_sentences(last)):
                            if carried_size + counts(sentence) > overlap_tokens:
                                break
                            carried.insert(0, sentence)
                            carried_size += counts(sentence)
                    if carried_size + tokens > max_tokens:
                        carried, carried_size = [], 0  # the budget holds, the overlap gives way
                    current = [" ".join(carried)] if carried else []
                    size = carried_size
                current.append(piece)
                size += tokens
        if current:
            passages.append(Passage(section.path, "\n".join(current)))
    return passages
