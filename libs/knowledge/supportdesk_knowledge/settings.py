from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    qdrant_url: str | None = Field(default=None, description="Qdrant server; embedded local mode when unset.")
    qdrant_api_key: str | None = None
    qdrant_path: str = Field(default="./data/qdrant", description="Local-mode data folder (one process at a time).")
    qdrant_collection: str = "supportdesk_knowledge"
    qdrant_connect_timeout_seconds: float = Field(
        default=180, gt=0, description="How long start-up waits for the Qdrant server, retrying with backoff."
    )
    embedding_model_path: str | None = Field(
        default=None, description="Folder of a sentence-transformers model; the packaged all-MiniLM-L6-v2 when unset."
    )
    embedding_batch_size: int = Field(default=32, ge=1)
    torch_num_threads: int | None = Field(
        default=None,
        ge=1,
        description="Threads torch uses for embeddings; match the CPU limit (torch defaults to every core).",
    )
    rag_chunk_size: int = Field(default=800, ge=100, description="Target characters per chunk.")
    rag_chunk_overlap: int = Field(default=120, ge=0)
