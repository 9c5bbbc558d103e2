"""Kafka wiring shared by every service: the broker, topic provisioning,
consumer tuning, and decoding with a dead-letter path for poison events.

Only the Kafka protocol is used, so the same code runs on the local Tansu
broker and on Apache Kafka.
"""

import asyncio
import logging
import random
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar, get_args

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, for_code
from aiokafka.helpers import create_ssl_context
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CollectorRegistry, Counter
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from supportdesk_contracts.envelope import Event, SessionEvent
from supportdesk_contracts.events import EventDeadLettered
from supportdesk_platform.dispatch import Key, KeyedDispatcher
from supportdesk_platform.logs import log_context
from supportdesk_platform.settings import ServiceSettings
from supportdesk_platform.telemetry import broker_middlewares, consumed_by

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36

E = TypeVar("E")

# A dependency that is down or overloaded: Redis (its out-of-memory refusal
# included), Kafka, and anything reached over the network (Qdrant's client
# raises ConnectionError for an outage: supportdesk_knowledge.index.IndexOutage).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (RedisError, KafkaError, OSError, TimeoutError)
DEAD_LETTER_PAYLOAD_CHARS = 100_000
ATTEMPTS_REMEMBERED = 10_000


@dataclass(frozen=True)
class RetryPolicy:
    """How an event is retried while a dependency is unavailable: `attempts`
    in all, with an exponential backoff (jittered between half and all of it)
    capped at `max_seconds`; then it is dead-lettered with the count, so a
    long outage, or a Redis out of memory, never stalls a partition for good."""

    attempts: int = 8
    initial_seconds: float = 1.0
    max_seconds: float = 30.0

    @classmethod
    def of(cls, settings: ServiceSettings) -> "RetryPolicy":
        return cls(
            settings.event_retry_attempts, settings.event_retry_initial_seconds, settings.event_retry_max_seconds
        )

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (from 1)."""
        return min(self.initial_seconds * 2.0 ** (attempt - 1), self.max_seconds) * random.uniform(0.5, 1.0)


class TopicProvisioningError(RuntimeError):
    """The topics could not be made ready: the broker refused to create one,
    or Kafka or the topics were still missing when the wait ran out."""


class _NotYet(Exception):
    """A retryable step of provisioning: Kafka or a topic is not there yet."""


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """TLS and SASL as configured, in FastStream's terms (None: plaintext)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        key_password = settings.kafka_ssl_key_password
        ssl_context = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            password=key_password.get_secret_value() if key_password else None,
        )
    if protocol == "SSL":
        return BaseSecurity(ssl_context=ssl_context, use_ssl=True)
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    password = settings.kafka_sasl_password
    return sasl[settings.kafka_sasl_mechanism](
        settings.kafka_sasl_username or "",
        password.get_secret_value() if password else "",
        ssl_context=ssl_context,
        use_ssl=ssl_context is not None,
    )


def kafka_client_options(settings: ServiceSettings) -> dict[str, Any]:
    """The same security as keyword arguments of a plain aiokafka client
    (the admin client, a tool's consumer)."""
    return parse_security(kafka_security(settings))


class EventCorrelation(BaseMiddleware):  # type: ignore[type-arg]
    """Kafka's `correlation_id` header is the event's own `correlation_id`
    (the user message id of its turn), not a new id per message: whoever
    follows one conversation through the topics with a plain consumer, or a
    trace's conversation id, finds one id throughout."""

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        if isinstance(cmd.body, Event) and cmd.body.correlation_id:
            cmd.correlation_id = cmd.body.correlation_id
        return await call_next(cmd)


def build_broker(settings: ServiceSettings, client_id: str, registry: CollectorRegistry) -> KafkaBroker:
    """The service's broker, with consume/publish metrics in `registry`."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        security=kafka_security(settings),
        # Every in-sync replica has an event before it counts as sent: with
        # min.insync.replicas 2 of 3, a leader failing loses nothing that was
        # acknowledged (the default, 1, acknowledges on the leader alone).
        acks="all",
        # Topics are created explicitly with the configured partition count;
        # auto-creation would give whatever the broker's default is.
        allow_auto_create_topics=False,
        # Our handlers and format, not FastStream's own coloured ones.
        logger=logging.getLogger("supportdesk.kafka"),
        # Per-message "Received/Processed" lines are debug detail, not news.
        log_level=logging.DEBUG,
        # On stop, subscribers wait this long for in-flight handlers before
        # their consumers commit and leave the group.
        graceful_timeout=settings.shutdown_drain_seconds,
        # Outermost first: the correlation id is set before tracing reads it.
        middlewares=[
            EventCorrelation,
            *broker_middlewares(),
            KafkaPrometheusMiddleware(registry=registry, app_name=client_id, metrics_prefix="supportdesk"),
        ],
    )


def consumer_options(settings: ServiceSettings) -> dict[str, Any]:
    """Subscriber keyword arguments tuned for low latency on an idle topic."""
    return {
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
    }


class TopicProvisioner(Protocol):
    """Creates the deployment's topics at start-up; tests on FastStream's
    in-memory broker pass `NoProvisioning`."""

    async def ensure(self, topics: Sequence[str]) -> None: ...


class KafkaTopicProvisioner:
    """Makes sure the topics exist before the service consumes or publishes.

    With `create` (KAFKA_CREATE_TOPICS, the default) missing topics are made
    with the configured partitions, replication and retention; existing ones
    are left alone. Without it (topics made by a Job or Strimzi), it waits for
    them. Either way a broker that is still coming up is retried with
    backoff and jitter until KAFKA_PROVISION_TIMEOUT_SECONDS, instead of the
    process crash-looping.
    """

    MAX_BACKOFF_SECONDS = 10.0

    def __init__(self, settings: ServiceSettings, *, create: bool | None = None) -> None:
        self.settings = settings
        self.create = settings.kafka_create_topics if create is None else create

    async def ensure(self, topics: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.kafka_provision_timeout_seconds
        backoff = 0.5
        while True:
            try:
                await self._ensure_once(topics)
                return
            except (_NotYet, KafkaConnectionError, KafkaTimeoutError) as exc:
                if loop.time() + backoff > deadline:
                    raise TopicProvisioningError(
                        f"topics not ready after {self.settings.kafka_provision_timeout_seconds:.0f} s: {exc}"
                    ) from exc
                log.warning("kafka not ready (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.MAX_BACKOFF_SECONDS)

    def _new_topic(self, name: str) -> NewTopic:
        settings = self.settings
        # Dead letters wait for a human, so they are kept longer than chats.
        dead_letters = name == settings.topics.dead_letters
        retention = settings.kafka_deadletter_retention_ms if dead_letters else settings.kafka_retention_ms
        config = {"retention.ms": str(retention)}
        if settings.kafka_min_insync_replicas is not None:
            config["min.insync.replicas"] = str(settings.kafka_min_insync_replicas)
        return NewTopic(name, settings.kafka_partitions, settings.kafka_replication_factor, None, config)

    async def _ensure_once(self, topics: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id="supportdesk-provisioner",
            **kafka_client_options(self.settings),
        )
        await admin.start()
        try:
            if not self.create:
                missing = set(topics) - set(await admin.list_topics())
                if missing:
                    raise _NotYet(f"waiting for topics {sorted(missing)} (KAFKA_CREATE_TOPICS=false)")
                return
            response = await admin.create_topics([self._new_topic(name) for name in topics])
        finally:
            await admin.close()
        for topic, code, message in response.topic_errors:
            if code in (0, TOPIC_ALREADY_EXISTS):
                continue
            error = for_code(code)
            if error.retriable:  # e.g. no controller elected yet
                raise _NotYet(f"{topic}: {error.__name__}")
            raise TopicProvisioningError(f"cannot create topic {topic}: {code} {message}")


class NoProvisioning:
    """For brokers that need no topics created (FastStream's TestKafkaBroker)."""

    async def ensure(self, topics: Sequence[str]) -> None:
        return None


async def broker_ready(broker: KafkaBroker) -> bool:
    try:
        return await broker.ping(timeout=2.0)
    except KafkaError:
        return False


class Publisher(Protocol):
    """What handlers need of a FastStream publisher; tests pass fakes."""

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> Any: ...


def key_of(session_id: str) -> bytes:
    return session_id.encode()


GivenUp = Callable[[Any, str], Awaitable[None]]
"""Told of an event dead-lettered after its retries (the event, the reason),
to tell whoever waits for it (a client, a document's status)."""


REPLAYED_HEADER = "x-supportdesk-replayed-from"
"""Set on an event replayed from the dead letters: the dead letter's id."""


def _replayed_from(message: KafkaMessage) -> str | None:
    for name, value in getattr(message.raw_message, "headers", None) or ():
        if name == REPLAYED_HEADER and isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
    return None


def _position(message: KafkaMessage) -> tuple[str, int, int]:
    raw = message.raw_message
    return (str(getattr(raw, "topic", "?")), int(getattr(raw, "partition", -1)), int(getattr(raw, "offset", -1)))


DeadLetterCause = Literal["invalid_event", "handler_error", "retries_exhausted"]
"""Why an event was dead-lettered, as a metric label: it could not be decoded,
its handler failed on it (a poison event), or a dependency stayed down past
the retry policy. The reason itself (free text) goes in the dead letter."""


class DeadLetters:
    """Decodes a topic's events; what cannot be decoded or processed goes to
    the dead-letter topic with its reason instead of being retried forever or
    silently dropped. A dependency outage is retried (`RetryPolicy`), counted
    per message across redeliveries. With a `registry`, dead letters are
    counted there by source topic and cause."""

    # One counter per registry, shared by its services' DeadLetters (a
    # registry refuses a second metric of the same name).
    _counters: ClassVar["weakref.WeakKeyDictionary[CollectorRegistry, Counter]"] = weakref.WeakKeyDictionary()

    def __init__(
        self,
        publisher: Publisher,
        consumer: str,
        retry: RetryPolicy | None = None,
        given_up: GivenUp | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.publisher = publisher
        self.consumer = consumer
        self.retry = retry or RetryPolicy()
        self.given_up = given_up
        self._attempts: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._counted = None if registry is None else self._counter(registry)

    @classmethod
    def _counter(cls, registry: CollectorRegistry) -> Counter:
        if registry not in cls._counters:
            cls._counters[registry] = Counter(
                "supportdesk_dead_letters",
                "Events sent to the dead-letter topic, by the topic they came from and why"
                " (invalid_event, handler_error, retries_exhausted).",
                ["topic", "reason"],
                registry=registry,
            )
        return cls._counters[registry]

    def expect(self, topic: str) -> None:
        """Series for `topic`'s dead letters from the start, at 0: increase()
        would not see the first one of a series that appears with it."""
        if self._counted is not None:
            for cause in get_args(DeadLetterCause):
                self._counted.labels(topic, cause)

    async def send(self, message: KafkaMessage, reason: str, cause: DeadLetterCause, attempts: int = 1) -> None:
        key = getattr(message.raw_message, "key", None)
        event = EventDeadLettered(
            topic=getattr(message.raw_message, "topic", "?"),
            consumer=self.consumer,
            reason=reason[:2000],
            payload=message.body.decode("utf-8", errors="replace")[:DEAD_LETTER_PAYLOAD_CHARS],
            payload_bytes=len(message.body),
            key=key.decode("utf-8", errors="replace") if isinstance(key, bytes) else None,
            attempts=attempts,
            replayed_from=_replayed_from(message),
            # The turn it was part of (the header is the event's own): a turn's dead letter is found by its id.
            correlation_id=message.correlation_id,
        )
        log.warning(
            "event dead-lettered",
            extra={"consumer": self.consumer, "topic": event.topic, "reason": event.reason[:300], "attempts": attempts},
        )
        await self.publisher.publish(event, key=key if isinstance(key, bytes) else None)
        if self._counted is not None:  # once it is on the topic, not when it failed to get there
            self._counted.labels(event.topic, cause).inc()

    async def decode_or_dead_letter(self, adapter: TypeAdapter[E], message: KafkaMessage) -> E | None:
        try:
            return adapter.validate_json(message.body)
        except ValidationError as exc:
            await self.send(message, f"invalid event: {exc.errors(include_url=False)[:3]}", "invalid_event")
            return None

    async def consume(
        self,
        adapter: TypeAdapter[E],
        message: KafkaMessage,
        handler: Callable[[E], Awaitable[None]],
    ) -> None:
        """Decode and handle one message.

        A dependency outage (Redis, Kafka, the network, Qdrant) is transient:
        wait the policy's backoff and raise, so the same message is delivered
        again (NACK, or the keyed dispatcher's retry) and nothing is lost;
        past the policy's attempts it is dead-lettered with the count.
        Anything else is a poison event, dead-lettered at once.
        """
        event = await self.decode_or_dead_letter(adapter, message)
        if event is None:
            return
        with log_context(**_ids_of(event)):
            if log.isEnabledFor(logging.DEBUG):
                topic, partition, offset = _position(message)
                log.debug(
                    "handling %s",
                    type(event).__name__,
                    extra={"consumer": self.consumer, "topic": topic, "partition": partition, "offset": offset},
                )
            await self._handle(message, event, handler)

    async def _handle(self, message: KafkaMessage, event: E, handler: Callable[[E], Awaitable[None]]) -> None:
        where = _position(message)
        try:
            await handler(event)
        except TRANSIENT_ERRORS as exc:
            attempt = self._attempts.pop(where, 0) + 1
            if attempt >= self.retry.attempts:
                await self._give_up(message, event, f"{type(exc).__name__}: {exc}", attempt)
                return
            self._attempts[where] = attempt
            while len(self._attempts) > ATTEMPTS_REMEMBERED:
                self._attempts.popitem(last=False)
            delay = self.retry.delay(attempt)
            log.warning(
                "dependency unavailable; retrying the event",
                extra={"attempt": attempt, "of": self.retry.attempts, "retry_in_seconds": round(delay, 2)},
                exc_info=True,
            )
            await asyncio.sleep(delay)
            raise
        # Deliberately broad: one event the code cannot handle must not stop
        # the partition behind it; it is kept, with the reason, for a human.
        except Exception as exc:
            self._attempts.pop(where, None)
            log.exception("handler failed; dead-lettering")
            await self.send(message, f"{type(exc).__name__}: {exc}", "handler_error")
        else:
            self._attempts.pop(where, None)

    async def _give_up(self, message: KafkaMessage, event: E, error: str, attempts: int) -> None:
        reason = f"a dependency stayed unavailable after {attempts} attempts: {error}"
        log.error("event given up after its retries", extra={"attempts": attempts})
        await self.send(message, reason, "retries_exhausted", attempts)
        if self.given_up is None:
            return
        try:
            await self.given_up(event, reason)
        except TRANSIENT_ERRORS:
            # Whoever waits is told by nothing else; the dead letter keeps the event.
            log.warning("could not report the given-up event", exc_info=True)


def _ids_of(event: object) -> dict[str, str | None]:
    """The log context of an event: its session and its turn."""
    return {
        "session_id": event.session_id if isinstance(event, SessionEvent) else None,
        "correlation_id": event.correlation_id if isinstance(event, Event) else None,
    }


def subscribe_events(
    router: KafkaRouter,
    settings: ServiceSettings,
    *,
    topic: str,
    group_id: str,
    title: str,
    adapter: TypeAdapter[E],
    dead_letters: DeadLetters,
    handler: Callable[[E], Awaitable[None]],
) -> None:
    """A consumer-group subscriber with at-least-once delivery: the offset is
    committed after the handler; a transient failure re-delivers the message
    (NACK), a poison one is dead-lettered. A new group starts from the
    earliest offset so nothing published before its first start is missed."""
    dead_letters.expect(topic)

    @router.subscriber(  # type: ignore[untyped-decorator]
        topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=title,
        **consumer_options(settings),
    )
    async def on_message(message: KafkaMessage) -> None:
        consumed_by(group_id, message.raw_message)
        await dead_letters.consume(adapter, message, handler)


def subscribe_keyed(
    router: KafkaRouter,
    settings: ServiceSettings,
    *,
    topic: str,
    group_id: str,
    title: str,
    adapter: TypeAdapter[E],
    dead_letters: DeadLetters,
    handler: Callable[[E], Awaitable[None]],
    max_in_flight: int,
    on_queued: Callable[[Key], None] | None = None,
) -> KeyedDispatcher:
    """Like `subscribe_events`, but up to `max_in_flight` keys are handled at
    once, each key's messages in order (dispatch.py). A transient failure is
    retried in place with backoff (the lane waits; other keys go on) until it
    succeeds, is dead-lettered past the retry policy's attempts, or the
    service drains (then it is redelivered); offsets are committed by the
    dispatcher.
    The caller drains the returned dispatcher before the broker stops."""
    dead_letters.expect(topic)

    async def work(message: KafkaMessage) -> None:
        while True:
            try:
                await dead_letters.consume(adapter, message, handler)
                return
            except TRANSIENT_ERRORS:
                # consume() waited its backoff; past the attempts it dead-letters.
                if dispatcher.closing:
                    raise  # not handled: left uncommitted, for the group's next member

    dispatcher = KeyedDispatcher(work, max_in_flight=max_in_flight, on_queued=on_queued, name=title)

    @router.subscriber(  # type: ignore[untyped-decorator]
        topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        listener=dispatcher.listener(settings.shutdown_drain_seconds),
        title=title,
        **consumer_options(settings),
    )
    async def on_message(message: KafkaMessage) -> None:
        consumed_by(group_id, message.raw_message)
        await dispatcher.submit(message)

    return dispatcher
