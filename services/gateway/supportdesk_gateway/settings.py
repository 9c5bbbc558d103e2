import socket
from typing import Self

from pydantic import Field, SecretStr, model_validator

from supportdesk_gateway.fingerprints import FingerprintMode
from supportdesk_gateway.limits import Limit
from supportdesk_platform.secrets import GENERATE_TOKEN, weakness
from supportdesk_sessions.settings import SessionStateSettings

DEVELOPMENT_ADMIN_KEY = "dev-admin-key"


class GatewaySettings(SessionStateSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_ops_port: int | None = Field(
        default=None,
        description="Serve /metrics and /health/diagnostics on this port (on OPS_HOST) instead of the public API port.",
    )
    ops_host: str = "127.0.0.1"
    gateway_id: str = Field(default="", description="Replica name in logs and events; host:port when unset.")
    admin_api_key: SecretStr = SecretStr(DEVELOPMENT_ADMIN_KEY)
    identity_secret: SecretStr | None = Field(
        default=None,
        description="Verifies user_hash = HMAC-SHA256(secret, user_id) from the operator's backend; without it,"
        " user ids are ignored and no session is ever recovered by user.",
    )
    operator_keys: SecretStr | None = Field(
        default=None,
        description="Human agents' keys for the operator API, as name=key pairs separated by commas; the name is"
        ' shown to the user ("Alex joined"). The admin key also acts, as `admin`.',
    )
    reply_timeout_seconds: float = Field(default=60, gt=0)
    max_message_chars: int = Field(default=4000, ge=1, le=8000)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    attachments_per_session: int = Field(
        default=5,
        ge=0,
        alias="ATTACHMENTS_PER_SESSION",
        description="Files a user may attach to one conversation (same types and size limit as documents); 0: none.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request body of every route but uploads (413 beyond)."
    )
    ws_send_queue: int = Field(
        default=1000, ge=10, description="Frames buffered per socket before it is dropped as too slow."
    )
    ws_send_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="Longest one frame's send may wait on a client that does not read; then it is dropped (1008).",
    )
    ws_per_message_deflate: bool = Field(
        default=True,
        description="Compress frames (permessage-deflate) for clients that ask, as browsers do. Each socket then"
        " holds a zlib compressor and decompressor (~41 KiB) as long as it is open, more than the rest of an idle"
        " socket; false saves that, but a client sending an oversized uncompressed frame may then see its socket"
        " reset (1006) before the 1009 close reaches it.",
    )
    rate_limit_enabled: bool = True
    rate_limit_requests: int = Field(
        default=120, ge=1, description="HTTP requests under /api/ and WebSocket handshakes per client IP per period."
    )
    rate_limit_period: float = Field(default=60, gt=0, description="Seconds of the sliding window of every limit.")
    rate_limit_sessions: int = Field(default=20, ge=1, description="Sessions created per client IP per period.")
    rate_limit_messages: int = Field(
        default=30, ge=1, description="Chat messages per session per period, over WebSocket, REST and SSE together."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDRs of proxies whose X-Forwarded-For names the client;"
        " without any, the header is ignored (anyone can send it).",
    )
    fingerprint_mode: FingerprintMode = Field(
        default="lenient",
        description="Bind sessions to the client's network and User-Agent: off, lenient (log and count a"
        " mismatch) or strict (refuse it).",
    )
    fingerprint_ipv4_prefix: int = Field(default=24, ge=8, le=32, description="IPv4 bits of the bound network.")
    fingerprint_ipv6_prefix: int = Field(default=48, ge=16, le=128, description="IPv6 bits of the bound network.")
    session_sweep_seconds: float = Field(
        default=5, gt=0, description="How often sockets of deleted or expired sessions are looked for and closed."
    )
    ws_max_connections: int = Field(default=20_000, ge=1, description="Open WebSockets per gateway replica.")
    ws_max_per_session: int = Field(default=5, ge=1, description="Open WebSockets per session on one replica.")
    cors_allow_origins: str = Field(
        default="",
        description="Comma-separated origins whose pages may call the API from a browser (CORS); none when empty."
        " The chat page served by the gateway itself needs none.",
    )
    welcome_message: str = "Hello! I'm the SupportDesk assistant. Ask me anything about our products and policies."

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip()]

    @property
    def request_limit(self) -> Limit:
        return Limit("requests", self.rate_limit_requests, self.rate_limit_period)

    @property
    def session_limit(self) -> Limit:
        return Limit("sessions", self.rate_limit_sessions, self.rate_limit_period)

    @property
    def message_limit(self) -> Limit:
        return Limit("messages", self.rate_limit_messages, self.rate_limit_period)

    @property
    def resume_limit(self) -> Limit:
        return Limit("resumes", self.rate_limit_messages, self.rate_limit_period)

    @property
    def replica_id(self) -> str:
        return self.gateway_id or f"{socket.gethostname()}:{self.gateway_port}"

    def operators(self) -> dict[str, str]:
        """Operator key to operator name; the admin key is `admin`."""
        keys = {self.admin_api_key.get_secret_value(): "admin"}
        for name, key in _operator_pairs(self.operator_keys):
            keys[key] = name
        return keys

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Self:
        pairs = _operator_pairs(self.operator_keys)  # a malformed list is refused in every environment
        if self.environment == "development":
            return self
        secrets = {"ADMIN_API_KEY": self.admin_api_key}
        secrets.update({f"OPERATOR_KEYS ({name})": SecretStr(key) for name, key in pairs})
        if self.identity_secret is not None:
            secrets["IDENTITY_SECRET"] = self.identity_secret
        for name, secret in secrets.items():
            problem = weakness(secret.get_secret_value())
            if problem is not None:
                raise ValueError(
                    f"{name} {problem} (ENVIRONMENT={self.environment}); generate one with: {GENERATE_TOKEN}"
                )
        return self


def _operator_pairs(keys: SecretStr | None) -> list[tuple[str, str]]:
    if keys is None:
        return []
    pairs = []
    for item in keys.get_secret_value().split(","):
        name, sep, key = (part.strip() for part in item.partition("="))
        if not (sep and name and key):
            raise ValueError("OPERATOR_KEYS must be name=key pairs separated by commas")
        pairs.append((name, key))
    return pairs
