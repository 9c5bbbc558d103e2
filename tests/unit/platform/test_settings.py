import secrets
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from supportdesk_agent.settings import AgentSettings
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_ingest.settings import IngestSettings
from supportdesk_platform.settings import ServiceSettings
from supportdesk_session.settings import SessionWorkerSettings

ENV_EXAMPLE = Path(__file__).parents[3] / ".env.example"
REAL_KEY = Fernet.generate_key().decode()
STRONG = secrets.token_urlsafe(32)
EVERY_SETTINGS: list[type[BaseSettings]] = [
    GatewaySettings,
    SessionWorkerSettings,
    AgentSettings,
    IngestSettings,
    ServiceSettings,
]


def env_file_as_docker_reads_it(path: Path) -> dict[str, str]:
    """`docker run --env-file` and kustomize `envs`: NAME=VALUE, the value
    verbatim to the end of the line (no inline comments, no unquoting)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


@pytest.mark.parametrize("settings_class", EVERY_SETTINGS)
def test_every_service_starts_from_the_env_example_as_docker_reads_it(
    settings_class: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = env_file_as_docker_reads_it(ENV_EXAMPLE)
    assert "LOAD_SAMPLE_KNOWLEDGE" in values
    for name, value in values.items():
        assert "#" not in value, f"{name}: an inline comment becomes part of the value under --env-file"
        monkeypatch.setenv(name, value)
    settings_class()  # no validation error


def test_an_empty_value_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOAD_SAMPLE_KNOWLEDGE", "")
    monkeypatch.setenv("KAFKA_PARTITIONS", "")
    monkeypatch.setenv("TORCH_NUM_THREADS", "")
    settings = IngestSettings()
    assert settings.load_sample_knowledge is None
    assert settings.kafka_partitions == 6
    assert settings.knowledge.torch_num_threads is None


@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_development_the_development_encryption_key_is_refused(environment: str) -> None:
    with pytest.raises(
        ValidationError, match=r"SESSION_ENCRYPTION_KEYS: key 1 is the development key.* generate one with: python -c"
    ):
        SessionWorkerSettings(environment=environment)


@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_development_the_development_admin_key_is_refused(environment: str) -> None:
    with pytest.raises(ValidationError, match=r"ADMIN_API_KEY .* generate one with: python -c"):
        GatewaySettings(environment=environment, session_encryption_keys=REAL_KEY)
    GatewaySettings(environment=environment, session_encryption_keys=REAL_KEY, admin_api_key=STRONG)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("s3cret-admin", "is 12 characters long"),
        ("changeme-changeme-changeme-changeme", "placeholder"),
        ("ab" * 20, "too predictable"),
    ],
)
@pytest.mark.parametrize("name", ["admin_api_key", "identity_secret"])
def test_weak_secrets_are_refused_outside_development(name: str, secret: str, reason: str) -> None:
    secrets_ = {"admin_api_key": STRONG, "identity_secret": STRONG, name: secret}
    with pytest.raises(ValidationError, match=reason):
        GatewaySettings(environment="production", session_encryption_keys=REAL_KEY, **secrets_)
    GatewaySettings(environment="development", **secrets_)  # development takes anything


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ("not-a-key", "key 1 is not a Fernet key"),
        (f"{Fernet.generate_key().decode()},ZmRmZGZkZmRmZGZkZmRmZGZkZmRmZGZkZmRmZGZkZmQ=", "key 2 is not random"),
    ],
)
def test_bad_encryption_keys_are_refused(keys: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        SessionWorkerSettings(environment="production", session_encryption_keys=keys)


def test_a_malformed_encryption_key_is_refused_even_in_development() -> None:
    with pytest.raises(ValidationError, match="not a Fernet key"):
        SessionWorkerSettings(session_encryption_keys="short")


@pytest.mark.parametrize("settings", [AgentSettings, IngestSettings])
def test_the_workers_that_read_attachments_need_a_real_encryption_key(settings: type[AgentSettings]) -> None:
    """The agent and ingest read users' attachments from the encrypted session
    state, so production refuses them the development key, like the gateway."""
    with pytest.raises(ValidationError, match="SESSION_ENCRYPTION_KEYS: key 1 is the development key"):
        settings(environment="production")
    settings(environment="production", session_encryption_keys=Fernet.generate_key().decode())


def test_sasl_needs_credentials() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        AgentSettings(kafka_security_protocol="SASL_SSL")
    AgentSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="p")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("SESSION_TIMEOUT_MINUTES", "5")
    monkeypatch.setenv("SESSION_OPS_PORT", "9111")
    settings = SessionWorkerSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.session_ttl_seconds == 300
    assert settings.ops_port == 9111
