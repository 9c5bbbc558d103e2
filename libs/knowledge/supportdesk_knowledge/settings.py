from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    qdrant_url: str | None = Field(default=None, description="Qdrant server; embedded local mode when unset.")
    qdrant_api_key: str | None = None
    qdrant_path: str = Field(default="./data/qdrant", description="Embedded data folder (one process at a time).")
    qdrant_embedded: Literal["edge", "local"] = Field(
        default="edge",
        description="The embedded engine, without QDRANT_URL: edge (Qdrant Edge, Qdrant's engine in-process: "
        "~1 ms a search at 10k chunks) or local (qdrant-client's local mode, which scores every point in Python: "
        "~36 ms at 10k). Edge keeps its data under QDRANT_PATH/edge and copies in, once, what local mode kept.",
    )
    qdrant_collection: str = "supportdesk_knowledge"
    qdrant_connect_timeout_seconds: float = Field(
        default=180, gt=0, description="How long start-up waits for the Qdrant server, retrying with backoff."
    )
    embedding_model_path: str | None = Field(
        default=None, description="Folder of a sentence-transformers model; the packaged all-MiniLM-L6-v2 when unset."
    )
    embedding_batch_size: int = Field(default=32, ge=1)
    embedding_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Short texts (questions, passages' sentences) whose vectors are remembered (LRU; ~1.5 KB each).",
    )
    torch_num_threads: int | None = Field(
        default=None,
        ge=1,
        description="Threads torch uses for embeddings; match the CPU limit (torch defaults to every core).",
    )
    rag_chunk_tokens: int = Field(
        default=180,
        ge=32,
        description="Most tokens (the embedding model's word pieces) per chunk; its title and headings come on top, "
        "and the whole must fit the model's sequence length (256 for all-MiniLM-L6-v2).",
    )
    rag_chunk_overlap_tokens: int = Field(
        default=30, ge=0, description="Whole sentences of prose carried into the next chunk of the same section."
    )
    retrieval_mode: Literal["hybrid", "dense"] = Field(
        default="dense",
        description="dense: similarity alone; hybrid: similarity plus the keyword (BM25, with word pairs) score "
        "relative to the best match (keyword vectors are indexed either way). Dense is the default by the eval's "
        "figures (docs/quality.md).",
    )
    retrieval_keyword_weight: float = Field(
        default=0.2,
        gt=0,
        le=2,
        description="In hybrid retrieval, what the best keyword match adds to a passage's similarity.",
    )
