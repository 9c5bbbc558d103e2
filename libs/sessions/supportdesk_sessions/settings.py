"""Settings of the services that read or write session state (the gateway
and the session worker): how long a session lives and the keys it is
encrypted with."""

import base64
import binascii
from typing import Self

from pydantic import Field, SecretStr, model_validator

from supportdesk_platform.settings import ServiceSettings

# A fixed key so that several local processes can read each other's encrypted
# session state without configuration. Refused outside development.
DEVELOPMENT_ENCRYPTION_KEY = "c3VwcG9ydGRlc2stZGV2ZWxvcG1lbnQta2V5LTAwMDA="
GENERATE_FERNET_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
FERNET_KEY_BYTES = 32
MIN_DISTINCT_KEY_BYTES = 16


class SessionStateSettings(ServiceSettings):
    session_timeout_minutes: float = Field(default=30, gt=0)
    # Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
    session_encryption_keys: SecretStr = SecretStr("")
    session_max_messages: int = Field(
        default=1000, ge=10, description="History and frame log keep the latest this many entries per session."
    )

    @property
    def session_ttl_seconds(self) -> int:
        return max(1, int(self.session_timeout_minutes * 60))

    @property
    def encryption_keys(self) -> list[str]:
        raw = self.session_encryption_keys.get_secret_value()
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        return keys or [DEVELOPMENT_ENCRYPTION_KEY]

    @model_validator(mode="after")
    def _refuse_bad_keys(self) -> Self:
        for position, key in enumerate(self.encryption_keys, start=1):
            problem = _key_problem(key, strict=self.environment != "development")
            if problem is not None:
                raise ValueError(
                    f"SESSION_ENCRYPTION_KEYS: key {position} {problem} (ENVIRONMENT={self.environment});"
                    f" generate one with: {GENERATE_FERNET_KEY}"
                )
        return self


def _key_problem(key: str, *, strict: bool) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != FERNET_KEY_BYTES:
        return "is not a Fernet key (32 url-safe base64-encoded bytes)"
    if strict and key == DEVELOPMENT_ENCRYPTION_KEY:
        return "is the development key, refused outside development"
    # 32 random bytes have ~30 distinct values; a hand-made key has a few.
    if strict and len(set(raw)) < MIN_DISTINCT_KEY_BYTES:
        return "is not random (too few distinct bytes)"
    return None
