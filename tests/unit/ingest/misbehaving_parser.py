"""A parse process whose parser misbehaves on purpose, for the sandbox tests:

    python -I -B misbehaving_parser.py MODE [PATH]

It is the real parse process (`parse_child.main`: the same limits, the same
protocol) with the parser swapped for one that never ends, hoards memory,
crashes, writes a file, or reports which modules it imported.
"""

import contextlib
import ctypes
import os
import sys
import time

from supportdesk_ingest.errors import UnreadableDocument
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.parse_child import main
from supportdesk_ingest.parsing import extract_text


def sleep(filename: str, data: bytes, limits: ParseLimits) -> str:
    time.sleep(3600)
    return ""


def spin(filename: str, data: bytes, limits: ParseLimits) -> str:
    while True:
        pass


def hoard(filename: str, data: bytes, limits: ParseLimits) -> str:
    blocks = []
    while True:
        blocks.append(b"x" * (8 * 1024 * 1024))


def segfault(filename: str, data: bytes, limits: ParseLimits) -> str:
    ctypes.string_at(0)
    return ""


def exit_early(filename: str, data: bytes, limits: ParseLimits) -> str:
    os._exit(3)


def write(filename: str, data: bytes, limits: ParseLimits) -> str:
    with open(sys.argv[2], "wb") as file:
        file.write(data)
        file.flush()
    return "written"


def modules(filename: str, data: bytes, limits: ParseLimits) -> str:
    with contextlib.suppress(UnreadableDocument):  # a blank page has no text; its parser ran all the same
        extract_text(filename, data, limits)
    return " ".join(sorted(sys.modules))


if __name__ == "__main__":
    main(parse=globals()[sys.argv[1]])
