"""Redis answers bytes unless the client decodes; our clients do not."""


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
