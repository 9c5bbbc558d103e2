"""Text as clients send it. JSON may escape a lone UTF-16 surrogate
(`"\\ud800"`): it is no Unicode character, and no UTF-8 encoder (Redis, the
session cipher, Kafka) accepts it. Refused where it enters, with a reason."""

from typing import Annotated

from pydantic import AfterValidator


def _well_formed(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_well_formed)]
