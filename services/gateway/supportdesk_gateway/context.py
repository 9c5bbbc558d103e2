"""What the gateway's routes work with, created once by `app.build_gateway`."""

from dataclasses import dataclass

from supportdesk_documents.registry import DocumentRegistry
from supportdesk_gateway.fingerprints import Fingerprints
from supportdesk_gateway.hub import Hub
from supportdesk_gateway.limits import ClientAddress, RateLimiter
from supportdesk_gateway.metrics import GatewayMetrics
from supportdesk_gateway.publisher import EventPublisher
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_gateway.timing import SocketTurns
from supportdesk_sessions.access import GatewaySessions
from supportdesk_sessions.attachments import SessionAttachments
from supportdesk_sessions.recorder import SessionRecorder


@dataclass
class GatewayContext:
    settings: GatewaySettings
    sessions: GatewaySessions
    desk: SessionRecorder
    """The operators' writes: claim, reply, hand back, close (atomic, like the session worker's)."""
    documents: DocumentRegistry
    attachments: SessionAttachments
    hub: Hub
    events: EventPublisher
    metrics: GatewayMetrics
    socket_turns: SocketTurns
    limiter: RateLimiter
    clients: ClientAddress
    fingerprints: Fingerprints
