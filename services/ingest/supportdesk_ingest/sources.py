"""A document's bytes, however its producer sent them: the gateway's claim
check in Redis, inline content, or a reference fetched here (http(s)://, or
file:// under the shared root).

A refusal (a scheme not allowed, a private address, a file outside the
root, too many bytes, a 4xx answer) is final: `UnreadableDocument`, the
document ends `failed` with the reason. An outage (no connection, a 5xx,
408 or 429) is `SourceUnavailable`, a ConnectionError: the event is
retried with backoff, as for any other dependency.
"""

import asyncio
import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from supportdesk_contracts.events import DocumentUploaded
from supportdesk_documents.registry import DocumentRegistry
from supportdesk_ingest.errors import UnreadableDocument

MAX_REDIRECTS = 3
_RETRY_STATUSES = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS)


class SourceUnavailable(ConnectionError):
    """The referenced document could not be fetched now; later may work."""


@dataclass(frozen=True)
class SourcePolicy:
    max_bytes: int
    shared_root: Path | None = None
    timeout_seconds: float = 30.0
    allow_private: bool = False


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_global and not ip.is_multicast


class DocumentSources:
    def __init__(self, registry: DocumentRegistry, policy: SourcePolicy) -> None:
        self.registry = registry
        self.policy = policy

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
        raise UnreadableDocument(f"a source must be https://, http:// or file://, not {scheme or 'none'}://")

    def _read_shared(self, source: str) -> bytes:
        root = self.policy.shared_root
        if root is None:
            raise UnreadableDocument("file:// sources are not allowed here (INGEST_SHARED_ROOT is not set)")
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise UnreadableDocument("a file:// source names no host")
        # Resolved (symbolic links and ".." followed) before the check, so
        # nothing outside the root is reachable through one.
        path = Path(parts.path).resolve()
        if not path.is_relative_to(root.resolve()):
            raise UnreadableDocument(f"{parts.path} is outside the shared root")
        try:
            with path.open("rb") as file:
                data = file.read(self.policy.max_bytes + 1)
        except FileNotFoundError as exc:
            raise UnreadableDocument(f"{parts.path} does not exist") from exc
        except IsADirectoryError as exc:
            raise UnreadableDocument(f"{parts.path} is a folder") from exc
        self._within_limit(len(data))
        return data

    async def _check_host(self, url: str) -> None:
        host = urlsplit(url).hostname
        if not host:
            raise UnreadableDocument(f"{url} names no host")
        if self.policy.allow_private:
            return
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise SourceUnavailable(f"{host} does not resolve: {exc}") from exc
        if not all(_public(str(info[4][0])) for info in found):
            raise UnreadableDocument(f"{host} is a private or local address (INGEST_FETCH_ALLOW_PRIVATE)")

    async def _download(self, url: str) -> bytes:
        # Redirects followed by hand: each hop's address is checked too.
        async with httpx.AsyncClient(timeout=self.policy.timeout_seconds, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if urlsplit(url).scheme.lower() not in ("http", "https"):
                    raise UnreadableDocument(f"a redirect to {url} leaves http(s)")
                await self._check_host(url)
                try:
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        self._check_status(url, response.status_code)
                        return await self._body(response)
                except httpx.TransportError as exc:
                    raise SourceUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
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
        async for piece in response.aiter_bytes():
            data += piece
            self._within_limit(len(data))
        return bytes(data)
