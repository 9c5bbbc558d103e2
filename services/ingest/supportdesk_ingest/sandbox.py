"""Each document parsed in a process of its own, under limits.

Parsing hostile bytes can take minutes and gigabytes (a 130 KB docx of a
million paragraphs: 90 s, 760 MB). In the worker's own process that blocks
the event loop: Kafka heartbeats stop, the group rebalances, the same
document is parsed again, forever. In a child process the kernel caps its
memory and CPU time, the worker caps its wall-clock time, and the event loop
only waits on pipes.

The child is a fresh interpreter (`python -m`), not a fork: the worker holds
torch's threads and a fork would copy them half-locked.
"""

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict

from supportdesk_ingest.errors import ParseLimitExceeded, UnreadableDocument
from supportdesk_ingest.limits import ParseLimits

log = logging.getLogger(__name__)

# -I: no PYTHON* variables, user site or current directory on the path;
# -B: no .pyc written (the root filesystem is read-only).
CHILD_COMMAND = (sys.executable, "-I", "-B", "-m", "supportdesk_ingest.parse_child")
# openpyxl imports numpy, whose BLAS would start a thread per core, each
# reserving address space that the memory limit counts.
CHILD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# UTF-8 JSON: at most 6 bytes a character (a control character's \uXXXX).
ANSWER_BYTES_PER_CHAR = 6
STDERR_TAIL_BYTES = 4096


class ParseSandbox:
    """Text out of a document, parsed in a child process; any failure, a
    limit broken or the child crashing, is `UnreadableDocument` with a reason."""

    def __init__(self, limits: ParseLimits, command: Sequence[str] = CHILD_COMMAND) -> None:
        self.limits = limits
        self.command = tuple(command)

    async def extract_text(self, filename: str, data: bytes) -> str:
        header = json.dumps({"filename": filename, "limits": asdict(self.limits)}).encode() + b"\n"
        child = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **CHILD_ENVIRONMENT},
        )
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                answer, errors = await self._exchange(child, header + data)
                status = await child.wait()
        except TimeoutError:
            timeout = self.limits.timeout_seconds
            raise ParseLimitExceeded(f"took longer than the {timeout:g} s allowed to parse") from None
        finally:
            # Also when the handler is cancelled (shutdown): no child outlives its parse.
            if child.returncode is None:
                child.kill()
                await child.wait()
        if errors:
            log.info("parse process wrote to stderr", extra={"stderr": errors.decode("utf-8", errors="replace")})
        # Off the event loop: the answer may be tens of MB of JSON.
        result = await asyncio.to_thread(_decode_answer, answer) if status == 0 else None
        return self._text(status, result)

    async def _exchange(self, child: asyncio.subprocess.Process, request: bytes) -> tuple[bytes, bytes]:
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stderr is not None
        cap = self.limits.max_text_chars * ANSWER_BYTES_PER_CHAR + 4096
        answer, errors, _ = await asyncio.gather(
            _read_at_most(child.stdout, cap), _tail(child.stderr), _feed(child.stdin, request)
        )
        return answer, errors

    def _text(self, status: int, result: dict[str, object] | None) -> str:
        match result:
            case {"text": str(text)}:
                return text
            case {"error": str(reason), "limit": bool(limit)}:
                raise (ParseLimitExceeded if limit else UnreadableDocument)(reason)
        log.warning("parse process ended without an answer", extra={"status": status})
        raise self._failure(status)

    def _failure(self, status: int) -> UnreadableDocument:
        if status >= 0:
            return UnreadableDocument(f"the parser ended without an answer (exit status {status})")
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        if -status == signal.SIGXCPU:
            return ParseLimitExceeded(f"used more than the {self.limits.cpu_seconds:,} s of CPU time allowed to parse")
        if -status == signal.SIGKILL:
            # Whoever sent it, the kernel's OOM killer (a container limit below
            # the parse memory limit) or the CPU hard limit, it was a limit.
            return ParseLimitExceeded("the parser was killed (SIGKILL): out of memory or CPU time")
        return UnreadableDocument(f"the parser crashed ({name})")


def _decode_answer(answer: bytes) -> dict[str, object] | None:
    try:
        result = json.loads(answer)
    except ValueError:  # cut short, or more than the cap
        return None
    return result if isinstance(result, dict) else None


async def _feed(stdin: asyncio.StreamWriter, request: bytes) -> None:
    try:
        stdin.write(request)
        await stdin.drain()
        stdin.close()
        await stdin.wait_closed()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child ended before reading it all; its exit status says why


async def _read_at_most(stream: asyncio.StreamReader, cap: int) -> bytes:
    try:
        return await stream.readexactly(cap + 1)  # more than the cap: not a JSON answer
    except asyncio.IncompleteReadError as exc:
        return exc.partial


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Read to the end (a child blocked on a full stderr pipe never ends),
    keeping only the last bytes for the log."""
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-STDERR_TAIL_BYTES:]
    return tail
