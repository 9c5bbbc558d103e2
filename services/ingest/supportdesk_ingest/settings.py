from pydantic import Field

from supportdesk_ingest.limits import ParseLimits
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.settings import WorkerSettings
from supportdesk_sessions.settings import SessionStateSettings

_LIMITS = ParseLimits()


class IngestSettings(SessionStateSettings, WorkerSettings):
    """Session keys too: users' attachments are read from, and their passages
    written to, the session's encrypted state."""

    ops_port: int = Field(default=8103, alias="INGEST_OPS_PORT")
    consumer_group: str = Field(default="supportdesk-ingest", alias="INGEST_CONSUMER_GROUP")
    load_sample_knowledge: bool | None = Field(
        default=None, description="Index the built-in sample documents into an empty index; default: in development."
    )
    sample_knowledge_retires: bool = Field(
        default=True,
        description="Remove the sample knowledge (index and document list) once the operator's first own "
        "document is indexed, so that it never answers beside the operator's documents unnoticed.",
    )
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    attachment_max_passages: int = Field(
        default=100,
        ge=1,
        alias="ATTACHMENT_MAX_PASSAGES",
        description="Passages of one attachment kept for the agent to search (in the session's state); the rest of"
        " a longer file is left out, and the attachment says so.",
    )

    # Each document is parsed in a process of its own, under these limits; a
    # document that breaks one ends `failed` with the reason, and is not retried.
    parse_timeout_seconds: float = Field(
        default=_LIMITS.timeout_seconds,
        gt=0,
        alias="INGEST_PARSE_TIMEOUT_SECONDS",
        description="Wall-clock time one document's parse may take before its process is killed.",
    )
    parse_memory_mb: int = Field(
        default=_LIMITS.memory_mb,
        ge=256,
        alias="INGEST_PARSE_MEMORY_MB",
        description="Address space of the parse process (RLIMIT_AS), MB; the parser libraries alone take ~150.",
    )
    parse_cpu_seconds: int = Field(
        default=_LIMITS.cpu_seconds,
        ge=1,
        alias="INGEST_PARSE_CPU_SECONDS",
        description="CPU time of the parse process (RLIMIT_CPU); below the timeout, so a busy parse says so.",
    )
    max_text_chars: int = Field(
        default=_LIMITS.max_text_chars,
        ge=1000,
        alias="INGEST_MAX_TEXT_CHARS",
        description="Longest text a document may yield; the default matches the largest plain-text upload (10 MB).",
    )
    zip_max_entries: int = Field(
        default=_LIMITS.zip_max_entries,
        ge=1,
        alias="INGEST_ZIP_MAX_ENTRIES",
        description="Most entries a docx or xlsx archive may hold.",
    )
    zip_max_uncompressed_mb: int = Field(
        default=_LIMITS.zip_max_uncompressed_mb,
        ge=1,
        alias="INGEST_ZIP_MAX_UNCOMPRESSED_MB",
        description="Most a docx or xlsx archive may unpack to, as its directory declares, MB.",
    )
    zip_max_ratio: int = Field(
        default=_LIMITS.zip_max_ratio,
        ge=1,
        alias="INGEST_ZIP_MAX_RATIO",
        description="Highest unpacked:packed ratio of a docx or xlsx archive, and of each of its entries over 1 MB.",
    )

    max_document_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        alias="INGEST_MAX_DOCUMENT_BYTES",
        description="Largest document taken from the upload topic (inline or fetched), as the gateway's uploads.",
    )
    shared_root: str | None = Field(
        default=None,
        alias="INGEST_SHARED_ROOT",
        description="A folder (a shared volume) under which producers may reference documents as file://; "
        "file:// is refused when unset.",
    )
    fetch_timeout_seconds: float = Field(
        default=30, gt=0, alias="INGEST_FETCH_TIMEOUT_SECONDS", description="For a document fetched over HTTP."
    )
    fetch_allow_private: bool = Field(
        default=False,
        alias="INGEST_FETCH_ALLOW_PRIVATE",
        description="Fetch documents from private, loopback and link-local addresses too (refused by default: "
        "a producer could otherwise make the worker read internal services).",
    )
    # s3:// credentials are not settings of ours: boto3's chain finds them
    # (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE,
    # a web identity or the pod's, task's or instance's role), so a role needs
    # no secret at all.
    s3_buckets: str = Field(
        default="",
        alias="INGEST_S3_BUCKETS",
        description="Comma-separated buckets producers may reference as s3://bucket/key; s3:// is refused when "
        "empty (a producer must not make the worker read whatever its credentials reach).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        alias="INGEST_S3_ENDPOINT_URL",
        description="An S3-compatible store (MinIO, localbucket, ...), addressed path-style; AWS S3 when unset.",
    )
    s3_region: str = Field(
        default="us-east-1",
        min_length=1,
        alias="INGEST_S3_REGION",
        description="The buckets' region, which requests are signed for (AWS_REGION is not read).",
    )

    @property
    def s3_bucket_names(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.s3_buckets.split(",") if name.strip())

    @property
    def wants_samples(self) -> bool:
        if self.load_sample_knowledge is None:
            return self.environment == "development"
        return self.load_sample_knowledge

    @property
    def parse_limits(self) -> ParseLimits:
        return ParseLimits(
            timeout_seconds=self.parse_timeout_seconds,
            memory_mb=self.parse_memory_mb,
            cpu_seconds=self.parse_cpu_seconds,
            max_text_chars=self.max_text_chars,
            zip_max_entries=self.zip_max_entries,
            zip_max_uncompressed_mb=self.zip_max_uncompressed_mb,
            zip_max_ratio=self.zip_max_ratio,
        )
