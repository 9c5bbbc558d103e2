"""What the ingest worker fetches for another producer, and what it refuses."""

import base64
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from supportdesk_contracts.events import DocumentUploaded
from supportdesk_ingest.errors import UnreadableDocument
from supportdesk_ingest.sources import DocumentSources, SourcePolicy, SourceUnavailable, _public

BODY = b"Ground shipping takes 8-12 business days."


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/drip":  # a byte now, the rest never
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(3)
            return
        routes: dict[str, tuple[int, dict[str, str], bytes]] = {
            "/doc.txt": (200, {}, BODY),
            "/moved": (302, {"Location": "/doc.txt"}, b""),
            "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
            "/busy": (503, {}, b""),
            "/gone": (410, {}, b""),
            "/big": (200, {}, b"x" * 2000),
        }
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def sources(tmp_path: Path | None = None, **policy: Any) -> DocumentSources:
    return DocumentSources(None, SourcePolicy(max_bytes=1000, shared_root=tmp_path, **policy))  # type: ignore[arg-type]


async def test_http_documents_are_fetched_following_redirects(web: str) -> None:
    assert await sources(allow_private=True).fetch(f"{web}/moved") == BODY


async def test_private_addresses_are_refused_unless_allowed(web: str) -> None:
    with pytest.raises(UnreadableDocument, match="private or local address"):
        await sources().fetch(f"{web}/doc.txt")


@pytest.mark.parametrize(
    ("path", "error", "reason"),
    [
        ("/busy", SourceUnavailable, "answered 503"),
        ("/gone", UnreadableDocument, "answered 410"),
        ("/big", UnreadableDocument, "larger than the 1,000 bytes allowed"),
        ("/to-file", UnreadableDocument, "leaves http"),
    ],
)
async def test_outages_are_retried_and_refusals_are_final(web: str, path: str, error: type, reason: str) -> None:
    with pytest.raises(error, match=reason):
        await sources(allow_private=True).fetch(f"{web}{path}")


async def test_nothing_listening_is_an_outage() -> None:
    with pytest.raises(SourceUnavailable):
        await sources(allow_private=True).fetch("http://127.0.0.1:9/doc.txt")


@pytest.mark.parametrize("source", ["ftp://example.com/a.txt", "gopher://x/", "s3x://bucket/key", "s3a://docs/a"])
async def test_other_schemes_are_refused(source: str) -> None:
    with pytest.raises(UnreadableDocument, match=r"must be https://, http://, file:// or s3://"):
        await sources(s3_buckets=frozenset({"docs", "bucket"})).fetch(source)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("s3://other/a.txt", "bucket other is not one the worker may read"),
        ("s3://user@docs/a.txt", "bucket user@docs is not one"),
        ("s3:///a.txt", r"bucket \(none\) is not one"),
        ("s3://docs", "names its object"),
        ("s3://docs/", "names its object"),
        ("s3://docs/../private/secret.txt", "with . or .. segments"),
        ("s3://docs/a/./b.txt", "with . or .. segments"),
    ],
)
async def test_s3_reads_only_named_objects_of_allowed_buckets(source: str, reason: str) -> None:
    """Refused before any request: no client, no credentials, no store needed."""
    with pytest.raises(UnreadableDocument, match=reason):
        await sources(s3_buckets=frozenset({"docs"})).fetch(source)


async def test_s3_is_refused_when_no_bucket_is_allowed() -> None:
    with pytest.raises(UnreadableDocument, match="INGEST_S3_BUCKETS is not set"):
        await sources().fetch("s3://docs/a.txt")


S3_ERRORS = {
    "/docs/denied": (403, "AccessDenied", "Access Denied"),
    "/docs/busy": (503, "SlowDown", "Please reduce your request rate."),
    "/docs/late": (400, "RequestTimeout", "Your socket connection to the server was not read from or written to."),
}


class FakeS3(http.server.BaseHTTPRequestHandler):
    """What the S3 emulator never answers (tests/integration/ingest has it):
    S3's refusals and throttling, and a body of no announced length."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path  # path-style: /bucket/key
        if path == "/docs/endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"1f4\r\n" + b"x" * 500 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        status, code, message = S3_ERRORS[path]
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def fake_s3() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("key", "error", "reason"),
    [
        ("denied", UnreadableDocument, r"answered 403 AccessDenied: Access Denied \(the worker's AWS credentials"),
        ("busy", SourceUnavailable, "answered 503 SlowDown"),
        ("late", SourceUnavailable, "answered 400 RequestTimeout"),
        ("endless", UnreadableDocument, "larger than the 1,000 bytes allowed"),
    ],
)
@pytest.mark.usefixtures("aws_credentials")
async def test_s3_throttling_is_retried_and_refusals_are_final(
    fake_s3: str, key: str, error: type, reason: str
) -> None:
    reader = sources(s3_buckets=frozenset({"docs"}), s3_endpoint_url=fake_s3)
    with pytest.raises(error, match=reason):
        await reader.fetch(f"s3://docs/{key}")


async def test_files_are_read_only_under_the_shared_root(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    (root / "doc.txt").write_bytes(BODY)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert await sources(root).fetch((root / "doc.txt").as_uri()) == BODY
    for outside in [root / ".." / "secret.txt", root / "link.txt"]:
        with pytest.raises(UnreadableDocument, match="outside the shared root"):
            await sources(root).fetch(outside.as_uri())
    with pytest.raises(UnreadableDocument, match="INGEST_SHARED_ROOT is not set"):
        await sources(None).fetch((root / "doc.txt").as_uri())


async def test_inline_content_is_decoded_and_capped() -> None:
    def inline(data: bytes) -> DocumentUploaded:
        return DocumentUploaded(document_id="cms:1", filename="a.txt", content_base64=base64.b64encode(data).decode())

    assert await sources().read(inline(BODY)) == BODY
    with pytest.raises(UnreadableDocument, match="larger than"):
        await sources().read(inline(b"x" * 1001))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"content_base64": "eA==", "source": "https://example.com/a.txt"},
        {"blob_key": "k", "content_base64": "eA=="},
    ],
)
def test_a_document_comes_exactly_one_way(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one of blob_key, content_base64 and source"):
        DocumentUploaded(document_id="cms:1", filename="a.txt", **fields)  # type: ignore[arg-type]


async def test_a_slow_drip_ends_at_the_fetch_timeout(web: str) -> None:
    with pytest.raises(SourceUnavailable, match="took longer than 1 s"):
        await sources(allow_private=True, timeout_seconds=1).fetch(f"{web}/drip")


async def test_a_host_name_that_cannot_be_encoded_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match="not a valid"):
        await sources().fetch(f"http://{'a' * 64}.example.com/doc.txt")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.0.0.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("fec0::1", False),  # site-local
        ("::10.0.0.1", False),  # IPv4-compatible
    ],
)
def test_only_public_addresses_count_as_public(address: str, public: bool) -> None:
    assert _public(address) is public


NO_CREDENTIALS = [
    *("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN"),
    *("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
]


async def test_without_credentials_s3_is_an_outage_until_they_come(
    fake_s3: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Credentials not found (a role's endpoint down, say) fail no document,
    and leave no client behind that would never find them."""
    for name in NO_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    reader = sources(s3_buckets=frozenset({"docs"}), s3_endpoint_url=fake_s3)
    with pytest.raises(SourceUnavailable, match="no AWS credentials"):
        await reader.fetch("s3://docs/denied")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    with pytest.raises(UnreadableDocument, match="answered 403"):  # asked the store this time
        await reader.fetch("s3://docs/denied")
