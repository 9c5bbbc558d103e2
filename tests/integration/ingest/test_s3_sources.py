"""s3:// sources against a real S3 store (localbucket, see conftest.py):
an object of an allowed bucket is read; a missing object or bucket, a bucket
not allowed and an object over the size limit are refused (final); a store
that does not answer is an outage (retried)."""

from typing import Any

import pytest

from builders import S3Store
from devstack import stop_process
from supportdesk_ingest.errors import UnreadableDocument
from supportdesk_ingest.sources import DocumentSources, SourcePolicy, SourceUnavailable

pytestmark = pytest.mark.integration

GIFT_CARDS = b"Gift cards never expire and can be used on any order, online or in store."


def sources(store: S3Store, **policy: Any) -> DocumentSources:
    allowed = policy.pop("s3_buckets", frozenset({"docs", "gone"}))
    return DocumentSources(
        None,  # type: ignore[arg-type]  # no claim checks here
        SourcePolicy(max_bytes=1000, s3_buckets=allowed, s3_endpoint_url=store.endpoint, **policy),
    )


async def test_an_object_of_an_allowed_bucket_is_read(s3_store: S3Store) -> None:
    # The key as S3 has it: not URL-encoded, with its "folders".
    s3_store.client.put_object(Bucket="docs", Key="help/gift cards.txt", Body=GIFT_CARDS)
    reader = sources(s3_store)
    assert await reader.fetch("s3://docs/help/gift cards.txt") == GIFT_CARDS
    assert await reader.fetch("s3://docs/help/gift cards.txt") == GIFT_CARDS  # the same client again


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("s3://docs/nothing.txt", "s3://docs/nothing.txt answered 404 NoSuchKey"),
        ("s3://gone/a.txt", "s3://gone/a.txt answered 404 NoSuchBucket"),
        ("s3://private/secret.txt", "bucket private is not one the worker may read"),
        ("s3://docs/big.txt", "larger than the 1,000 bytes allowed"),
    ],
)
async def test_what_cannot_or_may_not_be_read_is_refused(s3_store: S3Store, source: str, reason: str) -> None:
    s3_store.client.put_object(Bucket="docs", Key="big.txt", Body=b"x" * 1001)
    s3_store.client.put_object(Bucket="private", Key="secret.txt", Body=b"not for the index")
    with pytest.raises(UnreadableDocument, match=reason):
        await sources(s3_store).fetch(source)


async def test_a_store_that_does_not_answer_is_an_outage(s3_store: S3Store) -> None:
    s3_store.client.put_object(Bucket="docs", Key="a.txt", Body=GIFT_CARDS)
    reader = sources(s3_store, timeout_seconds=2)
    assert await reader.fetch("s3://docs/a.txt") == GIFT_CARDS
    stop_process(s3_store.process)
    with pytest.raises(SourceUnavailable, match=r"s3://docs/a\.txt: EndpointConnectionError"):
        await reader.fetch("s3://docs/a.txt")
