"""Publish a document to SupportDesk's upload topic, as a CMS, a help-centre
export or a data pipeline would, and wait for its outcome on the status topic.

    python publish_document.py --bootstrap kafka:9092 --id cms:returns \\
        --file returns.html --title "Returns policy" --url https://help.example.com/returns
    python publish_document.py --bootstrap kafka:9092 --id cms:faq --filename faq.md \\
        --source https://help.example.com/export/faq.md

Only the Kafka protocol and JSON: no SupportDesk package is needed (the
contract is docs/asyncapi.json, channel documents.uploads).
"""

import argparse
import asyncio
import base64
import json
import pathlib
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def document_event(args: argparse.Namespace) -> dict[str, object]:
    event: dict[str, object] = {
        "event_type": "document.uploaded",
        "event_id": str(uuid.uuid4()),
        "document_id": args.id,  # stable: publishing it again replaces the document
        "filename": args.filename or pathlib.Path(args.file).name,  # the extension says the format
        "title": args.title,
        "source_url": args.url,
        "metadata": dict(pair.split("=", 1) for pair in args.meta),
    }
    if args.file:  # inline, up to 700 KB
        event["content_base64"] = base64.b64encode(pathlib.Path(args.file).read_bytes()).decode()
    else:  # a reference the ingest worker fetches: https://, http://, file:// under its shared root, or s3://
        event["source"] = args.source
    return event


async def publish(args: argparse.Namespace) -> dict[str, object]:
    uploads, statuses = f"{args.prefix}.documents.uploads.v1", f"{args.prefix}.documents.status.v1"
    consumer = AIOKafkaConsumer(statuses, bootstrap_servers=args.bootstrap, auto_offset_reset="latest")
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    await producer.start()
    try:
        # Subscribed before publishing, so the outcome cannot be missed.
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        event = document_event(args)
        await producer.send_and_wait(uploads, json.dumps(event).encode(), key=args.id.encode())
        async with asyncio.timeout(args.timeout):
            async for message in consumer:
                status = json.loads(message.value)
                # The outcome of this very event (not of an earlier version of the document).
                if status.get("causation_id") == event["event_id"] and status["status"] in ("indexed", "failed"):
                    return status
    finally:
        await producer.stop()
        await consumer.stop()
    raise TimeoutError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", default="supportdesk", help="KAFKA_TOPIC_PREFIX of the deployment")
    parser.add_argument("--id", required=True, help="the document's stable id")
    content = parser.add_mutually_exclusive_group(required=True)
    content.add_argument("--file", help="send this file inline")
    content.add_argument("--source", help="a URL the ingest worker fetches (https, http, file, s3)")
    parser.add_argument("--filename", help="with --source: its name, for the format")
    parser.add_argument("--title")
    parser.add_argument("--url", help="where readers find the original")
    parser.add_argument("--meta", action="append", default=[], help="KEY=VALUE, repeatable")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    if args.source and not args.filename:
        parser.error("--source needs --filename (its extension says the format)")
    status = asyncio.run(publish(args))
    sys.stdout.write(json.dumps(status) + "\n")
    raise SystemExit(0 if status["status"] == "indexed" else 1)


if __name__ == "__main__":
    main()
