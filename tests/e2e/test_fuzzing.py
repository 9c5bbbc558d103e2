"""Fuzzing the public surface of a running system (broker, Redis, every
service as a process): each REST operation of the gateway's OpenAPI document
with schemathesis, data that fits the schema and data that does not, half of
it with real credentials so it reaches past authentication; then the chat
WebSocket with hypothesis: random text, JSON of the wrong shape, frames of the
right type with wrong fields, oversized and binary frames.

It passes when no response is a 5xx, every response has a documented status,
content type and body, data outside the schema is refused, every server frame
is a valid `ServerFrame`, a socket closes only for a frame beyond the protocol
limit, and afterwards every process is alive, ready, and logged no error.

FUZZ_EXAMPLES sets the examples per operation and per WebSocket frame kind:
`make test` runs a short pass, `make fuzz` the full one and prints the counts."""

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from devstack import Stack, http_ok
from stacks import ADMIN_KEY, StackFactory
from supportdesk_contracts.frames import CLIENT_FRAME, SERVER_FRAME, PingFrame

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# A falsifying oversized frame is printed whole; that is what we want to see.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    pytest.mark.timeout(300 + EXAMPLES),
]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# schemathesis' own list of statuses that reject bad data, and 413: a body
# refused for its size is rejected too (the route's body limit).
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
GENERATION = SchemathesisConfig.from_dict(
    {
        "generation": {
            # Credentials are ours to give (Credentials below), not data to fuzz.
            "with-security-parameters": False,
            # An unknown query parameter is ignored, as HTTP APIs do.
            "allow-extra-parameters": False,
        },
        "checks": {"negative_data_rejection": {"expected-statuses": [*REJECTED, "413"]}},
    }
)
# The gateway's limits (api/ws.py, __main__.py): an error frame above the
# first, a closed socket (1009, "message too big") above the second.
FRAME_LIMIT = 64 * 1024
WS_MAX_SIZE = 256 * 1024


def fuzz_settings(examples: int) -> settings:
    # No example database: a live system is not a pure function to replay.
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def system(make_stack: StackFactory, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = make_stack(redis_url, tmp_path_factory.mktemp("fuzz"), replicas=1)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def http(system: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{system.gateway_port}", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def document_id(http: httpx.Client) -> str:
    """A document that exists, for the cases that address one."""
    files = {"file": ("returns.txt", b"Returns are free within 30 days.", "text/plain")}
    response = http.post("/api/v1/documents", files=files, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 202, response.text
    return str(response.json()["document_id"])


OPERATOR_ACTIONS = ("/claim", "/agent-messages", "/handback", "/close")


class Credentials:
    """Makes half the cases real: a fresh session (its id and token) for the
    session routes, the admin key for the operator's and a real document for
    the document routes. A path parameter generated outside the schema on
    purpose is left alone."""

    def __init__(self, http: httpx.Client, document_id: str) -> None:
        self.http = http
        self.document_id = document_id

    def headers_for(self, case: Case) -> dict[str, str]:
        keep_path = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
        path = case.path_parameters if case.path_parameters is not None else {}
        if case.path.startswith("/api/v1/documents"):
            if "document_id" in path and not keep_path:
                path["document_id"] = self.document_id
            return {"Authorization": f"Bearer {ADMIN_KEY}"}
        if "session_id" in path:
            session = self.http.post("/api/v1/sessions", json={}).json()
            if not keep_path:
                path["session_id"] = session["session_id"]
            if not case.path.endswith(OPERATOR_ACTIONS):
                return {"Authorization": f"Bearer {session['token']}"}
        if case.path.startswith("/api/v1/escalations") or case.path.endswith(OPERATOR_ACTIONS):
            return {"Authorization": f"Bearer {ADMIN_KEY}"}  # the admin key acts as an operator
        return {}


def test_no_rest_request_breaks_the_system(
    system: Stack, http: httpx.Client, document_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f"http://127.0.0.1:{system.gateway_port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=GENERATION)
    credentials = Credentials(http, document_id)
    logs_before = log_sizes(system)
    counts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14, [op.label for op in operations]
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @fuzz_settings(EXAMPLES)
        @given(case=cases, real=st.booleans())
        def exercise(case: Case, real: bool) -> None:
            headers = credentials.headers_for(case) if real else {}
            response = case.call(base_url=base, headers=headers, timeout=60)
            case.validate_response(response, checks=CHECKS, headers=headers)
            counts[case.operation.label] += 1
            statuses[response.status_code] += 1

        exercise()
    with capsys.disabled():
        print(f"\nREST fuzzing: {sum(counts.values())} requests, {len(counts)} operations; statuses {dict(statuses)}")
    assert all(status < 500 for status in statuses)
    assert_system_intact(system, logs_before)


# --- WebSocket frames ------------------------------------------------------

# Every kind of code point, lone surrogates included: JSON escapes them
# ("\\ud800") and json.loads accepts them.
any_char = st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co", "Cs"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(any_char, max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
frame_fields = {
    "content": json_values | st.text(any_char, max_size=5000),
    "message_id": json_values,
    "after_seq": json_values | st.integers(min_value=-(2**70), max_value=2**70),
}
# Each kind of frame a hostile or broken client sends.
frames: dict[str, st.SearchStrategy[str | bytes]] = {
    "random text": st.text(max_size=500),
    "random JSON": json_values.map(json.dumps),
    "known type, wrong fields": st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "ping", "resume", "reply", "", "MESSAGE"])},
        optional=frame_fields,
    ).map(json.dumps),
    "chat message": st.fixed_dictionaries(
        {"type": st.just("message"), "content": st.text(any_char, min_size=1, max_size=5000)},
        optional={"message_id": st.text(any_char, max_size=200)},
    ).map(json.dumps),
    "oversized": st.integers(min_value=FRAME_LIMIT + 1, max_value=WS_MAX_SIZE + 64 * 1024).map(
        lambda n: json.dumps({"type": "message", "content": "x" * n})
    ),
    "binary": st.binary(max_size=2000),
}


USER_AGENT = "supportdesk-fuzzer"


def is_ping(frame: str | bytes) -> bool:
    try:
        return isinstance(CLIENT_FRAME.validate_python(json.loads(frame)), PingFrame)
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False


class ChatClient:
    """One socket of a session, opened again whenever the server closed it."""

    def __init__(self, system: Stack, http: httpx.Client) -> None:
        # The socket's User-Agent, so the session's fingerprint matches.
        session = http.post("/api/v1/sessions", json={}, headers={"User-Agent": USER_AGENT}).json()
        self.url = (
            f"ws://127.0.0.1:{system.gateway_port}/ws?session_id={session['session_id']}&token={session['token']}"
        )
        self.ws: ClientConnection | None = None
        self.connections = contextlib.ExitStack()
        self.received: Counter[str] = Counter()

    def socket(self) -> ClientConnection:
        if self.ws is None:
            # max_queue=None: always read what the server sends, or it would
            # rightly close us as a slow consumer while replies stream in.
            socket = connect(self.url, max_size=None, max_queue=None, open_timeout=30, user_agent_header=USER_AGENT)
            self.ws = self.connections.enter_context(socket)
        return self.ws

    def send(self, frame: str | bytes) -> int | None:
        """Sends the frame, then a ping, and reads until the pong: every frame
        the server sent meanwhile must be valid. The close code if it closed."""
        ws = self.socket()
        # A fuzzed frame may itself be a valid ping: then two pongs are due.
        pongs = 1 + is_ping(frame)
        try:
            ws.send(frame)
            ws.send(json.dumps({"type": "ping"}))
            while pongs:
                raw = ws.recv(timeout=30)
                assert isinstance(raw, str), "server frames are text"
                server_frame = SERVER_FRAME.validate_json(raw)
                self.received[server_frame.type] += 1
                pongs -= server_frame.type == "pong"
            return None
        except ConnectionClosed as closed:
            self.close()
            return closed.rcvd.code if closed.rcvd is not None else 1006

    def close(self) -> None:
        self.connections.close()
        self.ws = None


def test_no_websocket_frame_breaks_the_system(
    system: Stack, http: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client = ChatClient(system, http)
    logs_before = log_sizes(system)
    sent: Counter[str] = Counter()
    closes: Counter[int] = Counter()
    try:
        for kind, strategy in frames.items():
            send_frames(client, kind, strategy, sent, closes)
    finally:
        client.close()
    with capsys.disabled():
        print(
            f"\nWebSocket fuzzing: {sum(sent.values())} frames {dict(sent)}; "
            f"server frames {dict(client.received)}; closes {dict(closes)}"
        )
    assert client.received["error"] > 0, "bad frames are answered with error frames"
    assert_system_intact(system, logs_before)


def send_frames(
    client: ChatClient, kind: str, strategy: st.SearchStrategy[str | bytes], sent: Counter[str], closes: Counter[int]
) -> None:
    @fuzz_settings(EXAMPLES * 4)
    @given(frame=strategy)
    def exercise(frame: str | bytes) -> None:
        code = client.send(frame)
        sent[kind] += 1
        if code is not None:
            closes[code] += 1
            too_big = isinstance(frame, str) and len(frame.encode()) > WS_MAX_SIZE
            assert (code, too_big) == (1009, True), f"{kind} frame of {len(frame)} closed the socket with {code}"

    exercise()


def log_sizes(system: Stack) -> dict[Path, int]:
    assert system.log_dir is not None
    return {log: log.stat().st_size for log in Path(system.log_dir).glob("*.log")}


def assert_system_intact(system: Stack, logs_before: dict[Path, int]) -> None:
    """Every process alive and ready, and none logged an error since `logs_before`."""
    for process in system.processes:
        assert process.popen.poll() is None, f"{process.name} exited with {process.popen.returncode}"
        if process.ready_url is not None:
            assert http_ok(process.ready_url), f"{process.name} is not ready"
    errors = [line for log, start in logs_before.items() for line in error_lines(log, start)]
    assert not errors, "\n".join(errors[:10])


def error_lines(log: Path, start: int) -> Iterator[str]:
    with log.open("rb") as file:
        file.seek(start)
        text = file.read().decode(errors="replace")
    for line in text.splitlines():
        try:
            record: Any = json.loads(line)
        except json.JSONDecodeError:
            continue  # the broker's own, not JSON
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            yield f"{log.name}: {line[:500]}"
