"""Topic names. Every service takes its names from here, never from literals.

A prefix lets several deployments (or test runs) share one Kafka cluster without
seeing each other's events.
"""

from dataclasses import dataclass

VERSION = "v1"


@dataclass(frozen=True)
class Topics:
    """The topic set of one deployment, all names derived from one prefix."""

    prefix: str = "supportdesk"

    def _name(self, stem: str) -> str:
        return f"{self.prefix}.{stem}.{VERSION}"

    @property
    def chat_inbound(self) -> str:
        """Per-session event log the session worker owns: user messages,
        completed replies, closures. Keyed by session id, so one session's
        events are consumed in order by one session worker."""
        return self._name("chat.inbound")

    @property
    def agent_turns(self) -> str:
        """Turns accepted by the session worker, waiting for an answer."""
        return self._name("agent.turns")

    @property
    def chat_outbound(self) -> str:
        """Everything a client should see (acks, deltas, replies, escalations).
        Every gateway replica reads all of it and forwards what belongs to the
        sockets it holds."""
        return self._name("chat.outbound")

    @property
    def escalations(self) -> str:
        """Sessions handed to a human, for the human-agent desk."""
        return self._name("sessions.escalations")

    @property
    def document_uploads(self) -> str:
        """Documents to index or remove, for the ingest worker."""
        return self._name("documents.uploads")

    @property
    def document_status(self) -> str:
        """Outcomes of indexing (indexed with the chunk count, or failed with
        the reason), for whoever produced the documents."""
        return self._name("documents.status")

    @property
    def dead_letters(self) -> str:
        """Events no consumer could process, with the reason."""
        return self._name("deadletter")

    def all(self) -> tuple[str, ...]:
        return (
            self.chat_inbound,
            self.agent_turns,
            self.chat_outbound,
            self.escalations,
            self.document_uploads,
            self.document_status,
            self.dead_letters,
        )
