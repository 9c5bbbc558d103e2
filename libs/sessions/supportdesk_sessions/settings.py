"""Settings of the services that read or write session state (the gateway
and the session worker): how long a session lives and the keys it is
encrypted with."""

from typing import Self

from pydantic import Field, SecretStr, model_validator

from supportdesk_platform.settings import ServiceSettings

# A fixed key so that several local processes can read each other's encrypted
# session state without configuration. Refused outside development.
DEVELOPMENT_ENCRYPTION_KEY = "c3VwcG9ydGRlc2stZGV2ZWxvcG1lbnQta2V5LTAwMDA="


class SessionStateSettings(ServiceSettings):
    session_timeout_minutes: float = Field(default=30, gt=0)
    # Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
    session_encryption_keys: SecretStr = SecretStr("")

    @property
    def session_ttl_seconds(self) -> int:
        return max(1, int(self.session_timeout_minutes * 60))

    @property
    def encryption_keys(self) -> list[str]:
        raw = self.session_encryption_keys.get_secret_value()
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        return keys or [DEVELOPMENT_ENCRYPTION_KEY]

    @model_validator(mode="after")
    def _refuse_development_key(self) -> Self:
        if self.environment != "development" and DEVELOPMENT_ENCRYPTION_KEY in self.encryption_keys:
            raise ValueError(
                "SESSION_ENCRYPTION_KEYS must be set to real keys outside development"
                f" (ENVIRONMENT={self.environment});"
                ' generate one with: python -c "from cryptography.fernet import Fernet;'
                ' print(Fernet.generate_key().decode())"'
            )
        return self
