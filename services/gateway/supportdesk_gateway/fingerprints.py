"""Binding a session to the client that created it: a hash of the client's
network (an address prefix, not the address: phones move between addresses
of their carrier) and its User-Agent. A session token copied to another
machine then no longer matches.

    off      nothing is checked;
    lenient  a mismatch is logged and counted (supportdesk_gateway_fingerprint_mismatches);
    strict   a mismatch is refused: 403 over HTTP, close 4003 on a WebSocket.

A verified user who recovers their session from a new device moves the
binding there: identity verification is the stronger proof.
"""

import hashlib
import ipaddress
import logging
from typing import Literal

from prometheus_client import Counter
from starlette.datastructures import Headers
from starlette.types import Scope

from supportdesk_gateway.limits import ClientAddress

log = logging.getLogger(__name__)

FingerprintMode = Literal["off", "lenient", "strict"]


class FingerprintMismatch(Exception):
    """Strict mode: the client does not look like the one the session is bound to."""


class Fingerprints:
    def __init__(
        self,
        mode: FingerprintMode,
        clients: ClientAddress,
        mismatches: Counter,
        *,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 48,
    ) -> None:
        self.mode = mode
        self.clients = clients
        self.mismatches = mismatches
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix

    def network_of(self, address: str) -> str:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address  # e.g. "testclient": compared as it is
        prefix = self.ipv4_prefix if ip.version == 4 else self.ipv6_prefix
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))

    def of(self, scope: Scope) -> str | None:
        """The fingerprint of the client making this request (None when off)."""
        if self.mode == "off":
            return None
        agent = Headers(scope=scope).get("user-agent", "")
        material = f"{self.network_of(self.clients.of(scope))}|{agent}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def check(self, bound: str | None, scope: Scope, session_id: str) -> None:
        """Raises FingerprintMismatch in strict mode; logs and counts in lenient."""
        current = self.of(scope)
        if bound is None or current is None or current == bound:
            return
        self.mismatches.labels(self.mode).inc()
        log.warning("client fingerprint mismatch", extra={"session_id": session_id, "mode": self.mode})
        if self.mode == "strict":
            raise FingerprintMismatch("this session is bound to another client")
