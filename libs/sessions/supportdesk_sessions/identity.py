"""Identity verification, as Intercom and Crisp do it: the operator's own
backend, which knows who is logged in, computes `user_hash` = hex
HMAC-SHA256(IDENTITY_SECRET, user_id) and hands it to the page with the user
id. A user id counts only with that proof; anyone can type someone else's
id, nobody without the secret can compute its hash."""

import hashlib
import hmac


class IdentityMismatch(ValueError):
    """A user_hash was given and does not verify the user id."""


class IdentityVerifier:
    # Domain separation: the recovery index is keyed with the same secret but
    # never equals a user_hash the browser has seen.
    _INDEX_CONTEXT = b"supportdesk-recovery-index:"

    def __init__(self, secret: str | None) -> None:
        self._secret = secret.encode() if secret else None

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def user_hash(self, user_id: str) -> str:
        """What the operator's backend computes; for tests and documentation."""
        if self._secret is None:
            raise RuntimeError("IDENTITY_SECRET is not set")
        return hmac.new(self._secret, user_id.encode(), hashlib.sha256).hexdigest()

    def verified(self, user_id: str | None, user_hash: str | None) -> str | None:
        """The user id if proven; None when there is no proof to check (no id,
        no hash, or no secret configured). A wrong proof is an error, not a
        silent anonymous session, so a misconfigured backend is noticed."""
        if user_id is None or user_hash is None or self._secret is None:
            return None
        proof = user_hash.strip().lower()
        # A hex digest is ASCII; compare_digest refuses (TypeError) any other str.
        if not proof.isascii() or not hmac.compare_digest(self.user_hash(user_id), proof):
            raise IdentityMismatch("user_hash does not verify user_id")
        return user_id

    def index_digest(self, user_id: str) -> str:
        """The recovery index's name for a verified user: keyed, so a leaked
        Redis key list does not reveal e-mail addresses (a plain SHA-256 of an
        address is reversed by hashing a list of addresses)."""
        if self._secret is None:
            raise RuntimeError("IDENTITY_SECRET is not set")
        return hmac.new(self._secret, self._INDEX_CONTEXT + user_id.encode(), hashlib.sha256).hexdigest()
