"""Encryption at rest of session data (Fernet; several keys allowed so keys can
be rotated: the first encrypts, all decrypt)."""

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SessionDecryptError(RuntimeError):
    """Stored session data could not be decrypted with any configured key."""


class SessionCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise SessionDecryptError("session data is not readable with the configured keys") from exc

    def rotate(self, token: str | bytes) -> str:
        """The same value encrypted under the first key (SessionDecryptError
        if no configured key reads it)."""
        raw = token.encode() if isinstance(token, str) else token
        try:
            return self._fernet.rotate(raw).decode()
        except InvalidToken as exc:
            raise SessionDecryptError("session data is not readable with the configured keys") from exc

    def decrypt(self, token: str | bytes) -> Any:
        raw = token.encode() if isinstance(token, str) else token
        try:
            return json.loads(self._fernet.decrypt(raw))
        except InvalidToken as exc:
            raise SessionDecryptError("session data is not readable with the configured keys") from exc
