"""Look at dead letters and send them back to where they came from.

    python -m supportdesk_platform.deadletters list [--consumer C] [--topic T] [--reason WORDS]
    python -m supportdesk_platform.deadletters show EVENT_ID
    python -m supportdesk_platform.deadletters replay (EVENT_ID ... | --all filters) [--again] [--dry-run]

It reads the dead-letter topic from its start with a plain consumer (no
group: reading commits nothing and moves no one's offsets), using the same
settings as the services (KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_PREFIX, the
TLS/SASL ones). `list` prints one JSON object a line; `replay` publishes each
chosen event's original body, with its original key, to its original topic,
once the cause is fixed (a dependency back, a bug deployed away), and
records the replay on the dead-letter topic: a letter replayed once is not
replayed again unless asked (`--again`), and one that fails again comes back
as a new letter naming the first (`replayed_from`). `--all` needs a filter,
and leaves out letters that could not be decoded (they would fail the same
way; name one to replay it anyway). A body that was cut when it was
dead-lettered (over 100,000 characters) or that is not valid UTF-8 is never
replayed: its record says so.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import TypeAdapter, ValidationError

from supportdesk_contracts.events import DeadLetterEvent, DeadLetterReplayed, EventDeadLettered
from supportdesk_platform.kafka import REPLAYED_HEADER, kafka_client_options
from supportdesk_platform.settings import ServiceSettings

_EVENT = TypeAdapter[DeadLetterEvent](DeadLetterEvent)
UNDECODABLE = "invalid event"
IDLE_SECONDS = 2.0
"""A read is over when the topic has given nothing for this long: the local
broker reports wrong end offsets, so the end is found by reading."""


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    event: EventDeadLettered
    replayed: bool = False

    @property
    def replayable(self) -> bool:
        """The whole original body is kept, and it was text."""
        body = self.event.payload.encode()
        return len(body) == self.event.payload_bytes and "\ufffd" not in self.event.payload

    def summary(self) -> dict[str, object]:
        e = self.event
        return {
            "event_id": str(e.event_id),
            "occurred_at": e.occurred_at.isoformat(),
            "consumer": e.consumer,
            "topic": e.topic,
            "key": e.key,
            "attempts": e.attempts,
            "reason": e.reason[:300],
            "payload_bytes": e.payload_bytes,
            "replayable": self.replayable,
            "replayed": self.replayed,
            "replayed_from": e.replayed_from,
            "position": f"{self.partition}:{self.offset}",
        }


@dataclass(frozen=True)
class Selection:
    consumer: str | None = None
    topic: str | None = None
    reason: str | None = None

    def __call__(self, letter: DeadLetter) -> bool:
        e = letter.event
        return (
            (self.consumer is None or e.consumer == self.consumer)
            and (self.topic is None or self.topic in e.topic)
            and (self.reason is None or self.reason.lower() in e.reason.lower())
        )


async def read_all(settings: ServiceSettings, idle_seconds: float = IDLE_SECONDS) -> list[DeadLetter]:
    """Every dead letter on the topic, oldest first per partition, each marked
    if it was replayed; records that are neither are skipped. The read ends
    when the topic has given nothing for `idle_seconds`."""
    topic = settings.topics.dead_letters
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_options(settings),
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    replayed: set[str] = set()
    try:
        await consumer.topics()  # a fresh client knows no partitions until it asks
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return []  # no dead-letter topic (yet): nothing was given up
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        while batch := await consumer.getmany(timeout_ms=int(idle_seconds * 1000)):
            for records in batch.values():
                for record in records:
                    try:
                        event = _EVENT.validate_json(record.value or b"")
                    except ValidationError:
                        continue
                    if isinstance(event, DeadLetterReplayed):
                        replayed.add(event.dead_letter_id)
                    else:
                        letters.append(DeadLetter(record.partition, record.offset, event))
    finally:
        await consumer.stop()
    return [
        DeadLetter(letter.partition, letter.offset, letter.event, str(letter.event.event_id) in replayed)
        for letter in letters
    ]


async def replay(settings: ServiceSettings, letters: Sequence[DeadLetter]) -> tuple[int, list[str]]:
    """Publishes each letter's body to its topic; returns how many, and the
    event ids of the letters that cannot be replayed."""
    refused = [str(letter.event.event_id) for letter in letters if not letter.replayable]
    chosen = [letter for letter in letters if letter.replayable]
    if not chosen:
        return 0, refused
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", **kafka_client_options(settings)
    )
    await producer.start()
    try:
        for letter in chosen:
            e = letter.event
            await producer.send_and_wait(
                e.topic,
                e.payload.encode(),
                key=e.key.encode() if e.key is not None else None,
                headers=[(REPLAYED_HEADER, str(e.event_id).encode())],
            )
            marker = DeadLetterReplayed(dead_letter_id=str(e.event_id), topic=e.topic)
            await producer.send_and_wait(settings.topics.dead_letters, marker.model_dump_json().encode())
    finally:
        await producer.stop()
    return len(chosen), refused


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supportdesk_platform.deadletters", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--consumer", help="only those of this consumer (session, agent, ingest, webhook)")
    filters.add_argument("--topic", help="only those from a topic whose name contains this")
    filters.add_argument("--reason", help="only those whose reason contains these words")
    commands.add_parser("list", parents=[filters], help="one JSON line per dead letter")
    show = commands.add_parser("show", help="one dead letter, whole")
    show.add_argument("event_id")
    again = commands.add_parser("replay", parents=[filters], help="publish the original events again")
    again.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
    again.add_argument("--all", action="store_true", help="every dead letter the filters select")
    again.add_argument("--again", action="store_true", help="also those replayed before")
    again.add_argument("--dry-run", action="store_true", help="say what would be replayed, and do nothing")
    for command in (commands.choices["list"], show, again):
        command.add_argument(
            "--idle-seconds", type=float, default=IDLE_SECONDS, help="the read ends after this long without a record"
        )
    return parser


async def run(argv: Sequence[str], settings: ServiceSettings) -> int:
    args = _parser().parse_args(argv)
    letters = await read_all(settings, args.idle_seconds)
    sys.stderr.write(f"{len(letters)} dead letters read from {settings.topics.dead_letters}\n")
    if args.command == "show":
        found = [letter for letter in letters if str(letter.event.event_id) == args.event_id]
        if not found:
            sys.stderr.write(f"no dead letter {args.event_id}\n")
            return 1
        sys.stdout.write(found[0].event.model_dump_json(indent=2) + "\n")
        return 0
    chosen = [letter for letter in letters if Selection(args.consumer, args.topic, args.reason)(letter)]
    if args.command == "list":
        for letter in chosen:
            sys.stdout.write(json.dumps(letter.summary()) + "\n")
        return 0
    if args.event_ids:
        wanted = set(args.event_ids)
        chosen = [letter for letter in chosen if str(letter.event.event_id) in wanted]
        missing = wanted - {str(letter.event.event_id) for letter in chosen}
        if missing:
            sys.stderr.write(f"no such dead letter: {', '.join(sorted(missing))}\n")
            return 1
    elif not args.all or not (args.consumer or args.topic or args.reason):
        sys.stderr.write("name the dead letters to replay (EVENT_ID ...), or --all with a filter\n")
        return 2
    else:
        chosen = [letter for letter in chosen if not letter.event.reason.startswith(UNDECODABLE)]
    if not args.again:
        chosen = [letter for letter in chosen if not letter.replayed]
    if args.dry_run:
        for letter in chosen:
            sys.stdout.write(json.dumps({"would_replay": letter.summary()}) + "\n")
        return 0
    count, refused = await replay(settings, chosen)
    sys.stdout.write(json.dumps({"replayed": count, "not_replayable": refused}) + "\n")
    return 1 if refused else 0


def main() -> None:
    raise SystemExit(asyncio.run(run(sys.argv[1:], ServiceSettings())))


if __name__ == "__main__":
    main()
