"""A document's bytes, however its producer sent them: the gateway's claim
check in Redis, inline content, or a reference fetched here (http(s)://,
file:// under the shared root, or s3:// in an allowed bucket).

A refusal (a scheme not allowed, a private address, a file outside the
root, a bucket not allowed, too many bytes, a 4xx answer) is final:
`UnreadableDocument`, the document ends `failed` with the reason. An outage
(no connection, a timeout, a 5xx, 408 or 429, S3 throttling) is
`SourceUnavailable`, a ConnectionError: the event is retried with backoff,
as for any other dependency.
"""

import asyncio
import base64
import binascii
import ipaddress
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from supportdesk_contracts.events import DocumentUploaded
from supportdesk_documents.registry import DocumentRegistry
from supportdesk_ingest.errors import UnreadableDocument

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

MAX_REDIRECTS = 3
_RETRY_STATUSES = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS)
# Attempts of one S3 request, the first included: few, since the event
# itself is retried with backoff when the store stays unavailable.
S3_ATTEMPTS = 2
_S3_PIECE_BYTES = 64 * 1024
# S3 error codes that mean "later", whatever their status (RequestTimeout is a 400).
_S3_RETRY_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"})


class SourceUnavailable(ConnectionError):
    """The referenced document could not be fetched now; later may work."""


@dataclass(frozen=True)
class SourcePolicy:
    max_bytes: int
    shared_root: Path | None = None
    timeout_seconds: float = 30.0
    allow_private: bool = False
    s3_buckets: frozenset[str] = frozenset()
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(address: str) -> bool:
    """A global unicast address, also when it carries an IPv4 one inside
    (mapped, 6to4, Teredo, NAT64): those route to what they carry."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _SITE_LOCAL or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
            return False
        if any(inner is not None and not _public(str(inner)) for inner in embedded):
            return False
    return ip.is_global and not ip.is_multicast


class DocumentSources:
    def __init__(self, registry: DocumentRegistry, policy: SourcePolicy) -> None:
        self.registry = registry
        self.policy = policy
        self._s3: S3Client | None = None
        self._s3_lock = threading.Lock()

    async def read(self, event: DocumentUploaded) -> bytes:
        if event.blob_key is not None:
            data = await self.registry.blob(event.document_id)
            if data is None:
                raise UnreadableDocument("the uploaded bytes expired before indexing")
        elif event.content_base64 is not None:
            try:
                data = base64.b64decode(event.content_base64, validate=True)
            except binascii.Error as exc:
                raise UnreadableDocument(f"content_base64 is not base64: {exc}") from exc
            self._within_limit(len(data))
        else:
            assert event.source is not None  # the contract gives exactly one way in
            data = await self.fetch(event.source)
        return data

    def _within_limit(self, size: int) -> None:
        if size > self.policy.max_bytes:
            raise UnreadableDocument(f"the document is larger than the {self.policy.max_bytes:,} bytes allowed")

    async def fetch(self, source: str) -> bytes:
        scheme = urlsplit(source).scheme.lower()
        if scheme == "file":
            return await asyncio.to_thread(self._read_shared, source)
        if scheme in ("http", "https"):
            return await self._download(source)
        if scheme == "s3":
            return await asyncio.to_thread(self._read_s3, source)
        raise UnreadableDocument(f"a source must be https://, http://, file:// or s3://, not {scheme or 'none'}://")

    def _read_shared(self, source: str) -> bytes:
        root = self.policy.shared_root
        if root is None:
            raise UnreadableDocument("file:// sources are not allowed here (INGEST_SHARED_ROOT is not set)")
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise UnreadableDocument("a file:// source names no host")
        named = unquote(parts.path)
        root = root.resolve()
        if not Path(named).resolve().is_relative_to(root):
            raise UnreadableDocument(f"{named} is outside the shared root")
        try:
            # Not following a link at the end, not waiting on a pipe; then the
            # file actually opened is checked, so a link swapped in meanwhile
            # cannot lead outside the root.
            descriptor = os.open(named, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError as exc:
            raise UnreadableDocument(f"{named} does not exist") from exc
        except OSError as exc:
            raise UnreadableDocument(f"{named} cannot be opened: {exc.strerror}") from exc
        with os.fdopen(descriptor, "rb") as file:
            opened = Path(os.readlink(f"/proc/self/fd/{descriptor}"))
            if not opened.is_relative_to(root):
                raise UnreadableDocument(f"{named} is outside the shared root")
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise UnreadableDocument(f"{named} is not a file")
            data = file.read(self.policy.max_bytes + 1)
        self._within_limit(len(data))
        return data

    async def _resolve(self, url: httpx.URL) -> str:
        """The address to connect to: resolved once, from the host as httpx
        encodes it (IDNA), and checked; the connection goes to this very
        address, so a second lookup (DNS rebinding) cannot change it."""
        host = url.raw_host.decode("ascii")
        if not host:
            raise UnreadableDocument(f"{url} names no host")
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, url.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise SourceUnavailable(f"{host} does not resolve: {exc}") from exc
        except UnicodeError as exc:
            raise UnreadableDocument(f"{host} is not a valid host name: {exc}") from exc
        addresses = [str(info[4][0]) for info in found]
        if not addresses:
            raise SourceUnavailable(f"{host} does not resolve")
        if not self.policy.allow_private and not all(_public(a) for a in addresses):
            raise UnreadableDocument(f"{host} is a private or local address (INGEST_FETCH_ALLOW_PRIVATE)")
        return addresses[0]

    async def _download(self, source: str) -> bytes:
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                return await self._follow(source)
        except TimeoutError as exc:
            raise SourceUnavailable(f"{source} took longer than {self.policy.timeout_seconds:g} s") from exc

    async def _follow(self, source: str) -> bytes:
        # Redirects followed by hand: each hop's address is checked too. No
        # proxy or .netrc from the environment, and no compressed bodies (a
        # small gzip bomb would unpack before the size cap sees it).
        try:
            url = httpx.URL(source)
        except httpx.InvalidURL as exc:
            raise UnreadableDocument(f"not a valid URL: {exc}") from exc
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if url.scheme not in ("http", "https"):
                    raise UnreadableDocument(f"a redirect to {url} leaves http(s)")
                address = await self._resolve(url)
                request = client.build_request(
                    "GET",
                    url.copy_with(host=address),
                    headers={"Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity"},
                    extensions={"sni_hostname": url.raw_host.decode("ascii")},
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.TransportError as exc:
                    raise SourceUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
                except httpx.InvalidURL as exc:
                    raise UnreadableDocument(f"not a valid URL: {exc}") from exc
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = url.join(response.headers["location"])
                        continue
                    self._check_status(str(url), response.status_code)
                    return await self._body(response)
                except httpx.TransportError as exc:
                    raise SourceUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
                finally:
                    await response.aclose()
        raise UnreadableDocument(f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _check_status(url: str, status: int) -> None:
        if status == HTTPStatus.OK:
            return
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status in _RETRY_STATUSES:
            raise SourceUnavailable(f"{url} answered {status}")
        raise UnreadableDocument(f"{url} answered {status}")

    async def _body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit():
            self._within_limit(int(declared))
        data = bytearray()
        async for piece in response.aiter_raw():
            data += piece
            self._within_limit(len(data))
        return bytes(data)

    def _s3_client(self) -> "S3Client":
        """One client for all documents, made on first use: it finds the
        credentials (possibly from a role's endpoint), which takes a while."""
        with self._s3_lock:  # fetches run in threads side by side
            if self._s3 is None:
                policy = self.policy
                # A session of its own: boto3's default one is not thread-safe.
                session = boto3.session.Session()
                # Checked here, so that a client without credentials (a role's
                # endpoint down at the first document) is not kept for good.
                if session.get_credentials() is None:
                    raise NoCredentialsError()
                config = Config(
                    connect_timeout=policy.timeout_seconds,
                    read_timeout=policy.timeout_seconds,
                    retries={"mode": "standard", "total_max_attempts": S3_ATTEMPTS},
                    # Stores other than AWS (MinIO, localbucket) rarely serve
                    # bucket.host names; every one serves host/bucket.
                    s3={"addressing_style": "path"} if policy.s3_endpoint_url else None,
                )
                self._s3 = session.client(
                    "s3", region_name=policy.s3_region, endpoint_url=policy.s3_endpoint_url, config=config
                )
            return self._s3

    def _read_s3(self, source: str) -> bytes:
        """`s3://bucket/key`, the key as it is (S3 keys are not URL-encoded,
        and may hold `?` and `#`). Blocks: run in a thread."""
        bucket, _, key = source.partition("://")[2].partition("/")
        if not self.policy.s3_buckets:
            raise UnreadableDocument("s3:// sources are not allowed here (INGEST_S3_BUCKETS is not set)")
        if bucket not in self.policy.s3_buckets:
            raise UnreadableDocument(f"bucket {bucket or '(none)'} is not one the worker may read (INGEST_S3_BUCKETS)")
        if not key:
            raise UnreadableDocument("an s3:// source names its object: s3://bucket/key")
        if {".", ".."} & set(key.split("/")):
            # A proxy or store in between may resolve them: to another bucket,
            # addressed path-style (/bucket/key).
            raise UnreadableDocument("an s3:// key with . or .. segments is not read")
        deadline = time.monotonic() + self.policy.timeout_seconds
        try:
            answer = self._s3_client().get_object(Bucket=bucket, Key=key)
            return self._s3_body(source, answer, deadline)
        except ClientError as exc:
            raise self._s3_error(source, exc) from exc
        except (BotoConnectionError, HTTPClientError, IncompleteReadError) as exc:
            raise SourceUnavailable(f"{source}: {type(exc).__name__}: {exc}") from exc
        except (NoCredentialsError, CredentialRetrievalError) as exc:
            # The worker's problem, not the document's: a role's endpoint may
            # answer again, an operator may add them, and the event be retried.
            raise SourceUnavailable(f"{source}: the worker has no AWS credentials now: {exc}") from exc

    def _s3_body(self, source: str, answer: "GetObjectOutputTypeDef", deadline: float) -> bytes:
        body = answer["Body"]
        try:
            self._within_limit(answer.get("ContentLength", 0))  # none when the store streams it chunked
            # Never more than one byte past the limit, and the whole download
            # within the timeout (a read timeout alone allows a slow drip).
            data = bytearray()
            wanted = self.policy.max_bytes + 1
            while len(data) < wanted and (piece := body.read(min(_S3_PIECE_BYTES, wanted - len(data)))):
                data += piece
                if time.monotonic() > deadline:
                    raise SourceUnavailable(f"{source} took longer than {self.policy.timeout_seconds:g} s")
            self._within_limit(len(data))
            return bytes(data)
        finally:
            body.close()  # the connection is dropped, not drained, when reading stopped early

    @staticmethod
    def _s3_error(source: str, exc: ClientError) -> UnreadableDocument | SourceUnavailable:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = error.get("Message")
        reason = f"{source} answered {status} {code}" + (f": {message}" if message else "")
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status in _RETRY_STATUSES or code in _S3_RETRY_CODES:
            return SourceUnavailable(reason)
        if status == HTTPStatus.FORBIDDEN:
            reason += " (the worker's AWS credentials may not read it)"
        return UnreadableDocument(reason)
