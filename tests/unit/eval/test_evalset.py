"""The evaluation set (eval/): the corpus builds in every supported format,
and every expected fact can be found in the text the ingest parser extracts
from its source, so that a miss in `make eval` is the agent's, not the set's."""

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import docx
import pytest
import yaml
from pypdf import PdfReader

from supportdesk_ingest.parsing import extract_text

EVAL = Path(__file__).resolve().parents[3] / "eval"
FORMATS = {".md", ".html", ".txt", ".csv", ".docx", ".xlsx", ".pdf"}
EVALSET: dict[str, Any] = yaml.safe_load((EVAL / "questions.yaml").read_text(encoding="utf-8"))
ANSWERABLE: list[dict[str, Any]] = EVALSET["questions"] + EVALSET["conversations"]


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def load_builder() -> ModuleType:
    # eval/ is a directory of scripts, not a package on the test path.
    spec = importlib.util.spec_from_file_location("eval_build", EVAL / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths: list[Path] = load_builder().build_corpus(tmp_path_factory.mktemp("corpus"))
    return {path.name: path for path in paths}


@pytest.fixture(scope="module")
def texts(corpus: dict[str, Path]) -> dict[str, str]:
    return {name: normalised(extract_text(name, path.read_bytes())) for name, path in corpus.items()}


def test_every_supported_format_is_built(corpus: dict[str, Path]) -> None:
    assert {path.suffix for path in corpus.values()} == FORMATS
    assert 9 <= len(corpus) <= 10


def test_documents_are_support_page_sized(texts: dict[str, str]) -> None:
    words = {name: len(text.split()) for name, text in texts.items()}
    assert all(400 <= count <= 1500 for count in words.values()), words


def test_the_pdf_has_several_pages(corpus: dict[str, Path]) -> None:
    assert len(PdfReader(corpus["trail-tested-promise.pdf"]).pages) >= 3


def test_the_docx_has_real_headings_lists_and_a_table(corpus: dict[str, Path]) -> None:
    document = docx.Document(str(corpus["product-care.docx"]))
    styles = {paragraph.style.name for paragraph in document.paragraphs if paragraph.style is not None}
    assert {"Heading 1", "Heading 2", "List Bullet"} <= styles
    assert len(document.tables) == 1


def test_html_navigation_and_footer_stay_out_of_the_text(texts: dict[str, str]) -> None:
    # They contradict the page ($50, 100 days): distractors only while the parser drops them.
    assert "returns accepted within 100 days" not in texts["returns.html"]
    assert "spring sale" not in texts["returns.html"]
    assert "size exchanges are accepted within 45 days" in texts["returns.html"]


def test_counts() -> None:
    assert len(EVALSET["questions"]) >= 50
    assert len(EVALSET["out_of_scope"]) >= 15
    assert len(EVALSET["conversations"]) >= 5


def test_ids_are_unique() -> None:
    ids = [item["id"] for section in ("questions", "out_of_scope", "conversations") for item in EVALSET[section]]
    assert len(ids) == len(set(ids))


def test_every_generated_format_is_asked_about() -> None:
    sources = [item["source"] for item in EVALSET["questions"]]
    for name in ("product-care.docx", "stores-and-rentals.xlsx", "trail-tested-promise.pdf"):
        assert sources.count(name) >= 5, name


def test_entries_are_well_formed() -> None:
    for item in EVALSET["questions"]:
        assert item["question"].strip(), item["id"]
    for item in EVALSET["out_of_scope"]:
        assert item["question"].strip(), item["id"]
        assert "facts" not in item, item["id"]
        assert "source" not in item, item["id"]
    for item in EVALSET["conversations"]:
        assert len(item["turns"]) == 2, item["id"]
    for item in ANSWERABLE:
        assert item["facts"], item["id"]


@pytest.mark.parametrize("item", ANSWERABLE, ids=[item["id"] for item in ANSWERABLE])
def test_every_fact_is_in_its_source(item: dict[str, Any], texts: dict[str, str]) -> None:
    assert item["source"] in texts
    for fact in item["facts"]:
        assert normalised(fact) in texts[item["source"]], fact
