"""Why a document is not indexed: the reason is shown to whoever uploaded it."""


class UnreadableDocument(ValueError):
    """The bytes are not a readable document of the type its name says."""


class ParseLimitExceeded(UnreadableDocument):
    """The document needs more than one document may take (time, memory,
    size, elements): refused, never retried."""
