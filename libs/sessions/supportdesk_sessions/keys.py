"""Where a session lives in Redis. Every key of a session shares a hash tag, so
the Lua step that changes several of them atomically also works on Redis
Cluster."""

import hashlib
from dataclasses import astuple, dataclass


@dataclass(frozen=True)
class SessionKeys:
    meta: str
    """Hash: times, counters, the last frame seq, escalation, the encrypted user id."""
    messages: str
    """List: the encrypted history, in order."""
    recorded: str
    """Hash: idempotency ids (m:<message>, r:<reply_to>, e:escalated) to their frame seq."""
    frames: str
    """Hash: seq to the encrypted frame, what a resuming client missed."""
    tokens: str
    """Set: hashes of the session's bearer tokens."""
    attachments: str
    """Hash: the user's attachments (attachments.py), each encrypted: <id> its
    record, <id>:blob its bytes until parsed, <id>:passages its passages."""
    answers: str
    """Hash: message id to the agent's encrypted finished answer, until it is
    recorded (answers.py): a redelivered turn is not generated twice."""

    @classmethod
    def of(cls, prefix: str, session_id: str) -> "SessionKeys":
        base = f"{prefix}:s:{{{session_id}}}"
        return cls(
            base, f"{base}:msgs", f"{base}:ids", f"{base}:frames", f"{base}:tokens", f"{base}:att", f"{base}:ans"
        )

    def all(self) -> list[str]:
        """In the order the Lua step names them (KEYS[1..7]): renewed together, purged together."""
        return list(astuple(self))


def active_index(prefix: str) -> str:
    """Sorted set of live sessions: id to the time (epoch seconds) it expires
    unless active again. Counts them, and lets one worker notice an expiry."""
    return f"{prefix}:active"


def handoff_index(prefix: str) -> str:
    """Sorted set of the sessions waiting for or with a human: id to the time
    it entered the queue. The operators' inbox."""
    return f"{prefix}:handoff"


def user_key(prefix: str, digest: str) -> str:
    """A verified user's recovery index (their active session id), named by
    the keyed digest of their id (`IdentityVerifier.index_digest`)."""
    return f"{prefix}:u:{digest}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
