from pydantic import Field

from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.settings import WorkerSettings


class IngestSettings(WorkerSettings):
    ops_port: int = Field(default=8103, alias="INGEST_OPS_PORT")
    consumer_group: str = Field(default="supportdesk-ingest", alias="INGEST_CONSUMER_GROUP")
    load_sample_knowledge: bool | None = Field(
        default=None, description="Index the built-in sample documents into an empty index; default: in development."
    )
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)

    @property
    def wants_samples(self) -> bool:
        if self.load_sample_knowledge is None:
            return self.environment == "development"
        return self.load_sample_knowledge
