"""The parse process: a header line and one document's bytes on stdin, its
text or why not on stdout, as one JSON object ({"text"} or {"error"}).

Started by `sandbox.ParseSandbox` as `python -I -B -m supportdesk_ingest.parse_child`,
one process per document. It applies its limits first, before any parser
library is imported, and never imports torch (it holds no model).
"""

import json
import resource
import sys
import traceback
from collections.abc import Callable

from supportdesk_ingest.errors import ParseLimitExceeded, UnreadableDocument
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.parsing import extension_of, extract_text

Parse = Callable[[str, bytes, ParseLimits], str]
MB = 1024 * 1024


def _lower(which: int, soft: int, hard: int) -> None:
    """Lower a limit; a lower hard limit already set (by the container) stays."""
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    resource.setrlimit(which, (min(soft, hard), hard))


def apply_limits(limits: ParseLimits) -> None:
    _lower(resource.RLIMIT_AS, limits.memory_mb * MB, limits.memory_mb * MB)
    # SIGXCPU at the soft limit ends the process even inside C code; the hard
    # limit's SIGKILL a second later is for code that would ignore it.
    _lower(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1)
    # Nothing to disk: no file may grow (the root filesystem is read-only in
    # production anyway), and no core dump holds a document's bytes.
    _lower(resource.RLIMIT_FSIZE, 0, 0)
    _lower(resource.RLIMIT_CORE, 0, 0)


def outcome(parse: Parse, filename: str, data: bytes, limits: ParseLimits) -> dict[str, str | bool]:
    """{"text": ...}, or {"error": reason, "limit": whether a limit was broken}."""
    try:
        return {"text": parse(filename, data, limits)}
    except ParseLimitExceeded as exc:
        return {"error": str(exc), "limit": True}
    except UnreadableDocument as exc:
        return {"error": str(exc), "limit": False}
    except MemoryError:
        return {"error": f"exceeded the parse memory limit ({limits.memory_mb:,} MB)", "limit": True}
    except RecursionError:
        return {"error": "the document is nested too deeply", "limit": False}
    # Deliberately broad: parser libraries raise all kinds of errors on hostile
    # bytes (pypdf: TypeError, IndexError, ...). Here one can only end this
    # process; the document is refused with the reason, the traceback goes to
    # stderr for the worker's log.
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        reason = f"cannot read {extension_of(filename) or 'the'} file: {type(exc).__name__}: {exc}"
        return {"error": reason, "limit": False}


def main(parse: Parse = extract_text) -> None:
    job = json.loads(sys.stdin.buffer.readline())
    limits = ParseLimits(**job["limits"])
    apply_limits(limits)
    data = sys.stdin.buffer.read()
    answer = json.dumps(outcome(parse, job["filename"], data, limits), ensure_ascii=False)
    # "replace": a lone surrogate (a broken PDF's) must not lose the whole text.
    sys.stdout.buffer.write(answer.encode("utf-8", errors="replace"))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
