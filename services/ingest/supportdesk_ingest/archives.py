"""Zip bombs refused before anything is unpacked: docx and xlsx are zip
archives, and a few hundred KB of one can unpack to gigabytes."""

import io
import zipfile

from supportdesk_ingest.errors import ParseLimitExceeded
from supportdesk_ingest.limits import ParseLimits

MB = 1024 * 1024
# Small entries are left out of the ratio checks: a tiny, highly compressible
# part (an empty relationships file) is harmless and common, and the total
# size check bounds them all together anyway.
RATIO_GRACE_BYTES = 1 * MB


def check_zip(data: bytes, limits: ParseLimits) -> None:
    """Refuse an archive whose central directory promises too much.

    The sizes are the ones the archive declares; that is enough because
    `zipfile` never unpacks more than an entry's declared size (a lie ends in
    a CRC error, not in more bytes), and python-docx and openpyxl both read
    through `zipfile`.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # not a zip: BadZipFile, for the caller to word
        entries = archive.infolist()
    if len(entries) > limits.zip_max_entries:
        raise ParseLimitExceeded(
            f"the archive has {len(entries):,} entries, more than the {limits.zip_max_entries:,} allowed"
        )
    for entry in entries:
        if entry.file_size > RATIO_GRACE_BYTES:
            _check_ratio(entry.filename, entry.file_size, entry.compress_size, limits)
    total = sum(entry.file_size for entry in entries)
    if total > limits.zip_max_uncompressed_mb * MB:
        raise ParseLimitExceeded(
            f"the archive unpacks to {total / MB:,.0f} MB, more than the {limits.zip_max_uncompressed_mb:,} MB allowed"
        )
    if total > RATIO_GRACE_BYTES:
        _check_ratio("the archive", total, len(data), limits)


def _check_ratio(what: str, unpacked: int, packed: int, limits: ParseLimits) -> None:
    ratio = unpacked / max(packed, 1)
    if ratio > limits.zip_max_ratio:
        raise ParseLimitExceeded(
            f"{what} is compressed {ratio:,.0f}:1, more than the {limits.zip_max_ratio:,}:1 allowed"
        )
