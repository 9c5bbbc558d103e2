"""Checks on secrets given by configuration. Outside development a weak or
placeholder secret is refused at start-up, with how to make a good one:
a guessable admin key is an open door on the public internet."""

import math
from collections import Counter

MIN_SECRET_CHARS = 32
# A random 32-character url-safe token carries ~4.5-5 bits per character;
# "aaaa...", "password" repeated and keyboard walks fall far below.
MIN_BITS_PER_CHAR = 3.0
PLACEHOLDERS = ("change", "example", "secret", "password", "dev-", "test", "xxx", "...")
GENERATE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def bits_per_char(value: str) -> float:
    """Shannon entropy of the characters of `value`."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def weakness(value: str) -> str | None:
    """Why `value` is not a good secret, or None."""
    if len(value) < MIN_SECRET_CHARS:
        return f"is {len(value)} characters long; at least {MIN_SECRET_CHARS} are required"
    lowered = value.lower()
    placeholder = next((p for p in PLACEHOLDERS if p in lowered), None)
    if placeholder is not None:
        return f"looks like a placeholder (contains {placeholder!r})"
    if bits_per_char(value) < MIN_BITS_PER_CHAR:
        return "is too predictable (too few distinct characters)"
    return None
